"""TLS contexts for servers and clients, and the self-signed first-start pair.

TLS 1.2 is the floor everywhere (RFC 8996 retired 1.0 and 1.1). A server
context can be reloaded in place: :class:`ReloadableContext` builds a new
``SSLContext`` from the files and hands it to new sessions, while sessions
already running keep the context they started with.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

__all__ = ["ReloadableContext", "client_context", "ensure_self_signed", "server_context"]


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with TLS 1.2 and newer, from PEM files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    # Mail clients resume sessions rarely; tickets would only add key material to rotate.
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def client_context(cafile: str | Path | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """A client context with TLS 1.2 and newer; ``verify=False`` only for opportunistic TLS."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ReloadableContext:
    """A server TLS context that can be rebuilt from its files (on SIGHUP)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self._context = server_context(cert, key)

    @property
    def context(self) -> ssl.SSLContext:
        """The context new sessions should use."""
        return self._context

    def reload(self) -> None:
        """Read the certificate and key again; on error keep the old context and raise."""
        self._context = server_context(self.cert, self.key)


def ensure_self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Return (cert, key) in ``directory``, creating a self-signed pair if missing.

    The key file is created with mode 0600 before any key byte is written.
    """
    cert_path = directory / "tls-cert.pem"
    key_path = directory / "tls-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    # The default listeners are on loopback: a client that verifies against
    # this certificate may well connect to 127.0.0.1 or ::1 by address.
    alt_names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
        fh.flush()
        os.fsync(fh.fileno())
    fd = os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
        fh.flush()
        os.fsync(fh.fileno())
    return cert_path, key_path
