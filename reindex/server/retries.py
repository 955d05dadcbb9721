"""Retrying transient server errors with exponential backoff, within a bound.

429, 502, 503, 504, dropped connections and (by default) timeouts are retried up to
``MAX_RETRIES`` times, waiting ``RETRY_BACKOFF * 2**(n-1)`` seconds (at most
``RETRY_BACKOFF_MAX``) before retry ``n``. The client's own transport retries at once,
without waiting, on statuses; a server that is restarting needs the wait.
"""

from __future__ import annotations

import logging
from typing import Any

from elastic_transport import ConnectionError, ConnectionTimeout
from elastic_transport.client_utils import DEFAULT

from reindex import interrupts
from reindex.config import Config

RETRY_ON_STATUS = (429, 502, 503, 504)

logger = logging.getLogger("reindex.server.retries")


def backoff(retry: int, base: float, cap: float) -> float:
    """Seconds to wait before retry number ``retry`` (1-based)."""
    return min(cap, base * 2 ** (retry - 1))


def retry_options(config: Config) -> dict[str, Any]:
    """The client's keyword arguments for retries."""
    return {
        "max_retries": config.max_retries,
        "retry_on_status": RETRY_ON_STATUS,
        "retry_on_timeout": config.retry_on_timeout,
    }


def with_backoff(transport_class: type, config: Config) -> type:
    """``transport_class`` waiting ``config.retry_backoff``... between retries.

    A subclass rather than client keywords: older 8.x clients have no backoff keywords.
    """
    attrs = {"backoff_base": float(config.retry_backoff), "backoff_cap": float(config.retry_backoff_max)}
    return type(transport_class.__name__, (transport_class,), attrs)


def worst_case_wait(max_retries: int, base: float, cap: float) -> float:
    """How long a run keeps retrying one request before it gives up (request time aside)."""
    return sum(backoff(n, base, cap) for n in range(1, max_retries + 1))


class BackoffRetries:
    """A transport mixin: retry transient failures itself, sleeping between attempts."""

    max_retries: int
    retry_on_status: Any
    retry_on_timeout: bool
    backoff_base: float = 0.5
    backoff_cap: float = 10.0

    def perform_request(self, method: str, target: str, **kwargs: Any) -> Any:
        retries = _given(kwargs.pop("max_retries", DEFAULT), self.max_retries)
        statuses = _given(kwargs.pop("retry_on_status", DEFAULT), self.retry_on_status)
        on_timeout = _given(kwargs.pop("retry_on_timeout", DEFAULT), self.retry_on_timeout)
        for ignored in ("retry_backoff_base", "retry_backoff_cap"):  # newer clients' own (no-wait-on-status) backoff
            kwargs.pop(ignored, None)
        base, cap = self.backoff_base, self.backoff_cap
        retry = 0
        while True:
            try:
                response = super().perform_request(  # type: ignore[misc]
                    method, target, max_retries=0, retry_on_status=statuses, retry_on_timeout=on_timeout, **kwargs
                )
            except ConnectionTimeout:
                if not on_timeout or retry >= retries:
                    raise
                what = "timed out"
            except ConnectionError as exc:
                if retry >= retries:
                    raise
                what = f"failed ({type(exc).__name__})"
            else:
                if response.meta.status not in statuses or retry >= retries:
                    return response
                what = f"answered {response.meta.status}"
            retry += 1
            delay = backoff(retry, base, cap)
            logger.warning("%s %s %s; retry %d of %d in %.1fs", method, target, what, retry, retries, delay)
            interrupts.sleep(delay)


def _given(value: Any, default: Any) -> Any:
    return default if value is DEFAULT else value
