"""The SSRF guard of webhooks: a target must resolve only to globally reachable (``is_global``) addresses.

An IPv6 address carrying an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) is checked for that address too.
Every address the name resolves to is checked (a name with one public and one private address is refused), and
the connection then goes to a checked address, so a second lookup (DNS rebinding) cannot point it elsewhere.
Networks listed in ``notifications.webhook_allowed_networks`` are exempt (a deployment's own receivers; tests
allow loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTargetError(ValueError):
    """The URL is malformed, or names an address that is not globally reachable (or is multicast)."""


class UnresolvedTargetError(UnsafeTargetError):
    """The URL's host name does not resolve (now)."""


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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix: its last 32 bits are an IPv4 address the gateway connects to."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to its destination (IPv4-mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, allowed: Sequence[Network]) -> str | None:
    """Why ``address`` may not be a webhook target (``None``: it may).

    Only globally reachable addresses pass (``is_global``: not private, shared 100.64.0.0/10, loopback, link-local,
    site-local, reserved, ...), unless an allowed network holds them; an IPv6 address carrying an IPv4 address
    (IPv4-mapped, 6to4, Teredo, NAT64) must pass for that IPv4 address too.
    """
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner, allowed)
            if reason is not None:
                return f"{reason} (carried in {address})"
            if address.ipv4_mapped is not None:
                return None
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"  # deprecated fec0::/10, which ipaddress still calls global
    if not address.is_global:
        return "non-global"
    return None


def networks(cidrs: Sequence[str]) -> list[Network]:
    """The allowed networks of the settings (the settings check them at start-up)."""
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
        raise UnresolvedTargetError(f"{host} does not resolve: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise UnresolvedTargetError(f"{host} does not resolve")
    allowed = networks(allowed_cidrs)
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text.split("%")[0]), allowed)
        if reason is not None:
            raise UnsafeTargetError(f"{host} resolves to {text}, a {reason} address: refused")
    return Target(scheme, host, port, addresses[0], path)


async def check_new_target(url: str, allowed_cidrs: Sequence[str]) -> None:
    """Refuse, when a webhook is added, a URL that is malformed or whose host is, or resolves now to, a refused
    address. A name that does not resolve yet passes: the check made before every sending is the one that guards.

    Raises:
        UnsafeTargetError: The URL is unusable, or an address is refused.
    """
    with contextlib.suppress(UnresolvedTargetError):
        await resolve(url, allowed_cidrs)
