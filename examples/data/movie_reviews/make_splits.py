"""Rebuild the movie-review sentiment splits used by the offline quick start.

Input: ``movieReviewSnippets_GroundTruth.txt`` from
``additional_resources/hutto_ICWSM_2014.tar.gz`` inside the vaderSentiment
3.3.2 source distribution (see README.md in this folder).  Each line holds
``id<TAB>mean score (-4..+4)<TAB>sentence``.

Output: ``train.csv``, ``validation.csv`` and ``test.csv`` with the columns
``id,sentence,label,score``.

Usage::

    python make_splits.py path/to/movieReviewSnippets_GroundTruth.txt
"""

import argparse
import csv
import random
from pathlib import Path

SEED = 42
TRAIN_FRACTION = 0.8
VALIDATION_FRACTION = 0.1
FIELDS = ["id", "sentence", "label", "score"]


def read_rows(path, encoding):
    """Parse the ground-truth file into a list of dicts, dropping neutral and
    duplicate sentences.  Returns ``(rows, n_zero, n_duplicate)``."""
    text = Path(path).read_bytes().decode(encoding)
    rows, seen = [], set()
    n_zero = n_duplicate = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        snippet_id, score, sentence = line.split("\t", 2)
        snippet_id, score, sentence = snippet_id.strip(), score.strip(), sentence.strip()
        value = float(score)
        if value == 0:
            # A mean score of exactly zero has no polarity: leave it out.
            n_zero += 1
            continue
        if sentence in seen:
            # Same sentence seen before: keep only its first occurrence.
            n_duplicate += 1
            continue
        seen.add(sentence)
        rows.append(
            {
                "id": snippet_id,
                "sentence": sentence,
                "label": "positive" if value > 0 else "negative",
                # Keep the score exactly as written in the source file.
                "score": score,
            }
        )
    return rows, n_zero, n_duplicate


def split_rows(rows, seed=SEED):
    """Shuffle a copy of ``rows`` with a fixed seed and cut it 80/10/10."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    n_train = int(len(order) * TRAIN_FRACTION)
    n_validation = int(len(order) * VALIDATION_FRACTION)
    return {
        "train": order[:n_train],
        "validation": order[n_train : n_train + n_validation],
        "test": order[n_train + n_validation :],
    }


def write_csv(path, rows):
    # newline="" hands line endings to the csv module; use plain "\n" so the
    # files diff cleanly in git.  Fields are quoted only where needed.
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="path to movieReviewSnippets_GroundTruth.txt")
    parser.add_argument(
        "--out-dir",
        default=str(Path(__file__).resolve().parent),
        help="folder for the CSV files (default: this script's folder)",
    )
    parser.add_argument(
        "--encoding",
        default="utf-8",
        help="text encoding of the source file (the 3.3.2 copy is UTF-8)",
    )
    args = parser.parse_args()

    rows, n_zero, n_duplicate = read_rows(args.source, args.encoding)
    print(f"kept {len(rows)} rows; dropped {n_zero} zero-score, {n_duplicate} duplicate")

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in split_rows(rows).items():
        write_csv(out_dir / f"{name}.csv", part)
        positive = sum(row["label"] == "positive" for row in part)
        print(f"{name}: {len(part)} rows ({positive} positive, {len(part) - positive} negative)")


if __name__ == "__main__":
    main()
