"""The test settings with every run option tuned away from its default, as a site might set them."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REINDEX as BASE

REINDEX = {
    **BASE,
    "INDEXES": ["tests.definitions.BatchesIndex"],
    "BATCH_SIZE": 7,
    "KEEP": 1,
    "MIN_RATIO": 0.9,
    "MAX_RETRIES": 1,
    "RETRY_BACKOFF": 0.1,
}
