"""Every ```python block of README.md (and docs/*.md) runs, as a user would copy it, against tiny stand-ins.

Each block runs in a fresh process (forked from one that has imported torch and transformers, see
``tests/markdown_snippets.py``), in an empty working folder, offline. The hub models a block names are
not reachable here: the quoted hub id (``"gpt2"``) is replaced by the folder of a tiny random model of
the same family with a tokenizer of the same kind, built from ``tests/tiny_families.py`` configs and
``tests/fixtures`` tokenizers (``STAND_INS`` below is the whole mapping). Nothing else of a block is
changed: no training length or other argument is patched, so a block's own training arguments must be
short enough to run here. A block marked ``<!-- snippet: needs-network -->`` (or ``needs-gpu``, on a
machine without one) is compiled only; one marked ``continues`` runs after the python block before it,
as one program. Test ids name the file and the line of the block's opening fence (``README.md:333``).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers as tf
from conftest import FIXTURES, save_checkpoint, tiny_config
from markdown_snippets import (
    Snippet,
    SnippetRunner,
    chain,
    compile_snippet,
    python_snippets,
    substitute,
    write_program,
)
from tiny_families import DECODER_CONFIGS, SEQ2SEQ_CONFIGS

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
SNIPPETS = {document: python_snippets(document) for document in DOCUMENTS}
ALL_SNIPPETS = [snippet for snippets in SNIPPETS.values() for snippet in snippets]
TIMEOUT_S = 300

# SmolLM2-Instruct's chat template as it ships: ChatML with no {% generation %} markers.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_level_tokenizer(special: str = "</s>", **options: object) -> tf.GPT2Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer over the tiny fixture vocabulary; no pad token, as GPT-2's."""
    folder = FIXTURES / "tiny-roberta-tokenizer"
    vocab = json.loads((folder / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (folder / "merges.txt").read_text().splitlines()[1:] if line.strip()]
    return tf.GPT2Tokenizer(
        vocab=vocab, merges=merges, unk_token=special, bos_token=special, eos_token=special, **options
    )


def save_causal_lm(folder: Path, family: str, tokenizer: tf.PreTrainedTokenizerBase) -> None:
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = DECODER_CONFIGS[family](vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **special)
    # Room for a chat template's system prompt, as a real checkpoint has.
    if family == "GPT2":
        config.n_positions = 256
    else:
        config.max_position_embeddings = 256
    torch.manual_seed(0)
    tf.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def gpt2(folder: Path) -> None:
    save_causal_lm(folder, "GPT2", byte_level_tokenizer())


def smollm2_instruct(folder: Path) -> None:
    tokenizer = byte_level_tokenizer("<|im_end|>", pad_token="<|im_end|>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.bos_token = "<|im_start|>"
    tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    save_causal_lm(folder, "Llama", tokenizer)


def flan_t5(folder: Path) -> None:
    def build(tokenizer):
        ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
        config = SEQ2SEQ_CONFIGS["T5"](vocab_size=len(tokenizer), decoder_start_token_id=tokenizer.pad_token_id, **ids)
        return tf.T5ForConditionalGeneration(config)

    save_checkpoint(folder, build, "tiny-roberta-tokenizer")


def bert(folder: Path) -> None:
    save_checkpoint(folder, lambda _: tf.BertModel(tiny_config("Bert", max_position_embeddings=64)))


def roberta(folder: Path) -> None:
    def build(tokenizer):
        return tf.RobertaModel(tiny_config("Roberta", vocab_size=len(tokenizer), max_position_embeddings=66))

    save_checkpoint(folder, build, "tiny-roberta-tokenizer")


# Hub id -> builder of its tiny local stand-in. A block naming a hub id missing here fails offline, by name.
STAND_INS: dict[str, Callable[[Path], None]] = {
    "gpt2": gpt2,
    "HuggingFaceTB/SmolLM2-135M-Instruct": smollm2_instruct,
    "google/flan-t5-small": flan_t5,
    "bert-base-uncased": bert,
    "roberta-base": roberta,
}


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Callable[[str], dict[str, str]]:
    """The hub id -> local folder replacements for a piece of code, building each stand-in once, on demand."""
    built: dict[str, str] = {}

    def replacements(code: str) -> dict[str, str]:
        for name, build in STAND_INS.items():
            if name not in built and substitute(code, {name: ""}) != code:
                folder = tmp_path_factory.mktemp(name.replace("/", "--"))
                build(folder)
                built[name] = str(folder)
        return {name: folder for name, folder in built.items() if substitute(code, {name: ""}) != code}

    return replacements


@pytest.fixture(scope="module")
def runner():
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    runner = SnippetRunner(env={**os.environ, **offline})
    yield runner
    runner.close()


def where(snippet: Snippet) -> str:
    """The test id: the file (from the project's root) and the line of the block's opening fence."""
    return f"{snippet.path.relative_to(ROOT)}:{snippet.line}"


@pytest.mark.parametrize("snippet", ALL_SNIPPETS, ids=where)
def test_python_block_runs(snippet: Snippet, stand_ins, runner, tmp_path):
    blocks = chain(SNIPPETS[snippet.path], snippet)
    for block in blocks:
        compile_snippet(block)  # a syntax error names the file and line
    if not all(block.runs(gpu=torch.cuda.is_available()) for block in blocks):
        return  # needs the network (or a GPU, and none is here): compiled above, not run
    program = write_program(blocks, tmp_path / "program.json", stand_ins("".join(b.code for b in blocks)))
    workdir = tmp_path / "work"
    workdir.mkdir()
    returncode, output = runner.run(program, workdir, TIMEOUT_S)
    if returncode == -signal.SIGALRM:
        pytest.fail(f"{where(snippet)} ran past {TIMEOUT_S} s:\n{output[-4000:]}")
    assert returncode == 0, f"{where(snippet)} failed:\n{output[-4000:]}"


def test_snippet_parsing(tmp_path):
    """Fences, indentation, markers and chains, on a small markdown file of every case."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n"
        "```bash\necho no\n```\n"
        "<!-- readme:anchor -->\n<!-- snippet: needs-gpu -->\n\n```python\nx = 'gpt2'\n```\n"
        "- item\n  ```py\n  if x:\n      y = 1\n  ```\n"
        '<!-- snippet: continues -->\n````python title="a"\nprint(x, y)\n````\n'
        "```\nnot python\n```\n"
    )
    first, second, third = python_snippets(page)
    assert [s.line for s in (first, second, third)] == [8, 12, 17]
    assert first.markers == {"needs-gpu"} and not first.runs() and first.runs(gpu=True)
    assert second.markers == frozenset() and second.runs()
    assert second.code == "if x:\n    y = 1\n" and third.code == "print(x, y)\n"
    assert chain([first, second, third], third) == [second, third]
    assert substitute(first.code + "gpt2-large = 'gpt2x'\n", {"gpt2": "/m/gpt2"}) == (
        "x = \"/m/gpt2\"\ngpt2-large = 'gpt2x'\n"
    )
    with pytest.raises(SyntaxError) as error:
        compile_snippet(Snippet(page, 40, "x = (\n"))
    assert error.value.filename == str(page) and error.value.lineno == 41
    page.write_text("<!-- snippet: needs-netwrok -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="needs-netwrok"):
        python_snippets(page)


def test_each_program_runs_alone(runner, tmp_path):
    """A program gets its own process and folder, none of the project imported; status, output, timeout."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport os, sys\nprint(os.getcwd(), 'prefix_models' in sys.modules)\nsys.exit(3)\n```\n"
        "```python\nimport time\n\ntime.sleep(30)\n```\n"
    )
    first, second = python_snippets(page)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert runner.run(write_program([first], tmp_path / "a.json", {}), tmp_path / "a", 60) == (
        3,
        f"{tmp_path / 'a'} False\n",
    )
    returncode, _ = runner.run(write_program([second], tmp_path / "b.json", {}), tmp_path / "b", 1)
    assert returncode == -signal.SIGALRM
