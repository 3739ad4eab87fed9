"""NER building blocks: CoNLL/json readers, tag schemes, windows, sub-word alignment, seqeval scores."""

from __future__ import annotations

import logging
import random
import re

import numpy as np
import pytest
from conftest import FIXTURES
from conlleval import conlleval
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from prefix_models.scripts.ner.data import (
    Sentence,
    check_labels,
    check_tags,
    detect_scheme,
    label_list_from,
    read_conll,
    read_json_lines,
    to_datasets,
)
from prefix_models.scripts.ner.features import (
    align_predictions,
    b_to_i,
    seqeval_scores,
    tokenize,
    word_windows,
    write_conll,
)

NER = FIXTURES / "ner_data"


def sentences(*tag_lists: str) -> list[Sentence]:
    out = []
    for tags in tag_lists:
        tags = tags.split()
        out.append(Sentence([f"w{i}" for i in range(len(tags))], tags, list(range(1, len(tags) + 1)), "test"))
    return out


def test_read_conll_fixture_matches_the_json_lines_copy():
    conll = read_conll(NER / "train.txt")
    jsonl = read_json_lines(NER / "train.jsonl", "tokens", "ner_tags")
    assert len(conll) == len(jsonl) == 160
    assert [(s.tokens, s.tags) for s in conll] == [(s.tokens, s.tags) for s in jsonl]
    assert all("-DOCSTART-" not in s.tokens for s in conll)


def test_read_conll_separators_tag_column_and_tagless_files(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text("-DOCSTART-\tO\n\nJohn\tNNP\tB-PER\nlives  \tVBZ\tO\n\nin\tIN\tO\nParis\tNNP\tB-LOC\n")
    parsed = read_conll(path)
    assert [s.tokens for s in parsed] == [["John", "lives"], ["in", "Paris"]]
    assert [s.tags for s in parsed] == [["B-PER", "O"], ["O", "B-LOC"]]
    assert parsed[1].lines == [6, 7]
    assert [s.tags for s in read_conll(path, tag_column=1)] == [["NNP", "VBZ"], ["IN", "NNP"]]
    spaces = tmp_path / "spaces.txt"
    spaces.write_text("John   B-PER\nSmith I-PER\n")  # runs of spaces
    assert read_conll(spaces)[0].tags == ["B-PER", "I-PER"]
    tokens_only = tmp_path / "tokens.txt"
    tokens_only.write_text("John\nSmith\n\nhello\n")
    assert [(s.tokens, s.tags) for s in read_conll(tokens_only)] == [(["John", "Smith"], None), (["hello"], None)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("John B-PER\nSmith I-PER extra\n", "line 2: expected 2 columns (as on line 1), found 3"),
        ("John NNP B-PER\n", "--tag_column 5 does not name a tag column"),
    ],
)
def test_read_conll_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        read_conll(path, tag_column=5 if "tag_column" in message else -1, flag="--train_file")
    assert str(path) in str(error.value) and "--train_file" in str(error.value)


def test_read_conll_rejects_non_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Müller B-PER\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_conll(path)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"tokens": "John", "ner_tags": ["B-PER"]}', "must be a list of strings"),
        ('{"tokens": ["John"], "ner_tags": ["B-PER", "O"]}', "1 tokens but 2 tags"),
        ('{"words": ["John"]}', "expected an object with a 'tokens' list"),
        ("{not json", "not valid json"),
    ],
)
def test_read_json_lines_errors(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["ok"], "ner_tags": ["O"]}\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as error:
        read_json_lines(path, "tokens", "ner_tags")
    assert "line 2" in str(error.value)


@pytest.mark.parametrize(
    "tags, scheme",
    [
        (["B-PER I-PER O B-LOC", "O O"], "IOB2"),
        (["I-PER I-PER O I-LOC", "I-LOC B-LOC"], "IOB1"),
        (["S-PER O B-LOC E-LOC"], "BIOES"),
        (["O O O"], "IOB2"),
    ],
)
def test_detect_scheme(tags, scheme):
    assert detect_scheme(sentences(*tags)) == scheme


def test_check_tags_errors_on_foreign_tags_and_warns_on_ill_formed_sequences(caplog):
    with pytest.raises(ValueError, match=r"test, line 2: tag 'S-PER' is not in the IOB2 scheme"):
        check_tags(sentences("O S-PER"), "IOB2")
    with pytest.raises(ValueError, match="tag 'PERSON' is not in the IOB2 scheme"):
        check_tags(sentences("PERSON O"), "IOB2")
    with caplog.at_level(logging.WARNING):
        check_tags(sentences("O I-PER O", "B-LOC I-LOC"), "IOB2")  # I- after O: a warning, not a crash
    assert "1 tag(s) do not follow the IOB2 scheme" in caplog.text and "line 2: I-PER after O" in caplog.text


def test_label_list_and_unseen_labels():
    data = sentences("B-PER I-PER O B-LOC", "B-MISC O")
    assert label_list_from(data) == ["O", "B-LOC", "B-MISC", "B-PER", "I-PER"]
    with pytest.raises(ValueError, match=r"test, line 2: label 'B-ORG' is not among the labels"):
        check_labels({"test": sentences("O B-ORG")}, label_list_from(data), "found in the training data")


def test_b_to_i():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "S-ORG", "I-ORG"]
    assert b_to_i(labels) == [0, 2, 2, 3, 5, 5]


@pytest.mark.parametrize("budget", [1, 2, 3, 5, 8, 100])
def test_word_windows_cover_every_word_once(budget):
    lengths = [1, 3, 2, 1, 1, 4, 1, 2, 2]
    windows = word_windows(lengths, budget)
    assert windows[0][0] == 0 and windows[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))  # consecutive, no overlap
    for start, end in windows:
        assert end > start
        assert sum(lengths[start:end]) <= budget or end - start == 1


