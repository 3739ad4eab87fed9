"""What the scripts fetch from the hub: datasets (:func:`load_hub_dataset`) and, when the hub cannot give
them, the one line that says what could not be fetched and how to give it locally (:func:`hub_errors`,
:func:`model_errors`).

Several reference datasets (``eriktks/conll2003``, the ``tner/*`` NER sets) are script-based, which datasets 4
and later no longer run. The hub keeps a parquet copy of each dataset it converted on the
``refs/convert/parquet`` branch, one folder per configuration; :func:`load_hub_dataset` falls back to it,
saying so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

PARQUET_REVISION = "refs/convert/parquet"
OFFLINE_NOTE = "offline (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1) only what is in the local cache loads"


def _reason(error: BaseException) -> str:
    """The first line of what the library said, for the one-line error."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


@contextmanager
def hub_errors(asked: str, fetched: str, instead: str) -> Iterator[None]:
    """Turn a hub load that fails (offline and not cached, no network, no such name, no access: the hub's
    errors are ``OSError``) into one :class:`InputError` line. ``asked``: the flag and value that asked for it
    (``--task_name mrpc``); ``fetched``: what was fetched (``the dataset nyu-mll/glue (configuration mrpc)``);
    ``instead``: how to give it from local files."""
    try:
        yield
    except OSError as error:
        raise InputError(
            f"{asked}: could not load {fetched} from the hub ({_reason(error)}); {OFFLINE_NOTE}. {instead}"
        ) from error
    except ValueError as error:
        # datasets' answer to a configuration the dataset does not have ("BuilderConfig 'x' not found. Available:
        # [...]"): the names to choose from, in one line. Other ValueErrors keep their traceback.
        if "not found" not in str(error) or isinstance(error, InputError):
            raise
        raise InputError(f"{asked}: {fetched}: {_reason(error)}") from error


@contextmanager
def model_errors(flag: str, name: str) -> Iterator[None]:
    """Turn a model (config, tokenizer) that cannot be loaded from ``name``, the value of ``flag``, into one
    :class:`InputError` line: a hub id the hub cannot give (offline and not cached, no network, no access), a
    folder that does not exist, or one without the files."""
    try:
        yield
    except (OSError, ValueError) as error:
        reason = _reason(error)
        # A folder without the files: transformers says which (a ValueError for a config.json without a
        # model_type). Other ValueErrors keep their traceback.
        lacks_files = isinstance(error, OSError) or ("config.json" in reason and not isinstance(error, InputError))
        if os.path.isdir(name) and lacks_files:
            raise InputError(f"{flag} {name}: {reason}") from error
        if not isinstance(error, OSError):
            raise
        if reason.startswith("Repo id must"):  # not a hub id either: a path that is not there
            raise InputError(f"{flag} {name}: no such folder (and not a hub model id)") from error
        raise InputError(
            f"{flag} {name}: could not load it from the hub ({reason}); offline (HF_HUB_OFFLINE=1) only models "
            "in the local cache load. Pass a local folder holding the model (its config.json, weights and "
            "tokenizer files), or fetch it once with network access"
        ) from error


def load_hub_dataset(name: str, config_name: str | None, **kwargs) -> datasets.DatasetDict:
    """``datasets.load_dataset(name, config_name, **kwargs)``, or, for a script-based dataset, the
    hub's parquet conversion of it (``config_name`` picks the configuration's folder)."""
    import datasets

    try:
        return datasets.load_dataset(name, config_name, **kwargs)
    except RuntimeError as error:
        if "scripts are no longer supported" not in str(error) or kwargs.get("revision"):
            raise
    logger.warning(
        f"{name} is a script-based dataset, which datasets {datasets.__version__} cannot run; loading "
        f"the hub's parquet conversion of it ({PARQUET_REVISION}) instead"
    )
    if config_name:
        kwargs["data_dir"] = config_name  # the conversion keeps each configuration in a folder of its name
    return datasets.load_dataset(name, revision=PARQUET_REVISION, **kwargs)
