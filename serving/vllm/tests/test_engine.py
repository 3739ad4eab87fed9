"""Served by vLLM == the project's own generate: greedy tokens for every request, tasks of every prefix length (1 to
128) and prompts, and the plain base, mixed in one batch, cold and warm cache, under preemption, for a Llama
(grouped-query attention), a Qwen2 (q/k/v biases, one key/value head, YaRN scaling), GPT-2 (learned absolute
positions, peft positions), a Qwen3 (q/k norms) and a Cohere (interleaved rotary embedding)."""

from __future__ import annotations

import random

import pytest
from engines import greedy, metric, start_engine, stop_engine
from prefix_models_vllm import cache_salt, prefixed_prompt
from vllm import SamplingParams


def _shuffled(family: dict, seed: int) -> tuple[list[dict], list[list[int]]]:
    order = list(range(len(family["requests"])))
    random.Random(seed).shuffle(order)
    return [family["requests"][i] for i in order], [family["tokens"][i] for i in order]


def _mismatches(outputs, requests, expected, count: int | None = None) -> list[str]:
    """Requests whose first ``count`` served tokens (all by default) are not the expected ones."""
    served = [list(output.token_ids)[:count] for output in outputs]
    return [
        f"{request['task'] or 'base'} prompt of {len(request['prompt'])}: {got} != {tokens}"
        for got, request, tokens in zip(served, requests, expected, strict=True)
        if got != tokens
    ]


@pytest.fixture(scope="module", params=["llama", "qwen2", "gpt2", "qwen3", "cohere"])
def served(request, cases):
    family = cases["families"][request.param]
    llm = start_engine(family["base"], family["tasks"])
    yield family, llm
    stop_engine(llm)


def test_tasks_and_base_mixed_in_one_batch_equal_the_project_generate_cold_and_warm(served):
    family, llm = served
    for round_, seed in (("cold", 0), ("warm", 1)):
        requests, expected = _shuffled(family, seed)
        outputs = greedy(llm, requests, family["tasks"], family["new_tokens"])
        assert _mismatches(outputs, requests, expected) == [], round_
    # The warm round found the prefixes' blocks (salted per task) in the prefix cache.
    assert metric(llm, "vllm:prefix_cache_hits") > 0


def test_requests_with_wrong_placeholders_are_refused_not_served_plain(served):
    family, llm = served
    task = next(iter(family["tasks"]))
    good = prefixed_prompt(task, family["requests"][0]["prompt"], family["tasks"])
    length = len(good["prompt_token_ids"]) - len(family["requests"][0]["prompt"])
    prompt = [5, 6, 7, 8, 9]
    bad = [
        {"prompt_token_ids": prompt, "cache_salt": cache_salt(task)},  # no placeholders
        {"prompt_token_ids": [0] * (length + 1) + prompt, "cache_salt": cache_salt(task)},  # one too many
        {"prompt_token_ids": [0] * length + prompt, "cache_salt": cache_salt("unknown")},  # a task not served
    ]
    if length > 1:
        bad.append({"prompt_token_ids": [0] * (length - 1) + prompt, "cache_salt": cache_salt(task)})
    params = SamplingParams(temperature=0.0, max_tokens=4, min_tokens=4, ignore_eos=True, detokenize=False)
    outputs = llm.generate([good, *bad], params, use_tqdm=False)
    assert outputs[0].outputs[0].finish_reason == "length"
    assert list(outputs[0].outputs[0].token_ids) == family["tokens"][0][:4]
    assert [output.outputs[0].finish_reason for output in outputs[1:]] == ["error"] * len(bad)


def test_preempted_requests_come_back_with_their_prefix(cases):
    family = cases["families"]["llama"]
    # 9 blocks of 32 tokens for 21 requests of up to 128 + 36 + 48 tokens: the scheduler preempts and recomputes.
    per_token = 2 * 2 * 2 * 32 * 4  # layers x (key, value) x kv heads x head_dim x float32
    llm = start_engine(
        family["base"], family["tasks"], kv_cache_memory_bytes=9 * 32 * per_token, max_model_len=256, max_num_seqs=32
    )
    try:
        requests, expected = _shuffled(family, 2)
        together = greedy(llm, requests, family["tasks"], 48)
        assert metric(llm, "vllm:num_preemptions") > 0
        # The first tokens are the project's; all 48 are those of each request served alone (never preempted).
        assert _mismatches(together, requests, expected, count=family["new_tokens"]) == []
        alone = [greedy(llm, [request], family["tasks"], 48)[0] for request in requests]
        assert [list(output.token_ids) for output in together] == [list(output.token_ids) for output in alone]
    finally:
        stop_engine(llm)


def test_an_unknown_task_names_the_known_ones(cases):
    tasks = cases["families"]["llama"]["tasks"]
    with pytest.raises(ValueError, match="unknown task 'nope'; the engine serves the tasks: .*p16"):
        prefixed_prompt("nope", [5, 6], tasks)
    assert prefixed_prompt(None, [5, 6], tasks) == {"prompt_token_ids": [5, 6]}
    assert prefixed_prompt("p16", [5, 6], tasks) == {"prompt_token_ids": [0] * 16 + [5, 6], "cache_salt": "prefix:p16"}
