"""The bad-input table, the one place bad input is tested: each case feeds one bad input (Python API,
script flags, data files, checkpoints) and expects a clear error naming the problem and what is
allowed; whatever was already on disk is still there, byte for byte, afterwards; and a script case
fails before any model weights load. Family-specific cases
(decoders, encoder-decoders) sit with their families' tests, named prefixes and peft adapters with theirs
(``test_named_prefixes.py``, ``test_peft_interop.py``: they need those fixtures); ``test_script_errors.py`` checks how
a script presents these errors (one line, exit status 2)."""

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
from script_runs import script_args
from transformers import GPT2Config, RobertaConfig, ViTConfig

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
        return run_glue.main(script_args(self.tiny_model, self.tmp / "out", *args))

    def ner(self, *args: str):
        return run_ner.main(script_args(self.tiny_model, self.tmp / "out", *args))

    def csv_pair(self, train: str, dev: str, *args: str):
        """run_glue.py on a train and a dev CSV file written here (t.csv, d.csv) with these texts."""
        return self.glue(
            "--train_file", self.write("t.csv", train), "--validation_file", self.write("d.csv", dev), *args
        )

    def train_on(self, script: str, name: str, text: str | bytes):
        """Trains with ``script`` ("glue" or "ner") on a train file written here: ``name``, holding ``text``."""
        return getattr(self, script)("--train_file", self.write(name, text), "--do_train")

    def train_task(self, task: str, path: str, text: str):
        """Trains on GLUE task ``task`` from a data folder holding one file: ``path`` (below it) with ``text``."""
        return self.glue("--task_name", task, "--do_train", "--data_dir", str(Path(self.write(path, text)).parent))


def bert(**overrides):
    return pm.BertPrefixForSequenceClassification(tiny_config("Bert", **overrides))


