"""The benchmark script keeps working: every contender indexes every row (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_the_benchmark_runs_every_contender_against_the_do_nothing_endpoint():
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/rebuild.py",
            "--rows",
            "300",
            "--repeat",
            "1",
            "--contenders",
            "reindex,reindex-workers,raw,ceiling",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_name = {r["contender"]: r for r in report["results"]}
    assert sorted(by_name) == ["ceiling", "raw", "reindex", "reindex-workers"]
    assert all(r["docs"] == 300 for r in by_name.values()), by_name
    assert by_name["reindex"]["queries"] > 0
