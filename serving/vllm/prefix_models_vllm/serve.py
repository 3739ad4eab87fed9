"""``python -m prefix_models_vllm.serve``: vLLM's own OpenAI-compatible server, with prefix tasks picked by name.

Usage::

    python -m prefix_models_vllm.serve BASE --prefix sentiment=DIR --prefix sql=DIR [vLLM serve flags]

Every ``--prefix`` folder is read and checked against BASE (vLLM's own ``ModelConfig`` of it) before the engine
starts; a bad one ends the command with one line ``serve: error: ...`` and exit status 2. The engine gets the
:class:`~prefix_models_vllm.PrefixConnector` of the tasks through ``--kv-transfer-config`` and prefix caching on.

Tasks are picked the way vLLM's users pick LoRA adapters: ``/v1/models`` lists the base (its served names) and every
task (``parent`` the base, ``root`` the folder, ``max_model_len`` what the prefix leaves); a ``/v1/completions`` or
``/v1/chat/completions`` request with ``"model": "<task>"`` is served with that task's prefix, one naming the base
is served plain, any other name gets HTTP 404 with the served names. A task's prompt (text or token ids; for chat
the chat template applied first) gets the task's ``pre_seq_len`` placeholder ids put first and the cache salt
``prefix:<task>`` (:func:`~prefix_models_vllm.prefixed_prompt`). Responses speak of the real prompt: the
placeholders are taken out of ``usage.prompt_tokens``, ``prompt_token_ids`` and
``usage.prompt_tokens_details.cached_tokens``, and ``model`` is the task's name.

Refused with HTTP 400 for a task: ``cache_salt`` (the server sets it: the connector finds the task by it), prompt
logprobs (``prompt_logprobs``, or ``echo`` with logprobs; chat's ``echo`` asks for them too), since the virtual
tokens are never run through the model and have none; a prompt whose first token is the placeholder id (0; e.g. a
tokenizer that puts a BOS of id 0 first: send ``add_special_tokens: false`` or token ids); prompt embeddings. For the
base, a ``cache_salt`` starting ``prefix:`` (it would name a task without its placeholders). Other endpoints
(``/v1/responses``, ``/v1/messages``, ``/tokenize``, ...) know only the base: a task's name gets 404 there, never the
plain base.

The hook, and why: vLLM builds its serving objects in ``init_app_state`` from all its flags; this module wraps that
function (the one name ``build_and_serve`` looks up in ``vllm.entrypoints.launchers.api_server.entry``) and, once it
has run, gives the completion, chat and models objects it built the subclasses below (``__class__``), which add
methods only. So nothing of vLLM's constructor arguments is copied, and every vLLM flag keeps working. The
subclasses resolve task names in ``_check_model`` / ``_maybe_get_adapters`` (where vLLM resolves model and LoRA
names; a task is deliberately NOT made a base-model alias in ``OpenAIServingModels``, which every other endpoint
trusts and would then serve plain), put the placeholders in the engine inputs ``render_completion_request`` /
``render_chat_request`` return (after the renderer has tokenised and applied the chat template, before the engine
sees them), and strip them from the engine's outputs where the response generators read them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.entrypoints.openai.completion.serving import OpenAIServingCompletion
from vllm.entrypoints.openai.models.serving import OpenAIServingModels
from vllm.entrypoints.serve.engine.protocol import ErrorResponse, ModelCard, ModelPermission

from . import prefix_transfer_config
from .folders import PrefixFolderError
from .prompts import PLACEHOLDER_TOKEN_ID, SALT_PREFIX, prefixed_prompt
from .tasks import EngineModel, load_tasks

PROG = "serve"
USAGE = "python -m prefix_models_vllm.serve BASE --prefix TASK=DIR [--prefix TASK=DIR ...] [vLLM serve flags]"
DESCRIPTION = (
    "vLLM's OpenAI-compatible server on BASE, serving prefix-models' deep prefixes as models: a request with "
    '"model": "<TASK>" is served with that task\'s prefix, "model": "<BASE>" plain. Every other flag is vLLM\'s '
    "own (`vllm serve --help`); --kv-transfer-config and prefix caching are set by this command."
)

EPILOG = """This command's flags:
  BASE                      the base model the prefixes were trained on: a folder or a model id
  --prefix TASK=DIR         a task and its prefix folder (save_pretrained / save_prefix of a causal-LM prefix
                            model trained on BASE); repeat for more tasks
  --ignore-mismatched-base  serve a prefix whose recorded base fingerprint differs from BASE's weights
