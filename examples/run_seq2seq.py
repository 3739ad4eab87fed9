#!/usr/bin/env python
"""Prefix-tune an encoder-decoder (T5, mT5, Flan-T5, BART) on source -> target text pairs with the stock
``Seq2SeqTrainer``, and report held-out loss and exact match of the generated targets.

Shaped like transformers' ``examples/pytorch/summarization/run_summarization.py``::

    python examples/run_seq2seq.py --model_name_or_path t5-small --train_file train.csv --validation_file dev.csv \\
        --text_column sentence --summary_column label --source_prefix "sentiment: " \\
        --prefix --pre_seq_len 16 --learning_rate 5e-3 --num_train_epochs 3 --do_train --do_eval --output_dir out

``--prefix`` trains a prefix on the encoder self-, decoder self- and cross-attention
(``--prefix_kinds`` picks among them); ``--prompt`` trains soft tokens before the encoder's input;
the backbone and its LM head stay frozen. Without either the whole model is fine-tuned (the
baseline). Data: csv or json(l) files with a source column (``--text_column``) and a target column
(``--summary_column``). Evaluation generates the targets
(``--generation_max_length`` tokens, default 16; ``--generation_num_beams``) and scores exact
match after stripping whitespace; ``--do_predict`` writes ``generated_predictions.txt``. Bad flags
or data end with one ``error:`` line and exit status 2 (``PREFIX_MODELS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from transformers import (
    DataCollatorForSeq2Seq,
    Seq2SeqTrainingArguments,
    set_seed,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prefix_models import scripts  # noqa: E402
from prefix_models.configuration import ATTENTION_KINDS  # noqa: E402
from prefix_models.errors import InputError  # noqa: E402
from prefix_models.scripts import build_model  # noqa: E402

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


@dataclass
class Seq2SeqDataArguments(scripts.DataArguments):
    """Which columns are source and target, how long each may be, and where the prefix goes."""

    text_column: str = field(default="text", metadata={"help": "The source text column."})
    summary_column: str = field(default="summary", metadata={"help": "The target text column."})
    source_prefix: str = field(default="", metadata={"help": 'Text put before every source (T5: "summarize: ").'})
    max_source_length: int = field(default=256, metadata={"help": "Source tokens kept (longer sources are cut)."})
    max_target_length: int = field(default=64, metadata={"help": "Target tokens kept for training."})
    prefix_kinds: list[str] | None = field(
        default=None,
        metadata={
            "help": f"--prefix only: which attention gets a prefix, any of {' '.join(ATTENTION_KINDS)} "
            "(default: all three)."
        },
    )

    def __post_init__(self) -> None:
        if self.check_sources() != ["--train_file/--validation_file/--test_file"]:
            raise InputError("run_seq2seq.py reads csv/json files: give --train_file and/or --validation_file")
        for flag in ("max_source_length", "max_target_length"):
            if getattr(self, flag) <= 0:
                raise InputError(f"--{flag} must be positive, got {getattr(self, flag)}")


def load_pairs(data_args: Seq2SeqDataArguments) -> datasets.DatasetDict:
    import datasets  # here, not at the top: --help answers without it

    raw = {}
    for split, path in data_args.files.items():
        extension = Path(path).suffix.lstrip(".").lower()
        builder = {"csv": "csv", "json": "json", "jsonl": "json"}.get(extension)
        if builder is None:
            raise InputError(f"--{split}_file {path} must be a .csv, .json or .jsonl file")
        raw[split] = datasets.load_dataset(builder, data_files=path, split="train")
        missing = [c for c in (data_args.text_column, data_args.summary_column) if c not in raw[split].column_names]
        if missing:
            columns = ", ".join(raw[split].column_names)
            raise InputError(
                f"--{split}_file {path} has no column {', '.join(missing)}; its columns: {columns} "
                "(set --text_column / --summary_column)"
            )
    return datasets.DatasetDict(raw)


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = scripts.parse_arguments(
        (scripts.ModelArguments, Seq2SeqDataArguments, Seq2SeqTrainingArguments), argv, description=__doc__
    )
    from transformers import Seq2SeqTrainer  # here, not at the top: --help answers without loading the training stack

    if data_args.prefix_kinds is not None and not model_args.prefix:
        raise InputError("--prefix_kinds applies to --prefix")
    last_checkpoint = scripts.start_run(model_args, training_args, data_args, "seq2seq_lm")
    raw = load_pairs(data_args)

    set_seed(training_args.seed)
    tokenizer = scripts.load_tokenizer(model_args)
    kinds = {"prefix_kinds": data_args.prefix_kinds} if data_args.prefix_kinds else {}
    model = build_model(model_args, "seq2seq_lm", **kinds)

    def tokenize(batch):
        sources = [data_args.source_prefix + str(text) for text in batch[data_args.text_column]]
        inputs = tokenizer(sources, max_length=data_args.max_source_length, truncation=True)
        targets = [str(target) for target in batch[data_args.summary_column]]
        inputs["labels"] = tokenizer(text_target=targets, max_length=data_args.max_target_length, truncation=True)[
            "input_ids"
        ]
        return inputs

    with training_args.main_process_first(desc="tokenizing"):
        tokenized = raw.map(tokenize, batched=True, remove_columns=raw[next(iter(raw))].column_names, desc="Tokenizing")
    caps = data_args.sample_caps()
    for split in tokenized:
        if caps.get(split):
            tokenized[split] = tokenized[split].select(range(min(caps[split], len(tokenized[split]))))

    def exact_match(prediction):
        generated, labels = prediction
        generated = np.where(generated != -100, generated, tokenizer.pad_token_id)
        labels = np.where(labels != -100, labels, tokenizer.pad_token_id)
        texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        targets = [t.strip() for t in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        return {"exact_match": float(np.mean([t == g for t, g in zip(texts, targets, strict=True)]))}

    # Evaluation scores generated text: always generate (--generation_max_length tokens, default 16).
    training_args.predict_with_generate = True
    training_args.generation_max_length = training_args.generation_max_length or 16
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"] if training_args.do_train else None,
        eval_dataset=tokenized.get("validation"),
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        compute_metrics=exact_match,
    )
    results: dict[str, float] = {}
    if training_args.do_train:
        if "train" not in tokenized:
            raise InputError("--do_train needs --train_file")
        results.update(scripts.train_and_save(trainer, last_checkpoint, len(tokenized["train"]), model_args))
    if training_args.do_eval:
        if "validation" not in tokenized:
            raise InputError("--do_eval needs --validation_file")
        results.update(scripts.evaluate_and_save(trainer, len(tokenized["validation"])))
    if training_args.do_predict:
        if "test" not in tokenized:
            raise InputError("--do_predict needs --test_file")
        output = trainer.predict(tokenized["test"], metric_key_prefix="predict")
        generated = np.where(output.predictions != -100, output.predictions, tokenizer.pad_token_id)
        texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        if trainer.is_world_process_zero():
            Path(training_args.output_dir, "generated_predictions.txt").write_text("\n".join(texts) + "\n")
        trainer.log_metrics("predict", output.metrics)
        trainer.save_metrics("predict", output.metrics)
        results.update(output.metrics)
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task="sequence-to-sequence generation")
    return results


if __name__ == "__main__":
    scripts.run_script(main)
