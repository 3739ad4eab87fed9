"""Trainer callbacks (plain ``TrainerCallback``s: they work with the stock ``Trainer``)."""

from __future__ import annotations

import json
import os

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


class BestMetricCallback(TrainerCallback):
    """Track the best dev value of one metric and the epoch (and step) it was reached at.

    The P-tuning v2 paper reports best-epoch dev results; this records them without changing
    what the Trainer does. ``best`` holds ``best_eval_<metric>``, ``best_epoch`` and
    ``best_step`` once an evaluation has run; at the end of training they are also written to
    ``best_metric.json`` in the output directory.
    """

    def __init__(self, metric: str, greater_is_better: bool = True):
        self.metric = metric if metric.startswith("eval_") else f"eval_{metric}"
        self.greater_is_better = greater_is_better
        self.best: dict[str, float] = {}

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kw):
        if not metrics or self.metric not in metrics:
            return
        value = float(metrics[self.metric])
        key = f"best_{self.metric}"
        if key not in self.best or (value > self.best[key]) == self.greater_is_better and value != self.best[key]:
            self.best = {key: value, "best_epoch": float(state.epoch or 0.0), "best_step": int(state.global_step)}

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.best and state.is_world_process_zero:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, "best_metric.json"), "w") as handle:
                json.dump(self.best, handle, indent=2)
