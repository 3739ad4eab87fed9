"""``python -m prefix_models.report OUTPUT_DIR [OUTPUT_DIR ...]``: a picture of each run and its best epoch.

This module owns reading a finished (or interrupted) run back from the ``trainer_state.json`` the stock
``Trainer`` leaves in its output folder, drawing its training loss and every evaluation metric per epoch
into one PNG (several runs on the same panels, to compare them), and the best-epoch table it prints. It
reads nothing but the state file (and ``best_metric.json`` of ``prefix_models.callbacks.BestMetricCallback``
to know which metric a run tracked), so it works on any Trainer run, not only this project's scripts.

matplotlib is an optional dependency: ``pip install 'prefix-models[report]'``. The figure is drawn on
matplotlib's Agg canvas without pyplot, so the command needs no display and leaves the backend of a
calling process (a notebook) as it was.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROG = "python -m prefix_models.report"
STATE_FILE = "trainer_state.json"
CHECKPOINT = r"checkpoint-(\d+)"  # the Trainer's checkpoint folders
INSTALL_HINT = "pip install 'prefix-models[report]'"
# What the Trainer logs about an evaluation rather than of the model: timings, and counts some loops add.
BOOKKEEPING_SUFFIXES = (
    "_runtime",
    "_samples_per_second",
    "_steps_per_second",
    "_samples",
    "_epoch",
    "_jit_compilation_time",
    "_model_preparation_time",
)


@dataclass
class Run:
    """One run read back from its ``trainer_state.json``.

    ``losses`` holds the training loss as ``(epoch, value)`` pairs in logging order; ``evals`` maps each
    evaluation metric (``eval_*``) to its ``(epoch, step, value)`` triples, one per evaluation.
    """

    label: str
    folder: Path
    state_file: Path
    state: dict[str, Any]
    losses: list[tuple[float, float]] = field(default_factory=list)
    evals: dict[str, list[tuple[float, int, float]]] = field(default_factory=dict)

    @property
    def tracked_metric(self) -> str | None:
        """The metric this run picked its best model by, where the run says so (else None).

        The Trainer saves ``best_metric`` and ``best_global_step`` but not ``metric_for_best_model``'s
        name, so the name is the one eval key logged at that step with that value; failing that, the one
        ``BestMetricCallback`` wrote to ``best_metric.json`` (run_glue.py and run_ner.py add it).
        """
        best, step = self.state.get("best_metric"), self.state.get("best_global_step")
        if best is not None and step is not None:
            matches = [
                key
                for key, points in self.evals.items()
                if any(s == step and math.isclose(value, best, rel_tol=1e-9, abs_tol=1e-12) for _, s, value in points)
            ]
            if len(matches) == 1:
                return matches[0]
        # A checkpoint's run keeps the callback's file one level up, and it names the same metric.
        homes = [self.folder, self.folder.parent] if re.fullmatch(CHECKPOINT, self.folder.name) else [self.folder]
        recorded = next((found for home in homes if (found := _read_json(home / "best_metric.json"))), None)
        if recorded is None:
            return None
        names = [key[len("best_") :] for key in recorded if key.startswith("best_eval_")]
        return names[0] if len(names) == 1 and names[0] in self.evals else None


@dataclass
class BestRow:
    """One line of the best-epoch table: a run's best and final value of one metric."""

    run: str
    metric: str
    greater_is_better: bool
    best: float
    best_epoch: float
    best_step: int
    final: float
    final_epoch: float


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_eval_metric(key: str) -> bool:
    """Whether a ``log_history`` key is an evaluation metric worth a panel (not timing bookkeeping)."""
    return key.startswith("eval_") and not key.endswith(BOOKKEEPING_SUFFIXES)


def greater_is_better(metric: str) -> bool:
    """The Trainer's default for ``greater_is_better``: higher is better unless the name ends in ``loss``."""
    return not metric.endswith("loss")


