"""Who may relay, and which recipient addresses are local, relayed or refused.

The rule (RFC 5321 section 3.6, RFC 5068): a server relays only for clients
it knows, authenticated submission users and configured networks; anyone
else may only send to local domains, and gets ``554 5.7.1 Relay access
denied`` for the rest.

Local parts are never interpreted as routes. The classic ways to make a
server relay by dressing a remote address up as a local one are refused
outright for local domains, whoever asks:

- the percent hack ``user%other.example@local`` (RFC 1123 5.2.16),
- bang paths ``other.example!user@local`` (UUCP),
- quoted local parts holding an address ``"user@other.example"@local``,

and the remaining ones are handled without relaying:

- source routes ``<@local:user@other.example>``: the path parser drops the
  route (RFC 5321 section 4.1.1.3, "SHOULD ignore"), so the decision is
  taken on ``user@other.example`` like any other remote address;
- address literals of this server ``user@[192.0.2.1]``: a literal naming
  one of our own addresses is a local domain (and so gets the checks above);
  any other literal is a remote destination.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mailcore.sessions import parse_ip
from mailcore.smtp.handlers import Session
from mailcore.smtp.replies import Reply

__all__ = [
    "RELAY_DENIED",
    "ROUTING_IN_LOCAL_PART",
    "Decision",
    "RelayPolicy",
    "Verdict",
    "split_address",
]

#: Postfix's wording; the enhanced code is RFC 3463's "delivery not authorized".
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
#: A local part that carries a route to somewhere else.
ROUTING_IN_LOCAL_PART = Reply(550, "5.7.1", "Routing in the local part is not accepted")
#: An address without a domain.
NO_DOMAIN = Reply(550, "5.1.3", "A fully qualified address is required")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Verdict(enum.Enum):
    """What to do with one recipient."""

    LOCAL = "local"
    RELAY = "relay"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the normalized domain and, for REFUSE, the reply to give."""

    verdict: Verdict
    domain: str = ""
    reply: Reply | None = None


def split_address(address: str) -> tuple[str, str]:
    """Split ``local@domain`` at the last ``@`` (a quoted local part may hold ``@``).

    The domain comes back lower-cased without a trailing dot; no ``@`` gives
    an empty domain.
    """
    local, sep, domain = address.rpartition("@")
    if not sep:
        return address, ""
    return local, domain.lower().rstrip(".")


def _literal(domain: str) -> IPAddress | None:
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    text = domain[1:-1]
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _routes_elsewhere(local: str) -> bool:
    # Inside or outside quotes, these characters are how the old routing
    # syntaxes hide a second destination in the local part.
    body = local[1:-1] if len(local) >= 2 and local[0] == local[-1] == '"' else local
    return any(c in body for c in "%!@")


class RelayPolicy:
    """Relay permission and recipient classification.

    Args:
        local_domains: domains delivered to local mailboxes.
        networks: client networks (CIDR) allowed to relay without AUTH.
        server_addresses: this server's own IP addresses; literals naming
            them are local. Loopback is always included.
    """

    def __init__(
        self,
        local_domains: Iterable[str],
        networks: Iterable[str] = (),
        server_addresses: Iterable[str] = (),
    ) -> None:
        self.local_domains = frozenset(d.lower().rstrip(".") for d in local_domains)
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        own = {ipaddress.ip_address(a) for a in server_addresses}
        own |= {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
        self.server_addresses: frozenset[IPAddress] = frozenset(own)

    def may_relay(self, session: Session) -> bool:
        """Authenticated users and clients in the configured networks may relay."""
        if session.authenticated:
            return True
        peer = parse_ip(session.peer[0])
        return peer is not None and any(peer in net for net in self.networks)

    def is_local_domain(self, domain: str) -> bool:
        """Whether ``domain`` (already normalized) is delivered here."""
        if domain in self.local_domains:
            return True
        literal = _literal(domain)
        if literal is None:
            return False
        if isinstance(literal, ipaddress.IPv6Address) and literal.ipv4_mapped is not None:
            literal = literal.ipv4_mapped
        return literal in self.server_addresses

    def classify(self, address: str, *, relay_allowed: bool) -> Decision:
        """Decide what happens to recipient ``address``.

        ``relay_allowed`` is :meth:`may_relay` of the session.
        """
        local, domain = split_address(address)
        if not domain or not local:
            return Decision(Verdict.REFUSE, domain, NO_DOMAIN)
        if self.is_local_domain(domain):
            if _routes_elsewhere(local):
                return Decision(Verdict.REFUSE, domain, ROUTING_IN_LOCAL_PART)
            return Decision(Verdict.LOCAL, domain)
        if not relay_allowed:
            return Decision(Verdict.REFUSE, domain, RELAY_DENIED)
        return Decision(Verdict.RELAY, domain)
