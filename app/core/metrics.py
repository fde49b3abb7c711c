"""Prometheus metrics, served at `/metrics`.

With several `amplify serve --workers` processes set PROMETHEUS_MULTIPROC_DIR to an empty
directory shared by them: every process then writes its numbers there and a scrape adds them up.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

HTTP_REQUESTS = Counter(
    "amplify_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
)
REDIRECT_SECONDS = Histogram(
    "amplify_redirect_duration_seconds",
    "Time to answer GET /r/{code}, recording included.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CLICKS_RECORDED = Counter("amplify_clicks_recorded_total", "Clicks committed to the database.")
CLICKS_FAILED = Counter(
    "amplify_clicks_failed_total",
    "Clicks not recorded: `record` (building the click failed) or `dropped` (buffer full or "
    "link deleted).",
    ("reason",),
)
CLICK_FLUSH_FAILURES = Counter(
    "amplify_click_flush_failures_total", "Click commits that failed (their clicks are retried)."
)
CLICK_BATCH_SIZE = Histogram(
    "amplify_click_batch_size",
    "Clicks per committed batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
CLICKS_PENDING = Gauge(
    "amplify_clicks_pending",
    "Answered clicks waiting in memory for their commit (as of the last commit).",
    multiprocess_mode="livesum",
)
MAILS = Counter(
    "amplify_mails_total", "Delivery outcomes: sent, failed (for good) or retried.", ("outcome",)
)
BOUNCES = Counter(
    "amplify_bounces_total",
    "Bounce reports received (mail to the bounce address and provider callbacks), by kind: "
    "hard, soft, complaint, or duplicate, unmapped (no delivery of ours), unparsed (not a "
    "report) and error.",
    ("kind",),
)
CLAIM_BATCH_SIZE = Histogram(
    "amplify_worker_claim_batch_size",
    "Deliveries claimed per round trip by a worker.",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
)
LEASES_LOST = Counter(
    "amplify_worker_leases_lost_total",
    "Deliveries a worker stopped holding before it was done with them: `before_send` (not "
    "sent: the lease could not be renewed in time) or `outcome_ignored` (another worker had "
    "taken the delivery over when the outcome was written).",
    ("stage",),
)
CLICK_COMMIT_INTERVAL = Histogram(
    "amplify_click_commit_interval_seconds",
    "Time between the starts of consecutive click commits while clicks keep arriving.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5),
)
CLICK_WAIT_SECONDS = Histogram(
    "amplify_click_wait_seconds",
    "How long the oldest click of a batch waited in memory until its commit finished: what a "
    "crash at that moment would have lost at most.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5),
)
DELIVERIES_PENDING = Gauge(
    "amplify_deliveries_pending",
    "Deliveries waiting to be sent (the queue depth), read from the database at scrape time.",
    multiprocess_mode="max",
)
WEBHOOKS_PENDING = Gauge(
    "amplify_webhook_events_pending",
    "Webhook events not yet delivered: in the outbox or waiting for a (next) attempt, read "
    "from the database at scrape time.",
    multiprocess_mode="max",
)
WEBHOOK_MESSAGES = Counter(
    "amplify_webhook_events_total",
    "Webhook posts by outcome: delivered, retried (failed, will be tried again) or failed "
    "(for good).",
    ("outcome",),
)

# Bound once: the redirect answers thousands of times a second.
REDIRECT_FOUND = HTTP_REQUESTS.labels("/r/{code}", "GET", "302")
REDIRECT_HEAD = HTTP_REQUESTS.labels("/r/{code}", "HEAD", "302")
REDIRECT_MISSING = HTTP_REQUESTS.labels("/r/{code}", "GET", "404")


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
