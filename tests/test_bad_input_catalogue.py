"""The bad-input catalogue: each case feeds one bad input (Python API, script flags, data files,
checkpoints) and expects a clear error naming the problem and what is allowed; and whatever was
already on disk is still there, byte for byte, afterwards."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, tiny_config
from transformers import GPT2Config, ViTConfig

import prefix_models as pm
import run_glue
import run_ner

GLUE = FIXTURES / "glue_data"
NER = FIXTURES / "ner_data"


@dataclass
class Context:
    tiny_model: Path
    base: dict[str, Path]
    tmp: Path
    saved_prefix: Path  # a trained prefix-only checkpoint

    def write(self, name: str, text: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        return str(path)

    def glue(self, *args: str):
        return run_glue.main(["--model_name_or_path", str(self.tiny_model), "--output_dir", str(self.tmp / "out"),
                              "--use_cpu", "--report_to", "none", *args])  # fmt: skip

    def ner(self, *args: str):
        return run_ner.main(["--model_name_or_path", str(self.tiny_model), "--output_dir", str(self.tmp / "out"),
                             "--use_cpu", "--report_to", "none", *args])  # fmt: skip


def bert(**overrides):
    return pm.BertPrefixForSequenceClassification(tiny_config("Bert", **overrides))


CASES: dict[str, tuple[Callable[[Context], object], str]] = {
    # --- Python API ---
    "pre_seq_len zero": (lambda c: bert(pre_seq_len=0), r"pre_seq_len must be a positive integer"),
    "projection on a prompt model": (
        lambda c: pm.BertPromptForSequenceClassification(tiny_config("Bert", prefix_projection=True)),
        r"prefix_projection applies to prefix tuning .* only"),
    "dropout out of range": (lambda c: bert(hidden_dropout_prob=1.5),
                             r"hidden_dropout_prob must be a number in \[0, 1\)"),
    "prompt text init without text": (
        lambda c: pm.BertPromptForSequenceClassification(tiny_config("Bert", prompt_init="text")),
        r'prompt_init="text" needs prompt_init_text'),
    "unknown classifier pooling": (lambda c: bert(classifier_pooling="max"),
                                   r"classifier_pooling must be one of \('pooler', 'cls', 'mean'\), got 'max'"),
    "attention mask shape": (
        lambda c: bert(pre_seq_len=2)(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4)),
        r"attention_mask must be a 2-D padding mask of shape \(batch, seq_len\) = \(2, 5\)"),
    "input longer than positions": (
        lambda c: bert(pre_seq_len=2)(torch.ones(1, 41, dtype=torch.long)),
        r"input has 41 tokens but this model's position table .* allows at most 40"),
    "unsupported model family": (
        lambda c: pm.AutoPrefixModelForSequenceClassification.from_config(
            ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)),
        r"model_type 'vit' is not supported .*supported model types: albert, bert, deberta-v2, distilbert, electra"),
    "attention backend without a prefix": (
        lambda c: bert(pre_seq_len=2).set_attn_implementation("flex_attention"),
        r"attn_implementation='flex_attention' cannot host a prefix; prefix tuning supports 'sdpa', 'eager'"),
    "decoder context overflow": (
        lambda c: pm.GPT2PrefixLMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=16,
                                                      pre_seq_len=4))(torch.ones(1, 17, dtype=torch.long)),
        r"17 tokens are longer than the model's context \(16 positions; the prefix takes none\)"),
    # --- script flags ---
    "unknown GLUE task": (lambda c: c.glue("--task_name", "sst5", "--do_train"),
                          r"--task_name 'sst5' is not a known task; known tasks: cola"),
    "prefix and prompt together": (lambda c: c.glue("--task_name", "rte", "--prefix", "--prompt"),
                                   r"--prefix and --prompt are exclusive"),
    "prefix flag without a method": (lambda c: c.glue("--task_name", "rte", "--prefix_projection"),
                                     r"--prefix_projection only applies with --prefix or --prompt"),
    "pooling for a baseline": (lambda c: c.glue("--task_name", "rte", "--head_only", "--classifier_pooling", "mean"),
                               r"--classifier_pooling only applies with --prefix or --prompt"),
    "pooling for a tagger": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--prefix",
                        "--classifier_pooling", "cls"),
        r"--classifier_pooling applies to sequence classification and multiple choice"),
    "max_seq_length above the limit": (
        lambda c: c.glue("--task_name", "rte", "--data_dir", str(GLUE), "--do_train", "--max_seq_length", "999"),
        r"--max_seq_length 999 is above what the model's position table holds \(64\)"),
    "NER tag column out of range": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--tag_column", "7"),
        r"--tag_column 7 does not name a tag column; the file has 4 columns"),
    "data_dir not a directory": (lambda c: c.glue("--task_name", "rte", "--data_dir", c.write("f.txt", "x")),
                                 r"--data_dir .*f.txt is not a directory"),
    # --- data files ---
    "ragged GLUE TSV line": (
        lambda c: c.glue("--task_name", "rte", "--do_train", "--data_dir",
                         folder_of(c.write("RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\n"))),
        r"train.tsv, line 2: expected 4 tab-separated fields"),
    "csv without the label column": (
        lambda c: c.glue("--train_file", c.write("t.csv", "sentence,stars\ngood,1\nbad,0\n"), "--do_train"),
        r"--train_file .*t.csv lacks column\(s\) \['label'\]"),
    "dev label outside the label list": (
        lambda c: c.glue("--train_file", c.write("t.csv", "sentence,label\ngood,pos\nbad,neg\n"), "--validation_file",
                         c.write("d.csv", "sentence,label\nmeh,neutral\n"), "--do_train", "--do_eval"),
        r"label 'neutral' is not in the label list \['neg', 'pos'\]"),
    "empty csv": (lambda c: c.glue("--train_file", c.write("t.csv", "sentence,label\n"), "--do_train"),
                  r"--train_file .*t.csv is empty"),
    "regression label not a number": (
        lambda c: c.glue("--task_name", "stsb", "--do_train", "--data_dir", folder_of(c.write("STS-B/train.tsv",
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
            "0\tmain\tf\t2012\t0\tnone\tnone\ta\tb\tfive\n"))),
        r"STS-B/train.tsv, line 2: score must be a number, got 'five'"),
    "CoNLL file not UTF-8": (
        lambda c: c.ner("--train_file", c.write("t.txt", "Müller B-PER\n".encode("latin-1")), "--do_train"),
        r"--train_file .*t.txt is not UTF-8 text"),
    "ragged CoNLL line": (
        lambda c: c.ner("--train_file", c.write("t.txt", "EU NNP B-ORG\nrejects O\n"), "--do_train"),
        r"t.txt, line 2: expected 3 columns \(as on line 1\), found 2"),
    "json tokens of the wrong type": (
        lambda c: c.ner("--train_file", c.write("t.jsonl", '{"tokens": "EU rejects", "ner_tags": ["B-ORG"]}\n'),
                        "--do_train"),
        r"t.jsonl, line 1: 'tokens' must be a list of strings"),
    "empty NER split": (lambda c: c.ner("--train_file", c.write("t.txt", "-DOCSTART- O\n\n"), "--do_train"),
                        r"--train_file .*t.txt holds no sentences"),
    "NER label id out of range": (
        lambda c: c.ner("--train_file", c.write("t.jsonl", '{"tokens": ["a"], "ner_tags": [5]}\n'),
                        "--label_names_file", c.write("labels.txt", "O\nB-PER\n"), "--do_train"),
        r"t.jsonl, line 1: label id 5 is out of range for the 2 labels"),
    "NER tag outside the scheme": (
        lambda c: c.ner("--train_file", c.write("t.txt", "John B-PER\nSmith X-PER\n"), "--do_train"),
        r"t.txt, line 2: tag 'X-PER' is not in the IOB2 scheme"),
    # --- checkpoints ---
    "truncated weights file": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(truncated(c)),
        r"model.safetensors is not a readable safetensors file \(truncated or corrupted"),
    "missing config": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(without_config(c)),
        r"no-config has no config.json: a model folder needs the config beside its weights"),
    "prefix for another base": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(c.saved_prefix,
                                                                         base_model_name_or_path=other_base(c)),
        r"does not fit the base model .*num_hidden_layers: prefix trained for 2, base has 3"),
    "base model moved": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(
            c.saved_prefix, base_model_name_or_path=str(c.tmp / "gone")),
        r"needs its base model .*gone.* pass base_model_name_or_path"),
}  # fmt: skip


def folder_of(path: str) -> str:
    return str(Path(path).parent)


def copy_of_prefix(c: Context, name: str) -> Path:
    target = c.tmp / name
    shutil.copytree(c.saved_prefix, target)
    return target


def truncated(c: Context) -> str:
    target = copy_of_prefix(c, "truncated")
    data = (target / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    return str(target)


def without_config(c: Context) -> str:
    target = copy_of_prefix(c, "no-config")
    (target / "config.json").unlink()
    return str(target)


def other_base(c: Context) -> str:
    from transformers import BertModel

    path = c.tmp / "deeper-base"
    BertModel(tiny_config("Bert", num_hidden_layers=3)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def saved_prefix(base_checkpoints, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved-prefix")
    model = pm.BertPrefixForSequenceClassification.from_pretrained(base_checkpoints["Bert"], pre_seq_len=3)
    model.save_pretrained(path)
    return path


def snapshot(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_catalogue_has_at_least_25_distinct_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_a_clear_error_and_destroys_nothing(case, tiny_model, base_checkpoints, saved_prefix,
                                                            tmp_path):  # fmt: skip
    action, message = CASES[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier-results.json").write_text(json.dumps({"eval_accuracy": 0.9}))  # something already written
    before = snapshot(out, saved_prefix, tiny_model)
    with pytest.raises((ValueError, OSError)) as error:
        action(Context(tiny_model, base_checkpoints, tmp_path, saved_prefix))
    assert re.search(message, str(error.value)), f"{case}: {error.value}"
    assert snapshot(out, saved_prefix, tiny_model) == before
