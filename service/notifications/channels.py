"""The transports: each sends one message once and says how it went (never raises for a delivery failure).

- GivEnergy: ``POST /notification/send`` through the one upstream entry point, so the shared limiter's custom
  bucket (10 per window per credential) paces it and 429s and rate-limit headers feed back into it. A send that
  finds no slot within ``givenergy_max_wait_seconds`` is *throttled*: nothing went on the wire.
- E-mail: one SMTP session per message (aiosmtplib), text and HTML, ``Message-ID`` from the message id.
- Webhooks: the SSRF guard resolves and checks the target, the POST goes to the checked address, with Standard
  Webhooks signatures, one overall deadline (connect to last byte), no redirects, and at most
  ``webhook_max_response_bytes`` of the answer read.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
import httpx

from service.core.errors import GivfleetError
from service.core.tenancy import TenantId
from service.db.models.notifications import AttemptStatus
from service.givenergy import GivEnergyError, Lane, RateLimitedError, UpstreamValidationError
from service.notifications.addresses import UnsafeTargetError, resolve
from service.notifications.digest import Text
from service.notifications.signing import signed_headers
from service.settings import NotificationSettings
from service.upstream import Upstream

EXCERPT = 500
USER_AGENT = "givfleet-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """How one attempt went.

    Attributes:
        status: Succeeded, failed, or throttled (not sent: no budget).
        code: The answer's status code, when there was one.
        excerpt: The start of the answer, or what went wrong.
        retry_after: Throttled: seconds until the budget frees, when known.
        refused_text: GivEnergy refused the title or body (422): send the plain fallback instead.
        latency_ms: Time on the wire.
    """

    status: AttemptStatus
    code: int | None = None
    excerpt: str | None = None
    retry_after: float | None = None
    refused_text: bool = False
    latency_ms: int | None = None


def _excerpt(text: str) -> str:
    return text[:EXCERPT]


async def send_givenergy(upstream: Upstream, tenant_id: TenantId, credential_id: uuid.UUID | None, text: Text,
                         *, max_wait: float) -> Outcome:
    """Send ``text`` as a GivEnergy notification of the tenant's credential (the channel's, or its best)."""
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with upstream.client(tenant_id, Lane.MONITORING, credential_id=credential_id,
                                   max_limiter_wait=max_wait) as client:
            result = await client.send_notification(text.title, text.body)
    except RateLimitedError as exc:
        return Outcome(AttemptStatus.THROTTLED, exc.status_code, _excerpt(str(exc)), retry_after=exc.retry_after,
                       latency_ms=took())
    except UpstreamValidationError as exc:
        return Outcome(AttemptStatus.FAILED, exc.status_code, _excerpt(f"{exc}: {exc.errors}"), refused_text=True,
                       latency_ms=took())
    except (GivEnergyError, GivfleetError) as exc:
        return Outcome(AttemptStatus.FAILED, getattr(exc, "status_code", None), _excerpt(str(exc)),
                       latency_ms=took())
    if not result.success:
        return Outcome(AttemptStatus.FAILED, 200, "GivEnergy answered success=false", latency_ms=took())
    return Outcome(AttemptStatus.SUCCEEDED, 200, latency_ms=took())


def email_message(settings: NotificationSettings, recipients: list[str], message_id: uuid.UUID, subject: str,
                  plain: str, markup: str) -> EmailMessage:
    """The e-mail of a message: text with an HTML alternative."""
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = f"<{message_id.hex}@givfleet>"
    mail.set_content(plain)
    mail.add_alternative(markup, subtype="html")
    return mail


async def send_email(settings: NotificationSettings, mail: EmailMessage) -> Outcome:
    """Send ``mail`` over SMTP (settings: host, port, security, credentials)."""
    if not settings.smtp_host:
        return Outcome(AttemptStatus.FAILED,
                       excerpt="no SMTP server is configured: set GIVFLEET_NOTIFICATIONS__SMTP_HOST")
    started = time.monotonic()
    password = settings.smtp_password.get_secret_value() if settings.smtp_password is not None else None
    try:
        await aiosmtplib.send(
            mail, hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
            password=password, use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=settings.smtp_timeout_seconds)  # fmt: skip
    except aiosmtplib.SMTPResponseException as exc:
        return Outcome(AttemptStatus.FAILED, exc.code, _excerpt(exc.message),
                       latency_ms=round((time.monotonic() - started) * 1000))
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Outcome(AttemptStatus.FAILED, excerpt=_excerpt(f"{type(exc).__name__}: {exc}"),
                       latency_ms=round((time.monotonic() - started) * 1000))
    return Outcome(AttemptStatus.SUCCEEDED, 250, latency_ms=round((time.monotonic() - started) * 1000))


async def send_webhook(settings: NotificationSettings, url: str, secrets: list[str], msg_id: str, body: bytes,
                       *, timestamp: int) -> Outcome:
    """POST ``body`` to ``url``, signed with every active secret (see the module docstring)."""
    try:
        target = await resolve(url, settings.webhook_allowed_networks)
    except UnsafeTargetError as exc:
        return Outcome(AttemptStatus.FAILED, excerpt=_excerpt(str(exc)))
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if target.port == default_port else f"{target.host}:{target.port}"
    headers = {**signed_headers(secrets, msg_id, timestamp, body), "content-type": "application/json",
               "user-agent": USER_AGENT, "host": host}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    started = time.monotonic()
    try:
        # One deadline over connect, send and the whole answer: httpx's timeout is per read, so a receiver
        # trickling a byte at a time would otherwise hold the attempt past its lease.
        async with asyncio.timeout(settings.webhook_timeout_seconds), httpx.AsyncClient(
                timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False,
                verify=_tls()) as client:
            request = client.build_request("POST", target.url, content=body, headers=headers, extensions=extensions)
            response = await client.send(request, stream=True)
            try:
                answer = await _read_capped(response, settings.webhook_max_response_bytes)
            finally:
                await response.aclose()
    except (httpx.TimeoutException, TimeoutError):
        return Outcome(AttemptStatus.FAILED, excerpt="timed out", latency_ms=round((time.monotonic() - started) * 1000))
    except httpx.HTTPError as exc:
        return Outcome(AttemptStatus.FAILED, excerpt=_excerpt(f"{type(exc).__name__}: {exc}"),
                       latency_ms=round((time.monotonic() - started) * 1000))
    latency = round((time.monotonic() - started) * 1000)
    status = AttemptStatus.SUCCEEDED if 200 <= response.status_code < 300 else AttemptStatus.FAILED
    return Outcome(status, response.status_code, _excerpt(answer.decode(errors="replace")) or None, latency_ms=latency)


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the system's CA bundle takes tens of milliseconds: once per process, not once per delivery.
    return ssl.create_default_context()


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    received = bytearray()
    async for chunk in response.aiter_raw():
        received += chunk[: max(0, limit - len(received))]
        if len(received) >= limit:
            break
    return bytes(received)
