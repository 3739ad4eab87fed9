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


def test_cost_quick(tmp_path):
    output = tmp_path / "cost.json"
    report = load("cost").main(["--quick", "--work_dir", str(tmp_path), "--output", str(output),
                                "--arms", "full", "prefix16", "prompt16"])  # fmt: skip
    assert json.loads(output.read_text())["results"].keys() == {"bert-base"}
    train = report["results"]["bert-base"]["train"]
    assert train["full"]["step_time_vs_full"] == 1.0
    # Only the prefix (and head) train and are saved: far fewer parameters and bytes than full fine-tuning.
    assert train["prefix16"]["trainable_parameters"] < train["full"]["trainable_parameters"] / 50
    assert train["prefix16"]["checkpoint_bytes"] < train["full"]["checkpoint_bytes"] / 50
    assert train["prompt16"]["peak_memory_mb"] > 0
    inference = report["results"]["bert-base"]["inference"]
    assert inference["plain"]["latency_vs_plain"] == 1.0 and inference["prefix16_mlp_folded"]["step_s_median"] > 0