CASES: dict[str, tuple[Callable[[Context], object], str]] = {
    # --- Python API ---
    "pre_seq_len zero": (lambda c: bert(pre_seq_len=0), r"pre_seq_len must be a positive integer"),
    "pre_seq_len negative": (lambda c: bert(pre_seq_len=-3), r"pre_seq_len must be a positive integer"),
    "pre_seq_len a string": (lambda c: bert(pre_seq_len="16"), r"pre_seq_len must be a positive integer"),
    "pre_seq_len a float": (lambda c: bert(pre_seq_len=2.5), r"pre_seq_len must be a positive integer"),
    "pre_seq_len a bool": (lambda c: bert(pre_seq_len=True), r"pre_seq_len must be a positive integer"),
    "pre_seq_len None on load": (
        lambda c: pm.RobertaPromptForTokenClassification.from_pretrained(c.base["Roberta"], pre_seq_len=None),
        r"pre_seq_len must be a positive integer",
    ),
    "projection without a width": (
        lambda c: bert(prefix_projection=True, prefix_hidden_size=0),
        r"prefix_projection=True needs prefix_hidden_size",
    ),
    "projection width a float": (
        lambda c: bert(prefix_projection=True, prefix_hidden_size=1.5),
        r"prefix_projection=True needs prefix_hidden_size",
    ),
    "unknown prompt init": (
        lambda c: pm.BertPromptForSequenceClassification(tiny_config("Bert", prompt_init="glove")),
        r"prompt_init must be one of \('random', 'vocab', 'text'\)",
    ),
    "prompt text init without a tokenizer": (
        lambda c: pm.BertPromptForSequenceClassification(
            tiny_config("Bert", prompt_init="text", prompt_init_text="good film")
        ),
        r'prompt_init="text" needs a tokenizer',
    ),
    "prompt text init of blanks": (
        lambda c: pm.BertPromptForSequenceClassification(
            tiny_config("Bert", prompt_init="text", prompt_init_text="   ")
        ),
        r'prompt_init="text" needs prompt_init_text',
    ),
    "another family's config": (
        lambda c: pm.BertPrefixForSequenceClassification(RobertaConfig(hidden_size=32, num_attention_heads=4)),
        r"BertPrefixForSequenceClassification needs a BertPrefixConfig",
    ),
    "unknown method": (
        lambda c: pm.AutoPrefixModelForSequenceClassification.from_pretrained(c.base["Bert"], method="lora"),
        r"method must be one of \('prefix', 'prompt'\)",
    ),
    "neither input_ids nor inputs_embeds": (
        lambda c: bert(pre_seq_len=2)(),
        r"exactly one of input_ids or inputs_embeds",
    ),
    "multiple choice without a choices axis": (
        lambda c: pm.BertPrefixForMultipleChoice(tiny_config("Bert", pre_seq_len=2))(
            torch.ones(2, 7, dtype=torch.long)
        ),
        r"\(batch, num_choices, seq_len\)",
    ),
    "prompt input longer than positions": (
        lambda c: pm.RobertaPromptForQuestionAnswering(tiny_config("Roberta", pre_seq_len=2))(
            torch.full((1, 41), 5, dtype=torch.long)
        ),
        r"position table \(max_position_embeddings=40\)",
    ),
    "projection on a prompt model": (
        lambda c: pm.BertPromptForSequenceClassification(tiny_config("Bert", prefix_projection=True)),
        r"prefix_projection applies to prefix tuning .* only",
    ),
    "dropout out of range": (
        lambda c: bert(hidden_dropout_prob=1.5),
        r"hidden_dropout_prob must be a number in \[0, 1\)",
    ),
    "prompt text init without text": (
        lambda c: pm.BertPromptForSequenceClassification(tiny_config("Bert", prompt_init="text")),
        r'prompt_init="text" needs prompt_init_text',
    ),
    "unknown classifier pooling": (
        lambda c: bert(classifier_pooling="max"),
        r"classifier_pooling must be one of \('pooler', 'cls', 'mean'\), got 'max'",
    ),
    "attention mask shape": (
        lambda c: bert(pre_seq_len=2)(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4)),
        r"attention_mask must be a 2-D padding mask of shape \(batch, seq_len\) = \(2, 5\)",
    ),
    "input longer than positions": (
        lambda c: bert(pre_seq_len=2)(torch.ones(1, 41, dtype=torch.long)),
        r"input has 41 tokens but this model's position table .* allows at most 40",
    ),
    "unsupported model family": (
        lambda c: pm.AutoPrefixModelForSequenceClassification.from_config(
            ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
        ),
        r"model_type 'vit' is not supported .*supported model types: albert, bert, deberta-v2, distilbert, electra",
    ),
    "attention backend without a prefix": (
        lambda c: bert(pre_seq_len=2).set_attn_implementation("flex_attention"),
        r"attn_implementation='flex_attention' cannot host a prefix; prefix tuning supports 'sdpa', 'eager'",
    ),
    "decoder context overflow": (
        lambda c: pm.GPT2PrefixLMHeadModel(
            GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=16, pre_seq_len=4)
        )(torch.ones(1, 17, dtype=torch.long)),
        r"17 tokens are longer than the model's context \(16 positions; the prefix takes none\)",
    ),
    # --- script flags ---
    "a stray word among the flags (glue)": (
        lambda c: c.glue("--task_name", "rte", "stray", "--data_dir", str(GLUE), "--do_train"),
        r"unrecognized arguments: stray \(every value follows its --flag",
    ),
    "a value that lost its flag (ner)": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--prefix", "--pre_seq_len", "4", "8"),
        r"unrecognized arguments: 8 ",
    ),
    "a configuration file that is not there": (
        lambda c: run_glue.main([str(c.tmp / "missing.json")]),
        r"missing\.json: no such file \(a single \.json argument is read as the whole configuration\)",
    ),
    "unknown GLUE task": (
        lambda c: c.glue("--task_name", "sst5", "--do_train"),
        r"--task_name 'sst5' is not a known task; known tasks: cola",
    ),
    "prefix and prompt together": (
        lambda c: c.glue("--task_name", "rte", "--prefix", "--prompt"),
        r"--prefix and --prompt are exclusive",
    ),
    "prefix flag without a method": (
        lambda c: c.glue("--task_name", "rte", "--prefix_projection"),
        r"--prefix_projection only applies with --prefix or --prompt",
    ),
    "prefix init for a prompt": (
        lambda c: c.glue("--task_name", "rte", "--prompt", "--prefix_init", "text"),
        r"--prefix_init / --prefix_init_text apply to --prefix",
    ),
    "prefix init text with random init": (
        lambda c: c.glue("--task_name", "rte", "--prefix", "--prefix_init", "random", "--prefix_init_text", "good"),
        r"--prefix_init_text applies with --prefix_init text",
    ),
    "prefix init text with the MLP": (  # the text implies --prefix_init text, which the MLP cannot take
        lambda c: c.glue("--task_name", "rte", "--prefix", "--prefix_init_text", "good film", "--prefix_projection"),
        r"cannot start a --prefix_projection MLP",
    ),
    "merging an MLP the prefix does not have": (
        lambda c: c.glue("--task_name", "rte", "--prefix", "--merge_prefix_projection"),
        r"--merge_prefix_projection applies with --prefix_projection",
    ),
    "merging a prompt's MLP": (
        lambda c: c.glue("--task_name", "rte", "--prompt", "--merge_prefix_projection"),
        r"--merge_prefix_projection apply to --prefix, not --prompt",
    ),
    "text init with the MLP": (
        lambda c: c.glue("--task_name", "rte", "--prefix", "--prefix_init", "text", "--prefix_projection"),
        r"cannot start a --prefix_projection MLP",
    ),
    "pooling for a baseline": (
        lambda c: c.glue("--task_name", "rte", "--head_only", "--classifier_pooling", "mean"),
        r"--classifier_pooling only applies with --prefix or --prompt",
    ),
    "pooling for a tagger": (
        lambda c: c.ner(
            "--train_file", str(NER / "train.txt"), "--do_train", "--prefix", "--classifier_pooling", "cls"
        ),
        r"--classifier_pooling applies to sequence classification and multiple choice",
    ),
    "max_seq_length above the limit": (
        lambda c: c.glue("--task_name", "rte", "--data_dir", str(GLUE), "--do_train", "--max_seq_length", "999"),
        r"--max_seq_length 999 is above what the model's position table holds \(64\)",
    ),
    "NER tag column out of range": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--tag_column", "7"),
        r"--tag_column 7 does not name a tag column; the file has 4 columns",
    ),
    "data_dir not a directory": (
        lambda c: c.glue("--task_name", "rte", "--data_dir", c.write("f.txt", "x")),
        r"--data_dir .*f.txt is not a directory",
    ),
    "NER: prefix and prompt together": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--prefix", "--prompt"),
        r"--prefix and --prompt are exclusive",
    ),
    "GLUE: head-only with a prefix": (
        lambda c: c.glue("--task_name", "rte", "--prefix", "--head_only"),
        r"--head_only .* cannot be combined with --prefix",
    ),
    "GLUE: pre_seq_len without a method": (
        lambda c: c.glue("--task_name", "rte", "--pre_seq_len", "8"),
        r"--pre_seq_len only applies with --prefix or --prompt",
    ),
    "NER: unknown task": (
        lambda c: c.ner("--task_name", "conll2010", "--do_train"),
        r"--task_name 'conll2010' is not a known task; choose from \['conll2003'",
    ),
    "NER: no data": (lambda c: c.ner("--do_train"), r"give data: --data_dir"),
    "GLUE: two data sources": (
        lambda c: c.glue(
            "--task_name",
            "sst2",
            "--data_dir",
            str(GLUE),
            "--train_file",
            c.write("t.csv", "sentence,label\ngood,pos\n"),
        ),
        r"pick one data source; got --data_dir and --train_file",
    ),
    "NER: two data sources": (
        lambda c: c.ner("--data_dir", str(NER), "--train_file", str(NER / "train.txt"), "--do_train"),
        r"pick one data source; got --data_dir and --train_file",
    ),
    "NER: max_seq_length above the limit": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--max_seq_length", "500"),
        r"--max_seq_length 500 is above what the model's position table holds \(64\)",
    ),
    "GLUE: FSDP on CPU": (
        lambda c: c.glue("--task_name", "rte", "--data_dir", str(GLUE), "--do_train", "--fsdp", "full_shard"),
        r"--fsdp needs GPUs .* fall back to DDP .*torchrun",
    ),
    "GLUE: FSDP auto-wrap on CPU": (
        lambda c: c.glue("--task_name", "rte", "--data_dir", str(GLUE), "--do_train", "--fsdp", "full_shard auto_wrap"),
        r"--fsdp needs GPUs .* fall back to DDP .*torchrun",
    ),
    # --- data files ---
    "GLUE: missing train file": (
        lambda c: c.glue("--train_file", str(c.tmp / "nope.csv"), "--do_train"),
        r"--train_file .*nope.csv does not exist",
    ),
    "GLUE: data_dir without the task's files": (
        lambda c: c.glue("--task_name", "rte", "--data_dir", str(c.tmp), "--do_train"),
        r"holds no RTE data: expected train.tsv",
    ),
    "GLUE: dev file without the text column": (
        lambda c: c.csv_pair("text,label\ngood film,pos\nbad film,neg\n", "review,label\ngood film,pos\n", "--do_eval"),
        r"--validation_file .*d.csv lacks column\(s\) \['text'\]",
    ),
    "GLUE: which columns are text": (
        lambda c: c.train_on("glue", "w.csv", "title,body,summary,label\na,b,c,pos\nd,e,f,neg\n"),
        r"cannot tell which columns .* hold the text.*--text_column_names",
    ),
    "GLUE: TSV label outside the task's labels": (
        lambda c: c.glue("--task_name", "rte", "--do_eval", "--data_dir", with_bad_rte_label(c)),
        r"dev.tsv, line 2: label 'maybe' is not a rte label; allowed: ",
    ),
    "GLUE: broken JSON line": (
        lambda c: c.train_task(
            "boolq", "BoolQ/train.jsonl", '{"question": "q", "passage": "p", "idx": 0, "label": true}\n{"question": \n'
        ),
        r"train.jsonl, line 2: not valid JSON",
    ),
    "GLUE: JSON record without a field": (
        lambda c: c.train_task("boolq", "BoolQ/train.jsonl", '{"passage": "p", "idx": 0, "label": true}\n'),
        r"line 1: BoolQ record lacks field\(s\) \['question'\]",
    ),
    "GLUE: empty task split": (
        lambda c: c.train_task("rte", "RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n"),
        r"the train split of rte .* is empty",
    ),
    "GLUE: no train split": (
        lambda c: c.glue("--task_name", "rte", "--do_train", "--data_dir", without_rte_train(c)),
        r"--do_train needs a train split",
    ),
    "NER: missing train file": (
        lambda c: c.ner("--train_file", str(c.tmp / "nope.txt"), "--do_train"),
        r"--train_file .*nope.txt does not exist",
    ),
    "NER: eval without a dev file": (
        lambda c: c.ner("--train_file", str(NER / "train.txt"), "--do_train", "--do_eval"),
        r"--do_eval needs --validation_file",
    ),
    "NER: data_dir without files": (
        lambda c: c.ner("--data_dir", str(c.tmp), "--do_train"),
        r"--data_dir .* holds none of the expected files: train: train.txt",
    ),
    "NER: no tag column": (
        lambda c: c.train_on("ner", "w.txt", "the\nmovie\n"),
        r"--do_train: --train_file .*w.txt has no tag column",
    ),
    "NER: tag outside the detected scheme": (
        lambda c: c.train_on("ner", "t.txt", "John B-PER\nSmith E-PER\n\nin O\nParis LOCATION\n"),
        r"t.txt, line 5: tag 'LOCATION' is not in the BIOES scheme",
    ),
    "NER: dev label unseen in training": (
        lambda c: c.ner(
            "--train_file",
            str(NER / "train.txt"),
            "--validation_file",
            c.write("d.txt", "the O\ndirector B-PER\n\nin O\nParis B-GPE\n"),
            "--do_train",
            "--do_eval",
        ),
        r"d.txt, line 5: label 'B-GPE' is not among the labels found in the tr",
    ),
    "NER: integer tags without label names": (
        lambda c: c.train_on("ner", "t.jsonl", '{"tokens": ["the", "director"], "ner_tags": [0, 1]}\n'),
        r"tag '0' is not in the IOB2 scheme.*label ids need --label_names_file",
    ),
    "ragged GLUE TSV line": (
        lambda c: c.train_task("rte", "RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\n"),
        r"train.tsv, line 2: expected 4 tab-separated fields",
    ),
    "csv without the label column": (
        lambda c: c.train_on("glue", "t.csv", "sentence,stars\ngood,1\nbad,0\n"),
        r"--train_file .*t.csv lacks column\(s\) \['label'\]",
    ),
    "dev label outside the label list": (
        lambda c: c.csv_pair(
            "sentence,label\ngood,pos\nbad,neg\n", "sentence,label\nmeh,neutral\n", "--do_train", "--do_eval"
        ),
        r"label 'neutral' is not in the label list \['neg', 'pos'\]",
    ),
    "empty csv": (
        lambda c: c.train_on("glue", "t.csv", "sentence,label\n"),
        r"--train_file .*t.csv is empty",
    ),
    "regression label not a number": (
        lambda c: c.train_task(
            "stsb",
            "STS-B/train.tsv",
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
            "0\tmain\tf\t2012\t0\tnone\tnone\ta\tb\tfive\n",
        ),
        r"STS-B/train.tsv, line 2: score must be a number, got 'five'",
    ),
    "CoNLL file not UTF-8": (
        lambda c: c.train_on("ner", "t.txt", "Müller B-PER\n".encode("latin-1")),
        r"--train_file .*t.txt is not UTF-8 text",
    ),
    "ragged CoNLL line": (
        lambda c: c.train_on("ner", "t.txt", "EU NNP B-ORG\nrejects O\n"),
        r"t.txt, line 2: expected 3 columns \(as on line 1\), found 2",
    ),
    "json tokens of the wrong type": (
        lambda c: c.train_on("ner", "t.jsonl", '{"tokens": "EU rejects", "ner_tags": ["B-ORG"]}\n'),
        r"t.jsonl, line 1: 'tokens' must be a list of strings",
    ),
    "empty NER split": (
        lambda c: c.train_on("ner", "t.txt", "-DOCSTART- O\n\n"),
        r"--train_file .*t.txt holds no sentences",
    ),
    "NER label id out of range": (
        lambda c: c.ner(
            "--train_file",
            c.write("t.jsonl", '{"tokens": ["a"], "ner_tags": [5]}\n'),
            "--label_names_file",
            c.write("labels.txt", "O\nB-PER\n"),
            "--do_train",
        ),
        r"t.jsonl, line 1: label id 5 is out of range for the 2 labels",
    ),
    "NER tag outside the scheme": (
        lambda c: c.train_on("ner", "t.txt", "John B-PER\nSmith X-PER\n"),
        r"t.txt, line 2: tag 'X-PER' is not in the IOB2 scheme",
    ),
    # --- checkpoints ---
    "truncated weights file": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(truncated(c)),
        r"model.safetensors is not a readable safetensors file \(truncated or corrupted",
    ),
    "missing config": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(without_config(c)),
        r"no-config has no config.json: a model folder needs the config beside its weights",
    ),
    "prefix for another base": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(
            c.saved_prefix, base_model_name_or_path=other_base(c)
        ),
        r"does not fit the base model .*num_hidden_layers: prefix trained for 2, base has 3",
    ),
    "base model moved": (
        lambda c: pm.BertPrefixForSequenceClassification.from_pretrained(
            c.saved_prefix, base_model_name_or_path=str(c.tmp / "gone")
        ),
        r"needs its base model .*gone.* pass base_model_name_or_path",
    ),
}


