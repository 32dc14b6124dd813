"""The lexical side: BM25 (bm25s) over each chunk's header and text, stemmed with the one
Snowball stemmer everything comparing words with the index shares (assistant.terms).

Stemming every chunk is most of a cold start at scale (5.2 s of 9.8 s at 51 plans), so the built
BM25 index is kept as bm25s's own plain files (.npy, JSON) under `cache_dir`, named by a digest of
the texts it was built from: a process that loads the same index reads them instead of stemming.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..terms import stemmer

log = logging.getLogger(__name__)
CACHE_VERSION = 1  # bump when tokenizing changes: older cached indexes are then never read


class LexicalIndex:
    """BM25 scores for a query over every document, and how many documents hold a stem."""

    def __init__(self, texts: Sequence[str], cache_dir: Path | None = None):
        import bm25s

        self.n = len(texts)
        self.from_cache = False
        folder = Path(cache_dir) / _digest(texts) if cache_dir is not None and texts else None
        loaded = _load(folder) if folder is not None else None
        if loaded is not None:
            self._bm25, self.from_cache = loaded, True
            return
        self._bm25 = bm25s.BM25()
        if texts:
            self._bm25.index(bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer(),
                                            show_progress=False), show_progress=False)
            if folder is not None:
                _save(self._bm25, folder)

    def scores(self, query: str) -> np.ndarray:
        import bm25s

        vocabulary = getattr(self._bm25, "vocab_dict", {})
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer(), return_ids=False,
                                show_progress=False)[0]
        known = [t for t in tokens if t in vocabulary]
        if not known:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def documents_with(self, stem: str) -> np.ndarray:
        """Indexes of the documents holding `stem` (a lower-case Snowball stem as the index spells
        it); empty for a stem the index has never seen."""
        column = getattr(self._bm25, "vocab_dict", {}).get(stem) if stem else None
        if column is None:
            return np.zeros(0, dtype=np.int64)
        scores = self._bm25.scores
        return np.asarray(scores["indices"][scores["indptr"][column]:scores["indptr"][column + 1]])


def _digest(texts: Sequence[str]) -> str:
    import bm25s

    h = hashlib.sha256(f"{CACHE_VERSION}|{bm25s.__version__}|{len(texts)}".encode())
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:24]


def _load(folder: Path):
    import bm25s

    if not (folder / "params.index.json").is_file():
        return None
    try:
        return bm25s.BM25.load(str(folder), show_progress=False)
    except Exception as exc:  # a damaged cache is rebuilt, never trusted
        log.warning("BM25 cache %s unreadable, rebuilding: %s", folder, exc)
        return None


def _save(bm25, folder: Path) -> None:
    """Written aside and renamed into place (a reader never sees half a cache); the caches of
    other texts in the folder are removed (an index keeps one live generation)."""
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        bm25.save(str(tmp), show_progress=False)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process saved the same one first
            shutil.rmtree(tmp, ignore_errors=True)
        for other in folder.parent.iterdir():
            if other.name != folder.name and not other.name.startswith("."):
                shutil.rmtree(other, ignore_errors=True)
    except OSError as exc:  # a read-only index folder: stemmed again at each start instead
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("BM25 cache not written to %s: %s", folder.parent, exc)