@pytest.mark.parametrize("max_seq_length", [6, 9, 64])
def test_tokenize_windows_and_alignment_round_trip(tokenizer, max_seq_length):
    data = read_conll(NER / "test.txt")
    dataset = to_datasets({"test": data})["test"]
    labels = label_list_from(data)
    label_to_id = {label: i for i, label in enumerate(labels)}
    features = tokenize(dataset, tokenizer, label_to_id, max_seq_length)
    assert max(len(ids) for ids in features["input_ids"]) <= max_seq_length
    assert (len(features) > len(dataset)) == (max_seq_length < 64)  # the 60-word sentence needs windows
    # "Predict" the gold label at every labelled position: alignment must give back the gold tags per word.
    width = max(len(ids) for ids in features["input_ids"])
    predicted = np.full((len(features), width), -1)
    for row, row_labels in enumerate(features["labels"]):
        for position, label in enumerate(row_labels):
            if label != -100:
                predicted[row, position] = label
    words = align_predictions(features, predicted, [len(s.tokens) for s in data])
    assert [[labels[i] for i in sentence] for sentence in words] == [s.tags for s in data]
    # Each word's label sits on its first sub-word only: one labelled position per word.
    assert sum(label != -100 for row in features["labels"] for label in row) == sum(len(s.tokens) for s in data)


def test_label_all_tokens_labels_later_sub_words_inside(tokenizer):
    data = [Sentence(["directors", "musics"], ["B-PER", "I-PER"], [1, 2], "x")]  # director ##s, music ##s
    labels = ["O", "B-PER", "I-PER"]
    features = tokenize(to_datasets({"t": data})["t"], tokenizer, {x: i for i, x in enumerate(labels)}, 16, True)
    assert features["labels"][0] == [-100, 1, 2, 2, 2, -100]
    first_only = tokenize(to_datasets({"t": data})["t"], tokenizer, {x: i for i, x in enumerate(labels)}, 16)
    assert first_only["labels"][0] == [-100, 1, -100, 2, -100, -100]


def test_words_the_tokenizer_drops_still_get_a_prediction(tokenizer):
    data = [Sentence(["the", "\u200b", "movie"], ["O", "O", "B-PER"], [1, 2, 3], "x")]
    features = tokenize(to_datasets({"t": data})["t"], tokenizer, {"O": 0, "B-PER": 1}, 16)
    predicted = np.array([[0, 0, 0, 1, 0]])
    assert align_predictions(features, predicted, [3]) == [[0, 0, 1]]


def test_seqeval_scores_on_a_known_answer():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "B-PER"]]
    # 2 of 3 gold entities found; 2 of 3 predicted entities right.
    scores = seqeval_scores(gold, predicted, "IOB2", entity_level=True)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3) and scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["LOC_recall"] == pytest.approx(0.5) and scores["LOC_number"] == 2
    assert scores["PER_precision"] == pytest.approx(0.5) and scores["PER_f1"] == pytest.approx(2 / 3)
    # conlleval counts a span opened by I- after O as an entity; strict IOB2 scoring does not.
    ill_formed = seqeval_scores([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], "IOB2")
    assert ill_formed["f1"] == 1.0 and ill_formed["strict_f1"] == 0.0
    assert seqeval_scores([["I-PER", "I-PER"]], [["I-PER", "I-PER"]], "IOB1")["strict_f1"] == 1.0


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES"])
def test_headline_scores_are_conllevals(scheme, tmp_path):
    """Random, often ill-formed tag sequences: the headline scores equal an independent conlleval
    re-implementation reading the written predictions file."""
    rng = random.Random(0)
    prefixes = "BI" if scheme == "IOB2" else "BIES"
    tags = ["O"] + [f"{p}-{kind}" for p in prefixes for kind in ("PER", "LOC")]
    sentences, gold, predicted = [], [], []
    for i in range(60):
        length = rng.randint(1, 12)
        gold.append([rng.choice(tags) for _ in range(length)])
        predicted.append([tag if rng.random() < 0.6 else rng.choice(tags) for tag in gold[-1]])
        sentences.append(Sentence([f"w{i}_{j}" for j in range(length)], gold[-1], [0] * length, "x"))
    path = tmp_path / "predictions.txt"
    write_conll(path, to_datasets({"t": sentences})["t"], predicted)
    ours, reference = seqeval_scores(gold, predicted, scheme), conlleval(path)
    for name in ("precision", "recall", "f1"):
        assert ours[name] == pytest.approx(reference[name]), name
    assert ours["strict_f1"] != pytest.approx(ours["f1"])  # the data exercises where the two modes differ


def test_write_conll_is_read_back_and_rescored(tmp_path):
    data = to_datasets({"t": [Sentence(["New York", "is"], ["B-LOC", "O"], [1, 2], "x")]})["t"]
    path = tmp_path / "predictions.txt"
    write_conll(path, data, [["B-LOC", "B-PER"]])
    back = read_conll(path)
    assert back[0].tokens == ["New_York", "is"]
    gold = [[line.split()[1] for line in path.read_text().splitlines() if line]]
    predicted = [[line.split()[2] for line in path.read_text().splitlines() if line]]
    assert gold == [["B-LOC", "O"]] and predicted == [["B-LOC", "B-PER"]]
    assert f1_score(gold, predicted, mode="strict", scheme=IOB2) == pytest.approx(2 / 3)  # P = 1/2, R = 1
