"""The HTTP server (``python -m prefix_models_vllm.serve``) against a real client, in vLLM's venv.

One server is started for the module (engine start is ~30 s) on a tiny Llama with a tokenizer and a chat template
and two tasks (P=5 and P=40); every request's greedy tokens must equal the project's own ``generate`` for the same
token ids, computed by ``http_references.py`` in the project's venv (``PREFIX_MODELS_PYTHON``, default
``.venv/bin/python`` at the repository root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from project import project_python, write_references

BASE_NAME = "tinybase"  # --served-model-name: the base is asked for by this name
STARTUP_SECONDS = 600
# Small and exact: float32, no graph capture, a 64 MiB KV cache (without it vLLM takes most of the machine's memory).
ENGINE_FLAGS = (
    f"--dtype float32 --enforce-eager --block-size 32 --max-model-len 256 --kv-cache-memory-bytes {64 << 20} "
    "--max-num-seqs 8 --seed 0"
).split()


pytestmark = pytest.mark.skipif(
    project_python() is None,
    reason="no project venv for the reference tokens: set PREFIX_MODELS_PYTHON to the python of a venv with "
    "prefix-models installed (default .venv/bin/python at the repository root)",
)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``http_cases.json``: the base, the task folders, and every request with the project's greedy tokens."""
    return write_references("http_references.py", str(tmp_path_factory.mktemp("http")), "http_cases.json")


def serve_command(references: dict[str, Any], *extra: str) -> list[str]:
    prefixes = [f"--prefix={task}={path}" for task, path in references["prefixes"].items()]
    return [sys.executable, "-m", "prefix_models_vllm.serve", references["base"], *prefixes, *extra]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server (it shuts its engine down), then SIGKILL to whatever of its process group is left."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): only the server's processes
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(references: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a server serving the two tasks; terminated when the module ends, whatever happened."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = serve_command(
        references,
        *ENGINE_FLAGS,
        "--served-model-name",
        BASE_NAME,
        "--enable-prompt-tokens-details",  # usage.prompt_tokens_details.cached_tokens
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            start_new_session=True,  # its own process group, so its engine processes can be killed with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server ended (exit {process.returncode}):\n{log_path.read_text()[-6000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /health after {STARTUP_SECONDS} s:\n{log_path.read_text()[-6000:]}")
            time.sleep(1)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", timeout=300, max_retries=0)


def ask(client: openai.OpenAI, case: dict[str, Any], new_tokens: int) -> dict[str, Any]:
    """One reference case sent as its request (greedy, exactly ``new_tokens`` tokens): what came back."""
    model = case["task"] or BASE_NAME
    settings = dict(
        model=model,
        max_tokens=new_tokens,
        temperature=0,
        extra_body={"min_tokens": new_tokens, "return_token_ids": True},
    )
    if case["kind"] == "chat":
        response = client.chat.completions.create(messages=case["messages"], **settings)
        prompt_ids = response.prompt_token_ids
    else:
        response = client.completions.create(prompt=case["prompt"], **settings)
        prompt_ids = response.choices[0].prompt_token_ids
    return {
        "model": response.model,
        "tokens": response.choices[0].token_ids,
        "prompt_ids": prompt_ids,
        "prompt_tokens": response.usage.prompt_tokens,
    }


def expected(case: dict[str, Any]) -> dict[str, Any]:
    """What the server must answer: the project's tokens, and the real prompt (no placeholders) in the usage."""
    return {
        "model": case["task"] or BASE_NAME,
        "tokens": case["tokens"],
        "prompt_ids": case["ids"],
        "prompt_tokens": len(case["ids"]),
    }


def mismatches(client: openai.OpenAI, references: dict[str, Any], cases: list[dict[str, Any]]) -> list[str]:
    wrong = []
    for case in cases:
        got = ask(client, case, references["new_tokens"])
        if got != expected(case):
            wrong.append(f"{case['kind']} {case['task']}: got {got}, expected {expected(case)}")
    return wrong


# ---------------------------------------------------------------------------------------------------- before start


def test_a_bad_folder_is_refused_before_the_engine_starts(references: dict[str, Any], tmp_path) -> None:
    """A prefix on part of the layers: one line naming the task, exit 2, no engine, no traceback."""
    partial = tmp_path / "partial"
    shutil.copytree(references["prefixes"]["sentiment"], partial)
    config = json.loads((partial / "config.json").read_text())
    config["prefix_layers"] = [0]
    (partial / "config.json").write_text(json.dumps(config))
    command = serve_command(references, f"--prefix=partial={partial}", *ENGINE_FLAGS)
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    output = run.stdout + run.stderr
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert run.returncode == 2, output
    assert errors == [errors[-1]] and errors[0].startswith("serve: error: task 'partial': "), output
    assert "layers [0]" in errors[0], output
    assert output.rstrip().endswith(errors[0]), output
    assert "Traceback" not in output and "EngineCore" not in output, output


def test_a_block_size_the_cpu_backend_rejects_is_refused_before_the_engine_starts(references: dict[str, Any]) -> None:
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        pytest.skip("the block-size rule checked here is vLLM's CPU backend's")
    command = serve_command(references, *ENGINE_FLAGS, "--block-size", "16")
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    output = (run.stdout + run.stderr).rstrip()
    assert run.returncode == 2, output
    assert output.splitlines()[-1].startswith("serve: error: --block-size 16: "), output
    assert "multiples of 32" in output and "Traceback" not in output, output


# ---------------------------------------------------------------------------------------------------- served


def test_models_lists_the_base_and_every_task(client: openai.OpenAI, references: dict[str, Any]) -> None:
    cards = {card.id: card for card in client.models.list().data}
    assert set(cards) == {BASE_NAME, *references["prefixes"]}
    for task, path in references["prefixes"].items():
        assert cards[task].root == path
        assert cards[task].parent == BASE_NAME


def test_completions_of_tasks_equal_the_project_generate(client: openai.OpenAI, references: dict[str, Any]) -> None:
    """Text prompts and token-id prompts, each task: tokens, prompt ids and usage of the real prompt."""
    cases = [case for case in references["cases"] if case["task"] and case["kind"] in ("text", "tokens")]
    assert {case["task"] for case in cases} == set(references["prefixes"])
    assert mismatches(client, references, cases) == []


def test_chat_of_tasks_equals_the_project_generate_over_the_templated_ids(
    client: openai.OpenAI, references: dict[str, Any]
) -> None:
    cases = [case for case in references["cases"] if case["task"] and case["kind"] == "chat"]
    assert mismatches(client, references, cases) == []


def test_the_base_by_its_name_is_served_plain(client: openai.OpenAI, references: dict[str, Any]) -> None:
    cases = [case for case in references["cases"] if case["task"] is None]
    assert mismatches(client, references, cases) == []
    # The tasks' prefixes change the answers: a task served plain would not pass the tests above.
    plain = {(case["kind"], json.dumps(case["ids"])): case["tokens"] for case in cases}
    prefixed = [case for case in references["cases"] if case["task"]]
    assert all(case["tokens"] != plain[(case["kind"], json.dumps(case["ids"]))] for case in prefixed)


def test_tasks_and_the_base_mixed_in_concurrent_requests(client: openai.OpenAI, references: dict[str, Any]) -> None:
    cases = references["cases"] * 2  # every case twice: the second round finds the prefixes cached
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        answers = list(pool.map(lambda case: ask(client, case, references["new_tokens"]), cases))
    wrong = [(case["kind"], case["task"]) for case, got in zip(cases, answers, strict=True) if got != expected(case)]
    assert wrong == []


def test_streamed_answers_equal_the_whole_ones(client: openai.OpenAI, references: dict[str, Any]) -> None:
    new_tokens = references["new_tokens"]
    for kind in ("text", "chat"):
        case = next(case for case in references["cases"] if case["task"] == "sql" and case["kind"] == kind)
        settings = dict(
            model="sql",
            max_tokens=new_tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"min_tokens": new_tokens, "return_token_ids": True},
        )
        if kind == "chat":
            chunks = list(client.chat.completions.create(messages=case["messages"], **settings))
        else:
            chunks = list(client.completions.create(prompt=case["prompt"], **settings))
        # vLLM's token_ids extension is absent from chunks without new tokens (the role chunk, the usage chunk)
        steps = [getattr(chunk.choices[0], "token_ids", None) or [] for chunk in chunks if chunk.choices]
        tokens = [token for step in steps for token in step]
        assert tokens == case["tokens"], kind
        assert {chunk.model for chunk in chunks} == {"sql"}, kind
        assert chunks[-1].usage.prompt_tokens == len(case["ids"]), kind


