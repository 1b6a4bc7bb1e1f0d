"""API keys: how they look, how they are stored (a SHA-256 hash, never the key), and the
limits one key may carry (products, LLM models, client addresses, expiry, spend caps, rate).

Pure domain: the store keeps the rows, :mod:`gengate.access` caches and enforces them.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gengate.errors import BadRequest, Forbidden, InsufficientBalance

__all__ = [
    "CAP_PERIODS",
    "KeyCapReached",
    "KeyForbidden",
    "KeyPolicy",
    "Network",
    "client_address",
    "hash_key",
    "month_of",
    "new_key",
    "parse_networks",
    "period_of",
]

PREFIX = "gg-"
#: characters of a key shown in listings and logs (``gg-`` and 5 more)
SHOWN = 8
#: spend cap periods, each counted on the key's row in the freeze's own transaction
CAP_PERIODS = ("day", "month", "total")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def new_key() -> str:
    """A fresh key with 256 bits of randomness."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def day_of(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


def period_of(period: str, now: float) -> str:
    """The calendar period (UTC) a spend at ``now`` counts in: ``day``, ``month`` or
    ``total`` (one period for ever)."""
    if period == "day":
        return day_of(now)
    if period == "month":
        return month_of(now)
    return ""


class KeyForbidden(Forbidden):
    """The key may not do this: the message names the rule."""


class KeyCapReached(InsufficientBalance):
    """The key's own spend cap, not the user's balance."""


def parse_networks(values: Iterable[str], field_name: str) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks, or 400 naming the bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise BadRequest(f"{field_name}: `{value}` is not an IP address or CIDR") from None
    return tuple(out)


@functools.lru_cache(maxsize=8192)
def _in(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether ``address`` is in one of ``networks`` (remembered: clients come back)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[Network]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy. A header from
    an untrusted peer is ignored (anyone can write one)."""
    address = peer or "unknown"
    trusted = tuple(trusted)
    if not forwarded_for or not trusted or not _in(address, trusted):
        return address
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        address = hop
        if not _in(hop, trusted):
            break
    return address


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """One key's limits; an empty or ``None`` limit allows everything."""

    key_id: int
    user_id: int
    prefix: str
    products: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    networks: tuple[Network, ...] | None = None
    expires_at: float | None = None
    caps: dict[str, int] = field(default_factory=dict)  # period -> milli-quota
    rate_per_second: int | None = None
    rate_per_minute: int | None = None

    @property
    def label(self) -> str:
        return f"API key {self.key_id} ({self.prefix}...)"

    @property
    def restricted(self) -> bool:
        """Has any limit that narrows what it may do (rate limits aside)."""
        return bool(self.products is not None or self.models is not None
                    or self.networks is not None or self.expires_at is not None or self.caps)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def check_address(self, address: str) -> None:
        if self.networks is not None and not _in(address, self.networks):
            raise KeyForbidden(f"{self.label} may not be used from address {address} "
                               "(rule: allowed addresses)")

    def check_product(self, product: str) -> None:
        if self.products is not None and product not in self.products:
            allowed = ", ".join(self.products) or "none"
            raise KeyForbidden(f"{self.label} may not use product `{product}` "
                               f"(rule: allowed products: {allowed})")

    def check_model(self, model: str) -> None:
        if self.models is not None and not any(
                fnmatch.fnmatchcase(model, pattern) for pattern in self.models):
            allowed = ", ".join(self.models) or "none"
            raise KeyForbidden(f"{self.label} may not use model `{model}` "
                               f"(rule: allowed models: {allowed})")


def cap_message(key_id: int, period: str, cap: int) -> str:
    what = {"day": "daily", "month": "monthly", "total": "total"}[period]
    return (f"API key {key_id} reached its {what} spend cap ({cap / 1000:g}); "
            "this is the key's own cap, not the account balance")
