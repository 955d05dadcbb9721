"""After a crash: a lock whose run is provably gone is taken over at once, and unlock removes one by hand.

Lock documents are written here as other runs would have written them: on this host
or another, in this boot and pid namespace or not, by a process that is alive, gone,
a zombie, or whose pid a later process reuses.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reindex.server.locking import AliasLock, Locked, LockLost, process_stat, read_holder, this_machine, unlock
from tests.helpers import hold_lock_as

HERE = socket.gethostname()


def machine(pid: int, **changed: Any) -> dict[str, Any]:
    """The identity a run of ``pid`` on this machine writes in its lock, with ``changed`` fields."""
    boot_id, namespace = this_machine()
    stat = process_stat(pid)
    return {"boot_id": boot_id, "pid_namespace": namespace, "process_start": stat[1] if stat else 4242, **changed}


def python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.fixture
def alive() -> Iterator[subprocess.Popen[bytes]]:
    """A process that stays alive for the test."""
    process = python("import time; time.sleep(120)")
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def gone() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = python("pass")
    process.wait()
    return process.pid


@pytest.fixture
def zombie() -> Iterator[tuple[int, dict[str, Any]]]:
    """The pid of a process that was killed and not reaped yet, and its identity while it lived."""
    process = python("import time; time.sleep(120)")
    identity = machine(process.pid)
    process.kill()
    while (process_stat(process.pid) or ("Z",))[0] != "Z":
        time.sleep(0.01)
    yield process.pid, identity
    process.wait()


def test_a_rebuild_takes_a_lock_whose_process_is_gone_over_at_once_and_says_so(catalog, reindex, es, gone):
    catalog(products=5)
    hold_lock_as(es, "products", HERE, gone, age=1, **machine(gone))

    run = reindex("rebuild", "products", "--json")

    assert run.exit_code == 0, run.stderr
    assert f"products: took over a stale lock held by {HERE}:{gone} (its process is gone)" in run.stderr
    [report] = json.loads(run.stdout)
    assert (report["lock_taken_over_from"], report["lock_taken_over_because"]) == (f"{HERE}:{gone}", "process_gone")
    assert report["swapped"] is True
    assert read_holder(es, "products") is None


def test_a_lock_whose_pid_is_free_is_stale_at_once(es, gone):
    hold_lock_as(es, "products", HERE, gone, age=1, **machine(gone))
    lock = AliasLock(es, "products", ttl=300)

    lock.acquire()
    lock.release()

    assert (lock.took_over.pid, lock.took_over_because) == (gone, "process_gone")


def test_a_lock_whose_pid_a_later_process_reuses_is_stale_at_once(es, alive):
    earlier = machine(alive.pid)["process_start"] - 1  # the pid's first owner started before
    hold_lock_as(es, "products", HERE, alive.pid, age=1, **machine(alive.pid, process_start=earlier))
    lock = AliasLock(es, "products", ttl=300)

    lock.acquire()
    lock.release()

    assert lock.took_over_because == "process_gone"


def test_a_lock_whose_process_is_a_zombie_is_stale_at_once(es, zombie):
    pid, identity = zombie
    hold_lock_as(es, "products", HERE, pid, age=1, **identity)
    lock = AliasLock(es, "products", ttl=300)

    lock.acquire()
    lock.release()

    assert lock.took_over_because == "process_gone"


def test_a_lock_held_by_a_live_process_of_this_host_is_respected(es, alive):
    hold_lock_as(es, "products", HERE, alive.pid, age=1, **machine(alive.pid))

    with pytest.raises(Locked):
        AliasLock(es, "products", ttl=300).acquire()


UNPROVABLE = [
    # (what the lock says about its holder, beside a pid that is free here): wait for the TTL
    ("another host", "web2", {}),
    ("another boot of this host (rebooted since)", HERE, {"boot_id": "7c1d6a8e-0000-4000-8000-000000000000"}),
    ("another pid namespace on this kernel (a container)", HERE, {"pid_namespace": "pid:[4026530000]"}),
    ("written by an older version, without the identity", HERE, None),
]


@pytest.mark.parametrize("host, changed", [c[1:] for c in UNPROVABLE], ids=[c[0] for c in UNPROVABLE])
def test_a_holder_that_cannot_be_proven_gone_keeps_its_lock_until_the_ttl(es, gone, host, changed):
    identity = {} if changed is None else machine(gone, **changed)
    hold_lock_as(es, "products", host, gone, age=1, **identity)

    with pytest.raises(Locked):
        AliasLock(es, "products", ttl=300).acquire()
    hold_lock_as(es, "products", host, gone, age=301, **identity)
    lock = AliasLock(es, "products", ttl=300)
    lock.acquire()
    lock.release()
    assert lock.took_over_because == "heartbeat_expired"


class TestStatusSaysWhenALockGoesStale:
    def test_a_live_holder_elsewhere(self, db, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=12)

        run = reindex("status", "products")
        [report] = json.loads(reindex("status", "products", "--json").stdout)

        assert re.search(r"  locked by web2:4242 since \S+ \(heartbeat 1[23]s ago; stale in 28[78]s\)", run.stdout)
        lock = report["lock"]
        assert (lock["host"], lock["pid"], lock["stale"], lock["holder_gone"], lock["ttl"]) == (
            "web2",
            4242,
            False,
            False,
            300,
        )
        assert 12 <= lock["heartbeat_age"] < 14 and 286 < lock["stale_in"] <= 288

    def test_a_holder_whose_process_is_gone(self, db, reindex, es, gone):
        hold_lock_as(es, "products", HERE, gone, age=3, **machine(gone))

        run = reindex("status", "products")
        [report] = json.loads(reindex("status", "products", "--json").stdout)

        assert f"  locked by {HERE}:{gone} since " in run.stdout
        assert "ago; holder's process is gone: stale)" in run.stdout
        assert (report["lock"]["stale"], report["lock"]["stale_in"], report["lock"]["holder_gone"]) == (True, 0, True)

    def test_a_holder_without_a_heartbeat_for_longer_than_the_ttl(self, db, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=400)

        run = reindex("status", "products")

        assert re.search(r"\(heartbeat 40\ds ago; stale\)", run.stdout)


class TestUnlock:
    def test_a_lock_of_a_dead_run_is_removed_and_said_what_it_was(self, db, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=400)

        run = reindex("unlock", "products")

        assert run.exit_code == 0, run.stderr
        assert run.stdout.startswith("products: removed the lock held by web2:4242 since ")
        assert "(heartbeat 400s ago; stale)" in run.stdout
        assert read_holder(es, "products") is None

    def test_a_lock_whose_process_is_gone_needs_no_force(self, db, reindex, es, gone):
        hold_lock_as(es, "products", HERE, gone, age=1, **machine(gone))

        run = reindex("unlock", "products", "--json")

        assert run.exit_code == 0, run.stderr
        report = json.loads(run.stdout)
        assert (report["locked"], report["removed"], report["forced"]) == (True, True, False)
        assert report["lock"]["holder_gone"] is True and report["lock"]["pid"] == gone

    def test_a_live_holder_is_refused_with_exit_1_and_left_alone(self, db, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=5)

        run = reindex("unlock", "products")
        as_json = reindex("unlock", "products", "--json")

        assert run.exit_code == as_json.exit_code == 1
        assert run.stdout == ""
        assert "  locked by web2:4242 since " in run.stderr
        assert "reindex: error: products: the run holding the lock looks alive (stale in 29" in run.stderr
        assert "--force removes it); not removed" in run.stderr
        report = json.loads(as_json.stdout)
        assert (report["locked"], report["removed"], report["lock"]["host"]) == (True, False, "web2")
        assert read_holder(es, "products").host == "web2"

    def test_force_removes_a_live_holder_and_running_it_again_is_safe(self, db, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=5)

        forced = reindex("unlock", "products", "--force")
        again = reindex("unlock", "products")

        assert forced.exit_code == 0, forced.stderr
        assert forced.stdout.startswith("products: removed the lock held by web2:4242 since ")
        assert forced.stdout.rstrip().endswith("(forced)")
        assert (again.exit_code, again.stdout) == (0, "products: not locked\n")
        assert json.loads(reindex("unlock", "products", "--json").stdout) == {
            "alias": "products",
            "locked": False,
            "removed": False,
            "forced": False,
            "lock": None,
        }

    def test_a_run_whose_lock_is_forced_away_does_not_swap(self, es):
        lock = AliasLock(es, "products", ttl=300)
        lock.acquire()

        result = unlock(es, "products", ttl=300, force=True)

        assert (result.removed, result.forced, result.lock.holder.pid) == (True, True, lock.holder.pid)
        with pytest.raises(LockLost):
            lock.check()
        lock.release()
        assert read_holder(es, "products") is None
