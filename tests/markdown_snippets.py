"""The ```python blocks of a markdown file as runnable snippets: what the README and docs tests execute.

A snippet is one ```python (or ```py) fenced block. HTML comments on the lines right before its fence
(blank lines and other comments, such as ``<!-- readme:trl -->`` anchors, may stand between) carry its
markers, several in one comment separated by commas:

- ``<!-- snippet: needs-network -->``: it is only compiled, not run;
- ``<!-- snippet: needs-gpu -->``: it runs where a GPU is, elsewhere it is only compiled;
- ``<!-- snippet: needs-vllm -->``: it runs in vLLM's venv (serving/vllm), here it is only compiled;
- ``<!-- snippet: continues -->``: a fragment; it runs after the previous python block of the same file,
  in one namespace, as one program.

An unknown marker is an error, so a typo cannot turn a check off. Hub names in a snippet are replaced by
local stand-ins through :func:`substitute`, which rewrites quoted strings only (``"gpt2"`` → ``"/tmp/.../gpt2"``),
so the program that runs is the snippet as written apart from those strings.

:class:`SnippetRunner` runs each program in its own process and working folder: a server process imports
``PRELOAD`` (torch and transformers, seconds of import per snippet otherwise) and forks a child per program,
so a program starts with nothing of its own imported, nothing of another program's state, and tracebacks that
name the markdown file and its line numbers. ``python markdown_snippets.py PROGRAM.json`` runs one program
by hand.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

MARKERS = frozenset({"needs-network", "needs-gpu", "needs-vllm", "continues"})
PYTHON_INFO = frozenset({"python", "py"})

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_COMMENT = re.compile(r"^\s*<!--(?P<body>.*?)-->\s*$")


@dataclass(frozen=True)
class Snippet:
    """One ```python block: the file, the line its opening fence is on (1-based), its code and markers."""

    path: Path
    line: int
    code: str
    markers: frozenset[str] = frozenset()

    def runs(self, gpu: bool = False) -> bool:
        """Whether it runs (rather than only compiles) on a machine with (``gpu``) or without a GPU."""
        return not self.markers & {"needs-network", "needs-vllm"} and (gpu or "needs-gpu" not in self.markers)


def python_snippets(path: str | Path) -> list[Snippet]:
    """Every ```python block of the markdown file at ``path``, in order."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    snippets = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((i for i in range(index + 1, len(lines)) if closing.match(lines[i])), len(lines))
        info = opening["info"].strip().split()
        if info and info[0].lower() in PYTHON_INFO:
            body = [
                line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[index + 1 : end]
            ]
            snippets.append(Snippet(path, index + 1, "\n".join(body) + "\n", _markers(path, lines, index)))
        index = end + 1
    return snippets


def _markers(path: Path, lines: list[str], fence_index: int) -> frozenset[str]:
    """The ``snippet:`` markers in the comments right above the fence at ``fence_index``."""
    found: set[str] = set()
    index = fence_index - 1
    while index >= 0:
        comment = _COMMENT.match(lines[index])
        if comment is None and lines[index].strip():
            break
        if comment is not None and comment["body"].strip().startswith("snippet:"):
            names = {name.strip() for name in comment["body"].strip()[len("snippet:") :].split(",")}
            unknown = names - MARKERS
            if unknown:
                raise ValueError(
                    f"{path}:{index + 1}: unknown snippet marker(s) {sorted(unknown)}; known: {sorted(MARKERS)}"
                )
            found |= names
        index -= 1
    return frozenset(found)


def chain(snippets: list[Snippet], snippet: Snippet) -> list[Snippet]:
    """The blocks that run as ``snippet``'s program: the blocks it continues (transitively), then itself."""
    position = snippets.index(snippet)
    start = position
    while "continues" in snippets[start].markers:
        if start == 0:
            raise ValueError(
                f"{snippet.path}:{snippets[start].line}: marked 'continues' but no python block precedes it"
            )
        start -= 1
    return snippets[start : position + 1]


def substitute(code: str, replacements: dict[str, str]) -> str:
    """``code`` with each quoted string named in ``replacements`` (a hub id) replaced by its value, quoted."""
    for name, local in replacements.items():
        for quote in ('"', "'"):
            code = code.replace(f"{quote}{name}{quote}", json.dumps(str(local)))
    return code


def write_program(blocks: list[Snippet], destination: Path, replacements: dict[str, str]) -> Path:
    """Writes the program that runs ``blocks`` in order (after :func:`substitute`) to ``destination``."""
    program = [{"path": str(b.path), "line": b.line, "code": substitute(b.code, replacements)} for b in blocks]
    destination.write_text(json.dumps(program, indent=1), encoding="utf-8")
    return destination


def compile_snippet(snippet: Snippet):
    """``snippet``'s code compiled so that errors name the markdown file and its line numbers."""
    # Padding with the lines above the block makes line N of the code object line N of the file.
    return compile("\n" * snippet.line + snippet.code, str(snippet.path), "exec")


def _run_program(program_file: str) -> None:
    # As for a user's `python -c`: the working folder on the path (not this tests folder), no arguments.
    sys.path[0] = ""
    sys.argv = ["-c"]
    namespace = {"__name__": "__main__"}
    for block in json.loads(Path(program_file).read_text(encoding="utf-8")):
        snippet = Snippet(Path(block["path"]), block["line"], block["code"])
        exec(compile_snippet(snippet), namespace)  # noqa: S102 - running the documentation's code is the point


# Imported once by the server, before it forks: libraries only, never the project (a snippet may show a
# process that has not imported it), and nothing that starts threads or touches a GPU.
PRELOAD = ("torch", "transformers", "transformers.modeling_utils", "transformers.trainer")


class SnippetRunner:
    """Runs programs written by :func:`write_program`, each in a fresh process forked from a preloaded server."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        self.server: subprocess.Popen | None = None
        if hasattr(os, "fork"):
            command = [sys.executable, __file__, "--serve"]
            self.server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def run(self, program: Path, workdir: Path, timeout_s: int) -> tuple[int, str]:
        """The program's exit status and its output (stdout and stderr together), run in ``workdir``."""
        output = program.with_suffix(".out")
        if self.server is None:  # no fork here: a fresh interpreter per program
            with output.open("w") as sink:
                command = [sys.executable, __file__, str(program)]
                done = subprocess.run(command, cwd=workdir, env=self.env, stdout=sink, stderr=sink, timeout=timeout_s)
            return done.returncode, output.read_text()
        request = {"program": str(program), "workdir": str(workdir), "output": str(output), "timeout_s": timeout_s}
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        answer = self.server.stdout.readline()
        if not answer:
            raise RuntimeError(f"the snippet server exited with status {self.server.wait()}")
        return json.loads(answer)["returncode"], output.read_text()

    def close(self) -> None:
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait()


def _serve() -> None:
    """Reads one request a line; forks a child that runs it; answers its exit status (a timeout kills it)."""
    for module in PRELOAD:
        importlib.import_module(module)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


def _child(request: dict) -> None:
    status = 1
    try:
        sink = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(sink, 1)
        os.dup2(sink, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.chdir(request["workdir"])
        signal.alarm(request["timeout_s"])
        _run_program(request["program"])
        status = 0
    except SystemExit as exit_:  # as the interpreter reads sys.exit(): None is 0, a message is printed
        status = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
        if status == 1 and not isinstance(exit_.code, int):
            print(exit_.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        _serve()
    else:
        _run_program(sys.argv[1])
