"""Where webhooks may be sent: never to private, loopback, link-local or cloud-metadata
addresses (a webhook URL must not become a way into the tracker's own network), unless
``RESTORATION_WEBHOOK_ALLOW_PRIVATE=1`` (tests, or receivers on the same private network).

URLs are checked when an endpoint is created and again before every request, against the
addresses the host resolves to then; the request goes to the address that was checked (the
host name still goes in ``Host`` and TLS SNI), so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

ALLOW_PRIVATE_ENV = "RESTORATION_WEBHOOK_ALLOW_PRIVATE"
SCHEMES = frozenset({"http", "https"})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestination(Exception):
    """The URL may not be sent to; the message says why, for the admin or the delivery log."""


def private_allowed(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(ALLOW_PRIVATE_ENV, "") in ("1", "true", "yes")


def refusal(address: IPAddress) -> str | None:
    """Why an address is refused, or None if it is a public unicast address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return refusal(mapped)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a private or reserved address"
    return None


def parse(url: str) -> httpx.URL:
    """The URL if it is an absolute http(s) URL with a host; RefusedDestination otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise RefusedDestination(f"{url!r} is not a valid URL ({error}).") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise RefusedDestination(f"{url!r} must be an absolute http:// or https:// URL.")
    return parsed


def checked(host: str, addresses: Iterable[IPAddress], allow_private: bool) -> IPAddress:
    """The first address to connect to, after refusing the host if any address is not public."""
    found = list(dict.fromkeys(addresses))
    if not found:
        raise RefusedDestination(f"{host} does not resolve to any address.")
    if not allow_private:
        for address in found:
            reason = refusal(address)
            if reason is not None:
                raise RefusedDestination(
                    f"{host} resolves to {address}, {reason}; webhooks are only sent to public "
                    f"addresses (set {ALLOW_PRIVATE_ENV}=1 to allow private ones)."
                )
    return found[0]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _addresses(infos: Iterable[tuple[object, ...]]) -> list[IPAddress]:
    # The scope id of a link-local IPv6 address ("fe80::1%eth0") is not part of the address.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, *, allow_private: bool) -> httpx.URL:
    """Refuse a URL that is malformed or resolves to a non-public address (blocking DNS)."""
    parsed = parse(url)
    literal = _literal(parsed.host)
    if literal is not None:
        checked(parsed.host, [literal], allow_private)
        return parsed
    try:
        infos = socket.getaddrinfo(parsed.host, parsed.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise RefusedDestination(f"{parsed.host} cannot be resolved ({error.strerror}).") from None
    checked(parsed.host, _addresses(infos), allow_private)
    return parsed


@dataclass(frozen=True)
class Destination:
    """Where a request really goes: the checked address, with the host name kept for HTTP."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


class Resolver:
    """Resolves and checks a URL before each request; remembers answers for a short while."""

    def __init__(self, *, allow_private: bool, cache_seconds: float = 30.0) -> None:
        self.allow_private = allow_private
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, int], tuple[float, IPAddress]] = {}

    async def destination(self, url: str) -> Destination:
        parsed = parse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = _literal(parsed.host)
        if address is not None:
            checked(parsed.host, [address], self.allow_private)
            return Destination(parsed, {}, {})
        key = (parsed.host, port)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            address = cached[1]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as error:
                raise RefusedDestination(f"{parsed.host} cannot be resolved ({error.strerror}).") from None
            address = checked(parsed.host, _addresses(infos), self.allow_private)
            self._cache[key] = (time.monotonic() + self.cache_seconds, address)
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
        return Destination(
            parsed.copy_with(host=str(address)),
            {"Host": parsed.netloc.decode("ascii")},
            extensions,
        )