def with_bad_rte_label(c: Context) -> str:
    data = c.tmp / "RTE-bad"
    shutil.copytree(GLUE / "RTE", data)
    rows = (data / "dev.tsv").read_text().splitlines()
    rows[1] = "\t".join(rows[1].split("\t")[:-1] + ["maybe"])
    (data / "dev.tsv").write_text("\n".join(rows) + "\n")
    return str(data)


def without_rte_train(c: Context) -> str:
    data = c.tmp / "RTE-no-train"
    shutil.copytree(GLUE / "RTE", data)
    (data / "train.tsv").unlink()
    return str(data)


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


@pytest.fixture
def no_model_loading(monkeypatch):
    """Script cases must fail before any model weights load."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(run_glue, "build_model", refuse)
    monkeypatch.setattr(run_ner, "build_model", refuse)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_a_clear_error_and_destroys_nothing(
    case, tiny_model, base_checkpoints, saved_prefix, tmp_path, no_model_loading
):
    action, message = CASES[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier-results.json").write_text(json.dumps({"eval_accuracy": 0.9}))  # something already written
    before = snapshot(out, saved_prefix, tiny_model)
    with pytest.raises((ValueError, OSError)) as error:
        action(Context(tiny_model, base_checkpoints, tmp_path, saved_prefix))
    assert re.search(message, str(error.value)), f"{case}: {error.value}"
    assert snapshot(out, saved_prefix, tiny_model) == before


@pytest.mark.parametrize("script", ["glue", "ner"])
def test_a_trained_model_in_output_dir_is_not_overwritten(
    script, tiny_model, base_checkpoints, saved_prefix, tmp_path, no_model_loading
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"trained weights")
    context = Context(tiny_model, base_checkpoints, tmp_path, saved_prefix)
    glue, ner = ("--task_name", "sst2", "--data_dir", str(GLUE)), ("--train_file", str(NER / "train.txt"))
    data = glue if script == "glue" else ner
    with pytest.raises(ValueError, match=r"already holds a trained model; pass --overwrite_output_dir"):
        getattr(context, script)(*data, "--do_train")
    assert (out / "model.safetensors").read_bytes() == b"trained weights"


def test_unknown_tag_scheme_is_an_argparse_choice(tiny_model, tmp_path):
    with pytest.raises(SystemExit):  # argparse lists the allowed schemes
        run_ner.main(
            [
                "--model_name_or_path",
                str(tiny_model),
                "--output_dir",
                str(tmp_path / "out"),
                "--train_file",
                str(NER / "train.txt"),
                "--do_train",
                "--tag_scheme",
                "BILOU",
            ]
        )
