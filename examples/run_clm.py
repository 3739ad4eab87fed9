#!/usr/bin/env python
"""Prefix-tune a causal language model (GPT-2 or any Llama-architecture model) on a text file with
the stock ``Trainer``, and report held-out perplexity before and after.

Shaped like transformers' ``examples/pytorch/language-modeling/run_clm.py``::

    python examples/run_clm.py --model_name_or_path gpt2 --train_file train.txt --validation_file dev.txt \\
        --prefix --pre_seq_len 16 --learning_rate 5e-3 --num_train_epochs 3 --do_train --do_eval --output_dir out

``--prefix`` trains a prefix and ``--prompt`` soft input tokens (the backbone and its output layer
stay frozen); without either the whole model is fine-tuned (the baseline). Data: ``.txt`` files
(one example per line) or csv/json(l) files with a text column (``--text_column_name``); without ``--validation_file``,
``--validation_split_percentage`` of the training data is held out. Texts are concatenated and
cut into blocks of ``--block_size`` tokens. A GGUF checkpoint loads with ``--gguf_file``. Bad flags or data end
with one ``error:`` line and exit status 2 (``PREFIX_MODELS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainingArguments, default_data_collator, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prefix_models import scripts  # noqa: E402
from prefix_models.errors import InputError  # noqa: E402
from prefix_models.scripts import build_model  # noqa: E402

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


@dataclass
class CausalLMDataArguments(scripts.DataArguments):
    """What text to train and evaluate on, and how to cut it into blocks."""

    text_column_name: str = field(default="text", metadata={"help": "csv/json data: the text column."})
    validation_split_percentage: int = field(
        default=5, metadata={"help": "Without --validation_file: the share of the training data held out (percent)."}
    )
    block_size: int | None = field(
        default=None, metadata={"help": "Tokens per training block. Default: 256, or less if the context is shorter."}
    )
    gguf_file: str | None = field(
        default=None, metadata={"help": "A GGUF weights file inside --model_name_or_path to load (dequantised)."}
    )

    def __post_init__(self) -> None:
        if self.check_sources() != ["--train_file/--validation_file/--test_file"] or "train" not in self.files:
            raise InputError("run_clm.py reads text files: give --train_file (and optionally --validation_file)")
        if not 0 < self.validation_split_percentage < 100:
            raise InputError(f"--validation_split_percentage must be in 1..99, got {self.validation_split_percentage}")
        if self.block_size is not None and self.block_size <= 0:
            raise InputError(f"--block_size must be positive, got {self.block_size}")


def load_text(data_args: CausalLMDataArguments, seed: int) -> datasets.DatasetDict:
    import datasets  # here, not at the top: --help answers without it

    raw = {}
    for split, path in data_args.files.items():
        extension = Path(path).suffix.lstrip(".").lower()
        builder = {"txt": "text", "csv": "csv", "json": "json", "jsonl": "json"}.get(extension)
        if builder is None:
            raise InputError(f"--{split}_file {path} must be a .txt, .csv, .json or .jsonl file")
        raw[split] = datasets.load_dataset(builder, data_files={split: path}, split=split)
        if data_args.text_column_name not in raw[split].column_names:
            raise InputError(
                f"--{split}_file {path} has no column {data_args.text_column_name!r} "
                f"(it has {raw[split].column_names}); choose one with --text_column_name"
            )
        raw[split] = raw[split].filter(lambda row: bool(row[data_args.text_column_name]))
        if len(raw[split]) == 0:
            raise InputError(f"--{split}_file {path} holds no text")
    if "validation" not in raw:
        held_out = raw["train"].train_test_split(test_size=data_args.validation_split_percentage / 100, seed=seed)
        raw["train"], raw["validation"] = held_out["train"], held_out["test"]
    return datasets.DatasetDict(raw)


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = scripts.parse_arguments(
        (scripts.ModelArguments, CausalLMDataArguments, TrainingArguments), argv, description=__doc__
    )
    from transformers import Trainer  # here, not at the top: --help answers without loading the training stack

    last_checkpoint = scripts.start_run(model_args, training_args, data_args, task="causal_lm")
    raw = load_text(data_args, training_args.seed)

    gguf = {"gguf_file": data_args.gguf_file} if data_args.gguf_file else {}
    config = scripts.load_config(model_args, **gguf)
    context = getattr(config, "max_position_embeddings", None) or 1024
    block_size = data_args.block_size or min(256, context)
    if block_size > context:  # a prefix takes no positions: the whole context is the real tokens'
        raise InputError(f"--block_size {block_size} is longer than the model's context ({context} positions)")

    set_seed(training_args.seed)
    tokenizer = scripts.load_tokenizer(model_args, **gguf)
    model = build_model(model_args, "causal_lm", **gguf)

    def tokenize(batch):
        return tokenizer(batch[data_args.text_column_name])

    def group(batch):
        # As transformers' run_clm: concatenate, then cut into full blocks (the remainder is dropped).
        joined = {key: list(chain(*batch[key])) for key in batch}
        total = len(joined["input_ids"]) // block_size * block_size
        blocks = {key: [v[i : i + block_size] for i in range(0, total, block_size)] for key, v in joined.items()}
        blocks["labels"] = [list(ids) for ids in blocks["input_ids"]]
        return blocks

    with training_args.main_process_first(desc="tokenizing and grouping"):
        columns = raw["train"].column_names
        tokenized = raw.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing")
        blocks = tokenized.map(group, batched=True, desc=f"Grouping into blocks of {block_size}")
    caps = data_args.sample_caps()
    for split in ("train", "validation"):
        if len(blocks[split]) == 0:
            raise InputError(f"the {split} text is shorter than one block of {block_size} tokens; lower --block_size")
        if caps[split]:
            blocks[split] = blocks[split].select(range(min(caps[split], len(blocks[split]))))

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=blocks["train"] if training_args.do_train else None,
        eval_dataset=blocks["validation"],
        processing_class=tokenizer,
        data_collator=default_data_collator,
    )
    results: dict[str, float] = {}
    if training_args.do_eval:
        before = trainer.evaluate(metric_key_prefix="before")
        results.update(before_loss=before["before_loss"], perplexity_before=math.exp(before["before_loss"]))
        logger.info(f"held-out perplexity before training: {results['perplexity_before']:.2f}")
    if training_args.do_train:
        results.update(scripts.train_and_save(trainer, last_checkpoint, len(blocks["train"]), model_args))
    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics.update(
            eval_samples=len(blocks["validation"]),
            perplexity=math.exp(metrics["eval_loss"]),
            perplexity_before=results.get("perplexity_before"),
        )
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)
    scripts.finish_run(trainer, results, data_args, script=__file__, argv=argv, task="causal language modelling")
    return results


if __name__ == "__main__":
    scripts.run_script(main)
