#!/usr/bin/env python
"""``run_glue.py`` or ``run_ner.py`` with the stock model wrapped in peft LoRA: the yardstick arm of quality.py.

    python benchmarks/lora_script.py run_glue.py <run_glue.py's flags>
    python benchmarks/lora_script.py run_ner.py <run_ner.py's flags>

The script runs as if started itself (``__main__``, its own flags and logging), except that the model
it builds for full fine-tuning (no ``--prefix``, ``--prompt`` or ``--head_only``) is handed to
``peft.get_peft_model`` with LoRA r=8, alpha 16, dropout 0.1 on the attention's query and value (by each
family's names: ``lora_targets``), the task head (and for sequence classification the pooler it reads, where the
model has one) trained in full (``modules_to_save``).
The Trainer saves, and ``--load_best_model_at_end`` reloads, the adapter and the head (peft's
``adapter_model.safetensors``); the log gives LoRA's trainable parameters in build_model's words
("N trainable parameters of M"), after build_model's own line for the unwrapped model.
"""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("run_glue.py", "run_ner.py")
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.1)
# The attention's query and value projections, by the names each family gives them: peft's own table first
# (BERT's "query"/"value" for most encoders), then the families it has none for.
TARGETS = {"mpnet": ["q", "v"], "distilbert": ["q_lin", "v_lin"]}
# Trained in full beside LoRA. The stock sequence classifier reads BERT's pooler, which all-MiniLM-L6-v2 never
# trained (a sentence-transformers checkpoint): LoRA would otherwise read a frozen random projection, a yardstick
# weaker than what a user would get by training the head that its model actually uses.
HEAD = {"sequence_classification": ["pooler", "classifier"], "token_classification": ["classifier"]}
PEFT_TASKS = {"sequence_classification": "SEQ_CLS", "token_classification": "TOKEN_CLS"}

logger = logging.getLogger("__main__")  # the logger the script's logging setup turns on


def lora_targets(model_type: str) -> list[str]:
    """The names of the query and value projections LoRA adapts in a ``model_type`` model."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    from prefix_models.errors import InputError

    targets = PEFT_TARGETS.get(model_type) or TARGETS.get(model_type)
    if targets is None:
        raise InputError(f"lora_script.py: no query/value module names known for model_type {model_type!r}")
    return list(targets)


def head_modules(model, task: str) -> list[str]:
    """The head modules of ``HEAD[task]`` that ``model`` has, trained in full beside LoRA.

    MPNet's sequence classifier has no pooler (its head reads the first token through its own dense layer), and
    peft silently skips a name that matches nothing: listing only what exists keeps the log true.
    """
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return [name for name in HEAD[task] if name in names]


def lora_build_model(build_model):
    """``build_model`` whose full fine-tuning model comes back wrapped in LoRA."""

    def build(model_args, task, *args, **kwargs):
        from prefix_models.errors import InputError

        if model_args.method is not None or model_args.head_only:
            raise InputError(f"lora_script.py wraps full fine-tuning in LoRA; drop --{model_args.description}")
        if task not in PEFT_TASKS:
            raise InputError(f"lora_script.py: no LoRA set-up for {task}")
        model = build_model(model_args, task, *args, **kwargs)
        from peft import LoraConfig, get_peft_model

        head = head_modules(model, task)
        config = LoraConfig(
            task_type=PEFT_TASKS[task],
            target_modules=lora_targets(model.config.model_type),
            modules_to_save=head,  # peft extends the list
            **LORA,
        )
        model = get_peft_model(model, config)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        logger.info(
            f"LoRA r={config.r} alpha={config.lora_alpha} on {sorted(config.target_modules)} + {head} in full: "
            f"{trainable:,} trainable parameters of {total:,} ({100 * trainable / total:.3f}%)"
        )
        return model

    return build


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or Path(argv[0]).name not in SCRIPTS:
        raise SystemExit(f"usage: python {Path(__file__).name} {{{','.join(SCRIPTS)}}} <that script's flags>")
    script = Path(argv[0]) if Path(argv[0]).exists() else ROOT / Path(argv[0]).name
    sys.path.insert(0, str(ROOT))  # where the script's own folder would be
    import prefix_models.scripts

    # The scripts import build_model from prefix_models.scripts when they load: patched there, before they do.
    prefix_models.scripts.build_model = lora_build_model(prefix_models.scripts.build_model)
    sys.argv = [str(script), *argv[1:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