def test_cached_tokens_count_the_real_prompt_only(client: openai.OpenAI, references: dict[str, Any]) -> None:
    """The second request of a task hits its first's blocks (prefix caching), and the usage counts the hit in the
    real prompt's tokens: the P placeholders, always in the cache, are not counted."""
    case = next(case for case in references["cases"] if case["task"] == "sql" and case["kind"] == "tokens")
    prompt = case["ids"] + [7] * 40  # a prompt of its own: the placeholders (P=40) and it fill 3 blocks of 32
    usages = [
        client.completions.create(model="sql", prompt=prompt, max_tokens=1, temperature=0).usage for _ in range(2)
    ]
    assert [usage.prompt_tokens for usage in usages] == [len(prompt)] * 2
    cached = [usage.prompt_tokens_details.cached_tokens for usage in usages]
    assert cached[0] == 0  # cold: only the placeholders came from elsewhere
    assert 0 < cached[1] < len(prompt) and (cached[1] + 40) % 32 == 0  # warm: whole blocks, the last token computed


def test_an_unknown_task_gets_404_with_the_served_names(client: openai.OpenAI) -> None:
    for call in (
        lambda: client.completions.create(model="sentiments", prompt="hi", max_tokens=2),
        lambda: client.chat.completions.create(
            model="sentiments", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        ),
    ):
        with pytest.raises(openai.NotFoundError) as error:
            call()
        assert "`sentiments` does not exist" in error.value.message
        assert "`sentiment`" in error.value.message and f"`{BASE_NAME}`" in error.value.message


@pytest.mark.parametrize(
    ("model", "settings", "says"),
    [
        ("sql", {"extra_body": {"cache_salt": "mine"}}, "leave cache_salt out"),
        ("sql", {"echo": True, "logprobs": 1}, "prompt logprobs"),
        ("sql", {"extra_body": {"prompt_logprobs": 1}}, "prompt logprobs"),
        ("sql", {"prompt": [0, 5, 6]}, "placeholder id"),
        (BASE_NAME, {"extra_body": {"cache_salt": "prefix:sql"}}, "pick a task with"),
    ],
)
def test_requests_a_task_cannot_serve_get_400(client: openai.OpenAI, model: str, settings: dict, says: str) -> None:
    request = {"model": model, "prompt": "hi", "max_tokens": 2, **settings}
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(**request)
    assert says in error.value.message


def test_other_endpoints_do_not_serve_a_task_plain(server: str) -> None:
    """``/tokenize`` knows the base only: a task's name is refused there, not served as the base."""
    response = httpx.post(f"{server}/tokenize", json={"model": "sql", "prompt": "hi"}, timeout=60)
    assert response.status_code == 404, response.text
