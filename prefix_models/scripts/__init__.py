"""What the example scripts (``run_glue.py``, ``run_ner.py``, ``examples/run_clm.py``,
``examples/run_*.py``) share, in four modules: their flags (``arguments.py``), building the model
for a method (``models.py``: prefix, prompt, head-only probe or full fine-tuning), running a script
(``runs.py``: logging, resuming, saving, the one-line error exit) and ending it (``cards.py``: the model
card, ``--push_to_hub``)."""

from .arguments import (
    DO_FLAGS,
    DataArguments,
    ModelArguments,
    OutputArguments,
    check_splits,
    parse_arguments,
    was_given,
)
from .cards import finish_run
from .models import (
    apply_method_defaults,
    build_model,
    load_config,
    load_tokenizer,
    max_positions,
    resolve_max_seq_length,
    sentence_transformers_pooling,
)
from .runs import (
    check_training_engine,
    evaluate_and_save,
    finished_run,
    last_complete_checkpoint,
    log_run_start,
    resolve_checkpoint,
    run_script,
    setup_logging,
    shutdown_distributed,
    start_run,
    train_and_save,
    training_engine,
)

__all__ = [
    "DO_FLAGS",
    "DataArguments",
    "ModelArguments",
    "OutputArguments",
    "apply_method_defaults",
    "build_model",
    "check_splits",
    "check_training_engine",
    "evaluate_and_save",
    "finish_run",
    "finished_run",
    "last_complete_checkpoint",
    "load_config",
    "load_tokenizer",
    "log_run_start",
    "max_positions",
    "parse_arguments",
    "resolve_checkpoint",
    "resolve_max_seq_length",
    "run_script",
    "sentence_transformers_pooling",
    "setup_logging",
    "shutdown_distributed",
    "start_run",
    "train_and_save",
    "training_engine",
    "was_given",
]