Every folder is checked against BASE before the engine starts. vLLM's own flags, by group: --help=<group> (e.g.
--help=CacheConfig); all of them: --help=all.
Example: python -m prefix_models_vllm.serve ./base --prefix sentiment=./sentiment --prefix sql=./sql --port 8000"""


class ServeError(Exception):
    """A refusal before the engine starts: printed as one line ``serve: error: ...``, exit status 2."""


@dataclass(frozen=True)
class ServedTask:
    """What the HTTP side needs of one task (its keys and values live in the engine's connector)."""

    name: str
    path: str
    pre_seq_len: int


# ---------------------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """vLLM's own ``serve`` parser with this command's flags added."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog=PROG, usage=USAGE, description=DESCRIPTION)
    group = parser.add_argument_group("prefix-models", "The tasks this server serves on BASE.")
    group.add_argument(
        "--prefix",
        action="append",
        default=[],
        metavar="TASK=DIR",
        help="A task and its prefix folder (save_pretrained or save_prefix of a causal-LM prefix model trained on "
        'BASE); repeat for more tasks. Requests pick it with "model": "TASK".',
    )
    group.add_argument(
        "--ignore-mismatched-base",
        action="store_true",
        help="Serve a prefix whose recorded base fingerprint differs from BASE's weights (a warning, not an error).",
    )
    parser = make_arg_parser(parser)
    # vLLM's --help lists flag groups only: this command's own flags are spelled out here.
    parser.epilog = EPILOG
    return parser


def take_prefix_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The values of every ``--prefix`` in ``argv``, and the rest of it. vLLM's parser warns "Found duplicate keys"
    for any flag given twice, and ``--prefix`` is meant to be."""
    values: list[str] = []
    rest: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--prefix":
            value = next(arguments, None)
            if value is None:
                raise ServeError("--prefix: give TASK=DIR after it")
            values.append(value)
        elif argument.startswith("--prefix="):
            values.append(argument[len("--prefix=") :])
        else:
            rest.append(argument)
    return values, rest


def parse_prefixes(values: Sequence[str]) -> dict[str, str]:
    """``TASK=DIR`` values as task name -> absolute folder."""
    if not values:
        raise ServeError("--prefix: name at least one task as TASK=DIR (to serve the plain base, use `vllm serve`)")
    prefixes: dict[str, str] = {}
    for value in values:
        task, separator, path = value.partition("=")
        if not separator or not task or not path:
            raise ServeError(f"--prefix {value!r}: give TASK=DIR, a task name and its prefix folder")
        if task in prefixes:
            raise ServeError(f"--prefix {value!r}: task {task!r} is named twice")
        prefixes[task] = os.path.abspath(os.path.expanduser(path))
    return prefixes


def one_line(error: BaseException) -> str:
    """An exception's message on one line (pydantic's validation errors: the message of the first one)."""
    errors = getattr(error, "errors", None)
    message = str(error)
    if callable(errors):
        try:
            first = errors()[0]
            message = str(first.get("ctx", {}).get("error") or first.get("msg") or message)
        except Exception:  # noqa: BLE001 (any shape: fall back to str(error))
            pass
    return " ".join(message.split())


def _model_config(args: argparse.Namespace) -> Any:
    """vLLM's ``ModelConfig`` for BASE, as the engine will build it (reads BASE's config, loads no weights)."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    if args.model.startswith(("/", "./", "../", "~")) and not os.path.isdir(os.path.expanduser(args.model)):
        raise ServeError(f"BASE {args.model}: no such folder")
    try:
        return AsyncEngineArgs.from_cli_args(args).create_model_config()
    except Exception as error:  # noqa: BLE001 (vLLM raises many kinds here; each becomes one line)
        raise ServeError(f"BASE {args.model}: {one_line(error)}") from None


