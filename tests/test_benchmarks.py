"""The benchmarks' --quick smoke runs (the full runs are not part of the tests)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_clm_vs_peft_quick(tmp_path):
    output = tmp_path / "result.json"
    report = load("clm_vs_peft").main(["--quick", "--work_dir", str(tmp_path), "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    ours = report["arms"]["prefix-models"]
    assert ours["step_s_median"] > 0 and ours["trainable_parameters"] == 16 * 2 * 2 * 2 * 16
    peft = report["arms"]["peft PrefixTuning"]  # measured where peft is installed, else its failure is the result
    assert ("step_s_median" in peft) != ("error" in peft)
