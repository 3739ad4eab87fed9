"""Every folder the connector cannot serve exactly is refused in one line naming the task and the reason, checked
against the engine's model as vLLM describes it (its ``ModelConfig``), before any engine starts."""

from __future__ import annotations

import pytest
from prefix_models_vllm import EngineModel, PrefixFolderError, load_tasks
from vllm.config import ModelConfig


def engine_model(base: str) -> EngineModel:
    return EngineModel.from_model_config(ModelConfig(model=base, skip_tokenizer_init=True, dtype="float32"))


REFUSALS = [
    "partial_layers",
    "other_base",
    "other_shape",
    "absolute_positions",
    "sliding_window",
    "transformers_backend",
    "encoder_only",
    "encoder_decoder",
    "not_a_prefix",
    "full_save",
    "missing",
]


@pytest.mark.parametrize("name", REFUSALS)
def test_a_folder_that_cannot_be_served_exactly_is_refused_in_one_line(cases, name):
    case = cases["refusals"][name]
    with pytest.raises(PrefixFolderError) as error:
        load_tasks({"task-x": case["folder"]}, engine_model(case["base"]))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("task 'task-x': ")
    assert case["phrase"] in message


def test_every_family_case_loads_on_its_own_base(cases):
    for family in cases["families"].values():
        tasks = load_tasks(family["tasks"], engine_model(family["base"]))
        assert sorted(tasks) == sorted(family["tasks"])


def test_a_prefix_for_another_base_is_served_only_when_asked(cases, caplog):
    case = cases["refusals"]["other_base"]
    tasks = load_tasks({"t": case["folder"]}, engine_model(case["base"]), ignore_mismatched_base=True)
    assert tasks["t"].pre_seq_len == 4
    assert "base_model_fingerprint" in caplog.text


@pytest.mark.parametrize("prefixes", [["a", "b"], {"": "x"}, {"a/b": "x"}])
def test_the_prefixes_setting_must_map_task_names_to_folders(cases, prefixes):
    with pytest.raises(PrefixFolderError):
        load_tasks(prefixes, engine_model(cases["families"]["llama"]["base"]))
