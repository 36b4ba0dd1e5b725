"""Where a recipient domain's mail goes: local store, a route, the smarthost, or MX.

Order of decision, per domain:

1. a local domain (or a literal of this server) goes to the local store;
2. a per-domain route from the configuration (``[relay.routes]``);
3. the smarthost, when one is configured, for everything else;
4. otherwise DNS (RFC 5321 section 5.1): the MX records by preference, equal
   preferences in random order (the random source is a parameter), each
   exchange's A and AAAA addresses; no MX means the domain's own A/AAAA
   (the implicit MX); a single MX of preference 0 naming "." is a null MX
   (RFC 7505): the domain takes no mail, and that is a permanent failure
   (``556 5.1.10``, RFC 7505 section 3.2 / RFC 7504).

DNS goes through dnspython (the maintained, complete resolver for Python,
with an asyncio API and EDNS/TCP fallback); the resolver's address and port
are configurable, so tests run a DNS server on loopback.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from mailcore.relay.settings import Route, TlsPolicy

__all__ = ["Destination", "Route", "RouteError", "Router"]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where to connect: candidate addresses in order, with TLS and AUTH settings.

    Messages whose recipients resolve to equal destinations share a
    connection pool.
    """

    hosts: tuple[tuple[str, str], ...]
    """(name, address) pairs in the order to try; the name is for logs and DSNs."""
    port: int
    tls: TlsPolicy = "opportunistic"
    username: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)
    local: bool = False
    """Deliver to the local store; ``hosts`` is empty."""

    @property
    def key(self) -> tuple[object, ...]:
        """Identity of the connection pool."""
        return (self.hosts, self.port, self.tls, self.username, self.local)


class RouteError(Exception):
    """No destination for a domain; ``reply`` is the SMTP-style reason.

    ``permanent`` failures bounce; the others are retried.
    """

    def __init__(self, reply: str, *, permanent: bool) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


LOCAL = Destination(hosts=(), port=0, tls="none", local=True)


class Router:
    """Resolve a recipient domain to a :class:`Destination`.

    Args:
        is_local: decides whether a (normalized) domain is delivered locally.
        routes: per-domain routes (lower-case domain to route).
        smarthost: the next hop for every other domain, if any.
        resolver: ``(address, port)`` of the DNS server; None uses the system's.
        mx_port: port to connect to on MX hosts (25; tests use another).
        mx_tls: STARTTLS policy towards MX hosts (opportunistic: used when offered).
        dns_timeout: seconds for one DNS lookup.
        rng: random source for the order of equal MX preferences.
    """

    def __init__(
        self,
        is_local: Callable[[str], bool],
        *,
        routes: Mapping[str, Route] | None = None,
        smarthost: Route | None = None,
        resolver: tuple[str, int] | None = None,
        mx_port: int = 25,
        mx_tls: TlsPolicy = "opportunistic",
        dns_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._is_local = is_local
        self.routes = {k.lower().rstrip("."): v for k, v in (routes or {}).items()}
        self.smarthost = smarthost
        self.mx_port = mx_port
        self.mx_tls: TlsPolicy = mx_tls
        self.rng = rng or random.Random()
        if resolver is None:
            self.resolver = dns.asyncresolver.Resolver()
        else:
            self.resolver = dns.asyncresolver.Resolver(configure=False)
            self.resolver.nameservers = [resolver[0]]
            self.resolver.port = resolver[1]
        self.resolver.lifetime = dns_timeout
        self.resolver.timeout = dns_timeout

    async def resolve(self, domain: str) -> Destination:
        """The destination for ``domain``; raises :class:`RouteError`."""
        domain = domain.lower().rstrip(".")
        if self._is_local(domain):
            return LOCAL
        route = self.routes.get(domain) or self.smarthost
        if route is not None:
            return await self._route(route)
        if domain.startswith("[") and domain.endswith("]"):
            # An address literal names the host itself (RFC 5321 section 4.1.3).
            text = domain[1:-1]
            if text.lower().startswith("ipv6:"):
                text = text[5:]
            return Destination(((text, text),), self.mx_port, self.mx_tls)
        return await self._mx(domain)

    async def _route(self, route: Route) -> Destination:
        # A configured host name goes through the system resolver (so
        # /etc/hosts applies, as for any configured name); failing to find
        # it is a local problem: retry, never bounce.
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                route.host.strip("[]"), route.port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise RouteError(f"451 4.4.4 route host {route.host}: {exc}", permanent=False) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise RouteError(f"451 4.4.4 no address for route host {route.host}", permanent=False)
        return Destination(
            tuple((route.host, a) for a in addresses),
            route.port,
            route.tls,
            route.username,
            route.password,
        )

    async def _query(self, name: str, rdtype: str) -> list[object] | None:
        """Answers, or None when the name has no such records; RouteError when DNS fails."""
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise RouteError(f"550 5.1.2 domain {name} does not exist", permanent=True) from None
        except dns.resolver.NoAnswer:
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers, OSError) as exc:
            raise RouteError(
                f"451 4.4.3 DNS lookup for {name} failed: {exc}", permanent=False
            ) from None
        return list(answer)

    async def _addresses(self, host: str) -> list[str]:
        import ipaddress

        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        found: list[str] = []
        # A first, then AAAA: the loopback tests and most MTAs prefer IPv4.
        results = await asyncio.gather(
            self._query(host, "A"), self._query(host, "AAAA"), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for result in results:
            if isinstance(result, list):
                found += [str(r) for r in result]
        if not found and errors:
            first = errors[0]
            if isinstance(first, RouteError):
                raise first
            raise RouteError(f"451 4.4.3 DNS lookup for {host} failed", permanent=False)
        return found

    async def _mx(self, domain: str) -> Destination:
        records = await self._query(domain, "MX")
        if records is None:
            # RFC 5321 5.1: no MX, the domain itself is the implicit MX.
            addresses = await self._addresses(domain)
            if not addresses:
                raise RouteError(f"550 5.1.2 domain {domain} has no MX or address", permanent=True)
            return Destination(tuple((domain, a) for a in addresses), self.mx_port, self.mx_tls)
        mxs = [(int(r.preference), str(r.exchange)) for r in records]  # type: ignore[attr-defined]
        if len(mxs) == 1 and mxs[0][1] == ".":
            raise RouteError(
                f"556 5.1.10 domain {domain} accepts no mail (null MX)", permanent=True
            )
        ordered = self._order(mxs)
        hosts: list[tuple[str, str]] = []
        last_error: RouteError | None = None
        for _, exchange in ordered:
            if exchange == ".":
                continue
            name = exchange.rstrip(".")
            try:
                addresses = await self._addresses(name)
            except RouteError as exc:
                last_error = exc
                continue
            hosts += [(name, a) for a in addresses]
        if not hosts:
            if last_error is not None and not last_error.permanent:
                raise last_error
            raise RouteError(f"451 4.4.4 no address for any MX of {domain}", permanent=False)
        return Destination(tuple(hosts), self.mx_port, self.mx_tls)

    def _order(self, mxs: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
        # Sort by preference; shuffle within each preference (RFC 5321 5.1).
        shuffled = list(mxs)
        self.rng.shuffle(shuffled)
        return sorted(shuffled, key=lambda m: m[0])
