"""examples/run_qa.py end to end on tiny models and the invented SQuAD fixtures, offline: a prefix trains on
SQuAD 1.1 and 2.0 data; the predictions it writes re-score, with an independent implementation of the
official evaluation scripts (below), to the numbers it reports; the windows, the n-best / null-threshold
post-processing and the bad-input checks on hand-made cases."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from script_runs import load_benchmark
from transformers import AutoTokenizer

from prefix_models import AutoPrefixModelForQuestionAnswering
from prefix_models.errors import InputError
from prefix_models.scripts.qa import data as qa_data
from prefix_models.scripts.qa.data import QAExample
from prefix_models.scripts.qa.features import QAFeatures, prepare_features
from prefix_models.scripts.qa.metrics import squad_v1, squad_v2
from prefix_models.scripts.qa.postprocess import AnswerOptions, answers_from_logits

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "run_qa.py"
SQUAD = FIXTURES / "squad"


def script():
    spec = importlib.util.spec_from_file_location("run_qa", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_qa"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


run_qa = script()


def run(model: Path, output_dir: Path, *args: str) -> dict:
    argv = [
        "--model_name_or_path",
        str(model),
        "--output_dir",
        str(output_dir),
        "--use_cpu",
        "--report_to",
        "none",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--seed",
        "0",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        *args,
    ]
    return run_qa.main(argv)


# --- An independent implementation of the official evaluate-v1.1.py and evaluate-v2.0.py, written from
# their text: it reads the official nested JSON itself and shares no code with prefix_models.


def _normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _dice(a: list[str], b: list[str]) -> float:
    # The official scripts' 2PR / (P + R) over shared tokens, written as the equal 2|a & b| / (|a| + |b|).
    same = sum((collections.Counter(a) & collections.Counter(b)).values())
    return 2 * same / (len(a) + len(b)) if same else 0.0


def _f1_v1(prediction: str, truth: str) -> float:
    return _dice(_normalize(prediction).split(), _normalize(truth).split())


def official_v1(dataset: list[dict], predictions: dict[str, str]) -> dict[str, float]:
    f1 = exact = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                truths = [a["text"] for a in qa["answers"]]
                prediction = predictions[qa["id"]]
                exact += max(float(_normalize(prediction) == _normalize(t)) for t in truths)
                f1 += max(_f1_v1(prediction, t) for t in truths)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def _tokens(s: str) -> list[str]:
    return _normalize(s).split() if s else []


def _f1_v2(gold: str, prediction: str) -> float:
    g, p = _tokens(gold), _tokens(prediction)
    if len(g) == 0 or len(p) == 0:
        return float(g == p)
    return _dice(g, p)


def official_v2(
    dataset: list[dict], predictions: dict[str, str], na_probs: dict[str, float] | None = None, thresh: float = 1.0
) -> dict[str, float]:
    has_ans, exact, f1 = {}, {}, {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = qa["id"]
                has_ans[qid] = bool(qa["answers"])
                golds = [a["text"] for a in qa["answers"] if _normalize(a["text"])] or [""]
                prediction = predictions[qid]
                exact[qid] = max(float(_normalize(a) == _normalize(prediction)) for a in golds)
                f1[qid] = max(_f1_v2(a, prediction) for a in golds)
    if na_probs is not None:  # apply_no_ans_threshold
        for scores in (exact, f1):
            for qid in scores:
                if na_probs[qid] > thresh:
                    scores[qid] = float(not has_ans[qid])

    def block(ids, prefix=""):
        return {
            f"{prefix}exact": 100.0 * sum(exact[k] for k in ids) / len(ids),
            f"{prefix}f1": 100.0 * sum(f1[k] for k in ids) / len(ids),
            f"{prefix}total": len(ids),
        }

    out = block(list(exact))
    if any(has_ans.values()):
        out.update(block([k for k, v in has_ans.items() if v], "HasAns_"))
    if not all(has_ans.values()):
        out.update(block([k for k, v in has_ans.items() if not v], "NoAns_"))
    return out


def nested_from_lines(path: Path) -> list[dict]:
    """json lines in the hub's layout as the official nested JSON (for the official scorers above)."""
    articles = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        answers = [{"text": t, "answer_start": s} for t, s in zip(*record["answers"].values(), strict=True)]
        qa = {"id": record["id"], "question": record["question"], "answers": answers}
        articles.append({"title": record["title"], "paragraphs": [{"context": record["context"], "qas": [qa]}]})
    return articles


