"""Which webhook targets are refused: addresses checked as resolved, literal or by name, and backoff."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from todo_service.webhooks.delivery import DeliveryPolicy, backoff
from todo_service.webhooks.signing import SecretBox, SecretUnreadable, new_secret
from todo_service.webhooks.targets import TargetRefused, TargetRules

STRICT, OPEN = TargetRules(allow_private=False), TargetRules(allow_private=True)
INSIDE = [
    "http://127.0.0.1/",
    "http://localhost:8080/hook",  # by name: resolved, then refused
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.10.10/",
    "http://[::1]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", INSIDE)
async def test_inside_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(TargetRefused, match="private, loopback, link-local or reserved"):
        await STRICT.resolve(url)
    if "224.0.0.1" not in url:
        target = await OPEN.resolve(url)
        assert target.url.host == str(target.address)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://[fd00:ec2::254]/", "http://0.0.0.0/"])
async def test_metadata_and_unspecified_addresses_are_always_refused(url: str) -> None:
    for rules in (STRICT, OPEN):
        with pytest.raises(TargetRefused, match="never allowed"):
            await rules.resolve(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:secret@example.com/", "credentials"),
        ("https:///nohost", "must name a host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("https://" + "a" * 2100 + ".com/", "at most 2048"),
        ("https://name.invalid/", "does not resolve"),
    ],
)
async def test_bad_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        await OPEN.resolve(url)


async def test_a_public_address_keeps_its_host_for_host_header_and_sni() -> None:
    target = await STRICT.resolve("https://93.184.215.14:8443/hook?x=1")
    assert str(target.url) == "https://93.184.215.14:8443/hook?x=1"
    assert target.host == "93.184.215.14"


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    policy = DeliveryPolicy(backoff_base=5, backoff_max=3600)
    assert [backoff(policy, n, jitter=lambda: 1.0).total_seconds() for n in (1, 2, 3, 10, 11, 40)] == [
        5,
        10,
        20,
        2560,
        3600,
        3600,
    ]
    assert backoff(policy, 1, jitter=lambda: 0.0) == timedelta(seconds=2.5)
    pauses = {backoff(policy, 4, jitter=random.random) for _ in range(50)}
    assert len(pauses) > 1
    assert all(timedelta(seconds=20) <= p <= timedelta(seconds=40) for p in pauses)


def test_retries_cover_at_least_the_window() -> None:
    # The worker gives up only on a failure after the window: the sum of the smallest pauses must not
    # stop short of it for lack of attempts (there is no attempt cap).
    policy = DeliveryPolicy()
    total, n = timedelta(), 0
    while total < policy.retry_window:
        n += 1
        total += backoff(policy, n, jitter=lambda: 0.0)
    assert 30 <= n <= 60


def test_secrets_are_sealed_per_webhook_and_key() -> None:
    webhook, other = uuid.uuid4(), uuid.uuid4()
    secret = new_secret()
    box = SecretBox("k" * 40)
    sealed = box.seal(webhook, secret)
    assert secret.encode() not in sealed
    assert box.open(webhook, sealed) == secret
    with pytest.raises(SecretUnreadable):
        box.open(other, sealed)
    with pytest.raises(SecretUnreadable):
        SecretBox("j" * 40).open(webhook, sealed)
