"""API key limits as pure rules: addresses behind trusted proxies, products, model
patterns, expiry, and the messages that name each rule."""

from __future__ import annotations

import pytest

from gengate.errors import BadRequest
from gengate.keys import (
    KeyCapReached,
    KeyForbidden,
    KeyPolicy,
    cap_message,
    client_address,
    parse_networks,
    period_of,
)

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"], "trusted")


def test_forwarded_for_counts_only_from_a_trusted_peer() -> None:
    assert client_address("198.51.100.4", "203.0.113.9", PROXIES) == "198.51.100.4"
    assert client_address("10.0.0.2", "203.0.113.9", PROXIES) == "203.0.113.9"
    assert client_address("10.0.0.2", None, PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", "203.0.113.9", ()) == "10.0.0.2"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    # the client wrote the first entry itself; two proxies of ours appended the rest
    chain = "192.0.2.1, 203.0.113.9, 10.1.1.1"
    assert client_address("10.0.0.2", chain, PROXIES) == "203.0.113.9"
    # every hop trusted: the left-most one is as far as the header can be believed
    assert client_address("10.0.0.2", "10.3.3.3, 10.2.2.2", PROXIES) == "10.3.3.3"
    assert client_address("fd00::1", "2001:db8::7", PROXIES) == "2001:db8::7"


def test_bad_networks_name_the_field() -> None:
    with pytest.raises(BadRequest, match="cidrs: `10.0.0.0/33`"):
        parse_networks(["10.0.0.0/33"], "cidrs")
    with pytest.raises(BadRequest, match="cidrs: `office`"):
        parse_networks(["office"], "cidrs")


def test_rules_name_themselves() -> None:
    key = KeyPolicy(7, 1, "gg-abcde", products=("flux",), models=("claude-*", "gpt-4o"),
                    networks=parse_networks(["192.0.2.0/24"], "cidrs"), expires_at=100.0)
    key.check_product("flux")
    key.check_model("claude-sonnet-4")
    key.check_model("gpt-4o")
    key.check_address("192.0.2.200")
    key.check_address("::ffff:192.0.2.5")  # an IPv4 client on a dual-stack socket
    with pytest.raises(KeyForbidden, match=r"API key 7 .* product `midjourney` .*allowed "
                                           r"products: flux"):
        key.check_product("midjourney")
    with pytest.raises(KeyForbidden, match="model `gpt-4o-mini`"):
        key.check_model("gpt-4o-mini")
    with pytest.raises(KeyForbidden, match="address 198.51.100.1 .*allowed addresses"):
        key.check_address("198.51.100.1")
    with pytest.raises(KeyForbidden, match="address unknown"):
        key.check_address("unknown")
    assert key.restricted and not key.expired(99.9) and key.expired(100.0)
    free = KeyPolicy(8, 1, "gg-fghij")
    free.check_product("anything")
    free.check_model("anything")
    free.check_address("unknown")
    assert not free.restricted and not free.expired(1e12)


def test_cap_errors_are_402_and_say_whose_cap() -> None:
    error = KeyCapReached(cap_message(3, "month", 20_500))
    assert error.status_code == 402
    assert error.message == ("API key 3 reached its monthly spend cap (20.5); this is the "
                             "key's own cap, not the account balance")


def test_periods_are_utc_calendar_days_and_months() -> None:
    assert period_of("day", 1_767_225_599.0) == "2025-12-31"
    assert period_of("day", 1_767_225_600.0) == "2026-01-01"
    assert period_of("month", 1_767_225_600.0) == "2026-01"
    assert period_of("total", 0.0) == ""
