"""Fixtures of the serving tests (run in vLLM's venv): the reference cases, written by ``references.py`` in the
project's venv (``project.py``). ``PREFIX_SERVING_CASES`` may name a folder ``references.py`` already wrote (to
rerun the vLLM side alone).
"""

from __future__ import annotations

import os

import pytest
from project import read_cases, write_references

# The engines these tests start run offline: no usage report.
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``cases.json`` of ``references.py``: tiny bases, prefix folders, and the project's greedy tokens."""
    folder = os.environ.get("PREFIX_SERVING_CASES")
    if folder:
        return read_cases(folder, "cases.json")
    return write_references("references.py", str(tmp_path_factory.mktemp("cases")), "cases.json")
