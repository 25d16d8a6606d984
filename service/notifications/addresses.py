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
import functools
import ipaddress
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
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

ALLOWING_SETTING = "GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS"
"""The setting that lets webhooks reach networks that are not globally reachable."""

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
        return next((kind for kind, is_kind in _NON_GLOBAL_KINDS if is_kind(address)), "non-global")
    return None


SHARED = ipaddress.IPv4Network("100.64.0.0/10")
"""Shared address space (carrier-grade NAT): neither private nor global to ``ipaddress``."""

_NON_GLOBAL_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda address: address.is_unspecified),
    ("loopback", lambda address: address.is_loopback),
    ("link-local", lambda address: address.is_link_local),
    ("reserved", lambda address: address.is_reserved),
    ("private", lambda address: address.is_private),
    ("shared (100.64.0.0/10)", lambda address: address in SHARED),
)
"""The kinds of non-global address a refusal names, the most specific first (``::1`` is loopback, private and
reserved at once)."""


def networks(cidrs: Sequence[str]) -> list[Network]:
    """The allowed networks of the settings (the settings check them at start-up)."""
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


async def resolve(url: str, allowed_cidrs: Sequence[str], lookups: Executor | None = None) -> Target:
    """Resolve the URL's host and check every address (see the module docstring).

    Args:
        lookups: The threads that run the name lookup (default: the event loop's).

    Raises:
        UnsafeTargetError: The URL is unusable, the name does not resolve, or an address is refused (the message
            names the kind of address, not the address a name resolved to: that would map internal names).
    """
    scheme, host, port, path = parse_url(url)
    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = await asyncio.get_running_loop().run_in_executor(lookups, lookup)
    except UnicodeError:  # an empty label, or one over 63 characters: IDNA cannot encode it
        raise UnsafeTargetError(f"{host} is not a valid host name") from None
    except OSError as exc:
        raise UnresolvedTargetError(f"{host} does not resolve: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise UnresolvedTargetError(f"{host} does not resolve")
    allowed = networks(allowed_cidrs)
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text.split("%")[0]), allowed)
        if reason is not None:
            named = "is" if text == host else "resolves to"
            article = "an" if reason[0] in "aeiou" else "a"
            raise UnsafeTargetError(f"{host} {named} {article} {reason} address: refused unless "
                                    f"{ALLOWING_SETTING} lists its network")
    return Target(scheme, host, port, addresses[0], path)


CREATION_LOOKUPS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhook-check")
"""The threads of the lookups made when a webhook is added: a name whose DNS server never answers holds one of
these, never one of the event loop's (which resolve the database and Redis hosts)."""
CREATION_LOOKUP_SECONDS = 2.0


async def check_new_target(url: str, allowed_cidrs: Sequence[str]) -> None:
    """Refuse, when a webhook is added, a URL that is malformed or whose host is, or resolves now to, a refused
    address. A name that does not resolve yet, or not within :data:`CREATION_LOOKUP_SECONDS`, passes: the check
    made before every sending is the one that guards.

    Raises:
        UnsafeTargetError: The URL is unusable, or an address is refused.
    """
    with contextlib.suppress(UnresolvedTargetError, TimeoutError):
        async with asyncio.timeout(CREATION_LOOKUP_SECONDS):
            await resolve(url, allowed_cidrs, CREATION_LOOKUPS)