# vLLM's CPU attention backend pages the KV cache in blocks of a multiple of this many tokens.
CPU_BLOCK_MULTIPLE = 32


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _check_flags(args: argparse.Namespace, default_model: str | None) -> None:
    """Flags this command cannot serve tasks with."""
    if args.model_tag is None and args.model == default_model:
        raise ServeError("BASE: name the base model (a folder or a model id) first: " + USAGE)
    if args.model_tag is not None:
        args.model = args.model_tag
    if os.environ.get("VLLM_SKIP_MODEL_NAME_VALIDATION", "0").lower() not in ("", "0", "false"):
        raise ServeError(
            "VLLM_SKIP_MODEL_NAME_VALIDATION is set: vLLM would then serve a mistyped task name as the plain base; "
            "unset it"
        )
    if args.kv_transfer_config is not None:
        raise ServeError(
            "--kv-transfer-config: this command sets it to the PrefixConnector of the --prefix tasks, and vLLM takes "
            "one connector; leave it out"
        )
    if args.enable_prefix_caching is False:
        raise ServeError(
            "--no-enable-prefix-caching: the tasks are served through the prefix cache (each task's blocks are "
            "written once and shared); leave prefix caching on"
        )
    block_size = getattr(args, "block_size", None)
    if block_size is not None and block_size % CPU_BLOCK_MULTIPLE and _on_cpu():
        raise ServeError(
            f"--block-size {block_size}: vLLM's CPU attention takes block sizes that are multiples of "
            f"{CPU_BLOCK_MULTIPLE} (e.g. {CPU_BLOCK_MULTIPLE * max(1, round(block_size / CPU_BLOCK_MULTIPLE))})"
        )
    if args.headless or getattr(args, "grpc", False) or (args.api_server_count or 1) > 1:
        raise ServeError(
            "--headless, --grpc and --api-server-count > 1 are not served by this command: it runs one "
            "OpenAI-compatible API server in this process"
        )


def _check_names(args: argparse.Namespace, tasks: Mapping[str, Any]) -> None:
    """A task's name must pick that task and nothing else."""
    taken = {name: "a served model name of BASE" for name in (args.served_model_name or [args.model])}
    for module in args.lora_modules or []:
        taken[str(getattr(module, "name", module))] = "a LoRA module's name"
    for task in tasks:
        if task in taken:
            raise ServeError(f"--prefix {task}=...: {task!r} is already {taken[task]}; give the task another name")


def prepare(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict[str, ServedTask]]:
    """Parse and check everything before the engine starts: the vLLM arguments, ready for ``run_server``, and the
    tasks. Raises :class:`ServeError` (one line) for anything that would not serve."""
    from vllm.config import KVTransferConfig
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args

    given, rest = take_prefix_flags(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(rest)
    _check_flags(args, parser.get_default("model"))
    prefixes = parse_prefixes([*given, *args.prefix])
    try:
        validate_parsed_serve_args(args)
    except (TypeError, ValueError) as error:
        raise ServeError(one_line(error)) from None

    model_config = _model_config(args)
    if getattr(model_config, "runner_type", "generate") != "generate":
        raise ServeError(f"BASE {args.model}: vLLM runs it as a {model_config.runner_type} model, not a generating one")
    engine = EngineModel.from_vllm_config(SimpleNamespace(model_config=model_config))
    tasks = {}
    for task, path in prefixes.items():  # one at a time, so that any error names its task
        try:
            served = load_tasks({task: path}, engine, args.ignore_mismatched_base)[task]
        except PrefixFolderError as error:
            raise ServeError(one_line(error)) from None
        except Exception as error:  # noqa: BLE001 (a damaged file: safetensors, JSON, I/O errors)
            raise ServeError(f"task {task!r}: {path} cannot be read ({one_line(error)})") from None
        tasks[task] = ServedTask(task, path, served.pre_seq_len)
    _check_names(args, tasks)

    extra = {"ignore_mismatched_base": True} if args.ignore_mismatched_base else {}
    args.kv_transfer_config = KVTransferConfig(**prefix_transfer_config(prefixes, **extra))
    args.enable_prefix_caching = True
    return args, tasks


def main(argv: Sequence[str] | None = None) -> None:
    try:
        args, tasks = prepare(argv)
    except ServeError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)

    import uvloop
    from vllm.entrypoints.launchers.api_server.entry import run_server
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.logger import configure_logging_from_args

    cli_env_setup()
    configure_logging_from_args(args)
    install(tasks)
    uvloop.run(run_server(args))


# ---------------------------------------------------------------------------------------------------- the hook


def install(tasks: Mapping[str, ServedTask]) -> None:
    """Make the API servers this process starts serve ``tasks`` (see the module docstring for the hook)."""
    from vllm.entrypoints.launchers.api_server import entry

    original = entry.init_app_state

    async def init_app_state(engine_client: Any, state: Any, args: argparse.Namespace, *rest: Any, **kw: Any) -> None:
        await original(engine_client, state, args, *rest, **kw)
        serve_tasks(state, tasks)

    entry.init_app_state = init_app_state


