"""Prefix language models (GPT-2, Llama, Qwen2, Mistral, Gemma, Gemma-2) on random tiny configs:
forward equals the backbone fed the same prefix cache, generate() equals a greedy loop, only the
prefix trains, checkpoints round-trip, gradient checkpointing gives the same gradients."""

from __future__ import annotations

import sys

import pytest
import torch
from tiny_families import BEAM_SEARCH, DECODER_CONFIGS, EAGER_ONLY, decoder_config
from transformers import (
    CONFIG_MAPPING,
    MODEL_FOR_CAUSAL_LM_MAPPING,
    MODEL_MAPPING,
    AutoModelForCausalLM,
    DynamicCache,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from prefix_models import AutoPrefixModelForCausalLM, families
from prefix_models.configuration import kv_geometry

VOCAB = 60
NAMES = {"gpt2": "GPT2", "llama": "Llama", "qwen2": "Qwen2", "mistral": "Mistral", "gemma": "Gemma", "gemma2": "Gemma2"}
FAMILIES = tuple(NAMES)
# The cache route exists for these (the old way in, kept as the reference the new one must equal).
CACHE_ROUTE_FAMILIES = ("gpt2", "llama", "qwen2")
# Slow (Trainer runs): two families with different attention layouts stand for all.
TRAINER_FAMILIES = ("gpt2", "llama")


def stock_config(family: str, attn_implementation: str = "eager", **overrides):
    return DECODER_CONFIGS[NAMES[family]](vocab_size=VOCAB, attn_implementation=attn_implementation, **overrides)


def stock_class(family: str):
    return MODEL_FOR_CAUSAL_LM_MAPPING[type(stock_config(family))]


def prefix_class(family: str):
    return AutoPrefixModelForCausalLM.model_class(family)


def implementations(family: str) -> list[str]:
    return ["eager"] if NAMES[family] in EAGER_ONLY else ["eager", "sdpa"]


ATTENTION_CASES = [(family, attn) for family in FAMILIES for attn in implementations(family)]


def make_pair(family: str, attn_implementation: str = "eager", pre_seq_len: int = 4, seed: int = 0):
    """A prefix model and the stock model with the same backbone weights, both in eval mode."""
    torch.manual_seed(seed)
    stock = stock_class(family)(stock_config(family, attn_implementation)).eval()
    model = prefix_class(family)(stock_config(family, attn_implementation, pre_seq_len=pre_seq_len)).eval()
    missing, unexpected = model.load_state_dict(stock.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("prefix_encoder.") for key in missing)
    with torch.no_grad():  # a prefix far from zero, so that it visibly matters
        model.prefix_encoder.embedding.weight.normal_(0, 1.0)
    return model, stock


@pytest.fixture(scope="module")
def base_checkpoints(tmp_path_factory):
    paths = {}
    for family in FAMILIES:
        torch.manual_seed(7)
        path = tmp_path_factory.mktemp(family)
        # Larger initial weights than the default 0.02 give a random backbone enough signal for a
        # prefix to make a visible difference to the loss within a few steps.
        stock_class(family)(stock_config(family, initializer_range=0.2)).save_pretrained(path)
        paths[family] = path
    return paths


def inputs(batch=2, seq=7, seed=1, left_pad=(0, 2)):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (batch, seq), generator=generator)
    mask = torch.ones(batch, seq, dtype=torch.long)
    for row, pad in enumerate(left_pad[:batch]):
        mask[row, :pad] = 0
    return input_ids.masked_fill(mask == 0, 0), mask


def greedy(model, input_ids, attention_mask, steps):
    """generate()'s greedy search written out: full forward over the growing sequence, no cache."""
    for _ in range(steps):
        logits = model(input_ids, attention_mask=attention_mask).logits[:, -1]
        input_ids = torch.cat([input_ids, logits.argmax(-1, keepdim=True)], dim=1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(input_ids), 1)], dim=1)
    return input_ids


