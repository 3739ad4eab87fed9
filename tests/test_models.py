"""Invariants every one of the 16 encoder classes must pass (tiny random backbones)."""

from __future__ import annotations

import pytest
import torch
from conftest import ALL_CLASSES, main_output, make_model, task_inputs, task_name, tiny_config
from transformers.modeling_outputs import (
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

import prefix_models as pm

LABEL_KEYS = ("labels", "start_positions", "end_positions")
OUTPUT_TYPES = {
    "SequenceClassification": SequenceClassifierOutput,
    "TokenClassification": TokenClassifierOutput,
    "MultipleChoice": MultipleChoiceModelOutput,
    "QuestionAnswering": QuestionAnsweringModelOutput,
}


def without_labels(inputs):
    return {k: v for k, v in inputs.items() if k not in LABEL_KEYS}


def head_on_plain_backbone(model, inputs):
    """What the model must output when its prefix is masked: the plain backbone's features + head."""
    task = task_name(type(model))
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in without_labels(inputs).items()}
    with model.disable_prefix():  # the backbone module carries the prefix unless told not to
        plain = model.base_model(**flat, output_hidden_states=True)
    if task == "SequenceClassification":
        logits = model.classifier(plain.pooler_output)
    elif task == "TokenClassification":
        logits = model.classifier(plain.last_hidden_state)
    elif task == "MultipleChoice":
        logits = model.classifier(plain.pooler_output, inputs["input_ids"].shape[1])
    else:
        logits = torch.stack(model.qa_outputs(plain.last_hidden_state))
    return logits, plain.hidden_states


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
@torch.no_grad()
def test_masked_prefix_is_exactly_the_plain_backbone(model_class, attn):
    # float64: a masked prefix (or prompt) changes the shapes the kernels see, so float32 results may differ in
    # the last bit on some CPUs (seen: 1e-7 on an AMD EPYC, 0 on another host). In float64 that rounding is
    # ~1e-16, while a real leak (an attended prefix, shifted positions) moves outputs by far more than 1e-12.
    model = make_model(model_class, attn_implementation=attn).double()
    inputs = task_inputs(model_class)
    flat_batch = inputs["input_ids"].reshape(-1, inputs["input_ids"].shape[-1]).shape[0]
    masked = torch.zeros(flat_batch, model.config.pre_seq_len, dtype=torch.long)

    output = model(**without_labels(inputs), prefix_attention_mask=masked, output_hidden_states=True)
    expected_logits, expected_hidden = head_on_plain_backbone(model, inputs)

    torch.testing.assert_close(main_output(model_class, output), expected_logits, rtol=0, atol=1e-12)
    assert len(output.hidden_states) == len(expected_hidden) == model.config.num_hidden_layers + 1
    for ours, plain in zip(output.hidden_states, expected_hidden, strict=True):
        torch.testing.assert_close(ours, plain, rtol=0, atol=1e-12)  # real tokens only

    # ...and the prefix does matter once it is attended to.
    live = model(**without_labels(inputs))
    assert not torch.allclose(main_output(model_class, live), expected_logits)


@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
def test_only_prefix_and_head_train_and_backbone_stays_bit_identical(model_class):
    model = make_model(model_class).train()
    backbone_before = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    encoder = "prefix_encoder." if model.prefix_method == "prefix" else "prompt_encoder."
    assert trainable and all(name.startswith((encoder, "classifier.", "qa_outputs.")) for name in trainable)
    assert any(name.startswith(encoder) for name in trainable)

    # Hand every parameter to the optimizer, as a careless training loop would.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(2):
        loss = model(**task_inputs(model_class)).loss
        loss.backward()
        for name, parameter in model.named_parameters():
            if name in trainable:
                # (A multiple-choice bias gets an exact-zero gradient: softmax ignores shifts.)
                assert parameter.grad is not None, name
                if name.startswith(encoder):
                    assert parameter.grad.abs().sum() > 0, name
            else:
                assert parameter.grad is None, name
        optimizer.step()
        optimizer.zero_grad()

    for key, value in model.base_model.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key


@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
@torch.no_grad()
def test_batch_of_n_equals_n_batches_of_one(model_class):
    model = make_model(model_class)
    inputs = without_labels(task_inputs(model_class, pad_lengths=(9, 6, 4)))
    batched = main_output(model_class, model(**inputs))
    for row, length in enumerate((9, 6, 4)):
        single = {k: v[row : row + 1, ..., :length] for k, v in inputs.items()}
        alone = main_output(model_class, model(**single))
        task = task_name(model_class)
        if task == "TokenClassification":
            torch.testing.assert_close(alone[0], batched[row, :length], rtol=0, atol=1e-5)
        elif task == "QuestionAnswering":
            torch.testing.assert_close(alone[:, 0], batched[:, row, :length], rtol=0, atol=1e-5)
        else:
            torch.testing.assert_close(alone[0], batched[row], rtol=0, atol=1e-5)