def serve_tasks(state: Any, tasks: Mapping[str, ServedTask]) -> None:
    """Give the serving objects vLLM built in ``state`` the task-aware subclasses (methods only, no new state but
    the task table)."""
    handlers = {
        "openai_serving_models": (OpenAIServingModels, PrefixServingModels),
        "openai_serving_completion": (OpenAIServingCompletion, PrefixServingCompletion),
        "openai_serving_chat": (OpenAIServingChat, PrefixServingChat),
    }
    for attribute, (vllm_class, subclass) in handlers.items():
        handler = getattr(state, attribute, None)
        if type(handler) is not vllm_class:
            raise RuntimeError(
                f"prefix_models_vllm.serve: vLLM's app state has {type(handler).__name__} for {attribute}, not "
                f"{vllm_class.__name__}: this vLLM is not the one the tasks' hook was written for (0.32)"
            )
        handler.__class__ = subclass
        handler.prefix_tasks = dict(tasks)


class PrefixServingModels(OpenAIServingModels):
    """``/v1/models`` lists the tasks after the base (and LoRA adapters)."""

    prefix_tasks: dict[str, ServedTask]

    async def show_available_models(self) -> Any:
        listing = await super().show_available_models()
        base = self.base_model_paths[0].name
        for task in self.prefix_tasks.values():
            listing.data.append(
                ModelCard(
                    id=task.name,
                    root=task.path,
                    parent=base,
                    max_model_len=self.model_config.max_model_len - task.pre_seq_len,
                    permission=[ModelPermission()],
                )
            )
        return listing


class _TaskServing:
    """Task resolution, prompt and output rewriting shared by the completion and chat handlers."""

    prefix_tasks: dict[str, ServedTask]

    def _task(self, request: Any) -> ServedTask | None:
        return self.prefix_tasks.get(getattr(request, "model", None) or "")

    async def _check_model(self, request: Any) -> Any:
        if self._task(request) is not None:
            if self.request_logger is not None:
                self.request_logger.log_request_body(request)
            return None
        error = await super()._check_model(request)
        if error is not None and error.error.code == HTTPStatus.NOT_FOUND.value:
            bases = ", ".join(f"`{path.name}`" for path in self.models.base_model_paths)
            known = ", ".join(f"`{task}`" for task in self.prefix_tasks)
            return self.create_error_response(
                message=f"The model `{request.model}` does not exist: this server serves the base model {bases} and "
                f"the prefix tasks {known}.",
                err_type="NotFoundError",
                status_code=HTTPStatus.NOT_FOUND,
                param="model",
            )
        return error

    def _maybe_get_adapters(self, request: Any, supports_default_mm_loras: bool = False) -> Any:
        if self._task(request) is not None:
            return None  # the base's weights; the prefix comes in through the connector
        return super()._maybe_get_adapters(request, supports_default_mm_loras)

    def _refusal(self, request: Any, prompt_logprobs: bool) -> Any:
        """Why a request cannot be served as asked (an HTTP 400), or None."""
        task = self._task(request)
        salt = getattr(request, "cache_salt", None)
        if task is None:
            if salt and salt.startswith(SALT_PREFIX):
                return self.create_error_response(
                    f"cache_salt {salt!r}: salts starting {SALT_PREFIX!r} name prefix tasks; pick a task with "
                    '"model" instead',
                    param="cache_salt",
                )
            return None
        if salt is not None:
            return self.create_error_response(
                f"cache_salt: task {task.name!r} requests carry the salt {SALT_PREFIX}{task.name}, set by the "
                "server; leave cache_salt out",
                param="cache_salt",
            )
        if prompt_logprobs:
            return self.create_error_response(
                f"task {task.name!r}: prompt logprobs (prompt_logprobs, echo) are not served for prefix tasks: the "
                "prefix's virtual tokens are never run through the model",
                param="prompt_logprobs",
            )
        return None

    def _with_prefix(self, request: Any, engine_inputs: list[Any]) -> list[Any] | Any:
        """The engine inputs of a task's request: placeholders first, the task's salt; or an HTTP 400."""
        task = self._task(request)
        if task is None:
            return engine_inputs
        max_model_len = self.model_config.max_model_len
        prefixed = []
        for engine_input in engine_inputs:
            if engine_input.get("type") != "token":
                return self.create_error_response(
                    f"task {task.name!r}: only token prompts (text or token ids) are served for prefix tasks, not "
                    f"{engine_input.get('type')!r} inputs"
                )
            ids = list(engine_input["prompt_token_ids"])
            try:
                prompt = prefixed_prompt(task.name, ids, {task.name: task.pre_seq_len})
            except ValueError as error:
                return self.create_error_response(f"{error}; with a tokenizer adding it, send add_special_tokens=false")
            if len(prompt["prompt_token_ids"]) >= max_model_len:
                return self.create_error_response(
                    f"task {task.name!r}: the prompt's {len(ids)} tokens and the prefix's {task.pre_seq_len} "
                    f"positions leave no room to generate within max_model_len={max_model_len}"
                )
            rewritten = {key: value for key, value in engine_input.items() if key != "prompt_token_offsets"}
            rewritten.update(prompt)
            prefixed.append(rewritten)
        return prefixed

    def _strip(self, request: Any, output: Any) -> Any:
        """An engine output of a task's request as of its real prompt (the placeholders taken out)."""
        task = self._task(request)
        ids = output.prompt_token_ids
        if task is None or ids is None or list(ids[: task.pre_seq_len]) != [PLACEHOLDER_TOKEN_ID] * task.pre_seq_len:
            return output  # the base, or stripped already (a task's real prompt never starts with the placeholder)
        output.prompt_token_ids = list(ids[task.pre_seq_len :])
        if output.prompt_logprobs is not None:
            output.prompt_logprobs = output.prompt_logprobs[task.pre_seq_len :]
        if output.num_cached_tokens is not None:
            output.num_cached_tokens = max(0, output.num_cached_tokens - task.pre_seq_len)
        return output

    def _model_name(self, request: Any, model_name: str) -> str:
        task = self._task(request)
        return model_name if task is None else task.name


