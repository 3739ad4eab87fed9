#!/usr/bin/env python
"""Prefix tuning (P-tuning v2), prompt tuning and their baselines for named-entity recognition and
other word-level tagging, with the stock transformers ``Trainer``, scored with seqeval.

Shaped like transformers' ``examples/pytorch/token-classification/run_ner.py``::

    python run_ner.py --model_name_or_path bert-base-cased --data_dir conll2003/ --prefix --pre_seq_len 16 \\
        --learning_rate 1e-2 --num_train_epochs 30 --do_train --do_eval --do_predict --output_dir out

``--prefix`` or ``--prompt`` pick the method; neither is full fine-tuning, ``--head_only`` a linear
probe on the frozen backbone. Data comes from CoNLL column files (``--data_dir`` or ``--train_file``
...): one token per line, whitespace- or tab-separated columns, the tag last (or ``--tag_column``),
blank lines between sentences; or json lines of ``{"tokens": [...], "ner_tags": [...]}``; or the hub
(``--dataset_name`` / ``--task_name``). Sentences longer than ``--max_seq_length`` sub-words
(default: the model's limit, at most 512) are split into windows of whole words, so every word gets
a prediction. Scores: ``precision`` / ``recall`` / ``f1`` are counted as conlleval counts them (seqeval's
default mode, what transformers' run_ner.py and P-tuning v2 report; ``predictions.txt`` re-scores to them),
``strict_precision`` / ``strict_recall`` / ``strict_f1`` are seqeval's strict mode in the tag scheme. A
single ``.json`` argument is read as the whole configuration. Bad flags or data end
with one ``error:`` line and exit status 2 (``PREFIX_MODELS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from transformers import DataCollatorForTokenClassification, TrainingArguments, set_seed

from prefix_models import scripts
from prefix_models.callbacks import BestMetricCallback
from prefix_models.errors import InputError
from prefix_models.scripts import build_model
from prefix_models.scripts.ner.data import (
    HUB_TASKS,
    check_labels,
    check_tags,
    data_dir_files,
    detect_scheme,
    label_list_from,
    load_from_hub,
    name_label_ids,
    read_file,
    read_label_file,
    to_datasets,
)
from prefix_models.scripts.ner.features import metrics_function, predicted_tags, tokenize, write_conll

logger = logging.getLogger(__name__)
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert", "longformer", "gpt2", "bloom", "deberta")


@dataclass
class DataTrainingArguments(scripts.DataArguments):
    """What data to train and evaluate on, and how to cut it into model inputs."""

    task_name: str | None = field(
        default=None,
        metadata={"help": f"A reference task on the hub (one of: {', '.join(HUB_TASKS)}); same as --dataset_name."},
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "A folder of CoNLL files: train.txt, dev.txt or valid.txt, test.txt (also eng.train/"
            "eng.testa/eng.testb, *.conll, *.jsonl)."
        },
    )
    tag_column: int = field(
        default=-1,
        metadata={"help": "CoNLL files: which column holds the tag (0 is the token; -1, the default, is the last)."},
    )
    text_column_name: str = field(default="tokens", metadata={"help": "json / hub data: the list-of-words column."})
    label_column_name: str = field(default="ner_tags", metadata={"help": "json / hub data: the list-of-tags column."})
    label_names_file: str | None = field(
        default=None,
        metadata={
            "help": "A file with one label per line: the label list (default: the tags found in the data). "
            "Integer tags in the data are read as indices into it."
        },
    )
    tag_scheme: Literal["auto", "IOB1", "IOB2", "BIOES"] = field(
        default="auto",
        metadata={
            "help": "The tagging scheme, used to check the tags and for the strict_* scores. Default: "
            "detected from the data."
        },
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Train on every sub-word of a word (B- becomes I- after the first) instead of the first."},
    )
    return_entity_level_metrics: bool = field(
        default=False, metadata={"help": "Report precision/recall/F1 per entity type as well as overall."}
    )

    def __post_init__(self) -> None:
        if self.task_name is not None:
            if self.task_name not in HUB_TASKS:
                raise InputError(
                    f"--task_name {self.task_name!r} is not a known task; choose from {list(HUB_TASKS)} "
                    "or give --dataset_name / data files"
                )
            if self.dataset_name is not None and self.dataset_name != self.task_name:
                raise InputError("give --task_name or --dataset_name, not both")
            self.dataset_name = self.task_name
        if not self.check_sources():
            raise InputError("give data: --data_dir, --train_file/--validation_file/--test_file, or --dataset_name")
        if self.data_dir:
            self.files = data_dir_files(self.data_dir)


def trained_labels(config) -> list[str] | None:
    """The label list a fine-tuned token classifier was saved with (None for a base model)."""
    id2label = getattr(config, "id2label", None) or {}
    labels = [id2label[i] for i in sorted(id2label)]
    if not labels or all(label == f"LABEL_{i}" for i, label in enumerate(labels)):
        return None
    return labels


def load_data(data_args: DataTrainingArguments, model_args: scripts.ModelArguments, needed: dict[str, bool]):
    """The sentences of each split the ``--do_*`` flags need (labelled where scored), and the
    dataset's own label names in id order (hub datasets that have them; else None)."""
    dataset_labels = None
    if data_args.files:
        splits = {
            split: read_file(path, split, data_args.tag_column, data_args.text_column_name, data_args.label_column_name)
            for split, path in data_args.files.items()
            if needed[split]
        }
    else:
        splits, dataset_labels = load_from_hub(
            data_args.dataset_name,
            data_args.dataset_config_name,
            data_args.text_column_name,
            data_args.label_column_name,
            **model_args.dataset_kwargs(),
        )
        splits = {split: sentences for split, sentences in splits.items() if needed.get(split)}
    scripts.check_splits(splits, needed)
    for split, wanted in needed.items():
        if wanted and split != "test" and any(s.tags is None for s in splits[split]):
            raise InputError(
                f"{scripts.DO_FLAGS[split]}: {splits[split][0].source} has no tag column to train or score on"
            )
    caps = data_args.sample_caps()
    splits = {split: sentences[: caps[split]] if caps[split] else sentences for split, sentences in splits.items()}
    return splits, dataset_labels


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = scripts.parse_arguments(
        (scripts.ModelArguments, DataTrainingArguments, TrainingArguments), argv, description=__doc__
    )
    from transformers import Trainer  # here, not at the top: --help answers without loading the training stack

    last_checkpoint = scripts.start_run(model_args, training_args, data_args, "token_classification")

    # Everything about the data and the flags is checked before any weights load.
    needed = {"train": training_args.do_train, "validation": training_args.do_eval, "test": training_args.do_predict}
    splits, dataset_labels = load_data(data_args, model_args, needed)
    if not splits:
        raise InputError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    config = scripts.load_config(model_args)
    labelled = [s for sentences in splits.values() for s in sentences if s.tags is not None]
    saved_labels = trained_labels(config)
    if data_args.label_names_file:
        labels, origin = read_label_file(data_args.label_names_file), f"in {data_args.label_names_file}"
        name_label_ids(splits, labels)
    elif saved_labels and not training_args.do_train:
        labels, origin = saved_labels, f"the model {model_args.model_name_or_path} was trained with"
    elif dataset_labels:  # as transformers' run_ner.py: the model's label ids are the dataset's
        labels, origin = dataset_labels, f"named by the dataset {data_args.dataset_name}"
    else:
        labels, origin = label_list_from(splits.get("train", labelled)), "found in the training data"
        if saved_labels and set(labels) <= set(saved_labels):
            labels = saved_labels  # continue training a tagger: keep its head's label order
    if len(labels) < 2:
        raise InputError(f"tagging needs at least two labels; the data has only {labels}")
    check_labels(splits, labels, origin)
    if data_args.tag_scheme != "auto":
        scheme = data_args.tag_scheme
    elif labelled:
        scheme = detect_scheme(labelled)
    else:
        scheme = "BIOES" if any(label[:2] in ("S-", "E-") for label in labels) else "IOB2"
    check_tags(labelled, scheme)
    logger.info(f"{len(labels)} labels ({scheme}): {', '.join(labels)}")
    max_seq_length = scripts.resolve_max_seq_length(data_args.max_seq_length, config, default=512)

    set_seed(training_args.seed)
    base_type = getattr(config, "base_model_type", config.model_type)
    tokenizer_kwargs = {"add_prefix_space": True} if base_type in ROBERTA_LIKE else {}
    tokenizer = scripts.load_tokenizer(model_args, **tokenizer_kwargs)
    if not tokenizer.is_fast:
        raise InputError("run_ner.py needs a fast tokenizer (it aligns sub-words to words with word_ids)")
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    label_to_id = {label: i for i, label in enumerate(labels)}
    model = build_model(
        model_args,
        "token_classification",
        tokenizer=tokenizer,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label_to_id,
    )

    sentences = to_datasets(splits)
    features = {}
    with training_args.main_process_first(desc="dataset map pre-processing"):
        for split, dataset in sentences.items():
            features[split] = tokenize(
                dataset, tokenizer, label_to_id, max_seq_length, data_args.label_all_tokens, data_args.pad_to_max_length
            )
            if len(features[split]) > len(dataset):
                logger.info(
                    f"{split}: {len(dataset)} sentences -> {len(features[split])} windows of "
                    f"<= {max_seq_length} sub-words"
                )

    def metrics_for(split: str):
        return metrics_function(
            features[split], sentences[split], labels, scheme, data_args.return_entity_level_metrics
        )

    best = BestMetricCallback("f1")
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=features.get("train"),
        eval_dataset=features.get("validation"),
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(
            tokenizer, pad_to_multiple_of=8 if training_args.fp16 or training_args.bf16 else None
        ),
        compute_metrics=metrics_for("validation") if "validation" in features else None,
        callbacks=[best],
    )

    results = (
        scripts.train_and_save(trainer, last_checkpoint, len(sentences["train"]), model_args)
        if training_args.do_train
        else {}
    )

    if training_args.do_eval:
        results.update(scripts.evaluate_and_save(trainer, len(sentences["validation"]), best))

    if training_args.do_predict:
        logger.info("*** Predict ***")
        test = sentences["test"]
        gold = all(test["tags"])  # score the predictions when the test file has tags
        trainer.compute_metrics = metrics_for("test") if gold else None
        dataset = features["test"] if gold else features["test"].remove_columns("labels")
        output = trainer.predict(dataset, metric_key_prefix="predict")
        predicted = predicted_tags(features["test"], output.predictions, test, labels)
        if gold:
            metrics = {**output.metrics, "predict_samples": len(test)}
            trainer.log_metrics("predict", metrics)
            trainer.save_metrics("predict", metrics)
            results.update(metrics)
        if trainer.is_world_process_zero():
            path = os.path.join(training_args.output_dir, "predictions.txt")
            write_conll(path, test, predicted)
            logger.info(f"Predictions written to {path} (token, gold, predicted)")
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task="named-entity recognition")
    return results


if __name__ == "__main__":
    scripts.run_script(main)
