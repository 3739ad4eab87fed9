"""How a request names its task: ``pre_seq_len`` placeholder token ids before the prompt, and a per-task
``cache_salt``.

The connector (``connector.py``) finds the task by the salt and writes the task's keys and values into the
placeholders' cache slots; their embeddings are never computed. The salt keeps two tasks' identical placeholder
blocks apart in vLLM's prefix cache and lets every request of one task share the prefix's blocks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

SALT_PREFIX = "prefix:"
# The id the placeholders carry. Any id works (their embeddings are never computed); the connector checks that a
# task's request starts with exactly pre_seq_len of them, so a prompt must not start with this id itself.
PLACEHOLDER_TOKEN_ID = 0


def cache_salt(task: str) -> str:
    """The ``cache_salt`` of ``task``'s requests."""
    return f"{SALT_PREFIX}{task}"


def task_of_salt(salt: str | None) -> str | None:
    """The task a request's ``cache_salt`` names, or None for a request of the plain base."""
    if salt is None or not salt.startswith(SALT_PREFIX):
        return None
    return salt[len(SALT_PREFIX) :]


def _pre_seq_len(task: str, entry: Any) -> int:
    """A task's prefix length: given as a number, or read from its folder's config.json."""
    if isinstance(entry, int) and not isinstance(entry, bool):
        return entry
    length = getattr(entry, "pre_seq_len", None)
    if length is not None:
        return int(length)
    config_file = os.path.join(os.fspath(entry), "config.json")
    try:
        with open(config_file, encoding="utf-8") as handle:
            return int(json.load(handle)["pre_seq_len"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"task {task!r}: cannot read pre_seq_len from {config_file} ({error})") from None


def prefixed_prompt(
    task: str | None,
    prompt_token_ids: Sequence[int],
    prefixes: Mapping[str, Any],
    placeholder_token_id: int = PLACEHOLDER_TOKEN_ID,
) -> dict[str, Any]:
    """The vLLM prompt (``TokensPrompt``: ``prompt_token_ids`` and ``cache_salt``) of one request for ``task``.

    ``prefixes`` maps task names to their folders (the connector's ``prefixes``), to served prefixes or to their
    lengths. ``task=None`` is the plain base model: the prompt as it is. An unknown task raises ``ValueError``
    naming the known ones.
    """
    ids = [int(token) for token in prompt_token_ids]
    if not ids:
        raise ValueError("prompt_token_ids is empty: a request needs at least one real token")
    if task is None:
        return {"prompt_token_ids": ids}
    if task not in prefixes:
        known = ", ".join(sorted(prefixes)) or "none"
        raise ValueError(f"unknown task {task!r}; the engine serves the tasks: {known} (task=None for the base)")
    if ids[0] == placeholder_token_id:
        raise ValueError(
            f"task {task!r}: the prompt starts with token id {placeholder_token_id}, the placeholder id; the connector "
            "could not tell the prompt from its prefix (start it with another token)"
        )
    length = _pre_seq_len(task, prefixes[task])
    return {"prompt_token_ids": [placeholder_token_id] * length + ids, "cache_salt": cache_salt(task)}
