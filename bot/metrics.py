"""What ``GET /metrics`` reports, in Prometheus's text format.

Counters here count what happened in this process (webhook deliveries it received, Slack calls
it made). Figures every process shares — candidates by state, promotions and their steps — are
read from the database when scraped, so any replica reports the same numbers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOK_DELIVERIES = Counter(
    "gatekeeper_webhook_deliveries",
    "MLflow webhook deliveries received, by outcome (accepted, or why refused).",
    ["outcome"],
    registry=REGISTRY,
)
SLACK_API_CALLS = Counter(
    "gatekeeper_slack_api_calls",
    "Slack Web API calls made, by method and outcome (ok, rate_limited, unreachable, error).",
    ["method", "outcome"],
    registry=REGISTRY,
)
SLACK_API_RETRIES = Counter(
    "gatekeeper_slack_api_retries",
    "Slack Web API calls scheduled again after a rate limit or an outage.",
    ["method"],
    registry=REGISTRY,
)
