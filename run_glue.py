#!/usr/bin/env python
"""Prefix tuning (P-tuning v2), prompt tuning and their baselines on GLUE, SuperGLUE or your own
text-classification data, with the stock transformers ``Trainer``.

Shaped like transformers' ``examples/pytorch/text-classification/run_glue.py``::

    python run_glue.py --model_name_or_path roberta-large --task_name rte --prefix --pre_seq_len 128 \\
        --learning_rate 5e-3 --num_train_epochs 100 --do_train --do_eval --output_dir out

``--prefix`` or ``--prompt`` pick the method; neither is full fine-tuning, ``--head_only`` a linear
probe on the frozen backbone. ``--ensemble_prefixes`` evaluates saved prefixes of one base together
(prompt ensembling: their probabilities averaged), each member also scored alone. Data comes from the
hub (``--task_name``), the official downloads (``--data_dir``) or csv/tsv/json(l) files
(``--train_file`` ...) with named text and label columns.
Inputs longer than ``--max_seq_length`` (default 128, or the model's limit if smaller) are
truncated. A single ``.json`` argument is read as the whole configuration. Bad flags or data end
with one ``error:`` line and exit status 2 (``PREFIX_MODELS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transformers import (
    DataCollatorWithPadding,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from prefix_models import scripts
from prefix_models.callbacks import BestMetricCallback
from prefix_models.errors import InputError
from prefix_models.named_prefixes import DEFAULT_PREFIX
from prefix_models.scripts import build_model
from prefix_models.scripts.glue.data import check_splits, load_from_data_dir, load_from_files, load_from_hub
from prefix_models.scripts.glue.features import MultipleChoiceCollator, metrics_function, tokenize, write_predictions
from prefix_models.scripts.glue.tasks import MULTIPLE_CHOICE, REGRESSION, TASKS, get_task

logger = logging.getLogger(__name__)


@dataclass
class DataTrainingArguments(scripts.DataArguments):
    """What data to train and evaluate on, and how to cut it into model inputs."""

    task_name: str | None = field(default=None, metadata={"help": f"The task to train on, one of: {', '.join(TASKS)}."})
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "The official download: a GLUE TSV folder (train.tsv, dev.tsv, test.tsv) or a SuperGLUE "
            "folder (train.jsonl, val.jsonl, test.jsonl), or the root folder holding the task's folder."
        },
    )
    text_column_names: str | None = field(
        default=None,
        metadata={
            "help": "With data files: one or two comma-separated text columns. Default: sentence1,sentence2, "
            "sentence, or the only non-label columns."
        },
    )
    label_column_name: str = field(default="label", metadata={"help": "With data files: the label column."})

    def __post_init__(self) -> None:
        self.check_sources()
        if self.task_name is not None:
            get_task(self.task_name)  # fails early on an unknown task
        elif not self.files and self.dataset_name is None:
            raise InputError(
                f"name a task (--task_name, one of: {', '.join(TASKS)}) or give data files (--train_file ...)"
            )


@dataclass
class EnsembleArguments:
    """Evaluate several saved prefixes as one ensemble."""

    ensemble_prefixes: list[str] | None = field(
        default=None,
        metadata={
            "help": "Saved prefix models of the same base and task as --model_name_or_path (itself a saved "
            "prefix model): evaluate (--do_eval) and predict (--do_predict) with all of them, their "
            "probabilities averaged; each input runs once per prefix, in one batch. Each member is "
            "also scored alone. No training."
        },
    )


def ensemble_members(model, folders: list[str], ignore_mismatched_base: bool = False) -> list[str]:
    """Load ``folders`` beside the model's own prefix; the names of all members, the model's first (each checked
    against the model's base weights unless ``--ignore_mismatched_base``)."""
    if not hasattr(model, "load_prefix"):
        raise InputError(
            "--ensemble_prefixes needs --model_name_or_path to be a saved prefix or prompt model (the "
            f"first member); {type(model).__name__} is not one"
        )
    names = [DEFAULT_PREFIX]
    for index, folder in enumerate(folders, start=1):
        model.load_prefix(folder, f"member{index}", ignore_mismatched_base=ignore_mismatched_base)
        names.append(f"member{index}")
    return names


def load_data(data_args: DataTrainingArguments, model_args: scripts.ModelArguments):
    """The splits, the task spec and the benchmark format the data came in."""
    spec = get_task(data_args.task_name) if data_args.task_name else None
    if data_args.data_dir:
        data, benchmark = load_from_data_dir(spec, data_args.data_dir)
    elif data_args.files:
        columns = data_args.text_column_names.split(",") if data_args.text_column_names else None
        data, spec = load_from_files(spec, data_args.files, columns, data_args.label_column_name)
        benchmark = "custom"
    else:
        if spec is None:
            raise InputError("--dataset_name needs --task_name to know how to read and score it")
        data = load_from_hub(
            spec,
            data_args.dataset_name,
            data_args.dataset_config_name,
            **model_args.dataset_kwargs(),
        )
        benchmark = spec.benchmark
    return data, spec, benchmark


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args, ensemble_args = scripts.parse_arguments(
        (scripts.ModelArguments, DataTrainingArguments, TrainingArguments, EnsembleArguments), argv, description=__doc__
    )
    from transformers import Trainer  # here, not at the top: --help answers without loading the training stack

    if ensemble_args.ensemble_prefixes and training_args.do_train:
        raise InputError("--ensemble_prefixes evaluates saved prefixes together; it does not train: drop --do_train")
    if ensemble_args.ensemble_prefixes and not (training_args.do_eval or training_args.do_predict):
        raise InputError("--ensemble_prefixes needs --do_eval or --do_predict")
    last_checkpoint = scripts.start_run(model_args, training_args, data_args)

    # Everything about the data and the flags is checked before any weights load.
    data, spec, benchmark = load_data(data_args, model_args)
    scripts.apply_method_defaults(model_args, training_args, spec.model_task)
    check_splits(
        spec,
        data,
        {"train": training_args.do_train, "validation": training_args.do_eval, "test": training_args.do_predict},
    )
    max_seq_length = scripts.resolve_max_seq_length(
        data_args.max_seq_length, scripts.load_config(model_args), default=128
    )

    set_seed(training_args.seed)
    tokenizer = scripts.load_tokenizer(model_args)
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    config_kwargs = {"num_labels": spec.num_labels}
    if spec.kind == REGRESSION:
        config_kwargs["problem_type"] = "regression"
    elif spec.kind != MULTIPLE_CHOICE:
        config_kwargs["id2label"] = dict(enumerate(spec.labels))
        config_kwargs["label2id"] = {label: i for i, label in enumerate(spec.labels)}
    model = build_model(model_args, spec.model_task, tokenizer=tokenizer, **config_kwargs)
    members = (
        ensemble_members(model, ensemble_args.ensemble_prefixes, model_args.ignore_mismatched_base)
        if ensemble_args.ensemble_prefixes
        else None
    )

    limits = data_args.sample_caps()
    features = {}
    with training_args.main_process_first(desc="dataset map pre-processing"):
        for split, dataset in data.items():
            cap = limits.get(split.split("_")[0])
            if cap is not None:
                dataset = dataset.select(range(min(cap, len(dataset))))
            features[split] = tokenize(spec, dataset, tokenizer, max_seq_length, data_args.pad_to_max_length)

    if spec.kind == MULTIPLE_CHOICE:
        collator = MultipleChoiceCollator(tokenizer)
    elif data_args.pad_to_max_length:
        collator = default_data_collator
    else:
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if training_args.fp16 else None)
    best = BestMetricCallback(spec.best_metric)
    eval_split = features.get("validation")
    trainer = Trainer(
        model=model.prefix_ensemble(members) if members else model,
        args=training_args,
        train_dataset=features.get("train") if training_args.do_train else None,
        eval_dataset=eval_split if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=metrics_function(spec, eval_split) if eval_split is not None else None,
        callbacks=[best],
    )

    results = (
        scripts.train_and_save(trainer, last_checkpoint, len(features["train"]), model_args)
        if training_args.do_train
        else {}
    )

    if training_args.do_eval:
        logger.info("*** Evaluate ***")
        eval_metrics: dict[str, float] = {}  # every dev split (MNLI: matched and mismatched) in one eval_results.json
        for split in [s for s in features if s.startswith("validation")]:
            trainer.compute_metrics = metrics_function(spec, features[split])
            prefix = "eval" if split == "validation" else f"eval_{split.removeprefix('validation_')}"
            metrics = trainer.evaluate(eval_dataset=features[split], metric_key_prefix=prefix)
            metrics[f"{prefix}_samples"] = len(features[split])
            if split == "validation":
                metrics.update(best.best)
            if members:  # each member alone, beside the ensemble
                for name in members:
                    alone = Trainer(
                        model=model.prefix_ensemble([name]),
                        args=training_args,
                        data_collator=collator,
                        processing_class=tokenizer,
                        compute_metrics=trainer.compute_metrics,
                    )
                    member = alone.evaluate(eval_dataset=features[split], metric_key_prefix=f"{prefix}_{name}")
                    metrics.update({k: v for k, v in member.items() if not k.endswith(("_runtime", "per_second"))})
            trainer.log_metrics("eval", metrics)
            eval_metrics.update(metrics)
        trainer.save_metrics("eval", eval_metrics)
        results.update(eval_metrics)

    if training_args.do_predict:
        logger.info("*** Predict ***")
        for split in [s for s in features if s.startswith("test")]:
            dataset = features[split]
            logits = trainer.predict(dataset.remove_columns("labels"), metric_key_prefix="predict").predictions
            if trainer.is_world_process_zero():
                for path in write_predictions(
                    spec, data[split].select(range(len(dataset))), logits, training_args.output_dir, split, benchmark
                ):
                    logger.info(f"Predictions written to {path}")
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task=f"{spec.name} ({spec.model_task})")
    return results


if __name__ == "__main__":
    scripts.run_script(main)
