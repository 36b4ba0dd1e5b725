"""Self-signed first-start certificates and TLS context rules."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import pytest

from mailcore.tls import ReloadableContext, ensure_self_signed, server_context


def test_self_signed_pair_is_private_and_usable(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls", "mail.example.test")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    ctx = server_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    # A second call keeps the same files instead of minting a new identity.
    before = cert.read_bytes()
    assert ensure_self_signed(tmp_path / "tls", "mail.example.test") == (cert, key)
    assert cert.read_bytes() == before


def test_reload_picks_up_new_files_and_keeps_old_context_on_error(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, "localhost")
    holder = ReloadableContext(cert, key)
    first = holder.context
    cert.unlink()
    key.unlink()
    ensure_self_signed(tmp_path, "localhost")
    holder.reload()
    assert holder.context is not first
    current = holder.context
    cert.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        holder.reload()
    assert holder.context is current


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "::1"])
async def test_self_signed_certificate_verifies_on_loopback_names(
    tmp_path: Path, name: str
) -> None:
    # The default listeners are on loopback: a verifying client that trusts
    # the generated certificate connects by name or by address alike.
    cert, key = ensure_self_signed(tmp_path, "localhost")
    host = "::1" if name == "::1" else "127.0.0.1"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(answer, host, 0, ssl=server_context(cert, key))
    except OSError:
        pytest.fail(f"no loopback address {host} on this machine")
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context(cafile=str(cert))
    async with server:
        reader, writer = await asyncio.open_connection(host, port, ssl=client, server_hostname=name)
        assert await reader.readline() == b"hello\n"
        writer.close()
    other = ssl.create_default_context(cafile=str(cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        async with await asyncio.start_server(
            answer, "127.0.0.1", 0, ssl=server_context(cert, key)
        ) as srv2:
            port2 = srv2.sockets[0].getsockname()[1]
            await asyncio.open_connection(
                "127.0.0.1", port2, ssl=other, server_hostname="mail.elsewhere.example"
            )
