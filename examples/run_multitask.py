#!/usr/bin/env python
"""Several classification tasks at once on one frozen backbone, trained together in mixed batches with the stock
``Trainer`` and scored per task: one prefix (or prompt) and one head per task, or with ``--shared_prefix`` one
prefix shared by every task, each with its own head (P-tuning v2's multi-task pre-training).

    python examples/run_multitask.py --model_name_or_path bert-base-uncased --task_names rte,mrpc,sst2 \\
        --data_dir glue_data --prefix --pre_seq_len 16 --learning_rate 1e-2 --num_train_epochs 3 \\
        --do_train --do_eval --output_dir out

    # pre-train one prefix on your own tasks, then start a new task from it
    python examples/run_multitask.py --model_name_or_path bert-base-uncased --prefix --shared_prefix \\
        --task_names reviews,news --train_files reviews.csv,news.csv --validation_files reviews_dev.csv,news_dev.csv \\
        --do_train --do_eval --output_dir pretrained
    python run_glue.py --model_name_or_path bert-base-uncased --prefix --prefix_init_from pretrained/prefixes/news \\
        --train_file new_task.csv --validation_file new_task_dev.csv --do_train --do_eval --output_dir adapted

Every example carries its task's position in ``model.prefix_names`` (a ``prefix_names`` column), so
each batch mixes tasks and each task's head learns from its own examples only; each task's own prefix does
too, while a shared prefix learns from every task's examples. The first task is the model's own prefix
(``"default"``); the others are added with ``add_prefix`` (or ``add_head``, sharing it). Mixing: the tasks'
training sets are concatenated and shuffled, so a batch holds each task in proportion to its size; with
``--sampling_temperature T`` > 1 each task is drawn ``n ** (1/T)``-proportionally instead (the same number
of examples an epoch in all; small tasks repeated, large ones subsampled with the seed), so a small task
is not drowned by a large one. Results:
``eval_<task>_<metric>`` per task, the whole model in ``--output_dir`` (``from_pretrained`` reloads every
task) and each task alone under ``<output_dir>/prefixes/<task>`` (``save_prefix``; ``run_glue.py
--model_name_or_path`` and ``load_prefix`` read those; with
``--shared_prefix`` each holds the shared prefix with that task's head, which ``--prefix_init_from`` starts a
new task from). Data: ``--data_dir`` (the folder holding each GLUE /
SuperGLUE task's official download), the hub, or local files: ``--train_files`` / ``--validation_files``, one
csv/json file per task in ``--task_names`` order, in the formats ``run_glue.py --train_file`` reads (free task
names; each task's labels read from its own training file). Tasks whose model is not a sequence classifier
(COPA, MultiRC, ReCoRD) are refused. Bad flags end with one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import DataCollatorWithPadding, EvalPrediction, TrainingArguments, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefix_models import scripts  # noqa: E402
from prefix_models.errors import InputError  # noqa: E402
from prefix_models.named_prefixes import DEFAULT_PREFIX  # noqa: E402
from prefix_models.scripts import build_model  # noqa: E402
from prefix_models.scripts.glue.data import check_splits, load_from_data_dir, load_from_hub  # noqa: E402
from prefix_models.scripts.glue.features import metrics_function, tokenize  # noqa: E402
from prefix_models.scripts.glue.tasks import CLASSIFICATION, REGRESSION, TASKS, get_task  # noqa: E402
from prefix_models.scripts.multitask import (  # noqa: E402
    load_task_files,
    mix_training_sets,
    mixture_sizes,
    split_list,
    task_files,
)

logger = logging.getLogger(__name__)
_SUPPORTED = [name for name, spec in TASKS.items() if spec.kind in (CLASSIFICATION, REGRESSION)]


@dataclass
class MultiTaskArguments(scripts.DataArguments):
    """Which tasks to train together, where their data is, and how they share a prefix."""

    task_names: str = field(
        default="",
        metadata={
            "help": f"Comma-separated tasks to train together: from {', '.join(_SUPPORTED)} (with --data_dir or the "
            "hub), or names of your own with --train_files / --validation_files."
        },
    )
    train_files: str | None = field(
        default=None,
        metadata={"help": "Comma-separated training files (csv/json, as run_glue.py --train_file), one per task."},
    )
    validation_files: str | None = field(
        default=None, metadata={"help": "Comma-separated dev files, one per task, in --task_names order."}
    )
    text_column_names: str | None = field(
        default=None,
        metadata={
            "help": "With data files: one or two comma-separated text columns, the same in every file. Default: "
            "sentence1,sentence2, sentence, or the only non-label columns, file by file."
        },
    )
    label_column_name: str = field(default="label", metadata={"help": "With data files: the label column."})
    shared_prefix: bool = field(
        default=False,
        metadata={
            "help": "Train one prefix (or prompt) shared by every task, each task with its own head (P-tuning v2's "
            "multi-task pre-training); without it each task trains a prefix of its own."
        },
    )
    sampling_temperature: float = field(
        default=1.0,
        metadata={
            "help": "How tasks mix in training: 1 draws each in proportion to its size; T > 1 draws task i in "
            "proportion to n_i ** (1/T), so small tasks are not drowned by large ones."
        },
    )

    def __post_init__(self) -> None:
        if self.check_sources() and self.files:
            raise InputError(
                "run_multitask.py takes one file per task: --train_files / --validation_files (comma-separated), "
                "not --train_file / --validation_file / --test_file"
            )
        names = split_list(self.task_names)
        self.local = bool(self.train_files or self.validation_files)
        if len(names) < 2:
            allowed = "names of your own" if self.local else f"from: {', '.join(_SUPPORTED)}"
            raise InputError(f"--task_names needs at least two comma-separated tasks, {allowed}")
        if len(set(names)) != len(names):
            raise InputError(f"--task_names names a task twice: {self.task_names}")
        mixture_sizes([1], self.sampling_temperature)  # a bad temperature fails here
        self.names = names
        if self.local:
            if self.data_dir or self.dataset_name:
                raise InputError("pick one data source: --train_files / --validation_files, or --data_dir, or the hub")
            self.specs = []  # read from the files, task by task, once the run starts
            return
        self.specs = [get_task(name) for name in names]
        refused = [spec.name for spec in self.specs if spec.kind not in (CLASSIFICATION, REGRESSION)]
        if refused:
            raise InputError(
                f"--task_names: {', '.join(refused)} need another model than a sequence classifier; "
                f"train them with run_glue.py. Supported here: {', '.join(_SUPPORTED)}"
            )


def label_fields(spec) -> dict:
    """Config fields of a task's head: its labels, or regression."""
    if spec.kind == REGRESSION:
        return {"num_labels": 1, "problem_type": "regression"}
    labels = dict(enumerate(spec.labels))
    return {
        "num_labels": spec.num_labels,
        "problem_type": "single_label_classification",
        "id2label": labels,
        "label2id": {label: i for i, label in labels.items()},
    }


