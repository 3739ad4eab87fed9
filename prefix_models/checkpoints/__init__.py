"""Every checkpoint a prefix model reads or writes, in one place.

* A model's own: ``save_pretrained`` writes what trained (prefix or prompt + head; the tasks of its
  bank, ``prefix_bank.<name>.*``, with them, their configs in ``config.prefix_tasks``) and points at its
  base; ``from_pretrained`` rebuilds the frozen backbone from its own checkpoint
  (``config.base_model_name_or_path``) plus the saved tensors, checking that the two fit and that every
  backbone tensor loaded. Trainer's checkpoints are these same folders.
* One task (``save_prefix`` / ``load_prefix``): :func:`write_task_checkpoint`, :func:`read_task_checkpoint`.
* Transfer (``from_pretrained(base, prefix_init_from=DIR)``): a new model's prefix or prompt started from one
  saved before, with a fresh head: :func:`read_init_source`, :func:`start_from_saved_prefix`.
* peft prefix- and prompt-tuning adapters, in and out: ``checkpoints/peft.py``.
* Loading a saved folder without ``import prefix_models`` (``trust_remote_code=True``): ``remote_files.py`` writes
  what the folder needs, ``remote_code.py`` finds its classes.
* Which base weights a prefix fits: ``fingerprint.py`` (the algorithm); :func:`base_fingerprint` records the
  loaded backbone's in the config, :func:`check_base_fingerprint` compares a saved prefix's with the base it is
  put on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedConfig
from transformers import logging as hf_logging
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, cached_file

from ..configuration import PREFIX_FIELDS, our_model_types, prefix_rows, validate_prefix_config
from ..defaults import checkpoint_defaults
from ..errors import InputError
from .fingerprint import choose_tensors, compute_fingerprint, fingerprint_difference
from .peft import PEFT_TYPES, check_peft_adapter_type, peft_task
from .remote_files import auto_map, write_remote_code

logger = logging.getLogger(__name__)

HUB_KWARGS = (
    "cache_dir",
    "force_download",
    "local_files_only",
    "token",
    "revision",
    "subfolder",
    "proxies",
    "gguf_file",
)
# Backbone dimensions a prefix is tied to: a prefix trained on one shape cannot run on another.
SHAPE_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads")
# Folders saved before fingerprints were recorded, already warned about (once each).
_WARNED_UNFINGERPRINTED: set[str] = set()


# The functions below are the checkpoint half of every prefix model (``modeling_utils.PrefixPreTrainedModel``
# calls them): ``stock_save`` / ``stock_load`` are transformers' own ``save_pretrained`` / ``from_pretrained``
# of that model's class, which these wrap.


def save_pretrained(
    model: Any,
    stock_save: Callable[..., Any],
    save_directory: str | os.PathLike,
    *args: Any,
    save_base_model: bool = False,
    **kwargs: Any,
) -> Any:
    """transformers' save of what trained (prefix/prompt + head), or of everything where nothing else is safe."""
    full = save_base_model
    if not full and not model.config.base_model_name_or_path:
        logger.warning(
            "This model was not loaded with from_pretrained, so no base model is known to point to; "
            "saving the full model (backbone included) so the checkpoint can be reloaded."
        )
        full = True
    if not full and any(p.requires_grad for m in model.frozen_modules().values() for p in m.parameters()):
        logger.warning("Backbone parameters are trainable: saving the full model so nothing trained is lost.")
        full = True
    ignored = model._keys_to_ignore_on_save
    if full:
        model._keys_to_ignore_on_save = set()
    # The folder also loads where prefix_models was never imported (trust_remote_code): remote_files.py.
    # Written first, so that save_pretrained(push_to_hub=True) uploads it with the rest.
    model.config.auto_map = auto_map(model)
    if not full and model.config.base_model_fingerprint is None:
        model.config.base_model_fingerprint = base_fingerprint(model)
    if kwargs.get("is_main_process", True) and not os.path.isfile(save_directory):
        write_remote_code(save_directory)
    try:
        return stock_save(save_directory, *args, **kwargs)
    finally:
        model._keys_to_ignore_on_save = ignored


