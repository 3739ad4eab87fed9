"""Sequence and token tasks in one multi-task run (``examples/run_multitask.py --ner_tasks`` beside sequence tasks).

A prefix model's backbone module carries the method for ONE owner model (``prefix_models/attachment.py``), so the
run holds two prefix models: a sequence classifier (the sequence tasks) and a token classifier (the NER tasks). With
a shared prefix the token model's prefix (or prompt) encoder IS the sequence model's module, so both kinds of task
train one set of parameters. The token model's frozen backbone modules hold the sequence model's weight tensors
(:func:`share_frozen_backbone`), so once both are built the backbone's weights sit in memory once (loading the
second model holds a second copy for a while).

This module owns the pieces the Trainer needs for that:

* :class:`MixedTaskModel`: the module the Trainer trains. It registers the sequence model whole and only the token
  model's own trainable parts (so no tensor appears twice in its ``state_dict`` or its optimizer), and sends each
  batch to the model of its kind (the ``task_kind`` column);
* :class:`KindBlockSampler`: the training order, blocks of one kind as long as a batch, reshuffled every epoch, so a
  batch never mixes kinds (their labels have different shapes);
* :class:`MixedCollator`: pads each batch the way its kind needs;
* :class:`MixedTrainingSet`: the kinds' training sets side by side (their columns differ, so they cannot be
  concatenated into one ``datasets.Dataset``);
* :class:`MixedTaskTrainer`: the Trainer with that sampler, and saves (checkpoints too) as two loadable folders:
  the sequence model in the folder itself, the token model in its ``token_classification/`` subfolder
  (:data:`TOKEN_FOLDER`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler
from transformers import Trainer
from transformers.modeling_outputs import ModelOutput

from ..errors import InputError

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

# The value of a row's ``task_kind`` column: which of the two models reads it.
SEQUENCE, TOKEN = 0, 1
# Where a mixed run saves its token-classification model, inside the run (or checkpoint) folder.
TOKEN_FOLDER = "token_classification"


def share_frozen_backbone(source: nn.Module, target: nn.Module) -> int:
    """Point ``target``'s frozen backbone parameters at ``source``'s tensors of the same name, shape and dtype
    (the same checkpoint loaded twice), so the weights are held once. The modules stay ``target``'s own (each
    backbone keeps carrying its own model's method); only the frozen tensors are shared. Returns how many were."""
    mine = dict(source.base_model.named_parameters())
    shared = 0
    for name, parameter in list(target.base_model.named_parameters()):
        theirs = mine.get(name)
        if (
            theirs is None
            or parameter.requires_grad
            or theirs.requires_grad
            or theirs.shape != parameter.shape
            or theirs.dtype != parameter.dtype
            or theirs.device != parameter.device
            or not torch.equal(theirs, parameter)
        ):
            continue
        owner_path, _, attribute = name.rpartition(".")
        setattr(target.base_model.get_submodule(owner_path), attribute, theirs)
        shared += 1
    return shared