def task_metrics(spec, dataset, num_labels: int):
    """The task's metrics on its own columns of the shared (widest-head) logits."""
    compute = metrics_function(spec, dataset)

    def own(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return compute(EvalPrediction(logits[..., :num_labels], prediction.label_ids))

    return own


def read_tasks(data_args: MultiTaskArguments, model_args: scripts.ModelArguments, needed: dict[str, bool]):
    """Each task's spec (in --task_names order) and splits, from its files, its official download or the hub."""
    if data_args.local:
        train, validation = split_list(data_args.train_files), split_list(data_args.validation_files)
        files = task_files(data_args.names, train, validation, needed)
        columns = split_list(data_args.text_column_names) or None
        loaded = [load_task_files(name, files[name], columns, data_args.label_column_name) for name in data_args.names]
        return [spec for _, spec in loaded], {spec.name: data for data, spec in loaded}
    raw = {}
    for spec in data_args.specs:
        if data_args.data_dir:
            raw[spec.name], _ = load_from_data_dir(spec, data_args.data_dir)
        else:
            raw[spec.name] = load_from_hub(
                spec,
                data_args.dataset_name,
                data_args.dataset_config_name,
                asked=f"--task_names {data_args.task_names}",
                instead="Give the tasks' official downloads instead: --data_dir <the folder holding each task's>",
                **model_args.dataset_kwargs(),
            )
    return data_args.specs, raw


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = scripts.parse_arguments(
        (scripts.ModelArguments, MultiTaskArguments, TrainingArguments), argv, description=__doc__
    )
    import datasets  # here, not at the top: --help answers without the training stack
    from transformers import Trainer

    if model_args.method is None:
        raise InputError(
            "run_multitask.py trains prefixes (or prompts) on a frozen backbone: pass --prefix or --prompt"
        )
    last_checkpoint = scripts.start_run(model_args, training_args, data_args, "sequence_classification")

    # Every task's data is read and checked before any weights load.
    needed = {"train": training_args.do_train, "validation": training_args.do_eval}
    specs, raw = read_tasks(data_args, model_args, needed)
    for spec in specs:
        check_splits(spec, raw[spec.name], needed)
    max_seq_length = scripts.resolve_max_seq_length(
        data_args.max_seq_length, scripts.load_config(model_args), default=128
    )

    set_seed(training_args.seed)
    tokenizer = scripts.load_tokenizer(model_args)
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    # The first task is the model's own prefix; each further task gets its own prefix and head, or with
    # --shared_prefix a head of its own on the model's prefix.
    model = build_model(model_args, "sequence_classification", tokenizer=tokenizer, **label_fields(specs[0]))
    prefix_of = {specs[0].name: DEFAULT_PREFIX}
    for spec in specs[1:]:
        if data_args.shared_prefix:
            model.add_head(spec.name, **label_fields(spec))
        else:
            model.add_prefix(spec.name, tokenizer=tokenizer, **label_fields(spec))  # a text init reads its text
        prefix_of[spec.name] = spec.name
    sharing = "one shared prefix, a head per task" if data_args.shared_prefix else "a prefix and head per task"
    logger.info(f"tasks -> names: {prefix_of} ({sharing}); {model.num_trainable_parameters():,} trainable parameters")
    if len(specs) > 1 and training_args.ddp_find_unused_parameters is None:
        # A mixed batch need not hold every task: the absent tasks' prefixes and heads get no gradient in that
        # step, which DDP must be told (Trainer would not tell it under gradient checkpointing). Non-reentrant
        # checkpointing is the kind that works beside unused-parameter detection.
        training_args.ddp_find_unused_parameters = True
        if training_args.activation_checkpointing and training_args.activation_checkpointing_kwargs is None:
            # The Trainer reads activation_checkpointing_kwargs (gradient_checkpointing_kwargs only mirrors it).
            training_args.activation_checkpointing_kwargs = {"use_reentrant": False}

    limits = data_args.sample_caps()
    features: dict[str, dict[str, datasets.Dataset]] = {}
    with training_args.main_process_first(desc="dataset map pre-processing"):
        for spec in specs:
            index = model.prefix_names.index(prefix_of[spec.name])
            features[spec.name] = {}
            for split in ("train", "validation"):
                if split not in raw[spec.name]:
                    continue
                dataset = raw[spec.name][split]
                if limits.get(split) is not None:
                    dataset = dataset.select(range(min(limits[split], len(dataset))))
                encoded = tokenize(spec, dataset, tokenizer, max_seq_length, data_args.pad_to_max_length)
                encoded = encoded.remove_columns([c for c in encoded.column_names if c == "idx"])
                # Labels of every task in one column: floats (regression) and class ids alike.
                encoded = encoded.cast_column("labels", datasets.Value("float32"))
                features[spec.name][split] = encoded.add_column("prefix_names", [index] * len(encoded))

    train = None
    if training_args.do_train:
        parts = [features[spec.name]["train"] for spec in specs]
        train = mix_training_sets(parts, data_args.sampling_temperature, training_args.seed)
        if data_args.sampling_temperature != 1:
            drawn = mixture_sizes([len(part) for part in parts], data_args.sampling_temperature)
            logger.info(
                f"training mixture at temperature {data_args.sampling_temperature}: "
                + ", ".join(f"{spec.name} {n} of {len(p)}" for spec, n, p in zip(specs, drawn, parts, strict=True))
            )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if training_args.fp16 else None),
    )
    results: dict[str, float] = {}
    if training_args.do_train:
        results.update(scripts.train_and_save(trainer, last_checkpoint, len(train), model_args))
        if trainer.is_world_process_zero():
            for spec in specs:
                model.save_prefix(prefix_of[spec.name], os.path.join(training_args.output_dir, "prefixes", spec.name))

    if training_args.do_eval:
        logger.info("*** Evaluate, task by task ***")
        for spec in specs:
            dev = features[spec.name]["validation"]
            trainer.compute_metrics = task_metrics(spec, dev, model.prefix_config(prefix_of[spec.name]).num_labels)
            metrics = trainer.evaluate(eval_dataset=dev, metric_key_prefix=f"eval_{spec.name}")
            metrics[f"eval_{spec.name}_samples"] = len(dev)
            trainer.log_metrics(f"eval {spec.name}", metrics)
            results.update(metrics)
        trainer.save_metrics("eval", {key: value for key, value in results.items() if key.startswith("eval_")})
    names = ", ".join(spec.name for spec in specs)
    task = f"one prefix shared by: {names}" if data_args.shared_prefix else f"one prefix per task: {names}"
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task=task)
    return results


if __name__ == "__main__":
    scripts.run_script(main)
