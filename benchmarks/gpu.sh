#!/usr/bin/env bash
# Everything issue 16 needs a GPU for, in one go on one GPU (about two hours on an H100, estimated):
#   1. the bf16 cost suite (benchmarks/cost.py --bf16: step time, memory, inference, with ratios to full
#      fine-tuning), and
#   2. P-tuning v2's RoBERTa-large rows at the reference's settings, OntoNotes left out (60 epochs over
#      60k sentences alone take hours): BoolQ, COPA, RTE, WiC, WSC, CoNLL-2003, CoNLL-2004, under bf16.
#
#   MODELS=/path/to/models DATA=/path/to/data bash benchmarks/gpu.sh [more benchmarks/paper.py flags]
#
# MODELS holds roberta-large/ (and bert-large-*/ for the BERT rows), DATA the SuperGLUE downloads and the
# CoNLL folders, as `python benchmarks/paper.py --help` says. Results: benchmarks/results/cost_bf16.json and
# benchmarks/results/paper/table.json; record them in benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MODELS:?set MODELS to the folder holding roberta-large/}"
: "${DATA:?set DATA to the folder holding the SuperGLUE and CoNLL data}"
python benchmarks/cost.py --bf16 --output benchmarks/results/cost_bf16.json
python benchmarks/paper.py --models_dir "$MODELS" --data_dir "$DATA" \
  --rows roberta-large/boolq roberta-large/copa roberta-large/rte roberta-large/wic roberta-large/wsc \
         roberta-large/conll2003 roberta-large/conll2004 \
  "$@" --extra --bf16
