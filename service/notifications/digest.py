"""What a message says (pure): one event or a digest of many, as GivEnergy text, e-mail and webhook payloads.

Every event of a digest appears in it (its one-line summary), so a reader of the messages misses nothing. Text
for GivEnergy passes :func:`sanitize`: ``POST /notification/send`` refuses e-mail addresses, telephone numbers
and URLs, and may tighten its checks without warning, so a refused text is retried as :func:`plain_text`.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

REMOVED = "[removed]"

# Wider than what GivEnergy is known to refuse: a URL or address left in would cost a refused send.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|uk|info|biz|dev|"
                  r"app|cloud|eu|de|fr|nl|ie|me|co)\b\S*", re.IGNORECASE)
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_SPACES = re.compile(r"[ \t]{2,}")

TITLE_MAX = 100
BODY_MAX = 2000


@dataclass(frozen=True)
class EventView:
    """The facts of an event that messages show."""

    id: uuid.UUID
    type: str
    severity: str | None
    summary: str
    created_at: datetime
    inverter_serial: str | None = None
    site_upstream_id: int | None = None
    alert_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    credential_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Text:
    """A title and a body."""

    title: str
    body: str


def sanitize(text: str) -> str:
    """``text`` without e-mail addresses, URLs and telephone numbers (each replaced by ``[removed]``)."""
    for pattern in (_EMAIL, _URL, _PHONE):
        text = pattern.sub(REMOVED, text)
    return _SPACES.sub(" ", text).strip()


def _headline(events: Sequence[EventView]) -> str:
    if len(events) == 1:
        return events[0].summary
    faults = [e for e in events if e.type.startswith(("alert.raised", "alert.reopened"))]
    sites = {e.site_upstream_id for e in events if e.site_upstream_id is not None}
    what = f"{len(faults)} new faults" if len(faults) == len(events) else f"{len(events)} events"
    where = f" at {len(sites)} sites" if len(sites) > 1 else " at 1 site" if sites else ""
    return f"{what}{where}"


def _counts(events: Sequence[EventView]) -> str:
    counted = Counter(e.type for e in events)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counted.items()))


def compose(events: Sequence[EventView]) -> Text:
    """The message for ``events`` (one: its summary; more: a digest listing every summary)."""
    if not events:
        raise ValueError("a message needs at least one event")
    if len(events) == 1:
        event = events[0]
        return Text(f"{(event.severity or 'info').capitalize()}: {event.type}", event.summary)
    lines = "; ".join(e.summary for e in events)
    return Text(_headline(events), f"{_headline(events)} ({_counts(events)}): {lines}")


def for_givenergy(events: Sequence[EventView], *, plain: bool = False) -> Text:
    """GivEnergy's title and body: sanitized and within its lengths (a digest is packed to fit, see
    :func:`fitting`: only a single over-long summary is cut), or (``plain``) words and counts only."""
    if plain:
        return plain_text(events)
    text = compose(events)
    return Text(sanitize(text.title)[:TITLE_MAX], sanitize(text.body)[:BODY_MAX])


def fitting(held: Sequence[EventView], more: Sequence[EventView]) -> int:
    """How many of ``more`` (a prefix) join ``held`` in one GivEnergy message without its body passing
    ``BODY_MAX`` (at least one when ``held`` is empty: a single over-long summary is cut, not left out)."""
    fit = 0
    while fit < len(more):
        events = sorted([*held, *more[: fit + 1]], key=lambda e: (e.created_at, e.id))
        if len(sanitize(compose(events).body)) > BODY_MAX and (held or fit):
            break
        fit += 1
    return fit


def plain_text(events: Sequence[EventView]) -> Text:
    """A text that no validation can refuse: letters, spaces and small counts, by event type, of every event the
    message carries."""
    counted = Counter(e.type for e in events)
    kinds = ", ".join(f"{n} {kind.replace('.', ' ').replace('_', ' ')}" for kind, n in sorted(counted.items()))
    return Text("givfleet notification", f"{len(events)} new events ({kinds}); open givfleet for the details")


def email_bodies(events: Sequence[EventView], *, timezone_name: str) -> tuple[str, str]:
    """The plain-text and HTML bodies of an e-mail: the digest line and a table of sites and inverters."""
    text = compose(events)
    rows = [(e.created_at.strftime("%Y-%m-%d %H:%M UTC"), e.type, e.severity or "", str(e.site_upstream_id or ""),
             e.inverter_serial or "", e.summary) for e in events]
    header = ("Time", "Event", "Severity", "Site", "Inverter", "Summary")
    plain = "\n".join([text.body, "", *(" | ".join(row) for row in [header, *rows])])
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    markup = (f"<html><body><p>{html.escape(text.title)}</p><table border=\"1\"><thead><tr>{head}</tr></thead>"
              f"<tbody>{cells}</tbody></table><p>Times in UTC; the tenant's timezone is "
              f"{html.escape(timezone_name)}.</p></body></html>")
    return plain, markup


def webhook_payload(event: EventView) -> bytes:
    """The JSON body of a webhook (Standard Webhooks shape: ``type``, ``timestamp``, ``data``)."""
    data = {
        "id": str(event.id), "severity": event.severity, "summary": event.summary,
        "inverter_serial": event.inverter_serial, "site_id": event.site_upstream_id,
        "alert_id": _str(event.alert_id), "incident_id": _str(event.incident_id),
        "campaign_id": _str(event.campaign_id), "credential_id": _str(event.credential_id),
    }  # fmt: skip
    body = {"type": event.type, "timestamp": event.created_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
