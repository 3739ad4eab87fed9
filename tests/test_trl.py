"""Clients of prefix and prompt LMs: TRL's trainers, lm-evaluation-harness, pipeline and torch.compile, on a
tiny Llama and a word-level chat tokenizer built here. SFTTrainer's fused LM head calls the backbone directly
and must get the prefix, so only the prefix moves, its loss equals our own forward's, and the saved folder
reloads to equal logits."""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from conftest import QUIET_TRAINING
from datasets import Dataset
from tiny_families import DECODER_CONFIGS
from tokenizers import Tokenizer, models, pre_tokenizers

import prefix_models as pm

trl = pytest.importorskip("trl")

WORDS = (
    "<pad> <eos> <bos> <|im_start|> <|im_end|> user assistant review positive negative good bad film plot "
    "is was the a great awful Is this or ? : ."
).split()
# Assistant turns inside {% generation %}: TRL's assistant_only_loss reads them.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} : {% if m['role'] == 'assistant' %}{% generation %}"
    "{{ m['content'] }} <|im_end|>{% endgeneration %}{% else %}{{ m['content'] }} <|im_end|>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant : {% endif %}"
)


def chat_tokenizer() -> tf.PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(WORDS)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny random Llama and its chat tokenizer, saved as a base checkpoint."""
    path = tmp_path_factory.mktemp("tiny-chat-llama")
    config = DECODER_CONFIGS["Llama"](vocab_size=len(WORDS), max_position_embeddings=64, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    tf.LlamaForCausalLM(config).save_pretrained(path)
    chat_tokenizer().save_pretrained(path)
    return path


def completions(n: int = 16) -> Dataset:
    rows = [
        {"prompt": "review : good film Is this positive or negative ?", "completion": " positive"},
        {"prompt": "review : awful plot Is this positive or negative ?", "completion": " negative"},
    ]
    return Dataset.from_list(rows * (n // 2))


def conversations(n: int = 16) -> Dataset:
    rows = [
        [{"role": "user", "content": "review : great film"}, {"role": "assistant", "content": "positive"}],
        [{"role": "user", "content": "review : bad plot"}, {"role": "assistant", "content": "negative"}],
    ]
    return Dataset.from_list([{"messages": messages} for messages in rows * (n // 2)])


def trainer_settings(output_dir, **overrides) -> dict:
    """A few large steps, each logged; float32, since TRL defaults to bf16 autocast and the comparisons are exact."""
    settings = dict(output_dir=str(output_dir), max_steps=3, per_device_train_batch_size=4, learning_rate=0.1)
    return {**settings, **QUIET_TRAINING, "logging_steps": 1, "bf16": False, **overrides}


def sft(model, tokenizer, data, output_dir, **overrides):
    args = trl.SFTConfig(**trainer_settings(output_dir, **overrides))
    return trl.SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)


@pytest.mark.parametrize(
    "method, data, settings",
    [
        ("prefix", "completions", {}),
        ("prompt", "completions", {}),
        ("prefix", "conversations", {"assistant_only_loss": True}),
        ("prompt", "conversations", {"assistant_only_loss": True, "gradient_checkpointing": True}),
        ("prefix", "completions", {"gradient_checkpointing": True}),
    ],
)
def test_sft_trainer_trains_only_the_prefix_and_saves_it(base, tmp_path, method, data, settings):
    tokenizer = tf.AutoTokenizer.from_pretrained(base)
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(base, method=method, pre_seq_len=4)
    with torch.no_grad():  # far from its small init, so that the prefix visibly matters
        model.task_modules("default")[model.tuning.encoder_attribute].embedding.weight.normal_(0, 1.0)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    trainer = sft(model, tokenizer, completions() if data == "completions" else conversations(), tmp_path, **settings)

    # TRL's fused head runs model.base_model and the output layer itself: its loss must be our forward's.
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {key: value for key, value in batch.items() if key in ("input_ids", "attention_mask", "labels")}
    model.eval()
    with torch.no_grad():
        ours = model(**batch)
        fused = model(**batch, fused_lm_head=True)
        with model.disable_prefix():
            plain = model(**batch, fused_lm_head=True)
    torch.testing.assert_close(fused.loss, ours.loss, rtol=1e-5, atol=1e-6)
    # Per scored token: log p(label) from our logits, as the fused head computes it from the backbone.
    labels = batch["labels"][:, 1:]
    scored = labels != -100
    log_probs = torch.log_softmax(ours.logits[:, :-1], dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1))[..., 0]
    torch.testing.assert_close(fused.log_probs[fused.label_mask], log_probs[scored], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(plain.log_probs[plain.label_mask], log_probs[scored], atol=1e-3)

    trainer.train()
    moved = {name for name, parameter in model.named_parameters() if not torch.equal(before[name], parameter)}
    assert moved == {f"{model.tuning.encoder_attribute}.embedding.weight"}

    trainer.save_model(str(tmp_path / "saved"))
    reloaded = tf.AutoModelForCausalLM.from_pretrained(tmp_path / "saved").eval()
    assert type(reloaded) is type(model)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(batch["input_ids"]).logits, model(batch["input_ids"]).logits)


def test_sft_padding_free_is_refused_by_name(base, tmp_path):
    tokenizer = tf.AutoTokenizer.from_pretrained(base)
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(base, pre_seq_len=4)
    before = model.prefix_encoder.embedding.weight.detach().clone()
    trainer = sft(
        model, tokenizer, completions(), tmp_path / "out", packing=True, max_length=48, per_device_train_batch_size=8
    )
    with pytest.raises(ValueError, match="padding_free=False"):
        trainer.train()
    assert torch.equal(model.prefix_encoder.embedding.weight, before)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_dpo_trainer_runs_with_a_prefix_policy(base, tmp_path):
    tokenizer = tf.AutoTokenizer.from_pretrained(base)
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(base, pre_seq_len=4)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    rows = [
        {"prompt": "review : good film Is this positive or negative ?", "chosen": " positive", "rejected": " negative"}
    ] * 8
    args = trl.DPOConfig(**trainer_settings(tmp_path, max_steps=2))
    trainer = trl.DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    # TRL builds its reference from the base checkpoint the model names: the plain backbone, no prefix.
    assert not isinstance(trainer.ref_model, pm.PrefixModelForCausalLM)
    trainer.train()
    moved = {name for name, parameter in model.named_parameters() if not torch.equal(before[name], parameter)}
    assert moved == {"prefix_encoder.embedding.weight"}
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in trainer.state.log_history if "loss" in entry)


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_lm_eval_loglikelihood_equals_a_hand_computation(base, method):
    huggingface = pytest.importorskip("lm_eval.models.huggingface")
    tokenizer = tf.AutoTokenizer.from_pretrained(base)
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(base, method=method, pre_seq_len=4).eval()
    with torch.no_grad():
        model.task_modules("default")[model.tuning.encoder_attribute].embedding.weight.normal_(0, 1.0)
    harness = huggingface.HFLM(pretrained=model, tokenizer=tokenizer, batch_size=2, device="cpu")
    context, continuation = "review : good film Is this positive or negative ?", " positive"
    from lm_eval.api.instance import Instance

    request = Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=0)
    ((logprob, _greedy),) = harness.loglikelihood([request], disable_tqdm=True)

    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    continuation_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    start = len(context_ids)
    expected = sum(logprobs[start - 1 + i, token].item() for i, token in enumerate(continuation_ids))
    assert logprob == pytest.approx(expected, abs=1e-4)


def test_the_readme_example_runs(base, tmp_path, monkeypatch, capsys):
    """The TRL example of the docs' language-model guide, as written, on the tiny chat Llama standing in for the hub
    model it names."""
    from pathlib import Path

    from markdown_snippets import substitute

    readme = (Path(__file__).resolve().parents[1] / "docs/guides/language-models.md").read_text()
    block = readme.split("<!-- readme:trl -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    block = substitute(block, {"HuggingFaceTB/SmolLM2-135M-Instruct": str(base)})
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    torch.manual_seed(7)
    exec(compile(block, "docs/guides/language-models.md", "exec"), namespace)
    model = namespace["model"]
    torch.manual_seed(7)
    initial = pm.AutoPrefixModelForCausalLM.from_pretrained(base, pre_seq_len=8).prefix_encoder.embedding.weight
    assert capsys.readouterr().out.splitlines()[-1] == str(model.prefix_encoder.embedding.weight.numel())
    reloaded = tf.AutoModelForCausalLM.from_pretrained(tmp_path / "sft-prefix")
    torch.testing.assert_close(reloaded.prefix_encoder.embedding.weight, model.prefix_encoder.embedding.weight)
    assert not torch.allclose(reloaded.prefix_encoder.embedding.weight, initial)  # it trained


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_text_generation_pipeline_and_torch_compile_keep_the_prefix(base, tmp_path, method):
    tokenizer = tf.AutoTokenizer.from_pretrained(base)
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(base, method=method, pre_seq_len=4).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        model.task_modules("default")[model.tuning.encoder_attribute].embedding.weight.normal_(0, 1.0)
    model.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    ids = tokenizer(["review : good film Is this"], return_tensors="pt")["input_ids"]

    generator = tf.pipeline("text-generation", model=str(tmp_path / "saved"))
    assert type(generator.model) is type(model)
    text = generator("review : good film Is this", max_new_tokens=4, do_sample=False, return_full_text=False)
    expected = model.generate(ids, max_new_tokens=4, do_sample=False)[0, ids.shape[1] :]
    # The pipeline's text leaves special tokens out (an <eos> that ends the generation).
    assert text[0]["generated_text"].split() == tokenizer.decode(expected, skip_special_tokens=True).split()

    compiled = torch.compile(model, backend="aot_eager")  # dynamo traces the backbone's own forward
    with torch.no_grad():
        torch.testing.assert_close(compiled(ids).logits, model(ids).logits, rtol=0, atol=1e-6)


def test_the_smollm2_example_refuses_a_folder_without_its_model(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "sft_smollm2.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--model_dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2
    assert f"--model_dir {tmp_path} holds no SmolLM2-135M-Instruct.Q4_1.gguf" in completed.stderr
    assert not (tmp_path / "tokenizer").exists()