@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
@torch.no_grad()
def test_outputs_follow_transformers_conventions(model_class):
    model = make_model(model_class)
    inputs = task_inputs(model_class)
    output = model(**inputs, output_hidden_states=True)
    assert isinstance(output, OUTPUT_TYPES[task_name(model_class)])
    assert output.loss is not None and output.loss.ndim == 0
    seq_len = inputs["input_ids"].shape[-1]
    assert all(h.shape[1] == seq_len for h in output.hidden_states)  # no virtual-token positions
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert torch.equal(as_tuple[0], output.loss)


@pytest.mark.parametrize(
    "model_class", [pm.BertPrefixForSequenceClassification, pm.RobertaPromptForSequenceClassification]
)
def test_sequence_problem_types(model_class):
    inputs = without_labels(task_inputs(model_class))
    regression = make_model(model_class, num_labels=1)
    targets = torch.tensor([0.5, -1.0, 2.0])
    out = regression(**inputs, labels=targets)
    assert regression.config.problem_type == "regression"
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), targets))

    multi = make_model(model_class, num_labels=3)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    out = multi(**inputs, labels=targets)
    assert multi.config.problem_type == "multi_label_classification"
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets))


@pytest.mark.parametrize("model_class", [pm.BertPrefixForTokenClassification, pm.RobertaPromptForTokenClassification])
def test_token_loss_ignores_minus_100(model_class):
    model = make_model(model_class)
    inputs = task_inputs(model_class)
    out = model(**inputs)
    labels = inputs["labels"]
    keep = labels != -100
    expected = torch.nn.functional.cross_entropy(out.logits[keep], labels[keep])
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("backbone", ["Bert", "Roberta"])
@pytest.mark.parametrize("method", ["Prefix", "Prompt"])
@torch.no_grad()
def test_full_position_table_stays_usable(backbone, method):
    model_class = getattr(pm, f"{backbone}{method}ForTokenClassification")
    model = make_model(model_class)
    config = tiny_config(backbone)
    # RoBERTa positions start at padding_idx + 1, so it fits two fewer tokens than its table.
    longest = config.max_position_embeddings - (config.pad_token_id + 1 if backbone == "Roberta" else 0)
    ids = torch.randint(5, 100, (1, longest))
    assert model(input_ids=ids).logits.shape[1] == longest
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(input_ids=torch.randint(5, 100, (1, longest + 1)))


POOLED_CLASSES = [c for c in ALL_CLASSES if task_name(c) in ("SequenceClassification", "MultipleChoice")]


def pooled_logits(model, features, inputs):
    if task_name(type(model)) == "MultipleChoice":
        return model.classifier(features, inputs["input_ids"].shape[1])
    return model.classifier(features)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("model_class", POOLED_CLASSES, ids=lambda c: c.__name__)
@torch.no_grad()
def test_classifier_pooling_reads_the_real_tokens(model_class, pooling):
    model = make_model(model_class, classifier_pooling=pooling).double()
    inputs = without_labels(task_inputs(model_class, pad_lengths=(9, 6, 4)))
    logits = model(**inputs).logits

    # The features, computed by hand from the backbone's real-token outputs: padding never counts.
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in inputs.items()}
    hidden = model.encode(**flat).sequence_output
    lengths = flat["attention_mask"].sum(-1)
    by_hand = torch.stack([h[0] if pooling == "cls" else h[:n].mean(0) for h, n in zip(hidden, lengths, strict=True)])
    torch.testing.assert_close(logits, pooled_logits(model, by_hand, inputs), rtol=0, atol=1e-12)
    default = make_model(model_class).double()  # same seed, same weights: only the pooling differs
    assert not torch.allclose(default(**inputs).logits, logits)

    # Masked prefix: the plain backbone's features, pooled the same way.
    masked = torch.zeros(flat["input_ids"].shape[0], model.config.pre_seq_len, dtype=torch.long)
    with model.disable_prefix():
        plain = model.base_model(**flat).last_hidden_state
    weights = flat["attention_mask"].unsqueeze(-1).double()
    expected = plain[:, 0] if pooling == "cls" else (plain * weights).sum(1) / weights.sum(1)
    output = model(**inputs, prefix_attention_mask=masked).logits
    torch.testing.assert_close(output, pooled_logits(model, expected, inputs), rtol=0, atol=1e-12)

    # A batch of N equals N batches of 1 (the mean must not see the padding).
    for row, length in enumerate((9, 6, 4)):
        alone = model(**{k: v[row : row + 1, ..., :length] for k, v in inputs.items()}).logits
        torch.testing.assert_close(alone[0], logits[row], rtol=0, atol=1e-12)


def test_classifier_pooling_trains_and_survives_save_and_load(base_checkpoints, tmp_path):
    model = pm.BertPrefixForSequenceClassification.from_pretrained(
        base_checkpoints["Bert"], pre_seq_len=4, classifier_pooling="mean"
    ).train()
    assert model.config.classifier_pooling == "mean"  # a from_pretrained keyword lands on the config
    inputs = task_inputs(pm.BertPrefixForSequenceClassification)
    model(**inputs).loss.backward()
    assert model.prefix_encoder.embedding.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.base_model.parameters())  # the unused pooler included

    model.eval().save_pretrained(tmp_path)
    loaded = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.classifier_pooling == "mean"
    with torch.no_grad():
        assert torch.equal(loaded(**without_labels(inputs)).logits, model(**without_labels(inputs)).logits)
