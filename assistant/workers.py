"""Answers in worker processes, for a web app that many people use at once.

Threads in one process share one interpreter: the model pass releases the GIL, but the rest of an
answer (retrieval bookkeeping, evidence, composition: about 8 ms of Python) and Gradio's own work
do not. Measured on two cores: `Assistant.ask` on two threads answered 1.54x one thread's
questions/s, while two processes slowed each other by 4-13% (80 answers each in 3.89 and 4.23 s,
3.74 s alone). Through the app (bench/load.py, 20 s per level, three runs each, alternating), 20
users got 20.9-24.8 answers/s with threads and 25.3-27.7 with two worker processes (20 users over
1: 1.52-1.68x against 1.80-1.98x), at 3.2-3.4 GB resident in all against 1.0-1.1 GB.

So with `web_workers` N > 0 the app hands each chat answer to one of N spawned processes, each
holding its own LiveAssistant over the same index directory (a new generation goes live in each
on its own; a request sees the one generation its worker answers from).

Only `ask` moves: the page rendering, the Compare and Map tabs and the file routes stay in the
server process, which keeps its own Assistant for them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .errors import EssaError

log = logging.getLogger(__name__)

_live = None  # the worker process's LiveAssistant


def _start(index_dir: str, settings) -> None:
    global _live
    from .api import LiveAssistant

    _exit_with(os.getppid())
    _live = LiveAssistant(index_dir, settings=settings, check_every_s=settings.index_check_s)
    _live.current().ask("warm up")  # the first question pays for lazy model set-up


def _exit_with(parent: int) -> None:
    """End this worker when the server process is gone (killed with SIGKILL, it cannot tell us),
    instead of holding an index and a model in memory forever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _ask(question: str, k: int, states, categories, version=None):
    return _live.current().ask(question, k=k, states=states, categories=categories, version=version)


def _generation() -> str:
    _live.current()  # looks at CURRENT first, as a request would
    return _live.generation


class WorkerError(EssaError):
    """An answer worker process died (killed, out of memory); the pool is restarted."""


class AnswerPool:
    """`workers` processes answering `ask` over the index at `index_dir`, under `settings`."""

    def __init__(self, index_dir: str | Path, settings, workers: int):
        self.index_dir, self.settings, self.workers = str(index_dir), settings, workers
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process has threads (uvicorn, Gradio, ONNX Runtime) that a
        # forked child would inherit mid-lock.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start, initargs=(self.index_dir, self.settings))

    def warm(self) -> None:
        """Start every worker now (each loads the index and the model: seconds), not at first use."""
        for future in [self._pool.submit(_generation) for _ in range(self.workers)]:
            future.result()

    def ask(self, question: str, k: int = 5, states: Sequence[str] | None = None,
            categories: Sequence[str] | None = None, version: str | None = None):
        pool = self._pool
        try:
            return pool.submit(_ask, question, k, list(states) if states else None,
                               list(categories) if categories else None, version).result()
        except BrokenProcessPool as exc:
            with self._lock:
                if self._pool is pool:  # the first request to see it restarts the pool
                    log.warning("an answer worker died; restarting %d workers", self.workers)
                    self._pool = self._new_pool()
            raise WorkerError("the answer worker stopped unexpectedly; please ask again") from exc

    def pids(self) -> list[int]:
        """The worker processes' ids (for memory readings); ProcessPoolExecutor keeps no public list."""
        return list(getattr(self._pool, "_processes", None) or {})

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class PooledAssistant:
    """An Assistant whose `ask` runs in the pool; everything else is the local one's."""

    def __init__(self, local, pool: AnswerPool):
        self._local, self._pool = local, pool

    def ask(self, question: str, k: int = 5, states: Sequence[str] | None = None,
            categories: Sequence[str] | None = None, version: str | None = None, **options):
        if options:  # mode, llm: not what the chat passes; answered here as asked
            return self._local.ask(question, k=k, states=states, categories=categories, version=version,
                                   **options)
        return self._pool.ask(question, k, states, categories, version)

    def __getattr__(self, name: str):
        return getattr(self._local, name)
