"""Prometheus metrics of authentication (default registry, `batchscribe_` prefix). Labels are
reasons and limit names, never keys, prefixes or tenants (unbounded, and not for scrapers)."""

from __future__ import annotations

from prometheus_client import Counter

AUTH_FAILURES = Counter(
    "batchscribe_auth_failures_total",
    "Requests refused by authentication, by reason (missing_key, malformed_key, unknown_key, "
    "revoked_key, missing/wrong_gateway_secret, missing/wrong_metrics_token, tenant_mismatch).",
    ["reason"],
)
TENANT_LIMITED = Counter(
    "batchscribe_tenant_limited_total",
    "Requests answered 429 because a tenant was over a limit, by limit.",
    ["limit"],
)
