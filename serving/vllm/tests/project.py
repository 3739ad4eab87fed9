"""The project's side of the serving tests: its venv's python, and the reference scripts run in it.

``PREFIX_MODELS_PYTHON`` names the python of a venv with prefix-models installed (default: ``.venv/bin/python`` at
the repository root). The scripts (``references.py``, ``http_references.py``) write tiny bases, prefix folders and
the project's own greedy tokens into a folder; the tests here serve the same folders with vLLM.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def project_python() -> str | None:
    given = os.environ.get("PREFIX_MODELS_PYTHON")
    if given:
        return given
    default = os.path.join(REPOSITORY, ".venv", "bin", "python")
    return default if os.path.exists(default) else None


def write_references(script: str, folder: str, cases_file: str) -> dict:
    """Run ``script`` (a file beside this one) in the project's venv into ``folder``; its ``cases_file``, read."""
    python = project_python()
    if python is None:
        pytest.fail("set PREFIX_MODELS_PYTHON to the python of a venv with prefix-models installed", pytrace=False)
    run = subprocess.run(
        [python, os.path.join(HERE, script), folder],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if run.returncode != 0:
        pytest.fail(f"{script} failed (exit {run.returncode}):\n{run.stdout}{run.stderr}", pytrace=False)
    return read_cases(folder, cases_file)


def read_cases(folder: str, cases_file: str) -> dict:
    with open(os.path.join(folder, cases_file), encoding="utf-8") as handle:
        return json.load(handle)
