"""Outbound URL checks: IPv6 forms that carry an IPv4 address are judged by that address,
and port 0 is refused (it would be sent to port 80)."""

from __future__ import annotations

import ipaddress

import pytest

from gengate.errors import BadRequest
from gengate.netguard import NetGuard, embedded_ipv4

INTERNAL = [
    "2002:7f00:1::",                          # 6to4 of 127.0.0.1 (RFC 3056)
    "2002:a00:1::1",                          # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::",                       # 6to4 of 169.254.169.254 (cloud metadata)
    "2001:0:4136:e378:8000:63bf:80ff:fefe",   # Teredo, client 127.0.1.1 (RFC 4380)
    "64:ff9b::7f00:1",                        # NAT64 of 127.0.0.1 (RFC 6052)
    "64:ff9b:1::a00:1",                       # local-use NAT64 of 10.0.0.1 (RFC 8215)
    "::ffff:127.0.0.1",                       # IPv4-mapped
    "::ffff:192.168.0.1",
    "::127.0.0.1",                            # IPv4-compatible (deprecated)
]


@pytest.mark.parametrize("address", INTERNAL)
async def test_ipv6_forms_of_internal_ipv4_addresses_are_refused(address: str) -> None:
    guard = NetGuard()
    for field in ("hookUrl", "url", "baseUrl"):
        with pytest.raises(BadRequest) as refused:
            await guard.check(f"http://[{address}]:8080/x", field)
        assert refused.value.message.startswith(f"{field}:")
        assert "may not reach" in refused.value.message


def test_the_embedded_address_is_found() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("2002:7f00:1::")) == \
        ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a9fe:a9fe")) == \
        ipaddress.IPv4Address("169.254.169.254")
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) is None


async def test_public_addresses_still_pass() -> None:
    guard = NetGuard()
    target = await guard.check("https://[2002:808:808::1]/hook")  # 6to4 of 8.8.8.8
    assert target.port == 443 and target.address == "2002:808:808::1"
    assert (await guard.check("http://[::ffff:8.8.8.8]:81/")).port == 81
    assert (await guard.check("http://[2606:4700::1111]/")).address == "2606:4700::1111"


async def test_an_operator_may_still_allow_them() -> None:
    guard = NetGuard(["2002::/16"])
    assert (await guard.check("http://[2002:7f00:1::]/x")).host == "2002:7f00:1::"


@pytest.mark.parametrize("url", ["http://example.com:0/hook", "https://[2606:4700::1111]:0/",
                                 "http://8.8.8.8:00/"])
async def test_port_zero_is_refused(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        await NetGuard().check(url, "hookUrl")
    assert refused.value.message == "hookUrl: port must be from 1 to 65535"
