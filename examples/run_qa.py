#!/usr/bin/env python
"""Prefix tuning (P-tuning v2), prompt tuning and their baselines for extractive question answering
(SQuAD 1.1 and 2.0) with the stock transformers ``Trainer``, scored as the official SQuAD scripts score.

Shaped like transformers' ``examples/pytorch/question-answering/run_qa.py``::

    python examples/run_qa.py --model_name_or_path roberta-large --train_file train-v1.1.json \\
        --validation_file dev-v1.1.json --prefix --pre_seq_len 16 --learning_rate 5e-3 --num_train_epochs 30 \\
        --do_train --do_eval --eval_strategy epoch --output_dir out/squad

``--prefix`` or ``--prompt`` pick the method; neither is full fine-tuning, ``--head_only`` a linear span
head on the frozen backbone. Data: the official SQuAD JSON (v1.1 or v2.0) or json lines of ``{"id", "title",
"context", "question", "answers": {"text": [...], "answer_start": [...]}}`` via ``--train_file`` /
``--validation_file`` / ``--test_file`` (or ``--data_dir`` holding ``train-v1.1.json`` / ``dev-v1.1.json``,
their v2.0 names with ``--version_2_with_negative``); or the hub (``--dataset_name rajpurkar/squad`` /
``rajpurkar/squad_v2``) when it can be reached. Contexts longer than ``--max_seq_length`` (default 384) are
cut into windows sharing ``--doc_stride`` tokens; answers come from the ``--n_best_size`` best spans of at
most ``--max_answer_length`` tokens, and with ``--version_2_with_negative`` the empty answer wins when its
score beats the best span's by more than ``--null_score_diff_threshold``. Scores: ``exact_match`` / ``f1``
(SQuAD 1.1), ``exact`` / ``f1`` / ``HasAns_*`` / ``NoAns_*`` (SQuAD 2.0), in percent; ``--do_eval`` writes
``predictions.json`` (and ``null_odds.json`` for 2.0), which the official scripts re-score to the same
numbers; ``--do_predict`` writes ``predict_predictions.json``. A single ``.json`` argument is read as the
whole configuration. Bad flags or data end with one ``error:`` line and exit status 2
(``PREFIX_MODELS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import DataCollatorWithPadding, TrainingArguments, default_data_collator, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prefix_models import scripts  # noqa: E402
from prefix_models.callbacks import BestMetricCallback  # noqa: E402
from prefix_models.errors import InputError  # noqa: E402
from prefix_models.scripts import build_model  # noqa: E402
from prefix_models.scripts.qa.data import (  # noqa: E402
    check_examples,
    data_dir_files,
    load_from_hub,
    read_file,
)
from prefix_models.scripts.qa.features import check_lengths, prepare_features  # noqa: E402
from prefix_models.scripts.qa.postprocess import AnswerOptions, Answers  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class QADataArguments(scripts.DataArguments):
    """What data to train and evaluate on, how to cut it into windows and how to pick answers."""

    max_seq_length: int | None = field(
        default=None,
        metadata={"help": "Most tokens per window, question included (default 384, capped at the model's limit)."},
    )
    doc_stride: int = field(default=128, metadata={"help": "Tokens two neighbouring windows of a long context share."})
    version_2_with_negative: bool = field(
        default=False, metadata={"help": "SQuAD 2.0: some questions have no answer in their context."}
    )
    null_score_diff_threshold: float = field(
        default=0.0,
        metadata={
            "help": "SQuAD 2.0: answer nothing when the null score exceeds the best span's score by more than this."
        },
    )
    n_best_size: int = field(default=20, metadata={"help": "Spans kept per window and per question (the n-best list)."})
    max_answer_length: int = field(default=30, metadata={"help": "Most tokens in an answer span."})

    def __post_init__(self) -> None:
        sources = self.check_sources()
        if not sources:
            raise InputError(
                "give data: --train_file/--validation_file/--test_file (SQuAD JSON or json lines), --data_dir, "
                "or --dataset_name"
            )
        for flag in ("n_best_size", "max_answer_length"):
            if getattr(self, flag) <= 0:
                raise InputError(f"--{flag} must be positive, got {getattr(self, flag)}")
        if self.data_dir:
            self.files = data_dir_files(self.data_dir, self.version_2_with_negative)


def load_examples(data_args: QADataArguments, model_args: scripts.ModelArguments, needed: dict[str, bool]) -> dict:
    """The checked questions of each split the ``--do_*`` flags need."""
    if data_args.files:
        splits = {split: read_file(path, split) for split, path in data_args.files.items() if needed[split]}
    else:
        hub = load_from_hub(
            data_args.dataset_name,
            data_args.dataset_config_name,
            **model_args.dataset_kwargs(),
        )
        splits = {split: examples for split, examples in hub.items() if needed.get(split)}
    scripts.check_splits(splits, needed)
    caps = data_args.sample_caps()
    splits = {split: examples[: caps[split]] if caps[split] else examples for split, examples in splits.items()}
    for split, examples in splits.items():
        check_examples(examples, split, data_args.version_2_with_negative)
    return splits


def write_answers(output_dir: str, answers: Answers, prefix: str, version_2: bool) -> None:
    """``<prefix>predictions.json`` (id -> answer text, the official scripts' input), the n-best lists and,
    for SQuAD 2.0, ``<prefix>null_odds.json`` (the official v2.0 script's ``--na-prob-file``)."""
    os.makedirs(output_dir, exist_ok=True)
    files = {"predictions.json": answers.predictions, "nbest_predictions.json": answers.nbest}
    if version_2:
        files["null_odds.json"] = answers.null_odds
    for name, content in files.items():
        with open(os.path.join(output_dir, prefix + name), "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, ensure_ascii=False)
    logger.info(f"Answers written to {os.path.join(output_dir, prefix + 'predictions.json')}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = scripts.parse_arguments(
        (scripts.ModelArguments, QADataArguments, TrainingArguments), argv, description=__doc__
    )
    # here, not at the top: --help answers without loading the training stack
    from prefix_models.scripts.qa.trainer import QuestionAnsweringTrainer

    last_checkpoint = scripts.start_run(model_args, training_args, data_args, task="question_answering")

    # Everything about the data and the flags is checked before any weights load.
    needed = {"train": training_args.do_train, "validation": training_args.do_eval, "test": training_args.do_predict}
    if not any(needed.values()):
        raise InputError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    splits = load_examples(data_args, model_args, needed)
    config = scripts.load_config(model_args)
    max_seq_length = scripts.resolve_max_seq_length(data_args.max_seq_length, config, default=384)

    set_seed(training_args.seed)
    tokenizer = scripts.load_tokenizer(model_args)
    if not tokenizer.is_fast:
        raise InputError("run_qa.py needs a fast tokenizer (answers are found through its offset mapping)")
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    features = {}
    with training_args.main_process_first(desc="dataset map pre-processing"):
        for split, examples in splits.items():
            check_lengths(examples, tokenizer, max_seq_length, data_args.doc_stride)
            features[split] = prepare_features(
                examples,
                tokenizer,
                max_seq_length,
                data_args.doc_stride,
                labels=split == "train",
                pad_to_max_length=data_args.pad_to_max_length,
            )
            logger.info(f"{split}: {len(examples)} questions -> {len(features[split].dataset)} windows")
    model = build_model(model_args, "question_answering", tokenizer=tokenizer)

    version_2 = data_args.version_2_with_negative
    options = AnswerOptions(
        data_args.n_best_size, data_args.max_answer_length, version_2, data_args.null_score_diff_threshold
    )
    if data_args.pad_to_max_length:
        collator = default_data_collator
    else:
        collator = DataCollatorWithPadding(
            tokenizer, pad_to_multiple_of=8 if training_args.fp16 or training_args.bf16 else None
        )
    best = BestMetricCallback("f1")
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=training_args,
        train_dataset=features["train"].dataset if "train" in features else None,
        eval_features=features.get("validation"),
        answer_options=options,
        processing_class=tokenizer,
        data_collator=collator,
        callbacks=[best],
    )

    results = (
        scripts.train_and_save(trainer, last_checkpoint, len(splits["train"]), model_args)
        if training_args.do_train
        else {}
    )

    if training_args.do_eval:
        results.update(scripts.evaluate_and_save(trainer, len(splits["validation"]), best))
        if trainer.is_world_process_zero():
            write_answers(training_args.output_dir, trainer.answers, "", version_2)

    if training_args.do_predict:
        logger.info("*** Predict ***")
        output = trainer.predict(features["test"])
        if all(example.labelled for example in splits["test"]):
            metrics = {**output.metrics, "predict_samples": len(splits["test"])}
            trainer.log_metrics("predict", metrics)
            trainer.save_metrics("predict", metrics)
            results.update(metrics)
        if trainer.is_world_process_zero():
            write_answers(training_args.output_dir, trainer.answers, "predict_", version_2)
    task = "extractive question answering" + (" with unanswerable questions" if version_2 else "")
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task=task)
    return results


if __name__ == "__main__":
    scripts.run_script(main)
