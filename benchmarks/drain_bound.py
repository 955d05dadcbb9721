"""How fast a drain could be without the queue's bookkeeping: the bound the queue's guarantees leave to its protocol.

    python benchmarks/drain_bound.py --db postgres --rows 20000 --rounds 4 --document light

Three steps in each round, in processes of their own and back to back (their order
turning round by round): ``rebuild`` and ``drain`` as ``benchmarks/drain_benchmark.py``
runs them, and ``bound``: the same drain run from a copy of this checkout patched with
``benchmarks/drain_bound.patch``, where a claim reads the next due entries and writes
nothing, an acknowledgement deletes nothing, and where a batch goes is looked up once
rather than for every batch. What is left is the drain's own path: the queue's entries
read, the rows read and the documents built, the bulk body sent, each entry's outcome
settled. No change to the queue's protocol (fewer rows written per claim, a cheaper
acknowledgement, fewer lookups) can make a drain faster than ``bound``: its ratio to the
rebuild is the most such a change could reach, on this machine, with these rows.

The patched copy loses every guarantee the queue has (two drainers, a change while
claimed, a swap while draining): it is measured, never run. The patch applies to the
code as it is; when the code changes under it the script stops and says so. The
dataset, the server (``--server sink``, the do-nothing endpoint) and the figures are
``drain_benchmark.py``'s; printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from drain_benchmark import add_dataset_options, rate, run_child, summary  # noqa: E402
from rebuild import clear_server, seed_dataset, start_server  # noqa: E402

PATCH = ROOT / "benchmarks" / "drain_bound.patch"
STEPS = ("rebuild", "drain", "bound")


def patched_copy(into: Path) -> Path:
    """A copy of the package, the benchmarks and the demo under ``into``, patched; the copy's drain_benchmark.py."""
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite3")
    for part in ("reindex", "benchmarks", "example"):
        shutil.copytree(ROOT / part, into / part, ignore=ignore)
    applied = subprocess.run(["git", "apply", str(PATCH)], cwd=into, capture_output=True, text=True)
    if applied.returncode:
        raise SystemExit(f"{PATCH.name} no longer applies to this code: {applied.stderr.strip()}")
    script = into / "benchmarks" / "drain_benchmark.py"
    found = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path[:0] = [{str(into)!r}]; import reindex; print(reindex.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found.startswith(str(into)):  # an installed copy of the package would take its place
        raise SystemExit(f"the patched copy is not the one imported: {found}")
    return script


def rounds(args: argparse.Namespace, url: str, bound_script: Path) -> dict[str, Any]:
    """``args.rounds`` rounds of the three steps; each step's figures and the ratios round by round."""
    clear_server(url)
    run_child(args, url, "rebuild")  # the alias the first drain writes to (not measured)
    runs: dict[str, list[dict[str, Any]]] = {step: [] for step in STEPS}
    ratios: dict[str, list[float]] = {"drain_over_rebuild": [], "bound_over_rebuild": [], "drain_over_bound": []}
    cpu: dict[str, list[float]] = {"drain": [], "bound": []}
    for n in range(args.rounds):
        load = os.getloadavg()[0]
        for step in STEPS[n % 3 :] + STEPS[: n % 3]:
            if step == "rebuild":  # the sink counts what the drains wrote: the rebuild would refuse to swap
                clear_server(url)
            script = str(bound_script) if step == "bound" else str(ROOT / "benchmarks" / "drain_benchmark.py")
            runs[step].append(run_child(args, url, "rebuild" if step == "rebuild" else "drain", script=script))
        last = {step: runs[step][-1] for step in STEPS}
        ratios["drain_over_rebuild"].append(rate(last["drain"]) / rate(last["rebuild"]))
        ratios["bound_over_rebuild"].append(rate(last["bound"]) / rate(last["rebuild"]))
        ratios["drain_over_bound"].append(rate(last["drain"]) / rate(last["bound"]))
        per_doc = {step: last[step]["cpu"] / max(last[step]["docs"], 1) for step in STEPS}
        cpu["drain"].append(per_doc["drain"] / per_doc["rebuild"])
        cpu["bound"].append(per_doc["bound"] / per_doc["rebuild"])
        print(
            f"round {n + 1} (load {load:.2f}): "
            + ", ".join(f"{step} {rate(last[step]):,.0f} docs/s" for step in STEPS)
            + f": drain {ratios['drain_over_rebuild'][-1]:.2f}x, bound {ratios['bound_over_rebuild'][-1]:.2f}x",
            file=sys.stderr,
        )
    report: dict[str, Any] = {step: summary(runs[step]) for step in STEPS}
    for name, values in [*ratios.items(), *((f"cpu_{k}_over_rebuild", v) for k, v in cpu.items())]:
        report[name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.server, args.batch_size = "sink", 0
    seed_dataset(args)
    server, url = start_server(args.server)
    try:
        with tempfile.TemporaryDirectory(prefix="reindex-bound-") as tmp:
            bound_script = patched_copy(Path(tmp))
            run_child(args, url, "migrate")
            report = rounds(args, url, bound_script)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    conditions = {"db": args.db, "rows": args.rows, "document": args.document, "server": "sink", "cpus": os.cpu_count()}
    conditions["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps({"conditions": conditions, "figures": report}, indent=2))
        return
    print(", ".join(f"{k} {v}" for k, v in conditions.items()))
    for step in STEPS:
        s = report[step]
        print(
            f"  {step}: {s['docs_per_s']:,.0f} docs/s ({s['docs_per_s_min']:,.0f}-{s['docs_per_s_max']:,.0f}),"
            f" CPU {s['cpu_s_per_10k']:.2f} s/10k (the database server's {s['db_cpu_s_per_10k']:.2f}),"
            f" {s['queries_per_1k']:.1f} SQL statements per 1,000"
        )
    for name in ("drain_over_rebuild", "bound_over_rebuild", "drain_over_bound", "cpu_drain_over_rebuild"):
        r = report[name]
        print(f"  {name}, round by round: {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})")
    r = report["cpu_bound_over_rebuild"]
    print(f"  cpu_bound_over_rebuild, round by round: {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})")


if __name__ == "__main__":
    main()
