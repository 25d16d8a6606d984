"""The SSRF guard of webhooks: a target must resolve only to public addresses.

Every address the name resolves to is checked (a name with one public and one private address is refused), and
the connection then goes to a checked address, so a second lookup (DNS rebinding) cannot point it elsewhere.
Networks listed in ``notifications.webhook_allowed_networks`` are exempt (a deployment's own receivers; tests
allow loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTargetError(ValueError):
    """The URL is malformed, or names a private, loopback, link-local, unspecified or multicast address."""


@dataclass(frozen=True)
class Target:
    """A checked webhook target: where to connect and what to tell the server."""

    scheme: str
    host: str
    port: int
    address: str
    path: str

    @property
    def url(self) -> str:
        """The URL of the pinned address (the ``Host`` header and TLS name stay :attr:`host`)."""
        shown = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{shown}:{self.port}{self.path}"


def parse_url(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and path (with query) of an http(s) URL.

    Raises:
        UnsafeTargetError: Not an absolute http(s) URL with a host, or it carries credentials.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTargetError("a webhook URL is an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise UnsafeTargetError("a webhook URL must not carry credentials")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def refusal(address: IPAddress, allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """Why ``address`` may not be a webhook target (``None``: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return None
    for reason, flagged in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                            ("unspecified", address.is_unspecified), ("multicast", address.is_multicast),
                            ("private", address.is_private), ("reserved", address.is_reserved)):
        if flagged:
            return reason
    return None


def networks(cidrs: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The allowed networks of the settings."""
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


async def resolve(url: str, allowed_cidrs: Sequence[str]) -> Target:
    """Resolve the URL's host and check every address (see the module docstring).

    Raises:
        UnsafeTargetError: The URL is unusable, the name does not resolve, or an address is refused.
    """
    scheme, host, port, path = parse_url(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeTargetError(f"{host} does not resolve: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise UnsafeTargetError(f"{host} does not resolve")
    allowed = networks(allowed_cidrs)
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text.split("%")[0]), allowed)
        if reason is not None:
            raise UnsafeTargetError(f"{host} resolves to {text}, a {reason} address: refused")
    return Target(scheme, host, port, addresses[0], path)