@pytest.mark.parametrize("family", CACHE_ROUTE_FAMILIES)
def test_logits_equal_the_backbone_fed_the_same_prefix_cache(family):
    model, stock = make_pair(family)
    input_ids, mask = inputs()
    pre_seq_len = model.config.pre_seq_len
    layers, kv_heads, head_dim = kv_geometry(model.config)
    assert model.prefix_encoder.out_width == 2 * layers * kv_heads * head_dim
    kv = model.prefix_encoder().view(pre_seq_len, 2 * layers, kv_heads, head_dim).permute(1, 2, 0, 3)
    cache = DynamicCache()
    for layer in range(layers):
        cache.update(kv[2 * layer].expand(2, -1, -1, -1), kv[2 * layer + 1].expand(2, -1, -1, -1), layer)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    expected = stock(
        input_ids,
        attention_mask=torch.cat([torch.ones(2, pre_seq_len).long(), mask], 1),
        position_ids=positions,
        cache=cache,
    ).logits
    torch.testing.assert_close(model(input_ids, attention_mask=mask).logits, expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_get_prompt_has_the_key_value_head_count(family):
    model, _ = make_pair(family)
    layers, kv_heads, head_dim = kv_geometry(model.config)
    # Grouped-query attention: the prefix has the key/value head count (repeat_kv runs later).
    assert kv_heads == getattr(model.config, "num_key_value_heads", 4)
    prompt = model.get_prompt(3)
    assert len(prompt) == layers and all(k.shape == v.shape == (3, kv_heads, 4, head_dim) for k, v in prompt)


@pytest.mark.parametrize(("family", "attn_implementation"), ATTENTION_CASES)
def test_masked_prefix_equals_the_plain_model(family, attn_implementation):
    model, stock = make_pair(family, attn_implementation)
    input_ids, mask = inputs()
    off = torch.zeros(2, model.config.pre_seq_len, dtype=torch.long)
    with_prefix_off = model(input_ids, attention_mask=mask, prefix_attention_mask=off).logits
    real = mask.bool()  # padded positions are garbage in both models
    # Extra, fully masked keys change only the matmul's summation blocking: float rounding, ~1e-7.
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # the stock models ignore left padding here
    plain = stock(input_ids, attention_mask=mask, position_ids=positions).logits
    torch.testing.assert_close(with_prefix_off[real], plain[real], rtol=0, atol=1e-6)
    assert not torch.allclose(model(input_ids, attention_mask=mask).logits[real], with_prefix_off[real], atol=1e-3)


@pytest.mark.parametrize(("family", "attn_implementation"), ATTENTION_CASES)
def test_the_prefix_takes_no_context(family, attn_implementation):
    """A 48-position model with P=4 reads 48 real tokens: masked, the prefix leaves the plain model's
    logits over the full context; generate() fills the context to the last position."""
    model, stock = make_pair(family, attn_implementation)
    input_ids = torch.randint(3, VOCAB, (2, 48), generator=torch.Generator().manual_seed(3))
    off = torch.zeros(2, model.config.pre_seq_len, dtype=torch.long)
    with torch.no_grad():
        masked = model(input_ids, prefix_attention_mask=off).logits
        torch.testing.assert_close(masked, stock(input_ids).logits, rtol=0, atol=1e-6)
        assert not torch.allclose(model(input_ids).logits, masked, atol=1e-3)
    prompt, mask = input_ids[:, :40], torch.ones(2, 40, dtype=torch.long)
    generated = model.generate(prompt, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert generated.shape == (2, 48) and torch.equal(generated, greedy(model, prompt, mask, 8))


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_equals_a_greedy_loop_and_batches_equal_single_rows(family):
    model, _ = make_pair(family)
    input_ids, mask = inputs()
    generated = model.generate(input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    assert torch.equal(generated, greedy(model, input_ids, mask, 6))
    assert torch.equal(
        model.generate(input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False, use_cache=False), generated
    )
    for row, pad in enumerate((0, 2)):  # left padding: each row alone, unpadded, generates the same
        alone = model.generate(input_ids[row : row + 1, pad:], max_new_tokens=6, do_sample=False)
        assert torch.equal(alone[0, -6:], generated[row, -6:])


@pytest.mark.parametrize("family", FAMILIES)
def test_beam_search_and_sampling(family):
    model, _ = make_pair(family)
    input_ids, mask = inputs()
    scored = {"output_scores": True, "return_dict_in_generate": True}
    beams = model.generate(input_ids, attention_mask=mask, max_new_tokens=5, **BEAM_SEARCH, **scored)
    assert beams.sequences.shape == (4, 12)
    # The best beam scores at least as well as the greedy sequence under the model.
    greedy_ids = greedy(model, input_ids, mask, 5)

    def log_prob(sequence, row):
        full_mask = torch.cat([mask[row : row + 1], torch.ones(1, 5, dtype=torch.long)], 1)
        logits = model(sequence[None], attention_mask=full_mask).logits[0, -6:-1].log_softmax(-1)
        return logits.gather(-1, sequence[-5:, None]).sum()

    for row in range(2):
        assert log_prob(beams.sequences[2 * row], row) >= log_prob(greedy_ids[row], row) - 1e-5
    torch.manual_seed(0)
    first = model.generate(input_ids, attention_mask=mask, max_new_tokens=5, do_sample=True, top_k=10)
    torch.manual_seed(0)
    assert torch.equal(
        first, model.generate(input_ids, attention_mask=mask, max_new_tokens=5, do_sample=True, top_k=10)
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_scores_real_tokens_only_and_only_the_prefix_trains(family):
    model, _ = make_pair(family)
    model.train()
    input_ids, mask = inputs()
    labels = input_ids.masked_fill(mask == 0, -100)
    labels[1, 4] = -100
    output = model(input_ids, attention_mask=mask, labels=labels)
    logits = output.logits[:, :-1].reshape(-1, VOCAB)
    expected = torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    trained = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == {"prefix_encoder.embedding.weight"}
    assert model.num_trainable_parameters() == model.prefix_encoder.embedding.weight.numel()


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_checkpointing_gives_the_same_gradients(family):
    grads = []
    for checkpointing in (False, True):
        model, _ = make_pair(family)
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        input_ids, mask = inputs()
        model(input_ids, attention_mask=mask, labels=input_ids.masked_fill(mask == 0, -100)).loss.backward()
        grads.append(model.prefix_encoder.embedding.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_and_auto_classes(family, base_checkpoints, tmp_path):
    model = AutoPrefixModelForCausalLM.from_pretrained(
        base_checkpoints[family], pre_seq_len=5, prefix_projection=True, prefix_hidden_size=16, hidden_dropout_prob=0.1
    )
    assert model.prefix_dropout.p == 0.1
    assert isinstance(model, prefix_class(family)) and model.num_trainable_parameters() > 0
    assert all(not p.requires_grad for name, p in model.named_parameters() if not name.startswith("prefix_encoder"))
    with torch.no_grad():
        for parameter in model.prefix_encoder.parameters():
            parameter.normal_(0, 0.5)
    model.eval()
    input_ids, mask = inputs()
    expected = model(input_ids, attention_mask=mask).logits
    model.save_pretrained(tmp_path / "saved")
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "saved" / "model.safetensors")
    assert saved and all(key.startswith("prefix_encoder.") for key in saved)  # no backbone, no lm_head
    for loader in (prefix_class(family), AutoPrefixModelForCausalLM, AutoModelForCausalLM):
        loaded = loader.from_pretrained(tmp_path / "saved").eval()
        assert isinstance(loaded, prefix_class(family)) and loaded.prefix_dropout.p == 0.1
        torch.testing.assert_close(loaded(input_ids, attention_mask=mask).logits, expected, rtol=0, atol=0)
    merged = prefix_class(family).from_pretrained(tmp_path / "saved").eval()
    merged.merge_prefix_projection()
    torch.testing.assert_close(merged(input_ids, attention_mask=mask).logits, expected, rtol=1e-5, atol=1e-5)


class _StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, rows: int = 32, seq: int = 10):
        generator = torch.Generator().manual_seed(3)
        pattern = torch.randint(3, VOCAB, (seq,), generator=generator)
        self.rows = [pattern.roll(int(shift)) for shift in torch.randint(0, seq, (rows,), generator=generator)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return {"input_ids": self.rows[index], "labels": self.rows[index]}


@pytest.mark.parametrize("family", TRAINER_FAMILIES)
def test_trainer_trains_and_resumes_a_saved_prefix(family, base_checkpoints, tmp_path):
    def trainer(model, output_dir, steps, stop_at=None):
        args = TrainingArguments(
            output_dir=str(output_dir),
            max_steps=steps,
            per_device_train_batch_size=8,
            learning_rate=3e-1,
            save_strategy="steps",
            save_steps=4,
            report_to="none",
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
            logging_steps=1,
        )
        return Trainer(
            model=model, args=args, train_dataset=_Tokens(), callbacks=[_StopAt(stop_at)] if stop_at else None
        )

    def fresh():  # the same prefix initialisation for every run
        torch.manual_seed(0)
        return prefix_class(family).from_pretrained(base_checkpoints[family], pre_seq_len=4)

    model = fresh()
    full = trainer(model, tmp_path / "full", 8)
    full.train()
    losses = [log["loss"] for log in full.state.log_history if "loss" in log]
    assert sum(losses[-2:]) < 0.85 * sum(losses[:2])
    # Resume: a fresh model, from the step-4 checkpoint of another run, ends where the uninterrupted run ended.
    first = trainer(fresh(), tmp_path / "a", 8, stop_at=4)  # interrupted after step 4, same schedule
    first.train()
    resumed = trainer(fresh(), tmp_path / "a", 8)
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-4"))
    torch.testing.assert_close(resumed.model.prefix_encoder.embedding.weight, model.prefix_encoder.embedding.weight)
    # A saved prefix loads back trainable and keeps training.
    model.save_pretrained(tmp_path / "saved")
    again = prefix_class(family).from_pretrained(tmp_path / "saved")
    assert again.prefix_encoder.embedding.weight.requires_grad
    before = again.prefix_encoder.embedding.weight.detach().clone()
    trainer(again, tmp_path / "again", 2).train()
    assert not torch.equal(before, again.prefix_encoder.embedding.weight)


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_input(family, base_checkpoints, tmp_path):
    model, _ = make_pair(family)
    input_ids, mask = inputs()
    with pytest.raises(ValueError, match=r"49 tokens are longer than the model's context \(48 positions; the prefix"):
        model(torch.randint(3, VOCAB, (1, 49)))
    with pytest.raises(ValueError, match=r"attention_mask must be \(batch, past \+ new tokens\) = \(2, 7\)"):
        model(input_ids, attention_mask=mask[:, 1:])
    with pytest.raises(ValueError, match=r"attention_mask must be \(batch, seq_len\) = \(2, 7\) like the input ids"):
        model.generate(input_ids, attention_mask=mask[:1], max_new_tokens=2)
    with pytest.raises(ValueError, match=r"7 prompt tokens \+ max_new_tokens \(42\) = 49 is longer than the model"):
        model.generate(input_ids, attention_mask=mask, max_new_tokens=42)
    # A prefix saved for one shape does not load onto another.
    small = prefix_class(family).from_pretrained(base_checkpoints[family], pre_seq_len=4)
    small.save_pretrained(tmp_path / "prefix")
    other = tmp_path / "other"
    stock_class(family)(
        stock_config(family, **({"n_layer": 3} if family == "gpt2" else {"num_hidden_layers": 3}))
    ).save_pretrained(other)
    with pytest.raises(
        ValueError, match=r"does not fit the base model .*num_hidden_layers: prefix trained for 2, base has 3"
    ):
        prefix_class(family).from_pretrained(tmp_path / "prefix", base_model_name_or_path=str(other))
    with pytest.raises(ValueError, match=r"prefix_projection applies to prefix tuning .* only"):
        AutoPrefixModelForCausalLM.from_pretrained(base_checkpoints[family], method="prompt", prefix_projection=True)
    with pytest.raises(ValueError, match=r"method must be one of \('prefix', 'prompt'\), got 'lora'"):
        AutoPrefixModelForCausalLM.from_pretrained(base_checkpoints[family], method="lora")


# --- Prompt tuning (soft tokens before the input embeddings) on every decoder family ---------------------------
SPECIAL = [0, 1, 2]  # pad / bos / eos: suppressed so that generations of random models run their full length


def make_prompt_pair(family: str, attn_implementation: str = "eager"):
    torch.manual_seed(0)
    stock = stock_class(family)(stock_config(family, attn_implementation)).eval()
    cls = AutoPrefixModelForCausalLM.model_class(family, "prompt")
    model = cls(stock_config(family, attn_implementation, pre_seq_len=4)).eval()
    missing, unexpected = model.load_state_dict(stock.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("prompt_encoder.") for key in missing)
    with torch.no_grad():
        model.prompt_encoder.embedding.weight.normal_(0, 1.0)
    return model, stock


def suppressed_greedy(model, input_ids, attention_mask, steps):
    for _ in range(steps):
        logits = model(input_ids, attention_mask=attention_mask).logits[:, -1]
        logits[:, SPECIAL] = float("-inf")
        input_ids = torch.cat([input_ids, logits.argmax(-1, keepdim=True)], dim=1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(input_ids), 1)], dim=1)
    return input_ids


def stock_logits_where_the_prefix_is_masked(model, stock, input_ids, mask) -> torch.Tensor:
    """The stock model's logits, its positions counting real tokens only; asserts that ``model`` with its prefix
    masked out gives them on the real tokens."""
    real = mask.bool()
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    masked = torch.zeros(len(input_ids), model.config.pre_seq_len, dtype=torch.long)
    with torch.no_grad():
        plain = stock(input_ids, attention_mask=mask, position_ids=positions).logits
        off = model(input_ids, attention_mask=mask, prefix_attention_mask=masked).logits
    torch.testing.assert_close(off[real], plain[real], rtol=0, atol=1e-5)
    return plain


@pytest.mark.parametrize(("family", "attn_implementation"), ATTENTION_CASES)
def test_prompt_masked_equals_the_plain_model_and_generates_like_a_loop(family, attn_implementation):
    model, stock = make_prompt_pair(family, attn_implementation)
    assert type(model).__name__.replace("Prompt", "Prefix") == prefix_class(family).__name__
    input_ids, mask = inputs()
    real = mask.bool()
    plain = stock_logits_where_the_prefix_is_masked(model, stock, input_ids, mask)
    with torch.no_grad():
        on = model(input_ids, attention_mask=mask).logits
    assert on.shape == plain.shape  # the soft tokens' positions are dropped from the output
    assert (on[real] - plain[real]).abs().max() > 1e-3
    generated = model.generate(
        input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False, suppress_tokens=SPECIAL
    )
    assert torch.equal(generated, suppressed_greedy(model, input_ids, mask, 6))
    for row, pad in enumerate((0, 2)):  # left padding: each row alone, unpadded, generates the same
        alone = model.generate(
            input_ids[row : row + 1, pad:], max_new_tokens=6, do_sample=False, suppress_tokens=SPECIAL
        )
        assert torch.equal(alone[0, -6:], generated[row, -6:])


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_only_the_soft_tokens_train_and_save(family, base_checkpoints, tmp_path):
    model = AutoPrefixModelForCausalLM.from_pretrained(
        base_checkpoints[family], method="prompt", pre_seq_len=3, prompt_init="vocab"
    )
    model.train()
    input_ids, mask = inputs()
    model(input_ids, attention_mask=mask, labels=input_ids.masked_fill(mask == 0, -100)).loss.backward()
    trained = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == {"prompt_encoder.embedding.weight"}
    model.eval().save_pretrained(tmp_path)
    with torch.no_grad():
        expected = model(input_ids, attention_mask=mask).logits
        for loader in (AutoPrefixModelForCausalLM, AutoModelForCausalLM):
            again = loader.from_pretrained(tmp_path).eval()
            assert type(again) is type(model) and again.prefix_method == "prompt"
            torch.testing.assert_close(again(input_ids, attention_mask=mask).logits, expected, rtol=0, atol=0)


# --- Decoders outside the list, accepted by capability -------------------------------------------------------
def capability_config(model_type: str, **overrides):
    if model_type == "gpt_neox":  # no grouped-query attention: the tiny shape's 2 key/value heads would be a lie
        overrides.setdefault("num_key_value_heads", 4)
    return decoder_config(model_type, vocab_size=VOCAB, **overrides)


# Granite divides its logits by logits_scaling and Cohere multiplies them by logit_scale: the stock LM forward
# runs over the prefixed backbone, so both are kept. GPT-NeoX checkpoints keep their output layer as embed_out, which
# transformers renames by the stock class's name: ours inherits the rename.
@pytest.mark.parametrize("model_type", ["qwen3", "olmo2", "phi3", "granite", "cohere", "gpt_neox"])
def test_other_decoders_are_accepted_by_capability(model_type, tmp_path):
    torch.manual_seed(0)
    stock = AutoModelForCausalLM.from_config(capability_config(model_type)).eval()
    stock.save_pretrained(tmp_path / "base")
    model = AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "base", pre_seq_len=3).eval()
    assert type(model).__name__ == f"{type(stock).__name__.removesuffix('ForCausalLM')}PrefixForCausalLM"
    with torch.no_grad():
        model.prefix_encoder.embedding.weight.normal_(0, 1.0)
    input_ids, mask = inputs()
    stock_logits_where_the_prefix_is_masked(model, stock, input_ids, mask)
    generated = model.generate(
        input_ids, attention_mask=mask, max_new_tokens=5, do_sample=False, suppress_tokens=SPECIAL
    )
    assert torch.equal(generated, suppressed_greedy(model, input_ids, mask, 5))
    if model_type != "qwen3":
        return
    model.save_pretrained(tmp_path / "saved")
    # A fresh process knows the class only once the Auto class has found it by capability.
    saved = str(tmp_path / "saved")
    script = f"import prefix_models as p; print(type(p.AutoPrefixModelForCausalLM.from_pretrained({saved!r})).__name__)"
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.stdout.strip() == type(model).__name__, completed.stderr[-2000:]


# BLOOM computes attention itself; Falcon, StableLM and Nemotron dispatch through AttentionInterface (Falcon
# since transformers 5.25) but their layers drop keyword arguments, so prefix_state never reaches it.
@pytest.mark.parametrize("model_type", ["bloom", "falcon", "stablelm", "nemotron"])
def test_decoders_that_cannot_host_a_prefix_safely_are_refused(model_type):
    with pytest.raises(ValueError, match=rf"model_type '{model_type}' is not supported .* and any other decoder whose"):
        AutoPrefixModelForCausalLM.model_class(model_type)


@pytest.mark.parametrize("model_type", ["falcon", "stablelm", "nemotron"])
def test_the_refusal_is_what_a_forward_would_find(model_type, monkeypatch):
    # Built past the check, the decoder really runs without its prefix, and the forward says why.
    config_class = CONFIG_MAPPING[model_type]
    stock_lm = MODEL_FOR_CAUSAL_LM_MAPPING[config_class]
    if "ALL_ATTENTION_FUNCTIONS" not in vars(sys.modules[stock_lm.__module__]):
        pytest.skip(f"{model_type} computes attention itself in this transformers release")
    family = families.Family("Probe", config_class, MODEL_MAPPING[config_class], stock_lm)
    monkeypatch.setattr(families, "CAPABILITY_CLASSES", {})
    families.define_decoder_classes(family)
    model_class = families.CAPABILITY_CLASSES["ProbePrefixForCausalLM"]
    model = model_class(model_class.config_class(**capability_config(model_type).to_dict(), pre_seq_len=3)).eval()
    input_ids, mask = inputs()
    with pytest.raises(ValueError, match=r"reached 0 of 2 attention layers although .* do not pass keyword arguments"):
        model(input_ids, attention_mask=mask)
