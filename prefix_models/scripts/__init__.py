"""What the example scripts (``run_glue.py``, ``run_ner.py``, ``examples/run_clm.py``,
``examples/run_*.py``) share, in five modules: their flags (``arguments.py``), building the model
for a method (``models.py``: prefix, prompt, head-only probe or full fine-tuning), running a script
(``runs.py``: logging, resuming, saving, the one-line error exit), what defines a run and keeps its
output folder to it (``run_settings.py``: ``run_settings.json``) and ending it (``cards.py``: the model
card, ``--push_to_hub``)."""

from __future__ import annotations

from ..lazy import lazy_exports

# public name -> the module that defines it. Imported when first used, so a script's ``--help`` (which needs only
# ``arguments.py``) never loads the model classes, datasets or the metrics libraries.
_EXPORTS = {
    "DO_FLAGS": "arguments",
    "DataArguments": "arguments",
    "ModelArguments": "arguments",
    "OutputArguments": "arguments",
    "apply_method_defaults": "models",
    "build_model": "models",
    "check_splits": "arguments",
    "check_training_engine": "runs",
    "evaluate_and_save": "runs",
    "finish_run": "cards",
    "finished_run": "runs",
    "last_complete_checkpoint": "runs",
    "load_config": "models",
    "load_tokenizer": "models",
    "log_run_start": "runs",
    "max_positions": "models",
    "parse_arguments": "arguments",
    "resolve_checkpoint": "runs",
    "resolve_max_seq_length": "models",
    "run_script": "runs",
    "sentence_transformers_pooling": "models",
    "setup_logging": "runs",
    "shutdown_distributed": "runs",
    "start_run": "runs",
    "train_and_save": "runs",
    "training_engine": "runs",
    "was_given": "arguments",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
