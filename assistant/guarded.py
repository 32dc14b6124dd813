"""Parsing under a budget: each plan is parsed in a child process with a time and a memory limit.

A plan file can hang a parser (a page whose text grows one paragraph quadratically), blow up in
memory (a zip bomb inside a DOCX), overflow C recursion (tables nested hundreds deep) or raise
anything from deep inside pypdf or lxml. In a child process each of those costs one
`FAIL <file>: <problem>` line and the other plans still index; the parent never runs parser code.

The child is a fresh interpreter (`python -m assistant.guarded`, about 0.4 s to start), not a
fork: forking a parent that already holds ONNX Runtime or torch threads can deadlock, and
multiprocessing's spawn and forkserver re-run the caller's main script in every child.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import PlanError
from .ingest import ParseBudget, parse_plan
from .records import Document


@dataclass(frozen=True)
class ParseLimits:
    # The real plans parse in 0.8-7.9 s each, at a peak of 60-70 MB resident (DE, MA, NV): the
    # defaults leave room for plans ten times their size.
    seconds: float = 600.0
    memory_mb: int = 4096  # address space (RLIMIT_AS) of the parsing process
    budget: ParseBudget = ParseBudget()  # pages, text, unpacked size, table depth

    @classmethod
    def from_settings(cls, settings) -> "ParseLimits":
        return cls(seconds=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb,
                   budget=ParseBudget.from_settings(settings))


def parse_guarded(path: Path, state: str, limits: ParseLimits = ParseLimits()) -> Document:
    """`ingest.parse_plan` in a child process: its Document, or PlanError naming the file and
    the problem (timeouts, memory exhaustion and crashes included)."""
    command = [sys.executable, "-m", "assistant.guarded", str(path), state, str(limits.memory_mb),
               json.dumps(dataclasses.asdict(limits.budget))]
    try:
        done = subprocess.run(command, capture_output=True, timeout=limits.seconds, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise PlanError(path, f"parsing took longer than {limits.seconds:g} s (parse_timeout_s); "
                              "skipped") from None
    try:
        kind, value = pickle.loads(done.stdout)
    except Exception:  # noqa: BLE001 - nothing usable came back: the child died
        reason = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        raise PlanError(path, f"the parser crashed ({reason})") from None
    if kind == "ok":
        return value
    raise PlanError(path, value)


def _child(path: str, state: str, memory_mb: int, budget: ParseBudget) -> tuple[str, object]:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # pypdf logs its repairs through `logging`; unprefixed lines beside our FAIL lines mislead.
    logging.disable(logging.WARNING)
    try:
        return "ok", parse_plan(Path(path), state, budget)
    except PlanError as exc:
        return "fail", exc.problem
    except MemoryError:
        return "fail", f"needs more than {memory_mb} MB of memory to parse (parse_memory_mb); skipped"
    except RecursionError:
        return "fail", "its structure is nested too deeply to parse"
    except Exception as exc:  # noqa: BLE001 - any parser failure is this file's problem, not the run's
        # lxml reports a failed allocation as "unknown error": tell the user what really happened.
        if _peak_resident_mb() > 0.5 * memory_mb:
            return "fail", f"ran out of its {memory_mb} MB memory limit while parsing (parse_memory_mb); skipped"
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        return "fail", f"cannot be parsed ({type(exc).__name__}{': ' + detail if detail else ''})"


def _peak_resident_mb() -> float:
    """This process's own peak resident memory: VmHWM starts afresh at exec, whereas
    getrusage's ru_maxrss carries the forking parent's peak across it on Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    result = _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), ParseBudget(**json.loads(sys.argv[4])))
    try:
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        payload = pickle.dumps(("fail", f"its text needs more than {sys.argv[3]} MB of memory "
                                        "(parse_memory_mb); skipped"))
    sys.stdout.buffer.write(payload)