class PrefixServingCompletion(_TaskServing, OpenAIServingCompletion):
    """``/v1/completions`` with tasks."""

    async def render_completion_request(self, request: Any) -> Any:
        refusal = self._refusal(
            request, request.prompt_logprobs is not None or (request.echo and request.logprobs is not None)
        )
        if refusal is not None:
            return refusal
        result = await super().render_completion_request(request)
        return result if isinstance(result, ErrorResponse) else self._with_prefix(request, result)

    def request_output_to_completion_response(
        self, final_res_batch: list[Any], request: Any, request_id: str, created_time: int, model_name: str, *rest: Any
    ) -> Any:
        final_res_batch = [self._strip(request, output) for output in final_res_batch]
        return super().request_output_to_completion_response(
            final_res_batch, request, request_id, created_time, self._model_name(request, model_name), *rest
        )

    def completion_stream_generator(
        self,
        request: Any,
        engine_inputs: list[Any],
        result_generator: AsyncIterator[tuple[int, Any]],
        request_id: str,
        created_time: int,
        model_name: str,
        *rest: Any,
        **kw: Any,
    ) -> Any:
        async def stripped() -> AsyncIterator[tuple[int, Any]]:
            async for index, output in result_generator:
                yield index, self._strip(request, output)

        model_name = self._model_name(request, model_name)
        return super().completion_stream_generator(
            request, engine_inputs, stripped(), request_id, created_time, model_name, *rest, **kw
        )


class PrefixServingChat(_TaskServing, OpenAIServingChat):
    """``/v1/chat/completions`` with tasks: the chat template applied, then the placeholders put first."""

    async def render_chat_request(self, request: Any) -> Any:
        refusal = self._refusal(request, request.prompt_logprobs is not None or bool(request.echo))
        if refusal is not None:
            return refusal
        result = await super().render_chat_request(request)
        if isinstance(result, ErrorResponse):
            return result
        conversation, engine_inputs = result
        prefixed = self._with_prefix(request, engine_inputs)
        return prefixed if isinstance(prefixed, ErrorResponse) else (conversation, prefixed)

    def _stripped(self, request: Any, result_generator: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async def stripped() -> AsyncIterator[Any]:
            async for output in result_generator:
                yield self._strip(request, output)

        return stripped()

    def chat_completion_stream_generator(
        self,
        request: Any,
        result_generator: AsyncIterator[Any],
        request_id: str,
        model_name: str,
        *rest: Any,
        **kw: Any,
    ) -> Any:
        outputs, model_name = self._stripped(request, result_generator), self._model_name(request, model_name)
        return super().chat_completion_stream_generator(request, outputs, request_id, model_name, *rest, **kw)

    async def chat_completion_full_generator(
        self,
        request: Any,
        result_generator: AsyncIterator[Any],
        request_id: str,
        model_name: str,
        *rest: Any,
        **kw: Any,
    ) -> Any:
        outputs, model_name = self._stripped(request, result_generator), self._model_name(request, model_name)
        return await super().chat_completion_full_generator(request, outputs, request_id, model_name, *rest, **kw)


if __name__ == "__main__":
    main()
