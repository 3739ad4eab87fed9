"""Each family's task heads drop out as the stock transformers head does: the same config field, the same
probability (DistilBERT's token classifier reads ``dropout``, not ``seq_classif_dropout``; a question-answering
head has none where the stock one has none)."""

from __future__ import annotations

import pytest
import torch
from test_families import FAMILIES, inputs, model_class
from tiny_families import ENCODER_CONFIGS
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

STOCK = {
    "SequenceClassification": AutoModelForSequenceClassification,
    "TokenClassification": AutoModelForTokenClassification,
    "MultipleChoice": AutoModelForMultipleChoice,
    "QuestionAnswering": AutoModelForQuestionAnswering,
}
# Every dropout field a family may read for its head, each set to its own value so that a head reading the
# wrong one shows.
FIELDS = {
    "classifier_dropout": 0.11,
    "classifier_dropout_prob": 0.12,
    "seq_classif_dropout": 0.13,
    "hidden_dropout_prob": 0.14,
    "dropout": 0.15,
    "qa_dropout": 0.16,
    "cls_dropout": 0.17,
    "pooler_dropout": 0.18,
    "summary_last_dropout": 0.19,
}


def stock_head_dropout(model, batch) -> float:
    """The probability of the last dropout the stock model runs outside its backbone (the one in front of its
    output layer), found by running it; 0.0 when its head runs none."""
    inside = {id(module) for module in model.base_model.modules()}
    called: list[float] = []
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and id(module) not in inside:
            module.register_forward_hook(lambda m, args, out: called.append(m.p))
    model.train()
    with torch.no_grad():
        model(**batch)
    return called[-1] if called else 0.0


@pytest.mark.parametrize("task", STOCK)
@pytest.mark.parametrize("family", FAMILIES)
def test_a_heads_dropout_is_the_stock_heads(family, task):
    config = ENCODER_CONFIGS[family]()
    known = {name: value for name, value in FIELDS.items() if hasattr(config, name)}
    config = ENCODER_CONFIGS[family](**known)
    batch = {key: value for key, value in inputs(family, task).items() if key not in ("labels",)}
    expected = stock_head_dropout(STOCK[task].from_config(config), batch)
    ours = model_class(family, "Prefix", task)(ENCODER_CONFIGS[family](**known, pre_seq_len=2))
    head = getattr(ours, ours.head_attribute)
    assert head.dropout.p == pytest.approx(expected), (
        f"{family} {task}: our head drops out with p={head.dropout.p}, the stock head with {expected}"
    )
