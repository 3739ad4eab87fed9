"""How the example scripts end on bad input: one ``<script>: error: ...`` line and exit status 2, as
argparse does; the traceback only with PREFIX_MODELS_DEBUG=1; other exceptions keep theirs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from prefix_models.errors import InputError
from prefix_models.scripts import run_script

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, debug: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PREFIX_MODELS_DEBUG", None)
    if debug:
        env["PREFIX_MODELS_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


# A mistake caught in the flags, one in the data files, and one caught after the config loads.
CASES = [
    ("run_glue.py", ["--do_train"], r"name a task \(--task_name"),
    ("run_ner.py", ["--do_train"], r"give data: --data_dir"),
    ("run_ner.py", ["--train_file", "missing.txt", "--do_train"], r"--train_file missing.txt does not exist"),
    ("examples/run_clm.py", ["--do_train"], r"give --train_file"),
    (
        "run_glue.py",
        ["--task_name", "rte", "--data_dir", str(FIXTURES / "glue_data"), "--do_train", "--max_seq_length", "100000"],
        r"--max_seq_length 100000 is above",
    ),
]


@pytest.mark.parametrize(("script", "args", "message"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_error_line_with_status_2(script, args, message, tiny_model, tmp_path):
    argv = ["--model_name_or_path", str(tiny_model), "--output_dir", str(tmp_path / "out"), "--use_cpu", *args]
    result = run(script, *argv)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{Path(script).name}: error: ")
    assert re.search(message, last), last
    assert not (tmp_path / "out").exists()  # nothing written before the error


def test_debug_switch_shows_the_traceback(tiny_model, tmp_path):
    result = run(
        "run_glue.py", "--model_name_or_path", str(tiny_model), "--output_dir", str(tmp_path), "--do_train", debug=True
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "InputError: name a task" in result.stderr


def test_run_script_leaves_unexpected_exceptions_alone(monkeypatch, capsys):
    monkeypatch.delenv("PREFIX_MODELS_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["run_glue.py"])

    def bug():
        raise RuntimeError("a bug, not a typo")

    with pytest.raises(RuntimeError, match="a bug, not a typo"):
        run_script(bug)

    def typo():
        raise InputError("--pre_seq_len must be a positive integer, got 0")

    with pytest.raises(SystemExit) as exit_info:
        run_script(typo)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "run_glue.py: error: --pre_seq_len must be a positive integer, got 0\n"
    # ValueError raised elsewhere (torch, transformers) is not ours to shorten.
    with pytest.raises(ValueError, match="deep inside"):
        run_script(lambda: (_ for _ in ()).throw(ValueError("deep inside")))
