"""Prometheus metrics of the GivEnergy client and its limiter (registered once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "givfleet_givenergy_requests",
    "Upstream requests by endpoint template, HTTP status (or error kind) and lane.",
    ["endpoint", "status", "lane"],
)
RATE_LIMITED = Counter(
    "givfleet_givenergy_rate_limited",
    "429 answers received from the GivEnergy Cloud, by limiter bucket.",
    ["bucket"],
)
LIMITER_WAIT = Histogram(
    "givfleet_givenergy_limiter_wait_seconds",
    "Time spent waiting for a rate-limiter slot, by lane.",
    ["lane"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
TOKENS_LEFT = Gauge(
    "givfleet_givenergy_ratelimit_remaining",
    "X-RateLimit-Remaining last reported by the GivEnergy Cloud, by credential id and bucket.",
    ["credential", "bucket"],
)
RETRIES = Counter(
    "givfleet_givenergy_retries",
    "Retries of idempotent upstream requests, by endpoint template and reason.",
    ["endpoint", "reason"],
)
