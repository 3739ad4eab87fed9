"""An independent re-implementation of conlleval's chunk counting (the CoNLL-2000 perl script), to
check the scores run_ner.py reports against the predictions it writes.

It reads ``token gold predicted`` lines (blank line between sentences) and counts chunks as the
script does: a chunk starts and ends by the rules of its ``startOfChunk`` / ``endOfChunk``, and a
predicted chunk is correct when it starts and ends where a gold chunk of the same type does. No
seqeval code is used.
"""

from __future__ import annotations

from pathlib import Path


def _split(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, kind = tag.split("-", 1)
    return prefix, kind


def _ends(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    if prev_tag in ("B", "I") and tag in ("B", "O", "S"):
        return True
    if prev_tag in ("E", "S"):
        return True
    return prev_tag != "O" and prev_type != kind


def _starts(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("I", "E"):
        return True
    return tag != "O" and prev_type != kind


def conlleval(path: str | Path) -> dict[str, float]:
    """Overall precision, recall and F1 of the chunks in a ``token gold predicted`` file."""
    correct = found_gold = found_guess = 0
    in_correct = False
    prev = {"gold": ("O", ""), "guess": ("O", "")}
    rows = [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    for fields in [*rows, []]:  # a final blank line closes the last sentence
        gold, guess = (_split(fields[-2]), _split(fields[-1])) if fields else (("O", ""), ("O", ""))
        gold_end = _ends(prev["gold"][0], gold[0], prev["gold"][1], gold[1])
        guess_end = _ends(prev["guess"][0], guess[0], prev["guess"][1], guess[1])
        gold_start = _starts(prev["gold"][0], gold[0], prev["gold"][1], gold[1])
        guess_start = _starts(prev["guess"][0], guess[0], prev["guess"][1], guess[1])
        if in_correct:
            if gold_end and guess_end and prev["gold"][1] == prev["guess"][1]:
                in_correct = False
                correct += 1
            elif gold_end != guess_end or gold[1] != guess[1]:
                in_correct = False
        if gold_start and guess_start and gold[1] == guess[1]:
            in_correct = True
        found_gold += gold_start
        found_guess += guess_start
        prev = {"gold": gold, "guess": guess}
    precision = correct / found_guess if found_guess else 0.0
    recall = correct / found_gold if found_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
