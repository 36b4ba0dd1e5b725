"""Validated configuration: a TOML file, then command-line flags over it.

Every setting has one home here, with its default. A bad file stops the
server with a :class:`ConfigError` that names the key, the value found and
what was expected, e.g.::

    config error: listener[1].port = 70000: expected an integer from 1 to 65535
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from mailcore.errors import MailcoreError
from mailcore.limits import Limits
from mailcore.relay import settings as relay_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_PORTS",
    "PROTOCOLS",
    "Config",
    "ConfigError",
    "Listener",
    "example_config",
    "load_aliases",
    "load_config",
    "parse_config",
]

Protocol = Literal["smtp", "submission", "lmtp", "pop3", "pop2", "imap"]
TlsMode = Literal["none", "starttls", "implicit"]
PROTOCOLS: tuple[Protocol, ...] = ("smtp", "submission", "lmtp", "pop3", "pop2", "imap")
TLS_MODES: tuple[TlsMode, ...] = ("none", "starttls", "implicit")

# Unprivileged defaults (DESIGN.md): no root needed on a fresh machine.
DEFAULT_PORTS: dict[Protocol, int] = {
    "smtp": 2525,
    "submission": 5587,
    "lmtp": 2424,
    "pop3": 1110,
    "pop2": 1109,
    "imap": 1143,
}


class ConfigError(MailcoreError):
    """A configuration value that cannot be used.

    Attributes:
        key: dotted path of the setting (``listener[0].port``).
        value: the value found.
        expected: what would have been accepted.
    """

    def __init__(self, key: str, value: object, expected: str) -> None:
        super().__init__(f"config error: {key} = {value!r}: expected {expected}")
        self.key = key
        self.value = value
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket: which protocol, where, and how TLS starts."""

    protocol: Protocol
    address: str
    port: int
    tls: TlsMode = "starttls"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``mailcore serve`` needs, validated."""

    data_dir: Path = Path("mailcore-data")
    hostname: str = "localhost"
    domains: tuple[str, ...] = ("localhost",)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    listeners: tuple[Listener, ...] = ()
    # SASL mechanisms offered (SMTP AUTH, POP3 AUTH, IMAP AUTHENTICATE).
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    # RFC 4954 / RFC 2595: plaintext passwords only over TLS unless this is set.
    allow_plaintext_auth: bool = False
    # Client networks allowed to relay without authentication (CIDR).
    relay_networks: tuple[str, ...] = ()
    # Next hop for all non-local mail ("host:port"), or None for MX lookup.
    smarthost: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "info"
    # "ADDR:PORT" of the Prometheus metrics listener, or None for none.
    metrics: str | None = None
    # A file of "alias: account" lines, read at start and on SIGHUP (None: none).
    aliases: Path | None = None
    # SIGTERM: how long messages in flight may take before sessions are cut.
    shutdown_timeout: float = 10.0
    # Processes accepting SMTP, submission and LMTP connections (this one and
    # N-1 workers, see mailcore.workers); "auto": one per core, at most 4.
    smtp_processes: int | Literal["auto"] = "auto"
    limits: Limits = field(default_factory=Limits)
    # --- relay (mailcore.relay.settings: routes, retries, DNS, concurrency) ---
    relay: relay_settings.RelaySettings = field(default_factory=relay_settings.RelaySettings)

    def with_overrides(self, **changes: Any) -> Config:
        """Return a copy with the given fields replaced (flags over the file)."""
        return dataclasses.replace(self, **changes)


_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
SASL_MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")
_TOP_KEYS = {
    "data_dir",
    "hostname",
    "domains",
    "tls",
    "listener",
    "auth",
    "relay",
    "log",
    "metrics",
    "limits",
    "shutdown_timeout",
    "aliases",
    "smtp_processes",
}

#: The most ``smtp_processes`` a config may ask for.
MAX_SMTP_PROCESSES = 64


def _expect_str(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, value, "a non-empty string")
    return value


def _expect_port(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(key, value, "an integer from 1 to 65535")
    return value


def _expect_table(key: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(key, value, "a table")
    return cast(Mapping[str, object], value)


def _expect_str_list(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, value, "a list of non-empty strings")
    return tuple(cast(list[str], value))


def _reject_unknown(prefix: str, table: Mapping[str, object], known: set[str]) -> None:
    for key in table:
        if key not in known:
            name = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                name, table[key], "one of the known keys: " + ", ".join(sorted(known))
            )


def _parse_address(key: str, value: object) -> str:
    text = _expect_str(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if text != "localhost":
            raise ConfigError(key, value, "an IPv4 or IPv6 address") from None
    return text


def parse_hostport(key: str, value: object, *, hostname_ok: bool = False) -> tuple[str, int]:
    """Parse ``ADDR:PORT`` or ``[IPv6]:PORT`` as given on the command line or in a file.

    With ``hostname_ok`` a DNS name is accepted in place of the address.
    """
    text = _expect_str(key, value)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(key, value, "ADDR:PORT, e.g. 127.0.0.1:2525")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "127.0.0.1"
    if hostname_ok and _HOSTNAME.fullmatch(host):
        return host, _expect_port(key, int(port))
    return _parse_address(key, host), _expect_port(key, int(port))


def _parse_listener(index: int, raw: object) -> Listener:
    prefix = f"listener[{index}]"
    table = _expect_table(prefix, raw)
    _reject_unknown(prefix, table, {"protocol", "address", "port", "tls"})
    protocol = table.get("protocol")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{prefix}.protocol", protocol, "one of " + ", ".join(PROTOCOLS))
    proto: Protocol = protocol
    address = _parse_address(f"{prefix}.address", table.get("address", "127.0.0.1"))
    port = _expect_port(f"{prefix}.port", table.get("port", DEFAULT_PORTS[proto]))
    tls = table.get("tls", "starttls")
    if tls not in TLS_MODES:
        raise ConfigError(f"{prefix}.tls", tls, "one of " + ", ".join(TLS_MODES))
    return Listener(proto, address, port, tls)


def _parse_limits(raw: object) -> Limits:
    table = _expect_table("limits", raw)
    defaults = Limits()
    parts: dict[str, Any] = {}
    known_parts = {f.name for f in dataclasses.fields(defaults)}
    _reject_unknown("limits", table, known_parts)
    for part_name, part_raw in table.items():
        part_default = getattr(defaults, part_name)
        part_table = _expect_table(f"limits.{part_name}", part_raw)
        fields = {f.name: f for f in dataclasses.fields(part_default)}
        _reject_unknown(f"limits.{part_name}", part_table, set(fields))
        values: dict[str, object] = {}
        for name, value in part_table.items():
            key = f"limits.{part_name}.{name}"
            current = getattr(part_default, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ConfigError(key, value, "true or false")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ConfigError(key, value, "a positive integer")
            elif isinstance(current, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(key, value, "a positive number of seconds")
                values[name] = float(value)
                continue
            values[name] = value
        parts[part_name] = dataclasses.replace(part_default, **values)
    return dataclasses.replace(defaults, **parts)


def default_listeners() -> tuple[Listener, ...]:
    """The listeners of a server started with no configuration."""
    return (
        Listener("smtp", "127.0.0.1", DEFAULT_PORTS["smtp"], "starttls"),
        Listener("submission", "127.0.0.1", DEFAULT_PORTS["submission"], "starttls"),
        Listener("pop3", "127.0.0.1", DEFAULT_PORTS["pop3"], "starttls"),
        Listener("imap", "127.0.0.1", DEFAULT_PORTS["imap"], "starttls"),
    )


def parse_config(data: Mapping[str, object], *, base_dir: Path | None = None) -> Config:
    """Validate a parsed TOML document and build a :class:`Config`.

    Relative paths are taken relative to ``base_dir`` (the file's folder).
    """
    _reject_unknown("", data, _TOP_KEYS)
    base = base_dir or Path.cwd()

    def path(key: str, value: object) -> Path:
        p = Path(_expect_str(key, value))
        return p if p.is_absolute() else base / p

    cfg = Config(listeners=default_listeners())
    changes: dict[str, Any] = {}
    if "data_dir" in data:
        changes["data_dir"] = path("data_dir", data["data_dir"])
    if "hostname" in data:
        changes["hostname"] = _expect_str("hostname", data["hostname"])
    if "domains" in data:
        domains = _expect_str_list("domains", data["domains"])
        if not domains:
            raise ConfigError("domains", data["domains"], "at least one local domain")
        changes["domains"] = tuple(d.lower() for d in domains)
    if "tls" in data:
        tls = _expect_table("tls", data["tls"])
        _reject_unknown("tls", tls, {"cert", "key"})
        if ("cert" in tls) != ("key" in tls):
            missing = "tls.key" if "cert" in tls else "tls.cert"
            raise ConfigError(missing, None, "a certificate and a key, both or neither")
        if "cert" in tls:
            changes["tls_cert"] = path("tls.cert", tls["cert"])
            changes["tls_key"] = path("tls.key", tls["key"])
    if "listener" in data:
        raw = data["listener"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError("listener", raw, "an array of tables ([[listener]])")
        listeners = tuple(_parse_listener(i, item) for i, item in enumerate(raw))
        seen: set[tuple[str, int]] = set()
        for i, lst in enumerate(listeners):
            if (lst.address, lst.port) in seen:
                raise ConfigError(
                    f"listener[{i}].port", lst.port, "a port not used by another listener"
                )
            seen.add((lst.address, lst.port))
        changes["listeners"] = listeners
    if "auth" in data:
        auth = _expect_table("auth", data["auth"])
        _reject_unknown("auth", auth, {"mechanisms", "allow_plaintext"})
        if "mechanisms" in auth:
            mechs = tuple(
                m.upper() for m in _expect_str_list("auth.mechanisms", auth["mechanisms"])
            )
            for m in mechs:
                if m not in SASL_MECHANISMS:
                    raise ConfigError("auth.mechanisms", m, "one of " + ", ".join(SASL_MECHANISMS))
            changes["auth_mechanisms"] = mechs
        if "allow_plaintext" in auth:
            if not isinstance(auth["allow_plaintext"], bool):
                raise ConfigError("auth.allow_plaintext", auth["allow_plaintext"], "true or false")
            changes["allow_plaintext_auth"] = auth["allow_plaintext"]
    if "relay" in data:
        relay = _expect_table("relay", data["relay"])
        _reject_unknown("relay", relay, {"networks", "smarthost", *relay_settings.KEYS})
        if "networks" in relay:
            nets = _expect_str_list("relay.networks", relay["networks"])
            for net in nets:
                try:
                    ipaddress.ip_network(net, strict=False)
                except ValueError:
                    raise ConfigError("relay.networks", net, "a network in CIDR form") from None
            changes["relay_networks"] = nets
        if "smarthost" in relay:
            host, port = parse_hostport("relay.smarthost", relay["smarthost"], hostname_ok=True)
            changes["smarthost"] = f"{host}:{port}"
        changes["relay"] = relay_settings.parse_relay_settings(relay)
    if "log" in data:
        log = _expect_table("log", data["log"])
        _reject_unknown("log", log, {"format", "level"})
        if "format" in log:
            if log["format"] not in ("text", "json"):
                raise ConfigError("log.format", log["format"], '"text" or "json"')
            changes["log_format"] = log["format"]
        if "level" in log:
            if log["level"] not in ("debug", "info", "warning", "error"):
                raise ConfigError("log.level", log["level"], "debug, info, warning or error")
            changes["log_level"] = log["level"]
    if "metrics" in data:
        metrics = _expect_table("metrics", data["metrics"])
        _reject_unknown("metrics", metrics, {"listen"})
        if "listen" in metrics:
            host, port = parse_hostport("metrics.listen", metrics["listen"])
            changes["metrics"] = f"{host}:{port}"
    if "limits" in data:
        changes["limits"] = _parse_limits(data["limits"])
    if "aliases" in data:
        changes["aliases"] = path("aliases", data["aliases"])
    if "shutdown_timeout" in data:
        value = data["shutdown_timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError("shutdown_timeout", value, "a positive number of seconds")
        changes["shutdown_timeout"] = float(value)
    if "smtp_processes" in data:
        changes["smtp_processes"] = parse_processes("smtp_processes", data["smtp_processes"])
    return cfg.with_overrides(**changes)


def parse_processes(key: str, value: object) -> int | Literal["auto"]:
    """``smtp_processes``: "auto" or a whole number from 1 to :data:`MAX_SMTP_PROCESSES`."""
    if value == "auto":
        return "auto"
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, value, f'"auto" or a whole number from 1 to {MAX_SMTP_PROCESSES}')
    if not 1 <= value <= MAX_SMTP_PROCESSES:
        raise ConfigError(key, value, f'"auto" or a whole number from 1 to {MAX_SMTP_PROCESSES}')
    return value


def smtp_process_count(setting: int | Literal["auto"]) -> int:
    """How many processes accept SMTP: the number set, or for "auto" one per core (1-4)."""
    if setting != "auto":
        return setting
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def load_config(path: Path | None) -> Config:
    """Read and validate a TOML file; ``None`` gives the defaults."""
    if path is None:
        return Config(listeners=default_listeners())
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError("--config", str(path), f"a readable file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("--config", str(path), f"valid TOML ({exc})") from None
    return parse_config(data, base_dir=path.resolve().parent)


def example_config() -> str:
    """A commented example of every key, with the defaults."""
    lines = [
        "# mailcore configuration (TOML). Every key is optional; shown are the defaults.",
        "# Command-line flags override what is set here.",
        "",
        "# Where the store, accounts, queue and generated certificate live.",
        'data_dir = "mailcore-data"',
        "# The name this server gives itself in greetings and Received: headers.",
        'hostname = "localhost"',
        "# Domains whose mail is delivered to local mailboxes.",
        'domains = ["localhost"]',
        "# Extra aliases, one 'alias@domain: account@domain' per line ('#' starts a comment);",
        "# read at start and on SIGHUP, besides those made with `mailcore user add --alias-of`.",
        '# aliases = "aliases.txt"',
        "# On SIGTERM: seconds that messages in flight may take before sessions are cut.",
        "shutdown_timeout = 10.0",
        "# Processes that accept SMTP, submission and LMTP connections: this one and",
        "# N-1 workers on the same sockets and store (one Python process uses one core).",
        '# "auto": one per core, at most 4. POP3, IMAP, the relay queue, the log and the',
        "# metrics stay in the main process, which also logs and counts the workers' mail.",
        'smtp_processes = "auto"',
        "",
        "# Certificate and key (PEM). Without them a self-signed pair is made in data_dir.",
        "# [tls]",
        '# cert = "/etc/mailcore/cert.pem"',
        '# key = "/etc/mailcore/key.pem"',
        "",
        "# One [[listener]] per socket. protocol: smtp, submission, lmtp, pop3, pop2, imap;",
        "# tls: none, starttls (offered, or required on submission) or implicit (TLS from",
        "# the first byte, as on ports 465, 995 and 993).",
    ]
    for lst in default_listeners():
        lines += [
            "[[listener]]",
            f'protocol = "{lst.protocol}"',
            f'address = "{lst.address}"',
            f"port = {lst.port}",
            f'tls = "{lst.tls}"',
            "",
        ]
    lines += [
        "[auth]",
        "# SASL mechanisms offered: PLAIN, LOGIN, SCRAM-SHA-256, CRAM-MD5.",
        "# SCRAM-SHA-256 and CRAM-MD5 need secrets kept when passwords are set.",
        'mechanisms = ["PLAIN", "LOGIN"]',
        "# Allow passwords over connections without TLS (not recommended). POP2 has",
        "# no TLS: while this is false it takes logins from loopback clients only.",
        "allow_plaintext = false",
        "",
        "[relay]",
        "# Client networks allowed to relay without authentication.",
        "networks = []",
        "# Send all non-local mail through this host instead of MX lookup.",
        '# smarthost = "127.0.0.1:25"',
        "",
        "[log]",
        'format = "text"   # or "json"',
        'level = "info"    # debug, info, warning, error',
        "",
        "[metrics]",
        "# Prometheus text exposition over HTTP.",
        '# listen = "127.0.0.1:9100"',
        "",
        "# Every limit, by protocol; see mailcore/limits.py for the reasons behind each.",
    ]
    defaults = Limits()
    for part in dataclasses.fields(defaults):
        lines.append(f"[limits.{part.name}]")
        value = getattr(defaults, part.name)
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            text = ("true" if v else "false") if isinstance(v, bool) else repr(v)
            lines.append(f"{f.name} = {text}")
        lines.append("")
    return "\n".join(lines)


def load_aliases(path: Path) -> dict[str, str]:
    """Read an aliases file: ``alias@domain: account@domain`` per line, ``#`` comments.

    Raises :class:`ConfigError` naming the line that cannot be used.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "UTF-8 text"
        raise ConfigError("aliases", str(path), f"a readable file ({reason})") from None
    table: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        alias, sep, account = (part.strip() for part in line.partition(":"))
        if not sep or not _ADDRESS.fullmatch(alias) or not _ADDRESS.fullmatch(account):
            raise ConfigError(f"aliases line {number}", raw.strip(), "ALIAS@DOMAIN: ACCOUNT@DOMAIN")
        table[alias.lower()] = account.lower()
    return table


_ADDRESS = re.compile(r"[^@\s:]+@[^@\s:]+")
