"""Loading a hub dataset under datasets 4 and later, which no longer run loading scripts.

Several reference datasets (``eriktks/conll2003``, the ``tner/*`` NER sets) are script-based. The hub
keeps a parquet copy of each dataset it converted on the ``refs/convert/parquet`` branch, one folder
per configuration; :func:`load_hub_dataset` falls back to it, saying so.
"""

from __future__ import annotations

import logging

import datasets

logger = logging.getLogger(__name__)

PARQUET_REVISION = "refs/convert/parquet"


def load_hub_dataset(name: str, config_name: str | None, **kwargs) -> datasets.DatasetDict:
    """``datasets.load_dataset(name, config_name, **kwargs)``, or, for a script-based dataset, the
    hub's parquet conversion of it (``config_name`` picks the configuration's folder)."""
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
