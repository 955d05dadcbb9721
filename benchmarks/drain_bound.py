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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from drain_benchmark import add_dataset_options, cpu_per_doc, rate, run_child, step_line, summary  # noqa: E402
from rebuild import clear_server, ratio_line, seed_dataset, spread, start_server  # noqa: E402

PATCH = ROOT / "benchmarks" / "drain_bound.patch"
STEPS = ("rebuild", "drain", "bound")
#: The ratios taken round by round: of the rates, and of the client CPU per document.
RATES = {
    "drain_over_rebuild": ("drain", "rebuild"),
    "bound_over_rebuild": ("bound", "rebuild"),
    "drain_over_bound": ("drain", "bound"),
}
CPUS = {"cpu_drain_over_rebuild": ("drain", "rebuild"), "cpu_bound_over_rebuild": ("bound", "rebuild")}


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
    ratios: dict[str, list[float]] = {name: [] for name in (*RATES, *CPUS)}
    for n in range(args.rounds):
        load = os.getloadavg()[0]
        for step in STEPS[n % 3 :] + STEPS[: n % 3]:
            if step == "rebuild":  # the sink counts what the drains wrote: the rebuild would refuse to swap
                clear_server(url)
            script = str(bound_script) if step == "bound" else str(ROOT / "benchmarks" / "drain_benchmark.py")
            runs[step].append(run_child(args, url, "rebuild" if step == "rebuild" else "drain", script=script))
        last = {step: runs[step][-1] for step in STEPS}
        for name, (one, other) in RATES.items():
            ratios[name].append(rate(last[one]) / rate(last[other]))
        for name, (one, other) in CPUS.items():
            ratios[name].append(cpu_per_doc(last[one]) / cpu_per_doc(last[other]))
        print(
            f"round {n + 1} (load {load:.2f}): "
            + ", ".join(f"{step} {rate(last[step]):,.0f} docs/s" for step in STEPS)
            + f": drain {ratios['drain_over_rebuild'][-1]:.2f}x, bound {ratios['bound_over_rebuild'][-1]:.2f}x",
            file=sys.stderr,
        )
    report: dict[str, Any] = {step: summary(runs[step]) for step in STEPS}
    return report | {name: spread(values) for name, values in ratios.items()}


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
        print(step_line(step, report[step]))
    for name in (*RATES, *CPUS):
        print(f"  {ratio_line(name, report[name])}")


if __name__ == "__main__":
    main()