class MixedTaskModel(nn.Module):
    """A sequence-classification and a token-classification prefix model trained as one module.

    ``forward`` takes the columns both models take plus ``task_kind`` (one value per row, all rows alike:
    :data:`SEQUENCE` or :data:`TOKEN`) and returns that model's output. The token model is held but not registered;
    its trainable parts (heads, its task bank, its encoder unless it is the sequence model's) are, under
    ``token_parts``. ``train``/``eval`` and device moves reach both models.
    """

    # The loss is the routed model's mean over this batch: the Trainer must not pass an item count.
    accepts_loss_kwargs = False

    def __init__(self, sequence_model: nn.Module, token_model: nn.Module):
        super().__init__()
        self.sequence_model = sequence_model
        self.__dict__["token_model"] = token_model
        attribute = token_model.tuning.encoder_attribute
        parts = {token_model.head_attribute: getattr(token_model, token_model.head_attribute)}
        parts["prefix_bank"] = token_model.prefix_bank
        if getattr(token_model, attribute) is not getattr(sequence_model, attribute):
            parts[attribute] = getattr(token_model, attribute)
        self.token_parts = nn.ModuleDict(parts)
        registered = {id(parameter) for parameter in self.parameters()}
        stray = [n for n, p in token_model.named_parameters() if p.requires_grad and id(p) not in registered]
        if stray:  # a trainable tensor the optimizer would never see
            raise RuntimeError(f"MixedTaskModel: trainable parameters of the token model not registered: {stray[:4]}")
        # What the Trainer and the model card read from a model: the sequence model's (the folder's own model).
        self.config = sequence_model.config
        self.stock_auto_class = sequence_model.stock_auto_class
        self.prefix_init_from = getattr(sequence_model, "prefix_init_from", None)

    @property
    def token_model(self) -> nn.Module:
        return self.__dict__["token_model"]

    @property
    def shares_prefix(self) -> bool:
        """Whether both models run one prefix (or prompt) encoder module."""
        return self.token_model.tuning.encoder_attribute not in self.token_parts

    def model_for(self, kind: int) -> nn.Module:
        return self.token_model if kind == TOKEN else self.sequence_model

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        prefix_names: torch.Tensor | None = None,
        task_kind: torch.Tensor | None = None,
    ) -> ModelOutput:
        # Named parameters, not **kwargs: the Trainer keeps the dataset columns the signature names.
        if task_kind is None:
            raise InputError("MixedTaskModel needs task_kind (one per row) to pick the sequence or the token model")
        kinds = torch.as_tensor(task_kind).unique().tolist()
        if len(kinds) != 1:
            raise InputError(
                "a MixedTaskModel batch holds one kind of task (sequence or token rows, not both): their labels "
                "have different shapes; train with KindBlockSampler"
            )
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {key: value for key, value in inputs.items() if value is not None}
        return self.model_for(int(kinds[0]))(**inputs, labels=labels, prefix_names=prefix_names)

    def train(self, mode: bool = True) -> MixedTaskModel:
        super().train(mode)
        self.token_model.train(mode)
        return self

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> MixedTaskModel:
        super()._apply(fn, recurse)
        self.token_model._apply(fn, recurse)  # its registered parts again: moves and casts are idempotent
        return self

    def num_trainable_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters() if parameter.requires_grad)

    def merge_prefix_projection(self) -> None:
        self.sequence_model.merge_prefix_projection()
        self.token_model.merge_prefix_projection()  # a shared table is merged already: a no-op for it

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """The sequence model in ``save_directory``, the token model in its :data:`TOKEN_FOLDER` subfolder: each
        reloads with its ``AutoPrefixModelFor*Classification.from_pretrained`` (a shared prefix in both)."""
        self.sequence_model.save_pretrained(save_directory, **kwargs)
        self.token_model.save_pretrained(os.path.join(save_directory, TOKEN_FOLDER), **kwargs)

    def load_trained(self, directory: str | os.PathLike) -> None:
        """Load what :meth:`save_pretrained` wrote back into both models (a resumed run, the best checkpoint)."""
        from safetensors.torch import load_file

        for model, folder in (
            (self.sequence_model, directory),
            (self.token_model, os.path.join(directory, TOKEN_FOLDER)),
        ):
            path = os.path.join(folder, "model.safetensors")
            if not os.path.isfile(path):
                raise InputError(f"{folder} holds no model.safetensors: not a checkpoint of a mixed multi-task run")
            result = model.load_state_dict(load_file(path, device="cpu"), strict=False)
            frozen = set(model._keys_to_ignore_on_save or ())
            missing = [key for key in result.missing_keys if key not in frozen]
            if missing or result.unexpected_keys:
                raise InputError(
                    f"{path} does not hold this run's tasks: missing {missing[:4]}, unexpected "
                    f"{result.unexpected_keys[:4]}"
                )


