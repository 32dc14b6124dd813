"""The index store interface: where an index's generations live and how a new one goes live.

Every backend keeps whole generations: a writer builds a new one beside the live one and makes it
live in one step, so a reader always sees one generation complete (the previous one answers until
then, and keeps answering when the writer dies midway). One writer at a time: `writing()` holds
the store's lock for the whole build and refuses a second writer in one line (IndexBusyError).

`directory` is the local folder that goes with the index whatever the backend: the embedding
cache and the answers shared from the app live there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from ..records import Chunk
from ..store import StoredIndex


class IndexStore(ABC):
    name = ""  # the `store` setting that selects it

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @abstractmethod
    def load(self) -> StoredIndex:
        """The live generation, checked; IndexMissingError when there is none."""

    @abstractmethod
    def save(self, manifest: dict, chunks: list[Chunk], vectors: np.ndarray,
             sentence_vectors: np.ndarray) -> str:
        """Write a new generation and make it live in one step; its name."""

    @abstractmethod
    def generation(self) -> str:
        """The live generation's name ("" when there is none): cheap, polled by the app."""

    @abstractmethod
    def writing(self) -> AbstractContextManager:
        """Hold the one-writer lock for a build; IndexBusyError at once when another holds it."""

    def exists(self) -> bool:
        return bool(self.generation())

    def describe(self) -> str:
        """Where it is, for messages."""
        return str(self.directory)