def official_json(name: str) -> list[dict]:
    return json.loads((SQUAD / name).read_text())["data"]


# --- End to end


def test_v1_prefix_trains_and_its_predictions_rescore_officially(tiny_model, tmp_path):
    # --max_seq_length 32 --doc_stride 8 cuts every fixture context into several windows.
    results = run(
        tiny_model,
        tmp_path,
        "--train_file",
        str(SQUAD / "train-v1.1.json"),
        "--validation_file",
        str(SQUAD / "dev-v1.1.json"),
        "--test_file",
        str(SQUAD / "test.jsonl"),
        "--prefix",
        "--pre_seq_len",
        "4",
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--max_steps",
        "6",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "3",
        "--max_seq_length",
        "32",
        "--doc_stride",
        "8",
    )
    for key in ("train_loss", "eval_exact_match", "eval_f1", "best_eval_f1", "predict_exact_match", "predict_f1"):
        assert key in results, key
    assert results["eval_samples"] == 8 and results["predict_samples"] == 6
    for name in ("all_results.json", "eval_results.json", "predictions.json", "nbest_predictions.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "null_odds.json").exists()
    # Every dev question has one answer, taken from its own context; the official scoring of the file gives
    # exactly what the script reported (and saved in all_results.json).
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    dev = official_json("dev-v1.1.json")
    contexts = {qa["id"]: p["context"] for a in dev for p in a["paragraphs"] for qa in p["qas"]}
    assert set(predictions) == set(contexts)
    assert all(text in contexts[qid] for qid, text in predictions.items())
    rescored = official_v1(dev, predictions)
    saved = json.loads((tmp_path / "all_results.json").read_text())
    for name in ("exact_match", "f1"):
        assert rescored[name] == pytest.approx(results[f"eval_{name}"]) == pytest.approx(saved[f"eval_{name}"])
    test_predictions = json.loads((tmp_path / "predict_predictions.json").read_text())
    rescored = official_v1(nested_from_lines(SQUAD / "test.jsonl"), test_predictions)
    assert rescored["f1"] == pytest.approx(results["predict_f1"])
    assert rescored["exact_match"] == pytest.approx(results["predict_exact_match"])
    # What was trained and saved is a prefix (and head) over the untouched base.
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["pre_seq_len"] == 4
    model = AutoPrefixModelForQuestionAnswering.from_pretrained(tmp_path)
    assert model.num_trainable_parameters() < sum(p.numel() for p in model.parameters()) / 10
    card = (tmp_path / "README.md").read_text()  # the model card (tests/test_model_cards.py: its content)
    assert "pipeline_tag: question-answering" in card and "| task | extractive question answering |" in card


def test_v2_prefix_on_roberta_rescores_with_null_odds_and_threshold(tiny_roberta_model, tmp_path):
    data = ["--train_file", str(SQUAD / "train-v2.0.json"), "--validation_file", str(SQUAD / "dev-v2.0.json")]
    common = [*data, "--version_2_with_negative", "--max_seq_length", "64", "--doc_stride", "16"]
    out = tmp_path / "trained"
    results = run(
        tiny_roberta_model,
        out,
        *common,
        "--prefix",
        "--pre_seq_len",
        "4",
        "--do_train",
        "--do_eval",
        "--max_steps",
        "4",
    )
    dev = official_json("dev-v2.0.json")
    for key in ("exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1"):
        assert f"eval_{key}" in results, key
    assert results["eval_total"] == 8 and results["eval_HasAns_total"] == 5 and results["eval_NoAns_total"] == 3
    predictions = json.loads((out / "predictions.json").read_text())
    null_odds = json.loads((out / "null_odds.json").read_text())
    assert set(predictions) == set(null_odds) == {qa["id"] for a in dev for p in a["paragraphs"] for qa in p["qas"]}
    rescored = official_v2(dev, predictions)
    for name, value in rescored.items():
        assert value == pytest.approx(results[f"eval_{name}"]), name
    # With the null odds as --na-prob-file and the script's threshold, the official numbers do not move.
    assert official_v2(dev, predictions, null_odds, thresh=0.0) == pytest.approx(rescored)
    for qid, odds in null_odds.items():
        assert (predictions[qid] == "") == (odds > 0.0), qid

    # The threshold decides: far below every null-odds value every question is judged unanswerable, far above
    # none is (evaluating the saved prefix, no training).
    def evaluate(threshold: str) -> tuple[dict, dict]:
        folder = tmp_path / f"eval{threshold}"
        metrics = run(out, folder, *common, "--do_eval", f"--null_score_diff_threshold={threshold}")
        return metrics, json.loads((folder / "predictions.json").read_text())

    metrics, predictions = evaluate("-1e9")
    assert set(predictions.values()) == {""}
    assert metrics["eval_NoAns_exact"] == 100.0 and metrics["eval_HasAns_exact"] == 0.0
    metrics, predictions = evaluate("1e9")
    assert "" not in predictions.values() and metrics["eval_NoAns_exact"] == 0.0
    assert official_v2(dev, predictions)["f1"] == pytest.approx(metrics["eval_f1"])


def test_hub_squad_v2_without_the_flag_and_hub_failure(monkeypatch, tiny_model, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [
        {
            "id": "h1",
            "title": "T",
            "context": "A cat sat.",
            "question": "Who sat?",
            "answers": {"text": ["A cat"], "answer_start": [0]},
        },
        {
            "id": "h2",
            "title": "T",
            "context": "A cat sat.",
            "question": "Why?",
            "answers": {"text": [], "answer_start": []},
        },
    ]
    calls = []

    def fake_hub(name, config_name, **kwargs):
        calls.append(name)
        return DatasetDict({"train": Dataset.from_list(rows), "validation": Dataset.from_list(rows)})

    monkeypatch.setattr(qa_data, "load_hub_dataset", fake_hub)
    with pytest.raises(
        InputError, match=r"the dataset rajpurkar/squad_v2 \(train\) question id h2: .*--version_2_with"
    ):
        run(tiny_model, tmp_path, "--dataset_name", "squad_v2", "--do_train")
    assert calls == ["rajpurkar/squad_v2"]

    def offline(name, config_name, **kwargs):
        raise ConnectionError("Couldn't reach 'rajpurkar/squad' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(qa_data, "load_hub_dataset", offline)
    with pytest.raises(
        InputError, match=r"--dataset_name rajpurkar/squad: could not load rajpurkar/squad from the hub"
    ):
        run(tiny_model, tmp_path, "--dataset_name", "rajpurkar/squad", "--do_train")


# --- Windows and post-processing


def long_example(words: int = 120) -> QAExample:
    filler = " ".join(["the film is good and the plot is long"] * (words // 9))
    context = f"{filler} the answer is brilliant music here . {filler}"
    start = context.index("brilliant music")
    return QAExample("long", "", context, "what is it ?", ["brilliant music"], [start], "test")


def test_windows_cover_long_contexts_and_label_the_answer_in_its_window():
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer")
    example = long_example()
    impossible = QAExample("none", "", example.context, "what is it ?", [], [], "test")
    features = prepare_features([example, impossible], tokenizer, max_seq_length=32, doc_stride=8, labels=True)
    windows = [w for w in range(len(features.offsets)) if features.example_index[w] == 0]
    assert len(windows) > 5  # the context is far longer than one window
    rows = features.dataset
    context_tokens = tokenizer(example.context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    covered, previous = set(), None
    for w in windows:
        spans = [tuple(s) for s in features.offsets[w].tolist() if s[0] >= 0]
        assert len(rows[w]["input_ids"]) <= 32
        covered.update(spans)
        if previous is not None:  # neighbours share doc_stride tokens
            assert len(set(previous) & set(spans)) == 8
        previous = spans
        start, end = rows[w]["start_positions"], rows[w]["end_positions"]
        first, last = context_tokens.index(spans[0]), context_tokens.index(spans[-1])
        holds_answer = context_tokens[first][0] <= example.answer_starts[0] and context_tokens[last][
            1
        ] >= example.answer_starts[0] + len("brilliant music")
        if holds_answer:
            offsets = features.offsets[w]
            assert example.context[offsets[start][0] : offsets[end][1]] == "brilliant music"
        else:
            assert start == end == features.cls_index[w] == 0
    assert covered == {tuple(s) for s in context_tokens}  # every context token is in some window
    assert any(rows[w]["start_positions"] != 0 for w in windows)
    # An unanswerable question points at [CLS] in every window.
    for w in range(len(features.offsets)):
        if features.example_index[w] == 1:
            assert rows[w]["start_positions"] == rows[w]["end_positions"] == 0
    # Logits that peak at the labels come back as the answer text, from whichever window holds it.
    width = max(len(o) for o in features.offsets)
    start_logits = np.full((len(features.offsets), width), -100.0)
    end_logits = np.full((len(features.offsets), width), -100.0)
    for w in windows:
        start_logits[w, : len(features.offsets[w])] = 0.0
        end_logits[w, : len(features.offsets[w])] = 0.0
        if rows[w]["start_positions"] != 0:
            start_logits[w, rows[w]["start_positions"]] = 5.0
            end_logits[w, rows[w]["end_positions"]] = 5.0
    only_long = QAFeatures(
        [example],
        features.dataset,
        features.example_index[windows],
        [features.offsets[w] for w in windows],
        features.cls_index[windows],
    )
    answers = answers_from_logits(only_long, start_logits[windows], end_logits[windows], AnswerOptions())
    assert answers.predictions == {"long": "brilliant music"}


def hand_made() -> QAFeatures:
    """One question over two windows: tokens 0 = [CLS], 1-2 question, 3 [SEP], then context tokens."""
    context = "alpha beta gamma delta epsilon zeta"
    starts = [0, 6, 11, 17, 23, 31]
    spans = [(s, s + len(w)) for s, w in zip(starts, context.split(), strict=True)]
    special = [(-1, -1)] * 4
    window_a = np.array(special + spans[:4] + [(-1, -1)], dtype=np.int32)  # alpha..delta
    window_b = np.array(special + spans[2:] + [(-1, -1)], dtype=np.int32)  # gamma..zeta
    example = QAExample("q", "", context, "which ?", ["delta"], [17], "test")
    return QAFeatures([example], None, np.array([0, 0]), [window_a, window_b], np.array([0, 0]))


def logits(values: dict[int, float], length: int = 9, pad_to: int = 11) -> np.ndarray:
    row = np.full(pad_to, -100.0)  # past the window: the Trainer's padding
    row[:length] = 0.0
    for i, v in values.items():
        row[i] = v
    return row


def test_nbest_picks_the_best_valid_span_over_windows():
    features = hand_made()
    # Window a: its best start/end pair is a question token (2) and an end before the start; window b holds
    # the best valid span, gamma..delta (tokens 4-5 of b).
    start = np.stack([logits({2: 9.0, 6: 3.0, 7: 1.0}), logits({4: 4.0, 6: 1.0})])
    end = np.stack([logits({2: 9.0, 5: 2.5, 7: 1.5}), logits({5: 3.5, 7: 0.5})])
    answers = answers_from_logits(features, start, end, AnswerOptions(n_best_size=5))
    assert answers.predictions == {"q": "gamma delta"}
    nbest = answers.nbest["q"]
    assert nbest[0]["score"] == pytest.approx(7.5) and len(nbest) == 5
    assert [c["score"] for c in nbest] == sorted((c["score"] for c in nbest), reverse=True)
    assert sum(c["probability"] for c in nbest) == pytest.approx(1.0)
    # Window a's 6-7 (gamma delta, 3 + 1.5 = 4.5) beats... nothing: but a span longer than the limit is dropped.
    limited = answers_from_logits(features, start, end, AnswerOptions(n_best_size=5, max_answer_length=1))
    assert all(len(c["text"].split()) == 1 for c in limited.nbest["q"])
    # n_best_size 1: only each window's single best start and end are paired.
    single = answers_from_logits(features, start, end, AnswerOptions(n_best_size=1))
    assert single.predictions == {"q": "gamma delta"}


def test_a_span_of_zero_width_tokens_is_no_answer():
    # Byte-level BPE gives a lone space its own zero-width token ("Ġ", offsets (5, 5)); a span of it alone has
    # no text, so the next best span answers.
    context = "alpha beta"
    offsets = np.array([(-1, -1), (0, 5), (5, 5), (6, 10), (-1, -1)], dtype=np.int32)
    example = QAExample("z", "", context, "?", ["beta"], [6], "test")
    features = QAFeatures([example], None, np.array([0]), [offsets], np.array([0]))
    start = np.array([[0.0, 1.0, 9.0, 2.0, 0.0]])
    end = np.array([[0.0, 0.0, 9.0, 2.0, 0.0]])
    answers = answers_from_logits(features, start, end, AnswerOptions())
    assert answers.predictions == {"z": " beta"}  # zero-width start + "beta" end: 9 + 2, the best with text
    assert all(c["text"] for c in answers.nbest["z"])


def test_null_score_against_the_threshold():
    features = hand_made()
    # Best span: b's gamma..delta, 4 + 3.5 = 7.5. Null: [CLS] at 0; window a's is 3 + 3, b's 5 + 4: the lower, 6.
    start = np.stack([logits({0: 3.0, 6: 1.0}), logits({0: 5.0, 4: 4.0})])
    end = np.stack([logits({0: 3.0, 7: 1.0}), logits({0: 4.0, 5: 3.5})])
    for threshold, expected in ((0.0, "gamma delta"), (-1.4, "gamma delta"), (-1.6, ""), (-3.0, "")):
        options = AnswerOptions(version_2=True, null_score_diff_threshold=threshold)
        answers = answers_from_logits(features, start, end, options)
        assert answers.null_odds["q"] == pytest.approx(6.0 - 7.5)
        assert answers.predictions["q"] == expected, threshold
        assert "" in [c["text"] for c in answers.nbest["q"]]  # the null answer is in the n-best list
    # Without version 2 the null answer never wins, whatever its score.
    start[:, 0] = end[:, 0] = 50.0
    assert answers_from_logits(features, start, end, AnswerOptions()).predictions == {"q": "gamma delta"}
    assert answers_from_logits(features, start, end, AnswerOptions(version_2=True)).predictions == {"q": ""}


def test_metrics_equal_the_independent_official_scorers():
    gold = {"a": ["The Cat!", "a dog"], "b": ["1,000 km"], "c": ["Paris"], "d": []}
    predictions = {"a": "cat", "b": "1000 km.", "c": "in Paris, France", "d": ""}
    nested = [
        {
            "title": "x",
            "paragraphs": [
                {"context": "", "qas": [{"id": k, "answers": [{"text": t} for t in v]} for k, v in gold.items()]}
            ],
        }
    ]
    assert squad_v2(gold, predictions) == pytest.approx(official_v2(nested, predictions))
    v1_gold = {k: v for k, v in gold.items() if v}
    nested[0]["paragraphs"][0]["qas"] = nested[0]["paragraphs"][0]["qas"][:3]
    assert squad_v1(v1_gold, predictions) == pytest.approx(official_v1(nested, predictions))
    assert squad_v1({"a": ["the cat"]}, {"a": "Cat"}) == {"exact_match": 100.0, "f1": 100.0}
    # SQuAD 1.1: an empty prediction scores 0 even against an answer that normalises to nothing.
    assert squad_v1({"a": ["the"]}, {"a": ""})["f1"] == 0.0
    assert squad_v2({"a": ["the"]}, {"a": ""})["f1"] == 100.0


# --- Bad input: one line naming the flag, the file and the question, before any model loads


def write(tmp_path: Path, name: str, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def v1_with(change) -> dict:
    document = json.loads((SQUAD / "train-v1.1.json").read_text())
    change(document["data"][0]["paragraphs"][0]["qas"][1])
    return document


def shifted(qa):
    qa["answers"][0]["answer_start"] += 1


BAD = [
    ("train", lambda t: write(t, "x.json", v1_with(shifted)), r"question id t02: the answer '1642' is not at"),
    (
        "train",
        lambda t: write(t, "x.json", v1_with(lambda qa: qa.pop("question"))),
        r"id t02: missing the field 'quest",
    ),
    ("train", lambda t: write(t, "x.json", v1_with(lambda qa: qa.pop("answers"))), r"id t02: missing the field 'answe"),
    ("train", lambda t: write(t, "x.json", v1_with(lambda qa: qa.update(id="t01"))), r"id t01: the id is used twice"),
    (
        "validation",
        lambda t: str(SQUAD / "dev-v2.0.json"),
        r"question id w03: the question has no answer .*--version_2",
    ),
    ("train", lambda t: write(t, "x.json", v1_with(lambda qa: qa.update(answers=[]))), r"id t02: the question has no"),
    (
        "test",
        lambda t: write(t, "x.jsonl", '{"id": "j9", "question": "Q?", "answers": {"text": [], "answer_start": []}}\n'),
        r"question id j9: missing the field 'context'",
    ),
    (
        "train",
        lambda t: write(t, "x.json", v1_with(lambda qa: qa.update(question="what " * 40))),
        r"question id t02: the question takes 40 tokens, .* --doc_stride 8",
    ),
]


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad input was found")

    monkeypatch.setattr(run_qa, "build_model", refuse)


@pytest.mark.parametrize(("split", "make", "message"), BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_bad_input_names_flag_file_and_question(split, make, message, tiny_model, tmp_path, no_model_loading):
    path = make(tmp_path)
    flag = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
    do = {"train": "--do_train", "validation": "--do_eval", "test": "--do_predict"}[split]
    with pytest.raises(InputError) as error:
        run(tiny_model, tmp_path / "out", flag, path, do, "--max_seq_length", "32", "--doc_stride", "8")
    assert str(error.value).startswith(f"{flag} {path} "), str(error.value)
    assert re.search(message, str(error.value)), str(error.value)
    assert not (tmp_path / "out").exists()


def test_bad_input_on_the_command_line_is_one_line_and_status_2(tiny_model, tmp_path):
    path = write(tmp_path, "x.json", v1_with(shifted))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PREFIX_MODELS_DEBUG", None)
    argv = ["--model_name_or_path", str(tiny_model), "--output_dir", str(tmp_path / "out"), "--use_cpu"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--train_file", path, "--do_train"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"run_qa.py: error: --train_file {path} question id t02: the answer '1642'"), last
    assert not (tmp_path / "out").exists()


def test_help_lists_the_qa_and_method_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_qa.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "extractive question answering" in text  # the docstring heads the help
    for flag in (
        "--doc_stride",
        "--version_2_with_negative",
        "--null_score_diff_threshold",
        "--n_best_size",
        "--max_answer_length",
        "--prefix",
        "--prompt",
        "--head_only",
        "--pre_seq_len",
        "--prefix_layers",
    ):
        assert flag in text, flag


def test_paper_squad_rows_run_with_the_reference_settings(tiny_roberta_model, tmp_path):
    """benchmarks/paper.py's SQuAD rows: the reference's settings, run_qa.py's flags, and the F1 / exact match
    read back from a run (a tiny RoBERTa for roberta-large, one epoch on the fixture, in-process)."""
    paper = load_benchmark("paper")
    v1, v2 = paper.ROWS_BY_NAME["roberta-large/squad"], paper.ROWS_BY_NAME["roberta-large/squad_v2"]
    assert (v1.reference_exact, v1.reference, v2.reference_exact, v2.reference) == (88.1, 94.2, 81.3, 84.7)
    data = tmp_path / "data"
    (data / "squad").mkdir(parents=True)
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (data / "squad" / name).write_text((SQUAD / name).read_text())
    output_dir = tmp_path / "out"
    extra = ["--use_cpu", "--max_seq_length", "64", "--doc_stride", "16", "--disable_tqdm", "true"]
    extra += ["--max_train_samples", "4", "--max_eval_samples", "4"]
    command = paper.command(v1, tiny_roberta_model, data, output_dir, 1 / 30, extra)
    assert command[1].endswith("examples/run_qa.py")
    text = " ".join(command)
    for setting in (
        "--pre_seq_len 16",
        "--learning_rate 0.005",
        "--per_device_train_batch_size 8",
        "--seed 11",
        "--hidden_dropout_prob 0.2",
        "--num_train_epochs 1",
        "--eval_strategy epoch",
    ):
        assert setting in text, setting
    assert "--version_2_with_negative" in " ".join(paper.command(v2, tiny_roberta_model, data, output_dir, 1, []))
    assert paper.missing_inputs(v1, tiny_roberta_model, data) is None
    assert paper.missing_inputs(v2, tiny_roberta_model, data).startswith("no data folder")
    results = run_qa.main(command[2:])
    score, epoch = paper.best_score(output_dir, ner=False, qa=True)
    assert score == pytest.approx(results["best_eval_f1"]) and epoch == 1
    assert paper.exact_at_best(output_dir) == pytest.approx(results["eval_exact_match"])