def _load_backbone(
    stock_load: Callable[..., Any], source: str, *model_args: Any, config: PreTrainedConfig, **kwargs: Any
) -> tuple[Any, dict[str, Any]]:
    """transformers' ``from_pretrained`` of the prefix class on the backbone weights in ``source``."""
    gguf_file = kwargs.get("gguf_file")
    with _gguf_model_type(config, gguf_file):
        model, info = stock_load(
            source, *model_args, config=config, output_loading_info=True, _defer_prompt_init=True, **kwargs
        )
    if gguf_file:
        model.config.__dict__.pop("model_type", None)  # the loaded copy of the config, too
        if all(p.is_floating_point() for p in model.parameters()):
            # transformers dequantised the GGUF weights into plain float tensors: the model is an
            # ordinary one, and calling it quantized would only stop Trainer and save_pretrained.
            model.hf_quantizer = None
            model.is_quantized = False
            model.config.__dict__.pop("quantization_config", None)
    return model, info


def from_pretrained(
    cls: Any,
    stock_load: Callable[..., Any],
    pretrained_model_name_or_path: str | os.PathLike,
    *model_args: Any,
    base_model_name_or_path: str | os.PathLike | None = None,
    tokenizer: Any = None,
    **kwargs: Any,
) -> Any:
    """A prefix model of class ``cls`` from a stock backbone checkpoint, a prefix-only save or a peft adapter."""
    path = os.fspath(pretrained_model_name_or_path)
    hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
    want_info = kwargs.pop("output_loading_info", False)
    ignore_mismatched_base = kwargs.pop("ignore_mismatched_base", False)
    init_from = kwargs.pop("prefix_init_from", None)
    init_from = None if init_from is None else os.fspath(init_from)
    if init_from is not None:
        _check_no_other_init(kwargs)
    config = kwargs.pop("config", None)
    if config is None:
        kwargs = _with_checkpoint_defaults(cls, path, hub_kwargs, kwargs)
    peft_adapter = None
    if config is None and check_peft_adapter_type(path, hub_kwargs) is not None:
        # A peft prefix/prompt-tuning adapter: the base named in it, the virtual tokens from it.
        config_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in PREFIX_FIELDS}
        config, peft_adapter = peft_task(cls.config_class, path, hub_kwargs, base_model_name_or_path, **config_kwargs)
    local_config = os.path.join(path, hub_kwargs.get("subfolder", ""), "config.json")
    if config is None and os.path.isdir(path) and not hub_kwargs.get("gguf_file") and not os.path.isfile(local_config):
        raise InputError(
            f"{path} has no config.json: a model folder needs the config beside its weights (save_pretrained "
            "writes both); copy it back or pass config=..."
        )
    if config is None:
        config, kwargs = cls.config_class.from_pretrained(path, return_unused_kwargs=True, **kwargs)
        kwargs.update(hub_kwargs)
    config = cls._as_prefix_config(config)
    if "hidden_dropout_prob" in kwargs:  # the prefix dropout, also for configs without the field (decoders)
        config.hidden_dropout_prob = kwargs.pop("hidden_dropout_prob")
    validate_prefix_config(config)
    reads_text = config.prompt_init == "text" if config.prefix_method == "prompt" else config.prefix_init == "text"
    if reads_text and tokenizer is None and init_from is None:
        tokenizer = _try_tokenizer(path, hub_kwargs)

    adapter_files = None if peft_adapter else prefix_only_weights_files(path, cls.base_model_prefix, hub_kwargs)
    init_source = None
    if init_from is not None:
        if adapter_files is not None or peft_adapter is not None:
            raise InputError(
                f"prefix_init_from starts a new prefix on a base model, and {path} is already a saved prefix (it "
                "loads with its own): pass its base model, or load the folder without prefix_init_from"
            )
        # Checked before the backbone loads: a wrong folder fails fast.
        init_source = read_init_source(config, cls.base_model_prefix, init_from, hub_kwargs)
    if adapter_files is None and peft_adapter is None:
        if not config.base_model_name_or_path:
            config.base_model_name_or_path = os.path.abspath(path) if os.path.isdir(path) else path
            # A GGUF base (weights dequantised on load) is found again through its file name.
            config.base_model_gguf_file = hub_kwargs.get("gguf_file")
        model, info = _load_backbone(stock_load, path, *model_args, config=config, **kwargs)
        # The prefix, prompt and head a stock checkpoint cannot hold are left out of transformers' report (and its
        # missing keys): the model kept them (PrefixPreTrainedModel._adjust_missing_and_unexpected_keys).
        missing = set(info["missing_keys"]) | model.new_keys_not_loaded
    else:
        base = os.fspath(base_model_name_or_path or config.base_model_name_or_path or "")
        if not base:
            raise InputError(
                f"{path} holds a prefix-only checkpoint but its config names no base_model_name_or_path; "
                "pass base_model_name_or_path=... to from_pretrained"
            )
        config.base_model_name_or_path = base
        if "gguf_file" not in kwargs and getattr(config, "base_model_gguf_file", None):
            kwargs["gguf_file"] = _saved_gguf_file(config, base, path, hub_kwargs)
            hub_kwargs = {**hub_kwargs, "gguf_file": kwargs["gguf_file"]}
        # What this backbone is read from: a later save points at it, not at the file the folder recorded.
        config.base_model_gguf_file = kwargs.get("gguf_file")
        _check_base_shape(config, base, path, hub_kwargs)
        adapter_state = peft_adapter or _read_weights(adapter_files)
        # The backbone's load report would call the prefix and head "newly initialised"; they
        # are loaded from the checkpoint right below, so keep that report quiet.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model, info = _load_backbone(stock_load, base, *model_args, config=config, **kwargs)
        finally:
            hf_logging.set_verbosity(verbosity)
        _load_adapter_state(model, adapter_state, path)
        missing = set(info["missing_keys"]) - set(adapter_state)
    _check_backbone_loaded(model, missing, base_model_name_or_path or config.base_model_name_or_path or path)
    if adapter_files is not None:  # a prefix of ours on a base (a peft adapter records no fingerprint)
        # The folder's own base, which a base_model_name_or_path given to the stock Auto classes overwrote in config.
        folder_kwargs = {key: value for key, value in hub_kwargs.items() if key != "gguf_file"}  # the base's file
        saved_base = PreTrainedConfig.get_config_dict(path, **folder_kwargs)[0].get("base_model_name_or_path")
        check_base_fingerprint(config.base_model_fingerprint, model, path, saved_base, base, ignore_mismatched_base)
    # What the backbone now holds, whatever the folder recorded: a later save points at these weights.
    model.config.base_model_fingerprint = base_fingerprint(model, missing)
    model.freeze_backbone()
    model.upcast_trainable_parameters()
    if init_source is not None:
        start_from_saved_prefix(model, missing, init_from, *init_source, ignore_mismatched_base)
    elif model.prefix_method == "prompt" and any(key.startswith("prompt_encoder.") for key in missing):
        model.init_prompt(tokenizer)
    elif model.prefix_method == "prefix" and any(key.startswith("prefix_encoder.") for key in missing):
        model.init_prefix(tokenizer)
    if want_info:
        info["missing_keys"] = sorted(missing)
        return model, info
    return model