class KindBlockSampler(Sampler[int]):
    """Row indices in blocks of ``block_size`` rows of one kind (``kinds[i]`` is row ``i``'s), the blocks in a
    random order: with a DataLoader batch of ``block_size`` every batch holds one kind. Each kind's rows are
    shuffled and its last block is filled up with rows of the same kind (from the start of its shuffled order),
    so every block is whole and an epoch sees every row at least once. Reshuffled every epoch (``set_epoch``, or
    the next ``__iter__``), seeded."""

    def __init__(self, kinds: Sequence[int], block_size: int, seed: int = 0):
        if block_size < 1:
            raise InputError(f"KindBlockSampler needs a block size of at least 1; got {block_size}")
        self.kinds = torch.as_tensor(list(kinds), dtype=torch.long)
        self.block_size = block_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        counts = torch.bincount(self.kinds).tolist() if len(self.kinds) else []
        return sum(math.ceil(count / self.block_size) * self.block_size for count in counts)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # without set_epoch, the next pass is shuffled anew
        blocks = []
        for kind in self.kinds.unique().tolist():
            rows = (self.kinds == kind).nonzero().squeeze(-1)
            rows = rows[torch.randperm(len(rows), generator=generator)]
            short = -len(rows) % self.block_size
            if short:
                rows = torch.cat([rows, rows.repeat(math.ceil(short / len(rows)))[:short]])
            blocks.extend(rows.split(self.block_size))
        for block in torch.randperm(len(blocks), generator=generator).tolist():
            yield from blocks[block].tolist()


class MixedCollator:
    """Pads a batch of one kind as that kind needs (``sequence``: class ids or floats per row; ``token``: a label
    per token, padded with -100)."""

    def __init__(self, sequence: Callable[[list[dict]], dict], token: Callable[[list[dict]], dict]):
        self.sequence = sequence
        self.token = token

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        kinds = {int(feature["task_kind"]) for feature in features}
        if len(kinds) != 1:
            raise InputError(
                "a batch mixes sequence and token rows: a mixed multi-task run batches one kind at a time "
                "(KindBlockSampler)"
            )
        return (self.token if kinds.pop() == TOKEN else self.sequence)(features)


class MixedTrainingSet(Dataset):
    """Training sets of different columns side by side: row ``i`` of the whole is row ``i - start`` of the part
    it falls in. ``kinds`` gives each row's ``task_kind`` (for :class:`KindBlockSampler`)."""

    def __init__(self, parts: Sequence[datasets.Dataset]):
        self.parts = [part for part in parts if len(part)]
        self.starts = [0]
        for part in self.parts:
            self.starts.append(self.starts[-1] + len(part))
        self.kinds = [kind for part in self.parts for kind in part["task_kind"]]

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        part = max(i for i, start in enumerate(self.starts[:-1]) if start <= index)
        return self.parts[part][index - self.starts[part]]


class MixedTaskTrainer(Trainer):
    """The Trainer for a :class:`MixedTaskModel`: kind-homogeneous training batches, and saves as
    :meth:`MixedTaskModel.save_pretrained` lays them out (checkpoints too, which resume and
    ``load_best_model_at_end`` read back)."""

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return KindBlockSampler(dataset.kinds, self._train_batch_size, self.args.seed)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        model.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
            # The token tasks' tokenizer (RoBERTa-like ones add a prefix space to pre-split words) beside their model.
            token_tokenizer = getattr(self, "token_processing_class", None) or self.processing_class
            token_tokenizer.save_pretrained(os.path.join(output_dir, TOKEN_FOLDER))
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        (model if model is not None else self.model).load_trained(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        self.model.load_trained(self.state.best_model_checkpoint)


__all__ = [
    "SEQUENCE",
    "TOKEN",
    "TOKEN_FOLDER",
    "KindBlockSampler",
    "MixedCollator",
    "MixedTaskModel",
    "MixedTaskTrainer",
    "MixedTrainingSet",
    "share_frozen_backbone",
]
