#!/usr/bin/env python
"""Draw the quality benchmark's figures (PNG, matplotlib) from the reports ``quality.py`` writes.

    python benchmarks/plots.py                                  # reads benchmarks/results/quality/*.json
    python benchmarks/plots.py --reports DIR --output_dir benchmarks

Figures (each drawn only when its report exists):
- ``learning_curves.png``: dev score after every epoch per arm (mean over seeds, band = min..max)
  and the training loss, sentiment (the longer-budget prefix runs dashed); CoNLL-2003 dev entity F1 beside it.
- ``prefix_length_sweep.png``: dev-selected dev and test accuracy against the prefix length, with
  full fine-tuning and the reparameterised (MLP) prefix for reference.
- ``cost_vs_quality.png``: test accuracy against training time per example relative to full
  fine-tuning (measured in the same runs) and against the number of trainable parameters.
- ``quality_vs_wall_clock.png``: dev accuracy after each epoch against the training minutes spent to reach
  it (the levers that chose --prefix's defaults beside full fine-tuning on the sentiment data; the held-out task
  and the prompt-depth arms beside it), with the budget of twice full fine-tuning's wall clock marked.
- ``conll_vs_wall_clock.png``: the same for CoNLL-2003's dev entity F1: three epochs of full fine-tuning against
  the prefix at 3e-2 (its depths, inits and budgets) and LoRA at the prefix's epochs.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELS = {
    "full": "full fine-tuning",
    "head_only": "head only",
    "prefix16": "prefix P=16",
    "prompt16": "prompt P=16",
    "prefix16_mlp": "prefix P=16 + MLP",
    "prefix16_mean": "prefix P=16, mean pooling",
    "prefix16_mean_8ep": "prefix P=16, mean, 8 epochs",
    "prefix16_mlp_mean_8ep": "prefix P=16 + MLP, mean, 8 epochs",
    "full_3ep": "full fine-tuning, 3 epochs",
    "defaults": "--prefix, random init",
    "text_init": "--prefix, text init (the default)",
    "warmup_cosine": "--prefix, warmup + cosine",
    "trainer_defaults": "--prefix before (lr 5e-5, pooler)",
    "lora8": "LoRA r=8 (peft)",
}
COLORS = {arm: f"C{i % 10}" for i, arm in enumerate(LABELS)}
# The levers share panels with full fine-tuning (C0) and each other, not with the sentiment arms.
COLORS.update(text_init="C3", warmup_cosine="C8", trainer_defaults="C7")
COLORS.update(lora8="k")  # the yardstick from outside the package, in every panel it is in: no colour of ours
# The prompt-depth arms (quality.py depth): --prefix out of the box on some of MiniLM's 6 layers.
LABELS.update(
    all="--prefix, all 6 layers",
    top_half="--prefix, top half (layers 3-5)",
    top_third="--prefix, top third (4-5)",
    bottom_half="--prefix, bottom half (0-2)",
    top_half_at_all_wall_clock="--prefix, top half, 5 epochs",
    top_third_at_all_wall_clock="--prefix, top third, 7 epochs",
)
COLORS.update(all="C3", top_half="C1", top_third="C2", bottom_half="C7")
COLORS.update(top_half_at_all_wall_clock="C5", top_third_at_all_wall_clock="C6")
# The levers at the real budget (quality.py levers), each one change to --prefix as it stood (lr 1e-2).
LABELS.update(
    {
        "lr_2e-2": "--prefix, lr 2e-2",
        "lr_3e-2": "--prefix, lr 3e-2",
        "batch16": "--prefix, batch 16",
        "mlp_5ep": "--prefix + MLP (lr 1e-3), 5 epochs",
        "lr_5e-2": "--prefix, lr 5e-2",
        "lr_3e-2_batch16": "--prefix, lr 3e-2, batch 16",
        "prefix_1e-2": "--prefix as it stood (lr 1e-2)",
    }
)
COLORS.update({"lr_2e-2": "C1", "lr_3e-2": "C2", "batch16": "C4", "mlp_5ep": "C9", "prefix_1e-2": "C3"})
COLORS.update({"lr_5e-2": "C5", "lr_3e-2_batch16": "C6"})
# The CoNLL-2003 arms (quality.py conll), apart from CoNLL's full (C0), prefix16 (C2) and full_3ep (C8).
LABELS.update(
    {
        "prefix16_lr3e-2": "prefix P=16, lr 3e-2",
        "prefix16_text": "prefix P=16, text init",
        "prefix16_lr3e-2_text": "prefix P=16, lr 3e-2, text init",
        "prefix16_lr3e-2_7ep": "prefix P=16, lr 3e-2, 7 epochs",
        "prefix16_top_half": "prefix P=16, lr 3e-2, top half (layers 3-5)",
        "prefix16_top_third": "prefix P=16, lr 3e-2, top third (layers 4-5)",
        "prefix16_bottom_half": "prefix P=16, lr 3e-2, bottom half (layers 0-2)",
        "prefix16_top_half_6ep": "prefix P=16, lr 3e-2, top half, 6 epochs",
        "prefix16_top_third_7ep": "prefix P=16, lr 3e-2, top third, 7 epochs",
        "lora8_at_prefix_wall_clock": "LoRA r=8 (peft), 5 epochs",
    }
)
COLORS.update(
    {
        "prefix16_lr3e-2": "C3",
        "prefix16_text": "C4",
        "prefix16_lr3e-2_text": "C6",
        "prefix16_top_half": "C1",
        "prefix16_lr3e-2_7ep": "C5",
        "prefix16_top_third": "C7",
        "prefix16_bottom_half": "C9",
        "prefix16_top_half_6ep": "goldenrod",  # C1 (the 5-epoch top half) is taken; C8 is full_3ep
        "prefix16_top_third_7ep": "teal",  # olive would sit beside full_3ep's C8
    }
)
COLORS.update(lora8_at_prefix_wall_clock="dimgray")  # the outside yardstick again, a shade off lora8's black


def label(arm: str) -> str:
    return LABELS.get(arm, arm.replace("prefix", "prefix P="))


def finished(report: dict) -> dict[str, list[dict]]:
    return {arm: [r for r in runs if "error" not in r] for arm, runs in report["runs"].items()}


def curve(runs: list[dict], key: str) -> tuple[list[float], list[float], list[float], list[float]]:
    """Mean, min and max over seeds of ``key`` (a list of [epoch, value]) at each logged epoch."""
    by_epoch: dict[float, list[float]] = defaultdict(list)
    for run in runs:
        for epoch, value in run[key]:
            by_epoch[round(epoch, 2)].append(value)
    epochs = sorted(by_epoch)
    values = [by_epoch[e] for e in epochs]
    return epochs, [sum(v) / len(v) for v in values], [min(v) for v in values], [max(v) for v in values]


def save(figure, axes, output: Path, title: str | None = None, legend: bool = True) -> Path:
    for axis in axes:
        axis.grid(alpha=0.3)
        if legend and axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def learning_curves(sentiment: dict | None, conll: dict | None, output: Path, budget: dict | None = None) -> Path:
    """Per-epoch curves; ``budget`` (the longer prefix runs on the same sentiment data) joins the sentiment
    panels, dashed, so a reader sees where the 4-epoch prefix arm would have gone."""
    longer = finished(budget) if budget is not None else {}
    sentiment_runs = finished(sentiment) if sentiment is not None else None
    panels = [
        (sentiment_runs, "dev_curve", "sentiment: dev accuracy"),
        (sentiment_runs, "loss_curve", "sentiment: training loss"),
        (finished(conll) if conll is not None else None, "dev_curve", "CoNLL-2003: dev entity F1"),
    ]
    panels = [p for p in panels if p[0] is not None]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (arms, key, title) in zip(axes[0], panels, strict=True):
        extra = longer if title.startswith("sentiment") else {}
        for arm, runs in [*arms.items(), *extra.items()]:
            if not runs:
                continue
            epochs, mean, low, high = curve(runs, key)
            (line,) = axis.plot(
                epochs,
                mean,
                marker="o" if key == "dev_curve" else None,
                linestyle="--" if arm in extra else "-",
                color=COLORS.get(arm),  # one colour per arm across the panels
                label=f"{label(arm)} ({len(runs)} seed{'s' * (len(runs) > 1)})",
            )
            if len(epochs) > 1:
                axis.fill_between(epochs, low, high, color=line.get_color(), alpha=0.15)
            elif epochs:  # a one-epoch arm is a single point: a band of zero width would not show its spread
                axis.errorbar(
                    epochs, mean, yerr=[[mean[0] - low[0]], [high[0] - mean[0]]], color=line.get_color(), capsize=4
                )
        axis.set(title=title, xlabel="epoch")
    return save(figure, axes[0], output, "all-MiniLM-L6-v2, 2 CPU cores; band or bar = min..max over seeds")


def epochs(runs: dict[str, list[dict]]) -> str:
    counts = sorted({r["epochs"] for rs in runs.values() for r in rs})
    return "/".join(map(str, counts)) + (" epoch" if counts == [1] else " epochs")


def prefix_length_sweep(sweep: dict, sentiment: dict | None, output: Path) -> Path:
    runs = finished(sweep)
    lengths = sorted(
        (int(arm.removeprefix("prefix")), rs) for arm, rs in runs.items() if arm.removeprefix("prefix").isdigit() and rs
    )
    figure, axis = plt.subplots(figsize=(6, 4))
    for key, marker in (("best_dev", "o"), ("test", "s")):
        xs = [p for p, _ in lengths]
        ys = [sum(r[key] for r in rs) / len(rs) for _, rs in lengths]
        axis.plot(xs, ys, marker=marker, label=f"prefix, {'dev (best epoch)' if key == 'best_dev' else 'test'}")
    if runs.get("prefix16_mlp"):
        value = sum(r["test"] for r in runs["prefix16_mlp"]) / len(runs["prefix16_mlp"])
        axis.scatter([16], [value], marker="^", color="black", zorder=3, label="P=16 + MLP, test")
    if sentiment is not None and finished(sentiment).get("full"):
        full = finished(sentiment)["full"]
        axis.axhline(
            sum(r["test"] for r in full) / len(full),
            color="grey",
            linestyle="--",
            label=f"full fine-tuning ({full[0]['epochs']} epochs), test",
        )
    axis.set(
        xscale="log",
        xlabel="prefix length P (virtual tokens)",
        ylabel="accuracy",
        title=f"Movie-review sentiment: prefix length ({epochs(runs)} per arm)",
    )
    axis.set_xticks([p for p, _ in lengths], [str(p) for p, _ in lengths])
    return save(figure, [axis], output)


def cost_vs_quality(sentiment: dict, cost: dict | None, output: Path) -> Path:
    """Quality against cost. The time axis comes from ``cost.py``'s MiniLM step-time ratios when a cost
    report is given (measured alone, each arm in its own process); otherwise from the quality runs'
    own throughput, which shares the machine with whatever else ran."""
    summary = {arm: s for arm, s in sentiment["summary"].items() if "error" not in s}
    full_speed = summary["full"]["train_samples_per_second"]
    measured = (cost or {}).get("results", {}).get("minilm", {}).get("train", {})
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    means = [s["test"]["mean"] for s in summary.values()]
    for arm, s in summary.items():
        cost_arm = arm.removesuffix("_mean")  # mean pooling over the real tokens costs what the pooler does
        if "step_time_vs_full" in measured.get(cost_arm, {}):
            relative_time = measured[cost_arm]["step_time_vs_full"]
        else:
            relative_time = full_speed / s["train_samples_per_second"]
        for axis, x in zip(axes, (relative_time, s.get("trainable_parameters") or float("nan")), strict=True):
            axis.errorbar([x], [s["test"]["mean"]], yerr=[s["test"]["std"]], marker="o", capsize=3, label=label(arm))
            # Arms of equal cost and close accuracy (the pooling variants) would print one label over the other:
            # the lower one's label goes below its point.
            offset = (5, -11) if any(0 < y - s["test"]["mean"] < 0.01 for y in means) else (5, 5)
            axis.annotate(label(arm), (x, s["test"]["mean"]), textcoords="offset points", xytext=offset, fontsize=8)
    source = "cost.py step time" if measured else "training time per example"
    axes[0].set(xlabel=f"{source} / full fine-tuning", ylabel="test accuracy (dev-selected)")
    axes[1].set(xscale="log", xlabel="trainable parameters", ylabel="test accuracy (dev-selected)")
    title = "Movie-review sentiment, all-MiniLM-L6-v2: cost against quality (mean ± std over seeds)"
    return save(figure, axes, output, title, legend=False)  # points are labelled in place


# The CoNLL-2003 arms drawn against wall clock: full fine-tuning's longer budget and the arms at the rate run_ner.py
# picks (the 1-epoch and 2e-2 arms answered earlier questions and would crowd the panel).
CONLL_WALL_CLOCK_ARMS = (
    "full_3ep",
    "prefix16_lr3e-2",
    "prefix16_lr3e-2_text",
    "prefix16_lr3e-2_7ep",
    "prefix16_top_half",
    "prefix16_top_half_6ep",
    "prefix16_top_third",
    "prefix16_top_third_7ep",
    "prefix16_bottom_half",
    "lora8_at_prefix_wall_clock",
)


def quality_vs_wall_clock(
    panels: list[tuple[str, dict[str, list[dict]]]],
    output: Path,
    metric: str = "dev accuracy",
    title: str = "all-MiniLM-L6-v2: quality against wall clock; band = min..max over seeds",
) -> Path:
    """Dev score after each epoch against the training minutes spent (the Trainer's ``train_runtime``, per-epoch
    dev evaluation included, spread evenly over the epochs: the epochs of one run cost the same). The budget line
    is twice the wall clock of the panel's full fine-tuning (``full_3ep`` where a panel has it, else ``full``)."""
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for axis, (panel, arms) in zip(axes[0], panels, strict=True):
        reference = "full_3ep" if arms.get("full_3ep") else "full"
        for arm, runs in arms.items():
            runs = [r for r in runs if r.get("train_runtime_s")]
            if not runs:
                continue
            epochs, mean, low, high = curve(runs, "dev_curve")
            minutes = sum(r["train_runtime_s"] / r["epochs"] for r in runs) / len(runs) / 60
            xs = [e * minutes for e in epochs]
            (line,) = axis.plot(
                xs,
                mean,
                marker="o",
                color=COLORS.get(arm),
                label=f"{label(arm)} ({len(runs)} seed{'s' * (len(runs) > 1)})",
            )
            axis.fill_between(xs, low, high, color=line.get_color(), alpha=0.15)
            if arm == reference:
                budget = 2 * max(xs)
                axis.axvline(budget, color="grey", linestyle=":", label="2x full fine-tuning's wall clock")
        axis.set(title=panel, xlabel="training wall clock (min, 2 CPU cores)", ylabel=metric)
    return save(figure, axes[0], output, title)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--reports",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "quality",
        help="folder holding quality.py's sentiment / sweep / budget / conll .json",
    )
    parser.add_argument(
        "--cost", type=Path, help="cost.py's JSON report: its MiniLM step-time ratios set the time axis"
    )
    parser.add_argument("--output_dir", type=Path, default=ROOT / "benchmarks")
    args = parser.parse_args(argv)

    def report(name: str) -> dict | None:
        path = args.reports / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    sentiment, sweep, conll, budget = report("sentiment"), report("sweep"), report("conll"), report("budget")
    levers, heldout, depth = report("levers"), report("heldout"), report("depth")
    cost = json.loads(args.cost.read_text()) if args.cost else None
    if all(r is None for r in (sentiment, sweep, conll, levers, heldout, depth)):
        raise SystemExit(f"no quality reports in {args.reports}: run benchmarks/quality.py first")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if sentiment is not None or conll is not None:
        written.append(learning_curves(sentiment, conll, args.output_dir / "learning_curves.png", budget))
    if sweep is not None:
        written.append(prefix_length_sweep(sweep, sentiment, args.output_dir / "prefix_length_sweep.png"))
    if sentiment is not None and "error" not in sentiment["summary"].get("full", {"error": 1}):
        written.append(cost_vs_quality(sentiment, cost, args.output_dir / "cost_vs_quality.png"))
    timed = []
    if levers is not None:
        # Full fine-tuning and --prefix as it stood (lr 1e-2), beside the levers: the sentiment experiment's runs,
        # else the depth experiment's (the same arms, data and seeds), whichever this machine keeps.
        references = {}
        for source, arm, name in ((sentiment, "full", "full"), (depth, "full", "full"), (depth, "all", "prefix_1e-2")):
            if source is not None and name not in references and finished(source).get(arm):
                references[name] = finished(source)[arm]
        timed.append(("movie-review sentiment: the levers", {**references, **finished(levers)}))
    if heldout is not None and finished(heldout).get("full"):  # without full fine-tuning a panel compares nothing
        # its "defaults" arm is --prefix alone as it stood (text init, lr 1e-2), not the levers' random-init arm
        arms = {("prefix_1e-2" if arm == "defaults" else arm): runs for arm, runs in finished(heldout).items()}
        timed.append(("Amazon reviews (held out of tuning)", arms))
    if depth is not None:
        timed.append(("movie-review sentiment: prompt depth (lr 1e-2)", finished(depth)))
    if timed:
        written.append(quality_vs_wall_clock(timed, args.output_dir / "quality_vs_wall_clock.png"))
    conll_timed = {arm: runs for arm, runs in finished(conll).items() if arm in CONLL_WALL_CLOCK_ARMS} if conll else {}
    if conll_timed.get("full_3ep") and len(conll_timed) > 1:  # a prefix arm against full fine-tuning, or nothing
        written.append(
            quality_vs_wall_clock(
                [("CoNLL-2003: the prefix at lr 3e-2, its depths and budgets", conll_timed)],
                args.output_dir / "conll_vs_wall_clock.png",
                metric="dev entity F1 (conlleval)",
                title="all-MiniLM-L6-v2; band = min..max over seeds",  # one panel: a short title fits
            )
        )
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
