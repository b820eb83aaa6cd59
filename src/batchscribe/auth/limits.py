"""Per-tenant limits (SPEC 12), in `api_key` and `gateway` modes.

- Requests per minute, per instance: a moving window (the `limits` library, in memory), so a
  tenant cannot spend its minute's allowance in a burst at the edge of two fixed windows.
  Several instances each allow TENANT_REQUESTS_PER_MINUTE.
- Queued or running jobs: counted in the application database when a job is submitted, so the
  limit holds across every instance. The count and the insert are not one transaction: requests
  submitted at the very same moment may pass the limit by their number, never by more.

In `none` mode the tenant is whatever the client says, so a per-tenant limit bounds nothing
(and local runs and benchmarks stay unthrottled): no limits apply there.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from batchscribe.auth.exceptions import TenantLimitError
from batchscribe.auth.metrics import TENANT_LIMITED

#: Retry-After of a tenant at its active-jobs limit: jobs take a while to finish.
ACTIVE_JOBS_RETRY_SECONDS = 30


class TenantRateLimiter:
    """At most `per_minute` requests per tenant in any 60-second window, in this process."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, tenant_id: str) -> None:
        """Count one request of the tenant; raise `TenantLimitError` (429) when it is over."""
        if self._limiter.hit(self._item, tenant_id):
            return
        reset_at = self._limiter.get_window_stats(self._item, tenant_id).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        TENANT_LIMITED.labels("requests_per_minute").inc()
        raise TenantLimitError(
            f"This tenant sent more than {self.per_minute} requests in the last minute "
            f"(TENANT_REQUESTS_PER_MINUTE). Wait {retry_after} s, then retry.",
            code="rate_limited",
            retry_after=retry_after,
        )


def check_active_jobs(active: int, limit: int) -> None:
    """Raise `TenantLimitError` (429) when a tenant already has `limit` queued or running jobs."""
    if active < limit:
        return
    TENANT_LIMITED.labels("active_jobs").inc()
    raise TenantLimitError(
        f"This tenant already has {active} queued or running jobs, the most allowed "
        f"(TENANT_MAX_ACTIVE_JOBS={limit}). Wait for one to finish or cancel one, then submit "
        "again.",
        code="too_many_active_jobs",
        retry_after=ACTIVE_JOBS_RETRY_SECONDS,
    )