def _with_checkpoint_defaults(
    cls: Any, path: str, hub_kwargs: dict[str, Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """``kwargs`` with the config fields a fresh model takes from what its checkpoint is (``defaults.py``: a
    sentence-transformers checkpoint's own pooling), where not given; a saved prefix model keeps its own."""
    task = getattr(cls, "prefix_task", None)
    if task is None:
        return kwargs
    picked = checkpoint_defaults(path, cls.config_class.prefix_method, task, **hub_kwargs)
    picked = {key: value for key, value in picked.items() if key not in kwargs}
    if not picked or check_peft_adapter_type(path, hub_kwargs) is not None:
        return kwargs
    if PreTrainedConfig.get_config_dict(path, **hub_kwargs)[0].get("prefix_method") is not None:
        return kwargs  # a saved prefix model: its config holds what it was trained with
    logger.info(
        f"{path} is a sentence-transformers checkpoint: "
        f"{', '.join(f'{key}={value!r}' for key, value in picked.items())}, the pooling it was trained with (its "
        "pooler layer never was); pass classifier_pooling='pooler' to read the pooler anyway"
    )
    return {**kwargs, **picked}


def checkpoint_kind(
    path: str,
    config: PreTrainedConfig | None,
    hub_kwargs: dict[str, Any],
    base_model_name_or_path: str | os.PathLike | None = None,
) -> tuple[str, str | None]:
    """``(model_type, saved method or None)`` of what ``from_pretrained(path)`` would load: a config given, a
    peft adapter (its base's type, its method) or a model folder (stock, or saved by a prefix model)."""
    if isinstance(config, PreTrainedConfig):
        return config.model_type, getattr(config, "prefix_method", None)
    peft_adapter = None if config is not None else check_peft_adapter_type(path, hub_kwargs)
    if peft_adapter is not None:
        base = base_model_name_or_path or peft_adapter.get("base_model_name_or_path") or ""
        if not os.path.isdir(os.fspath(base)):
            raise InputError(
                f"the peft adapter in {path} names the base model {base or None!r}, which is not a local folder; "
                "pass base_model_name_or_path=<folder of the base model>"
            )
        model_type = PreTrainedConfig.get_config_dict(os.fspath(base))[0].get("model_type", "")
        return model_type, PEFT_TYPES[peft_adapter["peft_type"]]
    config_dict, _ = PreTrainedConfig.get_config_dict(path, **hub_kwargs)
    return config_dict.get("model_type", ""), config_dict.get("prefix_method")


def read_task_checkpoint(
    config_class: type[PreTrainedConfig], path: str, backbone_prefix: str, hub_kwargs: dict[str, Any]
) -> tuple[PreTrainedConfig, dict[str, torch.Tensor], bool]:
    """One task's config and tensors, from a prefix-only save or a peft adapter (``load_prefix``), and
    whether it was a peft adapter."""
    if check_peft_adapter_type(path, hub_kwargs) is not None:
        config, state = peft_task(config_class, path, hub_kwargs)
        config.architectures = None
        return config, state, True
    config = config_class.from_pretrained(path, **hub_kwargs)
    files = prefix_only_weights_files(path, backbone_prefix, hub_kwargs)
    if files is None:
        raise InputError(
            f"{path} is not a prefix-only checkpoint (it holds backbone weights, or no prefix): load_prefix adds a "
            "task saved by save_pretrained or save_prefix"
        )
    return config, _read_weights(files), False


def _check_no_other_init(kwargs: dict[str, Any]) -> None:
    """Refuse a second start given beside ``prefix_init_from``: only one of them can set the prefix."""
    other = {key: kwargs[key] for key in ("prefix_init", "prompt_init") if kwargs.get(key) not in (None, "random")}
    other.update({key: kwargs[key] for key in ("prefix_init_text", "prompt_init_text") if kwargs.get(key)})
    if other:
        given = ", ".join(f"{key}={value!r}" for key, value in other.items())
        raise InputError(f"prefix_init_from sets the prefix's start, and {given} would set it too: pass one of them")


def read_init_source(
    config: PreTrainedConfig, backbone_prefix: str, path: str, hub_kwargs: dict[str, Any]
) -> tuple[PreTrainedConfig, dict[str, torch.Tensor]]:
    """The saved prefix (or prompt) that ``prefix_init_from=path`` starts a model of ``config`` from: the source's
    config and its own encoder tensors (its head, and any further named prefixes, are left out: the new task gets a
    fresh head). ``path`` is a one-task save (``save_prefix``, ``run_multitask.py``'s ``prefixes/<task>``), a run
    or checkpoint folder saved by ``save_pretrained``, or a peft adapter. Refused, in one line each: a folder with
    no saved prefix, another method, another backbone type or shape, another ``pre_seq_len``, other prefixed
    layers, and a plain table for a model asking for ``prefix_projection`` (see :func:`_encoder_state`); the base
    weights are checked once loaded (:func:`start_from_saved_prefix`)."""
    no_prefix = (
        f"prefix_init_from {path} holds no saved prefix: give a prefixes/<task> folder of run_multitask.py, a "
        "save_prefix folder, or a run or checkpoint folder saved by save_pretrained"
    )
    lookup = {key: value for key, value in hub_kwargs.items() if key not in ("gguf_file", "subfolder")}
    from_peft = check_peft_adapter_type(path, lookup) is not None
    if not from_peft:
        try:
            saved = PreTrainedConfig.get_config_dict(path, **lookup)[0]
        except (OSError, ValueError) as error:
            if not os.path.exists(path) and (os.path.isabs(path) or path.startswith(".")):
                raise InputError(f"prefix_init_from {path}: no such folder") from error
            raise InputError(f"{no_prefix} ({type(error).__name__}: {str(error).splitlines()[0]})") from error
        if saved.get("prefix_method") is None or prefix_only_weights_files(path, backbone_prefix, lookup) is None:
            raise InputError(no_prefix)
        base_type = config.base_model_type
        if saved.get("model_type") not in our_model_types(base_type):
            raise InputError(
                f"prefix_init_from {path} holds a prefix trained on another base model (model_type "
                f"{saved.get('model_type')!r}; this backbone is a {base_type!r}): start from a prefix saved on "
                "this base"
            )
    source, state, _ = read_task_checkpoint(type(config), path, backbone_prefix, lookup)
    _check_source_fits(config, source, path)
    attribute = f"{'prompt' if config.prefix_method == 'prompt' else 'prefix'}_encoder."
    own = {key[len(attribute) :]: tensor for key, tensor in state.items() if key.startswith(attribute)}
    if not own:
        raise InputError(no_prefix)
    return source, _encoder_state(config, source, own, path)


def _check_source_fits(config: PreTrainedConfig, source: PreTrainedConfig, path: str) -> None:
    """What a saved prefix must share with the model it starts: method, backbone shape, length and layers."""
    if source.prefix_method != config.prefix_method:
        raise InputError(
            f"prefix_init_from {path} holds a {source.prefix_method}-tuning {source.prefix_method}; this model "
            f"trains a {config.prefix_method} ({config.prefix_method} tuning): start from a saved "
            f"{config.prefix_method}"
        )
    shape = [
        f"{field} {getattr(source, field, None)} vs {getattr(config, field, None)}"
        for field in SHAPE_FIELDS
        if getattr(source, field, None) != getattr(config, field, None)
    ]
    if shape:
        raise InputError(
            f"prefix_init_from {path} holds a prefix trained on another base model ({'; '.join(shape)}, saved vs "
            "this backbone): start from a prefix saved on this base"
        )
    if source.pre_seq_len != config.pre_seq_len:
        raise InputError(
            f"prefix_init_from {path} holds {source.pre_seq_len} virtual tokens and this model has pre_seq_len="
            f"{config.pre_seq_len}: pass pre_seq_len={source.pre_seq_len} (--pre_seq_len {source.pre_seq_len})"
        )
    if config.prefix_method == "prefix" and prefix_rows(source) != prefix_rows(config):
        raise InputError(
            f"prefix_init_from {path} holds a prefix on the layers prefix_layers={source.prefix_layers or 'all'} "
            f"({len(prefix_rows(source))} attention layers), this model's sits on "
            f"prefix_layers={config.prefix_layers or 'all'} ({len(prefix_rows(config))}): pass the saved one's "
            "prefix_layers (--prefix_layers)"
        )


def _encoder_state(
    config: PreTrainedConfig, source: PreTrainedConfig, state: dict[str, torch.Tensor], path: str
) -> dict[str, torch.Tensor]:
    """The source encoder's tensors as the new model's encoder holds them.

    A reparameterised source (``prefix_projection``) starting a plain table gives the table its MLP computes (the
    same keys and values, as ``merge_prefix_projection`` folds it); a model asking for ``prefix_projection`` takes
    the source's MLP whole, so one of the same width only: a plain table cannot be turned back into an MLP.
    """
    if config.prefix_method != "prefix" or bool(source.prefix_projection) == bool(config.prefix_projection):
        if config.prefix_projection and source.prefix_hidden_size != config.prefix_hidden_size:
            raise InputError(
                f"prefix_init_from {path} holds a prefix_projection MLP of width {source.prefix_hidden_size}, this "
                f"model asks for {config.prefix_hidden_size}: pass prefix_hidden_size={source.prefix_hidden_size}"
            )
        return state
    if config.prefix_projection:
        raise InputError(
            f"prefix_init_from {path} holds a plain prefix table, which cannot start a prefix_projection MLP: leave "
            "prefix_projection off (the table trains as it is)"
        )
    from ..methods.prefix_tuning.encoder import PrefixEncoder

    encoder = PrefixEncoder(source)
    encoder.load_state_dict(state)
    encoder.merge_projection()
    return {key: tensor.detach() for key, tensor in encoder.state_dict().items()}


def state_problems(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``saved`` from loading into a module whose state dict is ``expected``: keys on one side only, and
    ``key: saved (shape), model (shape)`` for each shape that differs."""
    return sorted(set(saved) ^ set(expected)) + [
        f"{key}: saved {tuple(saved[key].shape)}, model {tuple(expected[key].shape)}"
        for key in sorted(set(saved) & set(expected))
        if saved[key].shape != expected[key].shape
    ]


def start_from_saved_prefix(
    model: Any,
    missing: set[str],
    path: str,
    source: PreTrainedConfig,
    state: dict[str, torch.Tensor],
    ignore_mismatched_base: bool = False,
) -> None:
    """Set the freshly loaded ``model``'s prefix (or prompt) to the one :func:`read_init_source` read from
    ``path``, once its base weights are checked against the source's fingerprint; the head stays as built (fresh,
    for the new task's labels). ``missing``: the keys the model's checkpoint lacked (its prefix must be one)."""
    attribute = model.tuning.encoder_attribute
    if not any(key.startswith(f"{attribute}.") for key in missing):
        raise InputError(
            f"prefix_init_from starts a new prefix on a base model, and {model.config.base_model_name_or_path} "
            "already holds one (a full save of a prefix model): pass its base model, or load it without "
            "prefix_init_from"
        )
    try:
        check_base_fingerprint(
            source.base_model_fingerprint,
            model,
            path,
            source.base_model_name_or_path,
            model.config.base_model_name_or_path,
            ignore_mismatched_base,
        )
    except InputError as error:  # the same check as load_prefix's, said of the flag that asked for it
        raise InputError(f"prefix_init_from: {error}") from error
    encoder = getattr(model, attribute)
    expected = encoder.state_dict()
    problems = state_problems(state, expected)
    if problems:
        raise InputError(f"prefix_init_from {path} does not hold this model's {attribute}: {problems[:6]}")
    with torch.no_grad():
        for key, tensor in expected.items():
            tensor.copy_(state[key].to(tensor.dtype))
    # Provenance for the model card (scripts/cards.py); a saved model is a prefix like any other.
    model.prefix_init_from = path


def write_task_checkpoint(
    model: Any, config: PreTrainedConfig, state: dict[str, torch.Tensor], save_directory: str | os.PathLike
) -> None:
    """One task of ``model`` as a prefix-only checkpoint folder (``save_prefix``): ``config.json``,
    ``model.safetensors`` and, as every save writes, what loads it with ``trust_remote_code`` (remote_files.py)."""
    os.makedirs(save_directory, exist_ok=True)
    config.auto_map = auto_map(model)
    write_remote_code(save_directory)
    config.save_pretrained(save_directory)
    save_file(state, os.path.join(save_directory, "model.safetensors"), metadata={"format": "pt"})


def _read_weights(files: list[str]) -> dict[str, torch.Tensor]:
    return {key: tensor for file in files for key, tensor in load_file(file).items()}


def base_fingerprint(model: Any, missing: set[str] | frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """The fingerprint (fingerprint.py) of the model's backbone weights, from tensors loaded from the base
    (``missing`` keys, such as a pooler the checkpoint lacked, are random and left out)."""
    state = model.state_dict()
    backbone = f"{model.base_model_prefix}."
    frozen = frozen_keys(model)
    candidates = [key for key in state if key.startswith(backbone) and key in frozen and key not in missing]
    return compute_fingerprint(state, choose_tensors(state, candidates))


def check_base_fingerprint(
    saved: dict[str, Any] | None,
    model: Any,
    path: str,
    saved_base: str | None,
    given_base: str | None,
    ignore_mismatched_base: bool = False,
) -> None:
    """Refuse, in one line, to put the prefix saved in ``path`` on a backbone whose weights are not those its
    fingerprint records (unless ``ignore_mismatched_base``); a folder saved before fingerprints warns once."""
    if not saved:
        if path not in _WARNED_UNFINGERPRINTED:
            _WARNED_UNFINGERPRINTED.add(path)
            logger.warning(
                f"{path} records no base_model_fingerprint (saved before prefix-models recorded one), so it cannot be "
                f"checked that {given_base!r} holds the weights the prefix was trained on; save it again to record it"
            )
        return
    difference = fingerprint_difference(saved, model.state_dict())
    if difference is None:
        return
    message = (
        f"the prefix in {path} was trained on the base model {saved_base!r}, and the weights of {given_base!r} are "
        f"not that model's (base_model_fingerprint: {difference})"
    )
    if ignore_mismatched_base:
        logger.warning(f"{message}; loading it anyway, as ignore_mismatched_base=True asks")
        return
    raise InputError(
        f"{message}; put it on the base it was trained on, or pass ignore_mismatched_base=True (scripts: "
        "--ignore_mismatched_base) to load it anyway"
    )


def frozen_keys(model: Any) -> set[str]:
    """The state-dict keys of the frozen, pretrained parts (``model.frozen_modules()``)."""
    return {f"{name}.{key}" for name, module in model.frozen_modules().items() for key in module.state_dict()}


def leave_frozen_out(model: Any) -> None:
    """Checkpoints hold only what trains: transformers' save skips the frozen keys, and the same set tells
    Trainer that, on resume, missing backbone keys are expected."""
    model._keys_to_ignore_on_save = frozen_keys(model)


def _check_backbone_loaded(model: Any, missing: set[str], source: str) -> None:
    """Every pretrained tensor of the frozen parts was in the checkpoint: a frozen tensor left at its
    random init would never train. The one exception is a pooler the model never reads (token-level
    heads, or ``classifier_pooling`` ``cls`` / ``mean``): token-classification checkpoints save none."""
    frozen = frozen_keys(model)
    absent = sorted(key for key in missing if key in frozen)
    reads_pooler = getattr(model, "reads_pooled_output", False) and model.config.classifier_pooling == "pooler"
    pooler = f"{model.base_model_prefix}.pooler."
    unread = [key for key in absent if key.startswith(pooler) and not reads_pooler]
    absent = [key for key in absent if key not in unread]
    if not absent:
        return
    shown = ", ".join(absent[:5]) + (f", ... ({len(absent)} in all)" if len(absent) > 5 else "")
    hint = (
        " The checkpoint has no pooler: pass classifier_pooling='cls' (or 'mean') to read the hidden states instead"
        if all(key.startswith(pooler) for key in absent)
        else ""
    )
    raise InputError(
        f"{source} does not hold every pretrained tensor {type(model).__name__} needs; these would start random "
        f"and stay frozen: {shown}.{hint}"
    )


@contextmanager
def _gguf_model_type(config: PreTrainedConfig, gguf_file: str | None):
    """transformers maps GGUF tensor names by ``config.model_type``: show it the backbone's type
    (``llama``) while loading, not ours (``llama_prefix``)."""
    if not gguf_file:
        yield
        return
    config.model_type = config.base_model_type
    try:
        yield
    finally:
        del config.model_type  # back to the class attribute


def _saved_gguf_file(config: PreTrainedConfig, base: str, path: str, hub_kwargs: dict[str, Any]) -> str | None:
    """The GGUF file a prefix-only folder recorded for its base (``base_model_gguf_file``), if ``base`` holds it.

    The prefix fits the weights, not the file: another copy of the base, such as the GGUF dequantised into a
    safetensors folder, loads from its own config and weights (the fingerprint check still refuses other weights).
    """
    gguf_file = config.base_model_gguf_file
    lookup = {key: value for key, value in hub_kwargs.items() if key != "gguf_file"}
    try:
        found = cached_file(base, gguf_file, _raise_exceptions_for_missing_entries=False, **lookup)
    except OSError:
        return gguf_file  # a base that cannot be reached: its load says why, as before
    if found:
        return gguf_file
    folder = os.path.join(base, lookup.get("subfolder") or "")
    if os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, "config.json")):
        raise InputError(
            f"the prefix in {path} was trained on the GGUF file {gguf_file!r}, and the base {base!r} holds neither "
            "that file nor a config.json; put that file there under that name, or pass a base folder with a config.json"
        )
    logger.info(f"{base} holds no {gguf_file} (the GGUF file the prefix in {path} recorded): loading its own weights")
    return None


def _try_tokenizer(path: str, hub_kwargs: dict[str, Any]) -> Any:
    try:
        return AutoTokenizer.from_pretrained(path, **hub_kwargs)
    except (OSError, ValueError):
        return None  # init_prompt then raises the clear error, if the prompt needs initialising


def prefix_only_weights_files(path: str, backbone_prefix: str, hub_kwargs: dict[str, Any]) -> list[str] | None:
    """The checkpoint's weights files (one, or every shard of a sharded save) if it is a prefix-only
    save, else None.

    A prefix-only save holds prefix/prompt encoder tensors and no backbone tensors; a stock
    backbone checkpoint holds no encoder tensors, a full save holds both. A sharded save is judged
    by its index, which names every tensor.
    """
    if hub_kwargs.get("gguf_file"):
        return None  # a GGUF file is a full (base) model
    lookup = {**hub_kwargs, "_raise_exceptions_for_missing_entries": False}
    try:
        index = cached_file(path, SAFE_WEIGHTS_INDEX_NAME, **lookup)
        weights = None if index else cached_file(path, SAFE_WEIGHTS_NAME, **lookup)
    except OSError:
        return None  # let transformers raise its usual, detailed error
    if index:
        try:
            with open(index, encoding="utf-8") as handle:
                weight_map = json.load(handle)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{index} is not a readable safetensors index ({error!r}); nothing was loaded. Re-save the model"
            ) from error
        if not _is_prefix_only(weight_map, backbone_prefix):
            return None
        shards = []
        for name in sorted(set(weight_map.values())):
            try:
                shard = cached_file(path, name, **lookup)
            except OSError:
                shard = None
            if shard is None:
                raise InputError(
                    f"the prefix checkpoint {path} lists the shard {name} in its index, but the file "
                    "is missing; nothing was loaded. Copy it back or re-save the model"
                )
            _safetensors_keys(shard)  # a truncated shard is a clear error here
            shards.append(shard)
        return shards
    if weights is None:
        return None
    return [weights] if _is_prefix_only(_safetensors_keys(weights), backbone_prefix) else None


def _safetensors_keys(weights: str) -> list[str]:
    try:
        with safe_open(weights, framework="pt") as handle:
            return list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise InputError(
            f"{weights} is not a readable safetensors file (truncated or corrupted: {error}); nothing was loaded. "
            "Re-save the model, or load an earlier checkpoint"
        ) from error


def _is_prefix_only(keys: Any, backbone_prefix: str) -> bool:
    has_encoder = any(key.startswith(("prefix_encoder.", "prompt_encoder.")) for key in keys)
    has_backbone = any(key.startswith(f"{backbone_prefix}.") for key in keys)
    return has_encoder and not has_backbone


def _check_base_shape(config: PreTrainedConfig, base: str, path: str, hub_kwargs: dict[str, Any]) -> None:
    try:
        base_dict, _ = PreTrainedConfig.get_config_dict(base, **hub_kwargs)
    except OSError as error:
        raise InputError(
            f"the prefix checkpoint {path} needs its base model {base!r}, which could not be loaded ({error}); "
            "pass base_model_name_or_path=... to from_pretrained to point at it"
        ) from error
    # Configs may store a field under its own name (GPT-2: n_layer for num_hidden_layers).
    names = {field: type(config).attribute_map.get(field, field) for field in SHAPE_FIELDS}
    mismatched = [
        f"{field}: prefix trained for {getattr(config, field, None)}, base has {base_dict.get(name)}"
        for field, name in names.items()
        if name in base_dict and base_dict.get(name) != getattr(config, field, None)
    ]
    if mismatched:
        raise InputError(f"the prefix saved in {path} does not fit the base model {base!r}: " + "; ".join(mismatched))


def _load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    expected = model.state_dict()
    unexpected = sorted(key for key in state if key not in expected)
    wrong_shape = [
        f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)}"
        for key in state
        if key in expected and state[key].shape != expected[key].shape
    ]
    if unexpected or wrong_shape:
        raise InputError(
            f"the prefix checkpoint in {path} does not match {type(model).__name__} built from its config"
            + (f"; unexpected tensors: {unexpected}" if unexpected else "")
            + (f"; wrong shapes: {wrong_shape}" if wrong_shape else "")
        )
    model.load_state_dict(state, strict=False)
