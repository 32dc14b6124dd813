"""The embedded store: generation folders of plain files in the --index directory (store.py
holds the format and its integrity checks); one machine, any number of reader processes."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager

import numpy as np

from .. import store
from ..errors import IndexBusyError
from ..records import Chunk
from ..store import StoredIndex
from .base import IndexStore

LOCK_FILE = ".writer.lock"


class FileStore(IndexStore):
    name = "files"

    def load(self) -> StoredIndex:
        return store.load_index(self.directory)

    def save(self, manifest: dict, chunks: list[Chunk], vectors: np.ndarray,
             sentence_vectors: np.ndarray) -> str:
        return store.save_index(self.directory, manifest, chunks, vectors, sentence_vectors).name

    def generation(self) -> str:
        # What CURRENT says, as written: a name that points nowhere is still a change to try (and
        # log once), not a silent no-op.
        try:
            return (self.directory / store.CURRENT).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):  # no CURRENT, or unreadable for a moment
            return ""

    def exists(self) -> bool:
        return store.live_generation(self.directory) is not None

    @contextmanager
    def writing(self):
        # flock: released by the kernel when the process dies, so a killed run leaves no stale lock.
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.directory / LOCK_FILE, "a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IndexBusyError(f"{self.directory}: another `essa-qa index` is writing this index "
                                     "(it holds its lock); try again when it has finished") from exc
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield self
        finally:
            handle.close()
