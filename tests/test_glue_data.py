"""Readers: hub-shaped records and official files normalise to the same rows."""

from __future__ import annotations

import math

from conftest import FIXTURES

from prefix_models.scripts.glue.data import _hub_rows, load_from_data_dir
from prefix_models.scripts.glue.tasks import get_task


def test_hub_records_map_like_the_official_files():
    mnli = _hub_rows(get_task("mnli"), {"premise": "p", "hypothesis": "h", "label": 2, "idx": 7}, 0, "hub")
    assert mnli == [{"idx": 7, "text_a": "p", "text_b": "h", "label": 2}]
    stsb = _hub_rows(get_task("stsb"), {"sentence1": "a", "sentence2": "b", "label": 3.5, "idx": 1}, 0, "hub")
    assert stsb[0]["label"] == 3.5
    unlabelled = _hub_rows(get_task("stsb"), {"sentence1": "a", "sentence2": "b", "label": -1, "idx": 1}, 0, "hub")
    assert math.isnan(unlabelled[0]["label"])

    boolq = _hub_rows(get_task("boolq"), {"question": "q", "passage": "p", "idx": 3, "label": 1}, 0, "hub")
    assert boolq == [{"idx": 3, "text_a": "q", "text_b": "p", "label": 1}]
    wsc = _hub_rows(
        get_task("wsc"),
        {
            "text": "t",
            "span1_index": 0,
            "span2_index": 3,
            "span1_text": "the film",
            "span2_text": "it",
            "idx": 0,
            "label": 0,
        },
        0,
        "hub",
    )
    assert wsc[0]["text_b"] == "it refers to the film" and wsc[0]["label"] == 0
    copa = _hub_rows(
        get_task("copa"),
        {"premise": "p", "choice1": "a", "choice2": "b", "question": "effect", "idx": 0, "label": 1},
        0,
        "hub",
    )
    assert copa == [{"idx": 0, "text_a": "p", "choices": ["so a", "so b"], "label": 1}]

    multirc = _hub_rows(
        get_task("multirc"),
        {
            "paragraph": "<b>Sent 1: </b>Text.<br>",
            "question": "Q?",
            "answer": "A",
            "idx": {"paragraph": 2, "question": 5, "answer": 9},
            "label": 1,
        },
        0,
        "hub",
    )
    assert multirc == [
        {
            "idx": 9,
            "text_a": "Sent 1: Text.",
            "text_b": "Q? A",
            "label": 1,
            "group": 5,
            "passage_idx": 2,
            "question_idx": 5,
            "answer_idx": 9,
        }
    ]

    hub_record = {
        "passage": "Ann met Bob.\n@highlight\nAnn smiled",
        "query": "@placeholder met",
        "entities": ["Ann", "Bob"],
        "answers": ["Ann"],
        "idx": {"passage": 0, "query": 4},
    }
    record = _hub_rows(get_task("record"), hub_record, 0, "hub")
    assert [(r["candidate"], r["label"], r["text_b"]) for r in record] == [("Ann", 1, "Ann met"), ("Bob", 0, "Bob met")]
    assert all(r["group"] == 4 and r["answers"] == ["Ann"] for r in record)


def test_official_files_normalise():
    rte, benchmark = load_from_data_dir(get_task("rte"), str(FIXTURES / "glue_data"))
    assert benchmark == "glue" and set(rte) == {"train", "validation", "test"}
    assert set(rte["train"]["label"]) == {0, 1} and set(rte["test"]["label"]) == {-1}
    rte_sg, benchmark = load_from_data_dir(get_task("rte"), str(FIXTURES / "super_glue_data"))
    assert benchmark == "super_glue" and rte_sg["train"]["text_a"] == rte["train"]["text_a"]

    mnli, _ = load_from_data_dir(get_task("mnli"), str(FIXTURES / "glue_data" / "MNLI"))
    assert set(mnli) == {"train", "validation", "validation_mismatched", "test", "test_mismatched"}
    assert any('"' in text for text in mnli["train"]["text_b"])  # QUOTE_NONE keeps literal quotes

    cola, _ = load_from_data_dir(get_task("cola"), str(FIXTURES / "glue_data"))
    assert cola["train"]["text_b"] == [None] * len(cola["train"]) and set(cola["train"]["label"]) == {0, 1}

    record, _ = load_from_data_dir(get_task("record"), str(FIXTURES / "super_glue_data"))
    for row in record["validation"]:
        assert row["text_b"].count(row["candidate"]) >= 1 and "@placeholder" not in row["text_b"]
        assert row["label"] == int(row["candidate"] in row["answers"])
    multirc, _ = load_from_data_dir(get_task("multirc"), str(FIXTURES / "super_glue_data"))
    assert not any("<b>" in text or "<br>" in text for text in multirc["validation"]["text_a"])
