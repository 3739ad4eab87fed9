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

NER tasks (``--ner_tasks a,b``, a subset of ``--task_names``; local files only): their ``--train_files`` /
``--validation_files`` entries are the files ``run_ner.py`` reads, CoNLL column files (token first, tag in the
last column, blank lines between sentences) or json lines of ``{"tokens": [...], "ner_tags": [...]}``. Each NER
task has its own tag set (read from its own training file; its dev tags must be among them), its own tagging
scheme (detected from its tags) and its own token head, and is scored with seqeval as ``run_ner.py`` scores
(``eval_<task>_f1``, ``_precision``, ``_recall``, ``_accuracy``, ``_strict_*``; per entity type with
``--return_entity_level_metrics``). Its ``prefixes/<task>`` folder is a token-classification prefix
(``AutoPrefixModelForTokenClassification.from_pretrained``, ``run_ner.py --prefix_init_from``). Sentences longer
than ``--max_seq_length`` sub-words (default for NER tasks: the model's limit, at most 512; for sequence tasks
128) are cut into windows of whole words. The method's defaults (learning rate, prefix init) are those of the
first task's kind.

    python examples/run_multitask.py --model_name_or_path bert-base-cased --prefix --shared_prefix \
        --task_names reviews,conll,wnut --ner_tasks conll,wnut --train_files reviews.csv,conll/train.txt,wnut.jsonl \
        --validation_files reviews_dev.csv,conll/dev.txt,wnut_dev.jsonl --do_train --do_eval --output_dir pretrained

