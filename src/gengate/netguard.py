"""Outbound URL safety: webhooks only go to public addresses, unless the operator allows more.

A URL is checked when it is submitted and again, on the freshly resolved addresses, right
before each delivery; the request is then sent to the address that was checked, so a DNS
answer that changes in between cannot point it at an internal service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from gengate.errors import BadRequest

__all__ = ["NetGuard", "Target"]

#: the longest URL accepted from a client
MAX_URL = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address: a second DNS answer
        (rebinding) cannot send the request elsewhere."""
        return httpx.URL(self.url).copy_with(host=self.address, port=self.port)

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    def request_args(self) -> dict[str, Any]:
        """``httpx`` arguments that send a request to the checked address, with the
        original host in the Host header and in TLS (SNI and certificate checks)."""
        return {"url": self.pinned_url(), "headers": {"Host": self.host_header()},
                "extensions": {"sni_hostname": self.host}}


#: IPv6 ranges that carry an IPv4 address a router or translator may deliver to: NAT64
#: (RFC 6052 and RFC 8215) with the IPv4 address in the last 32 bits, 6to4 (RFC 3056) in
#: bits 16-47, Teredo (RFC 4380) inverted in the last 32 bits, and IPv4-compatible (::/96)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that embed
    one (mapped, compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server's is checked as well
    if any(address in net for net in _NAT64) or (
            address in _COMPATIBLE and int(address) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refusal(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None and _refusal(address.teredo[0]):
            return f"an address that embeds {address.teredo[0]}"
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = _refusal(inner)
            if reason:
                return f"{reason} ({inner}, embedded)"
            if address.ipv4_mapped is not None:
                return None  # the IPv4 address itself, written as IPv6
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


class NetGuard:
    """Checks URLs against public-address rules and an operator allow-list."""

    def __init__(self, allow: Iterable[str] = (), *, who: str = "webhooks",
                 setting: str = "GENGATE_WEBHOOK_ALLOW"):
        #: named in refusals: what may not reach the address, and how to allow it
        self.who, self.setting = who, setting
        self._hosts: set[str] = set()
        self._networks: list[Network] = []
        for item in allow:
            item = item.strip().lower()
            if not item:
                continue
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self._hosts.add(item.rstrip("."))

    @classmethod
    def from_setting(cls, value: str | None, *, who: str = "webhooks",
                     setting: str = "GENGATE_WEBHOOK_ALLOW") -> NetGuard:
        return cls((value or "").split(","), who=who, setting=setting)

    def _allowed(self, host: str, address: IPAddress) -> bool:
        return host in self._hosts or any(address in net for net in self._networks)

    @staticmethod
    def parse(url: str, field: str = "hookUrl") -> tuple[str, str, int]:
        if len(url) > MAX_URL:
            raise BadRequest(f"{field}: must be at most {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise BadRequest(f"{field}: not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest(f"{field}: must be an http or https URL")
        if parts.username or parts.password:
            raise BadRequest(f"{field}: must not carry credentials")
        if port == 0:
            raise BadRequest(f"{field}: port must be from 1 to 65535")
        return parts.scheme, parts.hostname.lower().rstrip("."), port or (
            443 if parts.scheme == "https" else 80)

    async def check(self, url: str, field: str = "hookUrl") -> Target:
        """Resolve ``url``'s host; refuse it unless every address is allowed."""
        scheme, host, port = self.parse(url, field)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise BadRequest(f"{field}: cannot resolve host {host}") from None
        addresses = sorted({str(info[4][0]) for info in infos})
        if not addresses:
            raise BadRequest(f"{field}: cannot resolve host {host}")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%")[0])
            reason = _refusal(address)
            if reason and not self._allowed(host, address):
                raise BadRequest(f"{field}: {host} resolves to {reason} ({address}), which "
                                 f"{self.who} may not reach; an operator can allow it with "
                                 f"{self.setting}")
        return Target(url, scheme, host, port, addresses[0])
