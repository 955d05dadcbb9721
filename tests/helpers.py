"""Helpers that several test modules share: lock documents as other runs write them."""

from __future__ import annotations

import time
from typing import Any

from reindex.locking import LOCK_INDEX, LockHolder


def hold_lock_as(es: Any, alias: str, host: str, pid: int, age: float, **identity: Any) -> LockHolder:
    """Write a lock document as another run would have, its heartbeat ``age`` seconds old.

    ``identity``: the holder's ``boot_id``, ``pid_namespace`` and ``process_start``
    (left out, as a run on another machine or an older version of the tool wrote it).
    """
    then = time.time() - age
    holder = LockHolder(host, pid, then, then, "other", **identity)
    es.options(ignore_status=400).indices.create(index=LOCK_INDEX)
    es.index(index=LOCK_INDEX, id=alias, document=holder.as_source(), refresh=True)
    return holder