* Every task NER: one token-classification prefix model, as the sequence case above.
* Sequence and NER tasks together: a prefix model's backbone carries the method for one model only, so the run
  builds two, a sequence classifier (the sequence tasks) and a token classifier (the NER tasks), the second's
  frozen backbone weights pointing at the first's tensors (held once, though loading briefly holds two copies and
  each model keeps its own modules). With ``--shared_prefix`` the token model's prefix (or prompt) encoder is the
  sequence model's module: every task of either kind trains that one prefix. Training batches hold one kind of
  task each (their labels have different shapes): blocks of ``--per_device_train_batch_size`` examples of one kind
  in random order, reshuffled every epoch (a kind's last block is filled up with its own examples, so an epoch may
  show a few twice); ``--sampling_temperature`` sets how many examples of each task an epoch draws, as above. The
  run folder holds the sequence model (``AutoPrefixModelForSequenceClassification.from_pretrained(output_dir)``)
  and the token model in ``<output_dir>/token_classification``
  (``AutoPrefixModelForTokenClassification.from_pretrained``); with ``--shared_prefix`` both hold the shared
  prefix. Each task alone is under ``<output_dir>/prefixes/<task>`` as in every run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import (
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    EvalPrediction,
    TrainingArguments,
    set_seed,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefix_models import scripts  # noqa: E402
from prefix_models.errors import InputError  # noqa: E402
from prefix_models.named_prefixes import DEFAULT_PREFIX  # noqa: E402
from prefix_models.scripts import build_model  # noqa: E402
from prefix_models.scripts.glue.data import check_splits, load_from_data_dir, load_from_hub  # noqa: E402
from prefix_models.scripts.glue.features import metrics_function, tokenize  # noqa: E402
from prefix_models.scripts.glue.tasks import CLASSIFICATION, REGRESSION, TASKS, get_task  # noqa: E402
from prefix_models.scripts.multitask import (  # noqa: E402
    NerTask,
    draw_mixture,
    load_ner_task,
    load_task_files,
    mix_training_sets,
    mixture_sizes,
    split_list,
    task_files,
)
from prefix_models.scripts.ner import features as ner_features  # noqa: E402
from prefix_models.scripts.ner.data import to_datasets  # noqa: E402

logger = logging.getLogger(__name__)
_SUPPORTED = [name for name, spec in TASKS.items() if spec.kind in (CLASSIFICATION, REGRESSION)]
# Tokenizers that need add_prefix_space=True to read pre-split words (as run_ner.py loads them).
_ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert", "longformer", "gpt2", "bloom", "deberta")
# A NER feature's columns that re-align predictions to words: scoring reads them, the model does not.
_ALIGNMENT_COLUMNS = ("sentence_index", "word_offset", "word_ids")


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
            "help": "With data files: one or two comma-separated text columns, the same in every sequence task's "
            "file. Default: sentence1,sentence2, sentence, or the only non-label columns, file by file."
        },
    )
    label_column_name: str = field(
        default="label", metadata={"help": "With data files: the label column of the sequence tasks' files."}
    )
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
    ner_tasks: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated tasks of --task_names that are NER (token classification, scored with "
            "seqeval): their --train_files / --validation_files entries are CoNLL column files (tag in the last "
            "column) or json lines of tokens / ner_tags, as run_ner.py reads; each has its own tag set, read from "
            "its own training file, and its own token head. Local files only."
        },
    )
    return_entity_level_metrics: bool = field(
        default=False,
        metadata={"help": "NER tasks: report precision/recall/F1 per entity type as well as overall."},
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
        self.ner = split_list(self.ner_tasks)
        unknown = [name for name in self.ner if name not in names]
        if unknown:
            raise InputError(
                f"--ner_tasks: {unknown} are not among --task_names ({', '.join(names)}); name the tasks of "
                "--task_names whose files are NER data"
            )
        if len(set(self.ner)) != len(self.ner):
            raise InputError(f"--ner_tasks names a task twice: {self.ner_tasks}")
        if self.ner and not self.local:
            raise InputError(
                "--ner_tasks needs local files: --train_files / --validation_files (CoNLL columns or json lines, "
                "as run_ner.py reads); --data_dir and the hub hold sequence tasks only"
            )
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


def own_columns(compute, num_labels: int):
    """``compute`` on the task's own label columns of the shared (widest-head) logits."""

    def own(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return compute(EvalPrediction(logits[..., :num_labels], prediction.label_ids))

    return own


def task_metrics(spec, dataset, num_labels: int):
    """A sequence task's metrics on its own columns of the shared (widest-head) logits."""
    return own_columns(metrics_function(spec, dataset), num_labels)


def ner_metrics(task: NerTask, features, sentences, entity_level: bool):
    """A NER task's seqeval scores (predictions re-aligned to words) on its own columns of the token logits."""
    compute = ner_features.metrics_function(features, sentences, task.labels, task.scheme, entity_level)
    return own_columns(compute, len(task.labels))


def read_tasks(data_args: MultiTaskArguments, model_args: scripts.ModelArguments, needed: dict[str, bool]):
    """Each sequence task's spec and splits (from its files, its official download or the hub), and each NER
    task (from its files), by name."""
    if data_args.local:
        train, validation = split_list(data_args.train_files), split_list(data_args.validation_files)
        files = task_files(data_args.names, train, validation, needed)
        columns = split_list(data_args.text_column_names) or None
        specs, raw, ner = {}, {}, {}
        for name in data_args.names:
            if name in data_args.ner:
                ner[name] = load_ner_task(name, files[name])
            else:
                raw[name], specs[name] = load_task_files(name, files[name], columns, data_args.label_column_name)
        return specs, raw, ner
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
    return {spec.name: spec for spec in data_args.specs}, raw, {}


def build_tasks(model_args, kind: str, names: list[str], fields: dict[str, dict], shared: bool, tokenizer):
    """One prefix model of ``kind`` for ``names``: the first task is its own prefix, each further task gets its
    own prefix and head, or with ``shared`` a head of its own on the model's prefix."""
    model = build_model(model_args, kind, tokenizer=tokenizer, **fields[names[0]])
    prefix_of = {names[0]: DEFAULT_PREFIX}
    for name in names[1:]:
        if shared:
            model.add_head(name, **fields[name])
        else:
            model.add_prefix(name, tokenizer=tokenizer, **fields[name])  # a text init reads its text
        prefix_of[name] = name
    return model, prefix_of


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = scripts.parse_arguments(
        (scripts.ModelArguments, MultiTaskArguments, TrainingArguments), argv, description=__doc__
    )
    import datasets  # here, not at the top: --help answers without the training stack
    from transformers import Trainer

    from prefix_models.scripts.mixed_tasks import (
        SEQUENCE,
        TOKEN,
        MixedCollator,
        MixedTaskModel,
        MixedTaskTrainer,
        MixedTrainingSet,
        share_frozen_backbone,
    )

    if model_args.method is None:
        raise InputError(
            "run_multitask.py trains prefixes (or prompts) on a frozen backbone: pass --prefix or --prompt"
        )
    names = data_args.names
    ner_names = [name for name in names if name in data_args.ner]
    sequence_names = [name for name in names if name not in data_args.ner]
    mixed = bool(ner_names and sequence_names)
    first_kind = "token_classification" if names[0] in data_args.ner else "sequence_classification"
    last_checkpoint = scripts.start_run(model_args, training_args, data_args, first_kind)

    # Every task's data is read and checked before any weights load.
    needed = {"train": training_args.do_train, "validation": training_args.do_eval}
    specs, raw, ner = read_tasks(data_args, model_args, needed)
    for spec in specs.values():
        check_splits(spec, raw[spec.name], needed)
    config = scripts.load_config(model_args)
    max_seq_length = scripts.resolve_max_seq_length(data_args.max_seq_length, config, default=128)
    ner_max_seq_length = scripts.resolve_max_seq_length(data_args.max_seq_length, config, default=512)

    set_seed(training_args.seed)
    tokenizer = scripts.load_tokenizer(model_args)
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    ner_tokenizer = tokenizer
    if ner_names:
        if getattr(config, "base_model_type", config.model_type) in _ROBERTA_LIKE:
            ner_tokenizer = scripts.load_tokenizer(model_args, add_prefix_space=True)
        if not ner_tokenizer.is_fast:
            raise InputError("--ner_tasks needs a fast tokenizer (it aligns sub-words to words with word_ids)")
        ner_max_seq_length = min(ner_max_seq_length, ner_tokenizer.model_max_length)

    fields = {name: label_fields(spec) for name, spec in specs.items()}
    fields.update({name: task.label_fields() for name, task in ner.items()})
    shared = data_args.shared_prefix
    model_of, prefix_of = {}, {}
    sequence_model = token_model = None
    if sequence_names:
        sequence_model, chosen = build_tasks(
            model_args, "sequence_classification", sequence_names, fields, shared, tokenizer
        )
        prefix_of.update(chosen)
        model_of.update(dict.fromkeys(sequence_names, sequence_model))
    if ner_names:
        # --classifier_pooling is a sequence head's; the token model reads every token.
        token_args = dataclasses.replace(model_args, classifier_pooling=None) if mixed else model_args
        token_model, chosen = build_tasks(token_args, "token_classification", ner_names, fields, shared, ner_tokenizer)
        prefix_of.update(chosen)
        model_of.update(dict.fromkeys(ner_names, token_model))
    if mixed:
        held_once = share_frozen_backbone(sequence_model, token_model)
        if shared:  # one encoder module: both kinds' gradients reach the same parameters
            attribute = token_model.tuning.encoder_attribute
            setattr(token_model, attribute, getattr(sequence_model, attribute))
        model = MixedTaskModel(sequence_model, token_model)
        logger.info(
            f"sequence tasks on a {type(sequence_model).__name__}, NER tasks on a {type(token_model).__name__} "
            f"({held_once} frozen backbone tensors held once for both)"
        )
    else:
        model = sequence_model if sequence_model is not None else token_model
    sharing = "one shared prefix, a head per task" if shared else "a prefix and head per task"
    logger.info(f"tasks -> names: {prefix_of} ({sharing}); {model.num_trainable_parameters():,} trainable parameters")
    if len(names) > 1 and training_args.ddp_find_unused_parameters is None:
        # A mixed batch need not hold every task: the absent tasks' prefixes and heads get no gradient in that
        # step, which DDP must be told (Trainer would not tell it under gradient checkpointing). Non-reentrant
        # checkpointing is the kind that works beside unused-parameter detection.
        training_args.ddp_find_unused_parameters = True
        if training_args.activation_checkpointing and training_args.activation_checkpointing_kwargs is None:
            # The Trainer reads activation_checkpointing_kwargs (gradient_checkpointing_kwargs only mirrors it).
            training_args.activation_checkpointing_kwargs = {"use_reentrant": False}

    limits = data_args.sample_caps()
    features: dict[str, dict[str, datasets.Dataset]] = {name: {} for name in names}
    sentences: dict[str, dict[str, datasets.Dataset]] = {}
    with training_args.main_process_first(desc="dataset map pre-processing"):
        for name, spec in specs.items():
            index = sequence_model.prefix_names.index(prefix_of[name])
            for split in ("train", "validation"):
                if split not in raw[name]:
                    continue
                dataset = raw[name][split]
                if limits.get(split) is not None:
                    dataset = dataset.select(range(min(limits[split], len(dataset))))
                encoded = tokenize(spec, dataset, tokenizer, max_seq_length, data_args.pad_to_max_length)
                encoded = encoded.remove_columns([c for c in encoded.column_names if c == "idx"])
                # Labels of every task in one column: floats (regression) and class ids alike.
                encoded = encoded.cast_column("labels", datasets.Value("float32"))
                features[name][split] = encoded.add_column("prefix_names", [index] * len(encoded))
        for name, task in ner.items():
            index = token_model.prefix_names.index(prefix_of[name])
            splits = {
                split: rows[: limits[split]] if limits.get(split) else rows for split, rows in task.splits.items()
            }
            sentences[name] = to_datasets(splits)
            label_to_id = {label: i for i, label in enumerate(task.labels)}
            for split, dataset in sentences[name].items():
                encoded = ner_features.tokenize(
                    dataset, ner_tokenizer, label_to_id, ner_max_seq_length, False, data_args.pad_to_max_length
                )
                features[name][split] = encoded.add_column("prefix_names", [index] * len(encoded))
        if mixed:  # which model reads a row
            for name in names:
                kind = TOKEN if name in ner else SEQUENCE
                for split, encoded in features[name].items():
                    features[name][split] = encoded.add_column("task_kind", [kind] * len(encoded))

    train = None
    if training_args.do_train:
        mixing = (data_args.sampling_temperature, training_args.seed)
        if mixed:  # the kinds' columns differ: drawn together, held side by side
            drawn = dict(zip(names, draw_mixture([features[n]["train"] for n in names], *mixing), strict=True))
            by_kind = [
                datasets.concatenate_datasets([drawn[n] for n in sequence_names]),
                datasets.concatenate_datasets([drawn[n].remove_columns(list(_ALIGNMENT_COLUMNS)) for n in ner_names]),
            ]
            train = MixedTrainingSet(by_kind)
        else:
            train = mix_training_sets([features[n]["train"] for n in names], *mixing)
        if data_args.sampling_temperature != 1:
            sizes = [len(features[n]["train"]) for n in names]
            drawn_sizes = mixture_sizes(sizes, data_args.sampling_temperature)
            logger.info(
                f"training mixture at temperature {data_args.sampling_temperature}: "
                + ", ".join(f"{n} {k} of {size}" for n, k, size in zip(names, drawn_sizes, sizes, strict=True))
            )
    multiple = 8 if training_args.fp16 or training_args.bf16 else None
    sequence_collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)
    token_collator = DataCollatorForTokenClassification(ner_tokenizer, pad_to_multiple_of=multiple)
    if mixed:
        trainer = MixedTaskTrainer(
            model=model,
            args=training_args,
            train_dataset=train,
            processing_class=tokenizer,
            data_collator=MixedCollator(sequence_collator, token_collator),
        )
        trainer.token_processing_class = ner_tokenizer
    else:
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=train,
            processing_class=tokenizer if sequence_names else ner_tokenizer,
            data_collator=sequence_collator if sequence_names else token_collator,
        )
    results: dict[str, float] = {}
    if training_args.do_train:
        results.update(scripts.train_and_save(trainer, last_checkpoint, len(train), model_args))
        if trainer.is_world_process_zero():
            for name in names:
                model_of[name].save_prefix(prefix_of[name], os.path.join(training_args.output_dir, "prefixes", name))

    if training_args.do_eval:
        logger.info("*** Evaluate, task by task ***")
        for name in names:
            dev = features[name]["validation"]
            if name in ner:
                dev_sentences = sentences[name]["validation"]
                trainer.compute_metrics = ner_metrics(
                    ner[name], dev, dev_sentences, data_args.return_entity_level_metrics
                )
                count = len(dev_sentences)
            else:
                num_labels = sequence_model.prefix_config(prefix_of[name]).num_labels
                trainer.compute_metrics = task_metrics(specs[name], dev, num_labels)
                count = len(dev)
            metrics = trainer.evaluate(eval_dataset=dev, metric_key_prefix=f"eval_{name}")
            metrics[f"eval_{name}_samples"] = count
            trainer.log_metrics(f"eval {name}", metrics)
            results.update(metrics)
        trainer.save_metrics("eval", {key: value for key, value in results.items() if key.startswith("eval_")})
    shown = ", ".join(f"{name} (NER)" if name in ner else name for name in names)
    task = f"one prefix shared by: {shown}" if shared else f"one prefix per task: {shown}"
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task=task)
    return results


if __name__ == "__main__":
    scripts.run_script(main)
