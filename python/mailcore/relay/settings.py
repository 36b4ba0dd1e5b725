"""The ``[relay]`` section of the configuration file, beyond networks and smarthost.

::

    [relay]
    networks = ["10.0.0.0/8"]          # parsed by mailcore.config
    smarthost = "mail.example.net:587" # parsed by mailcore.config
    smarthost_tls = "required"         # none | opportunistic | required
    smarthost_user = "relay@example.net"
    smarthost_password = "secret"
    resolver = "127.0.0.1:5353"        # DNS server for MX lookups (default: system)
    mx_port = 25
    connections = 100                  # SMTP sessions at once
    per_destination = 20               # ... to one destination
    retry_first = 300                  # seconds
    retry_max = 3600
    lifetime = 432000                  # 5 days, then bounce
    delay_warning = 14400              # optional "still trying" DSN

    [relay.routes]
    "example.com" = { host = "10.1.1.1", port = 25, tls = "required" }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from mailcore.relay.schedule import RetrySchedule

__all__ = ["KEYS", "RelaySettings", "Route", "TlsPolicy", "parse_relay_settings"]

TlsPolicy = Literal["none", "opportunistic", "required"]


@dataclass(frozen=True, slots=True)
class Route:
    """A configured next hop (smarthost or per-domain route).

    ``host`` may be a DNS name (looked up as A/AAAA, no MX) or an address.
    """

    host: str
    port: int = 25
    tls: TlsPolicy = "opportunistic"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


#: Keys of ``[relay]`` handled here (``networks`` and ``smarthost`` are the config's).
KEYS = frozenset(
    {
        "smarthost_tls",
        "smarthost_user",
        "smarthost_password",
        "resolver",
        "mx_port",
        "connections",
        "per_destination",
        "retry_first",
        "retry_max",
        "lifetime",
        "delay_warning",
        "routes",
    }
)
_TLS = ("none", "opportunistic", "required")


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Validated relay settings."""

    smarthost_tls: TlsPolicy = "opportunistic"
    smarthost_user: str | None = None
    smarthost_password: str | None = field(default=None, repr=False)
    resolver: tuple[str, int] | None = None
    mx_port: int = 25
    connections: int = 100
    per_destination: int = 20
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    routes: Mapping[str, Route] = field(default_factory=dict)


def _error(key: str, value: object, expected: str) -> Exception:
    from mailcore.config import ConfigError  # config imports this module

    return ConfigError(f"relay.{key}", value, expected)


def _positive(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _error(key, value, "a positive number")
    return float(value)


def _count(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _error(key, value, "a positive integer")
    return value


def _port(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _error(key, value, "an integer from 1 to 65535")
    return value


def _tls(key: str, value: object) -> TlsPolicy:
    if value not in _TLS:
        raise _error(key, value, "one of " + ", ".join(_TLS))
    return cast(TlsPolicy, value)


def _str(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _error(key, value, "a non-empty string")
    return value


def parse_relay_settings(table: Mapping[str, object]) -> RelaySettings:
    """Validate the keys of :data:`KEYS` found in the ``[relay]`` table."""
    from mailcore.config import parse_hostport

    out: dict[str, object] = {}
    if "smarthost_tls" in table:
        out["smarthost_tls"] = _tls("smarthost_tls", table["smarthost_tls"])
    for key in ("smarthost_user", "smarthost_password"):
        if key in table:
            out[key] = _str(key, table[key])
    if "resolver" in table:
        out["resolver"] = parse_hostport("relay.resolver", table["resolver"])
    if "mx_port" in table:
        out["mx_port"] = _port("mx_port", table["mx_port"])
    for key in ("connections", "per_destination"):
        if key in table:
            out[key] = _count(key, table[key])
    sched = RetrySchedule()
    first = _positive("retry_first", table.get("retry_first", sched.first))
    maximum = _positive("retry_max", table.get("retry_max", max(sched.maximum, first)))
    lifetime = _positive("lifetime", table.get("lifetime", sched.lifetime))
    warning = table.get("delay_warning")
    if maximum < first:
        raise _error("retry_max", maximum, f"at least retry_first ({first:g})")
    out["schedule"] = RetrySchedule(
        first=first,
        maximum=maximum,
        lifetime=lifetime,
        delay_warning=_positive("delay_warning", warning) if warning is not None else None,
    )
    if "routes" in table:
        raw = table["routes"]
        if not isinstance(raw, dict):
            raise _error("routes", raw, "a table of domain = { host, port, tls, user, password }")
        routes: dict[str, Route] = {}
        for domain, spec in raw.items():
            key = f"routes.{domain}"
            if not isinstance(spec, dict):
                raise _error(key, spec, "a table { host, port, tls, user, password }")
            unknown = set(spec) - {"host", "port", "tls", "user", "password"}
            if unknown:
                raise _error(key, sorted(unknown), "only host, port, tls, user, password")
            routes[str(domain).lower().rstrip(".")] = Route(
                host=_str(f"{key}.host", spec.get("host")),
                port=_port(f"{key}.port", spec.get("port", 25)),
                tls=_tls(f"{key}.tls", spec.get("tls", "opportunistic")),
                username=_str(f"{key}.user", spec["user"]) if "user" in spec else None,
                password=_str(f"{key}.password", spec["password"]) if "password" in spec else None,
            )
        out["routes"] = routes
    return RelaySettings(**out)  # type: ignore[arg-type]
