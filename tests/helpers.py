"""Helpers that several test modules share: lock documents as other runs write them, what an alias serves,
waiting for a condition, the index a run is loading, processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reindex.server import indexes
from reindex.server.locking import LOCK_INDEX, LockHolder, read_holder


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


def live_index(es: Any, alias: str) -> str:
    targets = indexes.alias_targets(es, alias)
    assert len(targets) == 1, targets
    return targets[0]


def names_of(es: Any, alias: str) -> list[str]:
    """Every index named ``<alias>-*``."""
    return sorted(dict(es.indices.get(index=f"{alias}-*")).keys())


def stored(es: Any, alias: str, pk: Any) -> dict[str, Any] | None:
    """The stored document of the row with primary key ``pk`` (None when there is none)."""
    found = es.options(ignore_status=404).get(index=alias, id=str(pk))
    return found["_source"] if found.get("found") else None


def wait_for(condition: Callable[[], Any], what: str, process: Any = None, timeout: float = 30) -> Any:
    """Poll ``condition`` until true; fail at once, with its output, if ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            stdout, stderr = process.communicate()
            raise AssertionError(f"the run ended ({process.returncode}) before {what}:\n{stdout}\n{stderr}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def building_index(es: Any, alias: str = "products") -> str | None:
    """The index a run is loading (owned, not live), once it holds documents."""
    for info in indexes.owned_indexes(es, alias):
        if info.owned and not info.live and info.count:
            return info.name
    return None


def lock_free_or_stale(es: Any, alias: str = "products", ttl: float = 2) -> bool:
    """Whether the alias's lock is free, or stale under a lock time to live of ``ttl`` seconds."""
    holder = read_holder(es, alias)
    return holder is None or holder.age() > ttl + 0.5


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def versions(es: Any, alias: str, size: int = 2000) -> dict[str, int]:
    """Each document's version: how many times it was written."""
    hits = es.search(index=alias, size=size, version=True, query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"]: int(hit["_version"]) for hit in hits}


def sources(es: Any, alias: str) -> dict[str, dict[str, Any]]:
    """Documents by id; sellers sorted, as the M2M comes back in no particular order on PostgreSQL."""
    hits = es.search(index=alias, size=1000, sort=[{"_id": "asc"}])["hits"]["hits"]
    docs = {hit["_id"]: hit["_source"] for hit in hits}
    for doc in docs.values():
        doc["sellers"] = sorted(doc["sellers"], key=lambda seller: seller["id"])
    return docs


@contextmanager
def recorded_sql() -> Iterator[list[str]]:
    """Every SQL statement run on the default connection inside the block, in order."""
    from django.db import connection

    statements: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield statements


def start_writer(
    seconds: float, rate: float = 40, deletes_log: Path | None = None, **env: str
) -> subprocess.Popen[str]:
    """``tests/writer.py`` in a process of its own: the site's writes at ``rate`` a second for ``seconds``
    (or until SIGTERM), the rows it deletes outright logged with their commit times to ``deletes_log``."""
    from tests.conftest import ROOT, subprocess_env

    command = [sys.executable, "-m", "tests.writer", "--seconds", str(seconds), "--rate", str(rate)]
    if deletes_log is not None:
        command += ["--deletes-log", str(deletes_log)]
    full_env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings", **env)
    return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def finished(writer: subprocess.Popen[str]) -> dict[str, int]:
    """What the writer did, once it is done."""
    stdout, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 0, stderr
    return json.loads(stdout)


def stop_worker(worker: subprocess.Popen[str]) -> tuple[list[dict[str, Any]], str]:
    """SIGTERM a ``drain --loop --json`` worker, which must exit 0: its reports and its stderr."""
    import signal

    worker.send_signal(signal.SIGTERM)
    stdout, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    return json.loads(stdout), stderr


def execute(sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run SQL on the test database as another program would: raw, past the ORM and its signals."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
