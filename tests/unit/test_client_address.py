"""``ClientAddress``: the socket peer is the client, unless the peer is a trusted proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest

from todo_service.core.request_context import CLIENT_IP_KEY, ClientAddress

if TYPE_CHECKING:
    from litestar.types import Scope

PROXIES = ("10.0.0.0/8", "2001:db8:ffff::1")


def scope(peer: str | None, *forwarded_for: str, header_name: bytes = b"x-forwarded-for") -> Scope:
    """An HTTP scope from ``peer`` with one ``X-Forwarded-For`` header per value."""
    headers = [(b"host", b"testserver"), *((header_name, value.encode()) for value in forwarded_for)]
    return cast("Scope", {"type": "http", "client": (peer, 50000) if peer else None, "headers": headers})


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    assert ClientAddress(()).of(scope("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


def test_an_untrusted_peer_cannot_name_another_address() -> None:
    assert ClientAddress(PROXIES).of(scope("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


def test_a_trusted_proxy_forwards_its_client() -> None:
    assert ClientAddress(PROXIES).of(scope("10.1.2.3", "198.51.100.1")) == "198.51.100.1"


def test_the_header_is_read_from_the_right_so_a_forged_left_part_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 192.0.2.66"; its proxies appended the real address, then their own.
    forwarded = "192.0.2.66, 198.51.100.1, 10.9.9.9"
    assert ClientAddress(PROXIES).of(scope("10.1.2.3", forwarded)) == "198.51.100.1"


def test_several_headers_are_one_list_in_order() -> None:
    address = ClientAddress(PROXIES).of(scope("10.1.2.3", "192.0.2.66", "198.51.100.2, 10.0.0.4"))
    assert address == "198.51.100.2"


def test_the_header_name_is_case_insensitive() -> None:
    address = ClientAddress(PROXIES).of(scope("10.1.2.3", "198.51.100.3", header_name=b"X-Forwarded-For"))
    assert address == "198.51.100.3"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        pytest.param(None, "10.1.2.3", id="no header: the proxy itself"),
        pytest.param("10.0.0.9, 10.0.0.8", "10.1.2.3", id="only proxies: the peer"),
        pytest.param("198.51.100.9, not-an-ip, 10.0.0.4", "10.1.2.3", id="a malformed hop: nothing left of it"),
        pytest.param("198.51.100.9, 198.51.100.10", "198.51.100.10", id="the rightmost untrusted hop"),
    ],
)
def test_what_a_trusted_proxy_forwards_is_checked(forwarded: str | None, expected: str) -> None:
    hops = (forwarded,) if forwarded else ()
    assert ClientAddress(PROXIES).of(scope("10.1.2.3", *hops)) == expected


def test_ipv6_proxies_and_clients() -> None:
    address = ClientAddress(PROXIES).of(scope("2001:db8:ffff::1", "2001:db8::42"))
    assert address == "2001:db8::42"
    assert ClientAddress(PROXIES).of(scope("2001:db8:ffff::2", "2001:db8::42")) == "2001:db8:ffff::2"


def test_a_peer_that_is_not_an_ip_address_is_never_trusted() -> None:
    # The test client's peer is "testclient"; even a proxy list covering every address leaves it alone.
    assert ClientAddress(("0.0.0.0/0", "::/0")).of(scope("testclient", "198.51.100.1")) == "testclient"


def test_no_peer_at_all_is_unknown() -> None:
    assert ClientAddress(PROXIES).of(scope(None, "198.51.100.1")) == "unknown"


def test_the_answer_is_computed_once_per_request() -> None:
    request = scope("10.1.2.3", "198.51.100.1")
    client = ClientAddress(PROXIES)
    assert client.of(request) == "198.51.100.1"
    assert request["state"][CLIENT_IP_KEY] == "198.51.100.1"
    request["headers"] = [(b"x-forwarded-for", b"198.51.100.99")]
    assert client.of(request) == "198.51.100.1"


def test_verdicts_on_peers_stay_right_when_remembered_and_when_forgotten() -> None:
    addresses = ClientAddress(PROXIES)
    # More distinct forwarding peers than are remembered: each answer is still its own.
    for round_ in range(2):
        for i in range(5000):
            peer = f"10.{i // 250}.{i % 250}.{round_ + 1}"
            assert addresses.of(scope(peer, "203.0.113.9")) == "203.0.113.9"
            assert addresses.of(scope(f"192.0.2.{i % 250}", "203.0.113.9")) == f"192.0.2.{i % 250}"
