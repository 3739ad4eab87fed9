#!/usr/bin/env python
"""The first touch: what ``import prefix_models`` adds to ``import torch, transformers``, and how long the scripts'
``--help`` takes to answer.

    python benchmarks/import_time.py                  # every arm, median of 7 fresh processes each
    python benchmarks/import_time.py --repeats 3 --arms import prefix_models
    git archive <commit> | tar -x -C /tmp/before && python benchmarks/import_time.py --against /tmp/before

Each measurement is one fresh ``python`` process timed from start to exit (wall clock), so it counts the
interpreter's start as a user's command does; arms run interleaved, round by round, so that machine noise hits
them alike. Reported: the median, min and max per arm, and ``prefix_models`` minus ``import``. ``--against DIR``
runs every arm a second time from another checkout (its ``prefix_models`` and scripts, this environment), in the
same rounds, so that a before/after comparison on a shared machine sees the same load.

``TrainingArguments`` is the floor of any script whose flags ``HfArgumentParser`` reads (transformers' own
examples included): where peft is installed (the ``test`` and ``bench`` extras), ``transformers.trainer_utils``
imports it, and peft imports transformers' model stack. The ``(no peft)`` arms hide peft
(``sys.modules["peft"] = None``), as a plain ``pip install prefix-models``, which does not install it, would run.
Targets: ``prefix_models`` adds at most 1.0 s; each ``--help`` answers in under 3 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import RESULTS, write_json  # noqa: E402

HIDE_PEFT = "import sys; sys.modules['peft'] = None; "
SCRIPTS = {"glue": "run_glue.py", "ner": "run_ner.py", "qa": "examples/run_qa.py"}


def _help(script: str, hide_peft: bool = False) -> list[str]:
    if not hide_peft:
        return [sys.executable, script, "--help"]
    run = f"import runpy; sys.argv = [{script!r}, '--help']; runpy.run_path({script!r}, run_name='__main__')"
    return [sys.executable, "-c", HIDE_PEFT + run]


# arm -> its command, run from the repository root
ARMS = {
    "import": [sys.executable, "-c", "import torch, transformers"],
    "prefix_models": [sys.executable, "-c", "import torch, transformers, prefix_models"],
    "TrainingArguments": [sys.executable, "-c", "from transformers import TrainingArguments"],
    **{f"{name} --help": _help(script) for name, script in SCRIPTS.items()},
    "TrainingArguments (no peft)": [sys.executable, "-c", HIDE_PEFT + "from transformers import TrainingArguments"],
    **{f"{name} --help (no peft)": _help(script, hide_peft=True) for name, script in SCRIPTS.items()},
}


def time_once(command: list[str], tree: Path = ROOT) -> float:
    """Seconds from starting ``command`` in checkout ``tree`` to its exit; a failure is an error, not a time."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per arm (the median is reported)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), metavar="ARM")
    parser.add_argument("--against", type=Path, help="another checkout, measured in the same rounds")
    parser.add_argument("--output", type=Path, default=RESULTS / "import_time.json")
    args = parser.parse_args(argv)
    trees = {"this tree": ROOT, **({"other tree": args.against.resolve()} if args.against else {})}
    times: dict[str, dict[str, list[float]]] = {name: {arm: [] for arm in args.arms} for name in trees}
    for _ in range(args.repeats):
        for arm in args.arms:
            for name, tree in trees.items():
                times[name][arm].append(time_once(ARMS[arm], tree))
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "repeats": args.repeats,
        "trees": {name: str(tree) for name, tree in trees.items()},
    }
    for name in trees:
        arms = {
            arm: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "runs_s": t}
            for arm, t in times[name].items()
        }
        report[name] = {"arms": arms}
        if "import" in arms and "prefix_models" in arms:
            report[name]["prefix_models_adds_s"] = arms["prefix_models"]["median_s"] - arms["import"]["median_s"]
        print(f"{name}: {trees[name]}")
        print(f"  {'arm':30s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
        for arm, row in arms.items():
            print(f"  {arm:30s} {row['median_s']:9.2f} {row['min_s']:7.2f} {row['max_s']:7.2f}")
        if "prefix_models_adds_s" in report[name]:
            print(f"  {'prefix_models adds':30s} {report[name]['prefix_models_adds_s']:9.2f}")
    write_json(args.output, report)
    return report


if __name__ == "__main__":
    main()