def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None where it is missing, cut short or not an object."""
    try:
        with open(path, encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def find_state(folder: str | os.PathLike) -> Path:
    """The ``trainer_state.json`` that describes the run in ``folder``.

    ``folder`` is a run's output folder (the Trainer writes the state there when training ends) or one of
    its ``checkpoint-N`` folders. An output folder without a state of its own (a run still training, or
    killed) is read from its newest checkpoint whose state parses: the Trainer writes a checkpoint's state
    file last, so a checkpoint cut short has none, and the one before it is the newest complete picture.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (give a training run's --output_dir)")
    if _read_json(folder / STATE_FILE) is not None:
        return folder / STATE_FILE
    checkpoints = []
    for child in folder.iterdir():
        match = re.fullmatch(CHECKPOINT, child.name)
        if match and child.is_dir():
            checkpoints.append((int(match.group(1)), child))
    for _, checkpoint in sorted(checkpoints, reverse=True):
        if _read_json(checkpoint / STATE_FILE) is not None:
            return checkpoint / STATE_FILE
    broken = " (its trainer_state.json does not parse)" if (folder / STATE_FILE).exists() else ""
    raise InputError(
        f"{folder} holds no readable {STATE_FILE}{broken} nor a checkpoint-*/ with one: "
        "is it the --output_dir of a training run?"
    )


def load_run(folder: str | os.PathLike, label: str | None = None) -> Run:
    """Read the run in ``folder`` (see :func:`find_state`); ``label`` defaults to the folder's name."""
    folder = Path(folder)
    state_file = find_state(folder)
    state = _read_json(state_file) or {}
    if label is None:
        # A checkpoint's own name says little: keep the run's name in front of it.
        label = folder.name or str(folder)
        if re.fullmatch(CHECKPOINT, label):
            label = f"{folder.resolve().parent.name}/{label}"
    run = Run(label=label, folder=folder, state_file=state_file, state=state)
    for entry in state.get("log_history") or []:
        epoch = entry.get("epoch")
        if not _is_number(epoch):
            continue
        # "loss" is the running training loss; the end-of-training summary logs "train_loss" instead.
        if _is_number(entry.get("loss")):
            run.losses.append((float(epoch), float(entry["loss"])))
        for key, value in entry.items():
            if is_eval_metric(key) and _is_number(value):
                run.evals.setdefault(key, []).append((float(epoch), int(entry.get("step", 0)), float(value)))
    return run


def _metric_key(metric: str) -> str:
    # As the Trainer reads metric_for_best_model: with or without the "eval_" prefix.
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def _best_point(points: Sequence[tuple[float, int, float]], better: bool) -> tuple[float, int, float]:
    # Strictly better replaces, so a tie keeps the earliest epoch, as the Trainer keeps its first best checkpoint.
    best = points[0]
    for point in points[1:]:
        if (point[2] > best[2]) if better else (point[2] < best[2]):
            best = point
    return best


def best_rows(runs: Sequence[Run], metric: str | None = None, greater: bool | None = None) -> list[BestRow]:
    """The best-epoch table: for each run, the best and the final value of ``metric``.

    Without ``metric`` a run's row is the metric it tracked (:attr:`Run.tracked_metric`), or one row per
    evaluation metric when it tracked none. ``greater`` overrides which way is better for every row; by
    default it is inferred from each name as the Trainer does. Ties go to the earliest epoch. A run that
    never evaluated has no rows.
    """
    rows = []
    for run in runs:
        if metric is not None:
            key = _metric_key(metric)
            if key not in run.evals:
                logged = ", ".join(run.evals) or "no evaluation metrics"
                raise InputError(f"{run.folder}: {run.state_file.name} has no {key} (it logged: {logged})")
            keys = [key]
        else:
            tracked = run.tracked_metric
            keys = [tracked] if tracked else list(run.evals)
        for key in keys:
            better = greater_is_better(key) if greater is None else greater
            points = run.evals[key]
            best = _best_point(points, better)
            rows.append(BestRow(run.label, key, better, best[2], best[0], best[1], points[-1][2], points[-1][0]))
    return rows


def _epoch(value: float) -> str:
    return f"{round(value, 2):g}"


def format_table(rows: Sequence[BestRow]) -> str:
    """``rows`` as a fixed-width text table, one line per row under a header."""
    header = ("run", "metric", "best", "epoch", "step", "final", "at epoch", "better")
    cells = [
        (
            row.run,
            row.metric,
            f"{row.best:.4f}",
            _epoch(row.best_epoch),
            str(row.best_step),
            f"{row.final:.4f}",
            _epoch(row.final_epoch),
            "higher" if row.greater_is_better else "lower",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )


def _panels(runs: Sequence[Run]) -> list[str]:
    # Training loss, then eval loss beside it, then the metrics in the order the runs logged them.
    metrics: list[str] = []
    for run in runs:
        metrics += [key for key in run.evals if key not in metrics]
    metrics.sort(key=lambda key: key != "eval_loss")
    return (["loss"] if any(run.losses for run in runs) else []) + metrics


def plot_runs(runs: Sequence[Run], greater: bool | None = None) -> Figure:
    """One figure, one panel per quantity (the training loss and each evaluation metric) against epoch,
    every run on every panel it logged, a legend naming the runs and each run's best epoch ringed
    (``greater`` as in :func:`best_rows`)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator
    except ImportError as error:
        raise ImportError(f"drawing a report needs matplotlib: {INSTALL_HINT}") from error
    panels = _panels(runs)
    if not panels:
        names = ", ".join(str(run.state_file) for run in runs)
        raise InputError(f"nothing to plot: no training loss or eval_* entries in the log_history of {names}")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.5 * columns, 3.2 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    colors = [f"C{i % 10}" for i in range(len(runs))]
    for ax, panel in zip(axes, panels, strict=False):
        for run, color in zip(runs, colors, strict=True):
            if panel == "loss":
                if run.losses:
                    epochs, values = zip(*run.losses, strict=True)
                    ax.plot(epochs, values, color=color, marker="." if len(values) < 30 else None)
                continue
            points = run.evals.get(panel)
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[2] for p in points], color=color, marker="o", markersize=4)
            better = greater_is_better(panel) if greater is None else greater
            best_epoch, _, best = _best_point(points, better)
            ax.plot([best_epoch], [best], color=color, marker="o", markersize=11, fillstyle="none")
        if all(float(x).is_integer() for line in ax.get_lines() for x in line.get_xdata()):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # evaluated per epoch: no 1.25 ticks
        ax.set_title("training loss" if panel == "loss" else panel)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    # Handles of no panel's: one legend for the figure, as every run has the same colour on every panel.
    handles = [Line2D([], [], color=color, marker="o") for color in colors]
    figure.legend(handles, [run.label for run in runs], loc="outside upper center", ncols=min(len(runs), 4))
    return figure


def default_output(folders: Sequence[str | os.PathLike]) -> Path:
    """``report.png`` in the one run's folder, or in the working directory when comparing several runs
    (no one run's folder is the comparison's home)."""
    return Path(folders[0]) / "report.png" if len(folders) == 1 else Path("report.png")


def report_hint(output_dir: str | os.PathLike) -> str:
    """The line a script prints when it finishes, pointing at this command for its output folder."""
    return f"Plot this run: {PROG} {shlex.quote(str(output_dir))}"


def _bool(value: str) -> bool:
    # As HfArgumentParser reads a bool flag: true/false, yes/no, 1/0.
    lowered = value.lower()
    if lowered in ("true", "yes", "1", "t", "y"):
        return True
    if lowered in ("false", "no", "0", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m prefix_models.report``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Draw the training loss and every evaluation metric per epoch of one or more Trainer runs into "
            "a PNG (several runs on the same panels), and print each run's best epoch. Reads the "
            f"{STATE_FILE} of each run (its last complete checkpoint's for a run still training)."
        ),
    )
    parser.add_argument(
        "output_dirs",
        nargs="+",
        metavar="OUTPUT_DIR",
        help="The output directory of a training run (its --output_dir), or one of its checkpoint-N folders.",
    )
    parser.add_argument(
        "--output",
        default=None,
        help=(
            "Where to write the PNG. Defaults to report.png in OUTPUT_DIR for one run, and to report.png in "
            "the current directory for several."
        ),
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        default=None,
        help="The runs' names in the legend and the table, one per OUTPUT_DIR. Defaults to the folder names.",
    )
    parser.add_argument(
        "--metric",
        default=None,
        help=(
            "The metric of the best-epoch table, with or without the `eval_` prefix (as `metric_for_best_model`)."
            " Defaults to the metric each run tracked (the Trainer's `best_metric`, or best_metric.json), and "
            "to every evaluation metric for a run that tracked none."
        ),
    )
    parser.add_argument(
        "--greater_is_better",
        type=_bool,
        default=None,
        metavar="{true,false}",
        help=(
            "Whether a higher value of the metric is better. Defaults, as in the Trainer, to `True` unless the "
            "metric's name ends in `loss`."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Draw the report for the runs named on the command line (``argv``, default ``sys.argv[1:]``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.output_dirs):
        parser.error(f"--labels gives {len(args.labels)} names for {len(args.output_dirs)} OUTPUT_DIRs")
    labels = args.labels or [None] * len(args.output_dirs)
    try:
        runs = [load_run(folder, label) for folder, label in zip(args.output_dirs, labels, strict=True)]
        rows = best_rows(runs, args.metric, args.greater_is_better)
        figure = plot_runs(runs, args.greater_is_better)
    except InputError as error:
        # One line and status 2, as argparse reports a bad flag and as the scripts report bad input.
        print(f"{PROG}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except ImportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    output = Path(args.output) if args.output else default_output(args.output_dirs)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    if rows:
        print(format_table(rows))
    for run in runs:
        if not run.evals:
            print(f"{run.label}: no evaluation logged ({run.state_file})")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
