"""Failed authentications, limited per client address.

A token is 256 random bits, so guessing one is hopeless; the limit is there so that a client
sending a wrong, revoked or guessed token over and over costs a token lookup a few times a
minute rather than thousands of times a second, and is told plainly to stop (429 with
Retry-After). Only failures count. The check comes before the lookup, so while an address is
over its limit every request from it that carries a token waits, a valid one too; requests
without a token are never limited, so residents who share an address with a misbehaving
client still read the public data.

The state is in memory, per process: each API process allows its own quota. The address is
the ASGI client's, so behind a reverse proxy run uvicorn with ``FORWARDED_ALLOW_IPS`` set to
the proxy, or every client counts as the proxy. An IPv6 client is counted by its /64, the
block one subscriber is usually given, so it cannot start afresh by changing address.

A token bucket of a few lines rather than a rate-limiting library: what is limited here is
failures, recorded after the fact, not requests, which is not what those libraries' request
decorators and middleware count, and a bucket is two numbers per address.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

MAX_ADDRESSES = 10_000
"""Addresses remembered at most; past that the one that failed longest ago is forgotten."""


class Throttled(Exception):
    """The address has used up its failed authentications for now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed authentications; try again in {retry_after} s.")
        self.retry_after = retry_after
        """Whole seconds until the address may try again."""


class FailedAuthentications:
    """A token bucket per address: ``per_minute`` failures at once, then one more each
    ``60 / per_minute`` seconds."""

    def __init__(self, per_minute: int, *, max_addresses: int = MAX_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("At least one failed authentication a minute must be allowed.")
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """Address key -> (failures left, when that was), in the order of their last failure."""

    def __len__(self) -> int:
        """How many addresses are remembered."""
        return len(self._buckets)

    def check(self, address: str | None) -> None:
        """Raise :class:`Throttled` if ``address`` has no failure left to spend."""
        left = self._left(address_key(address))
        if left < 1:
            raise Throttled(math.ceil((1 - left) / self.refill_per_second))

    def failed(self, address: str | None) -> None:
        key = address_key(address)
        left = self._left(key) - 1
        self._buckets.pop(key, None)  # re-inserted last: the dict stays in order of last failure
        self._buckets[key] = (left, self.clock())
        self._forget_refilled()

    def _left(self, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.capacity
        left, at = bucket
        return min(self.capacity, left + (self.clock() - at) * self.refill_per_second)

    def _forget_refilled(self) -> None:
        """Drop the buckets that have refilled (the same as none), oldest first, and the oldest
        ones over ``max_addresses``; each call does little, so memory stays bounded."""
        while self._buckets:
            oldest = next(iter(self._buckets))
            if len(self._buckets) <= self.max_addresses and self._left(oldest) < self.capacity:
                return
            del self._buckets[oldest]


def address_key(address: str | None) -> str:
    """What is counted: an IPv6 address's /64, any other address as it is."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if ip.version == 6:
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(ip)
