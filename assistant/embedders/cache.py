"""A disk cache of embeddings keyed by model fingerprint and text hash.

Re-chunking, re-tagging or a new chunk header then embeds only text the model has not seen.
SQLite rather than loose .npy files: writes from a killed run are all-or-nothing per batch, two
processes can share it, and a lookup of a few thousand keys is one query.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

LOOKUP_BATCH = 500  # keys per SELECT: below SQLite's bound-parameter limit


class EmbeddingCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, rows INTEGER, "
                         "dim INTEGER, data BLOB)")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def keys(fingerprint: str, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[str]:
        out = []
        for text, text_spans in zip(texts, spans):
            digest = hashlib.sha256(fingerprint.encode())
            digest.update(b"\0" + text.encode("utf-8", "surrogatepass") + b"\0")
            digest.update(",".join(f"{a}:{b}" for a, b in text_spans).encode())
            out.append(digest.hexdigest())
        return out

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), LOOKUP_BATCH):
            part = keys[start:start + LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            for key, rows, dim, data in self._db.execute(
                    f"SELECT key, rows, dim, data FROM vectors WHERE key IN ({marks})", part):
                if len(data) == rows * dim * 4:  # a damaged row is a miss, never a wrong vector
                    found[key] = np.frombuffer(data, dtype=np.float32).reshape(rows, dim)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, keys: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
        rows = [(k, int(a.shape[0]), int(a.shape[1]), np.ascontiguousarray(a, dtype=np.float32).tobytes())
                for k, a in zip(keys, arrays)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()
