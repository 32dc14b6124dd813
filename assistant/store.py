"""The saved index: plain files (JSON, JSONL, .npy, a FAISS file) in generation folders.

Layout of the index directory:
    CURRENT                 name of the live generation (replaced atomically)
    gen-<time>-<rand>/      manifest.json, chunks.jsonl, vectors.npy (one row per chunk),
                            sentences.npy (one row per quotable sentence, chunk by chunk, in the
                            order of each chunk's `sentences`), faiss.index
    cache/embeddings.sqlite embeddings by model and text (assistant/embedders/cache.py)
A writer builds a new generation beside the live one and only then swaps CURRENT, so a run that
is killed midway leaves the previous index loadable.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import IndexMismatchError, IndexMissingError
from .records import Chunk

FORMAT_VERSION = 2  # 2: chunk headers and sentence vectors
CURRENT = "CURRENT"


@dataclass(frozen=True)
class StoredIndex:
    directory: Path
    manifest: dict
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    sentence_vectors: np.ndarray

    def plan_hashes(self) -> dict[str, str]:
        return {source: plan["sha256"] for source, plan in self.manifest.get("plans", {}).items()}

    def sentence_rows(self, i: int) -> np.ndarray:
        """Chunk i's sentence vectors, one row per span in `chunks[i].sentences`."""
        start = int(self.sentence_starts[i])
        return self.sentence_vectors[start:start + len(self.chunks[i].sentences)]

    @cached_property
    def sentence_starts(self) -> np.ndarray:
        """Row of each chunk's first sentence in `sentence_vectors`."""
        counts = np.array([len(c.sentences) for c in self.chunks], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else counts


def live_generation(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / CURRENT
    if not pointer.is_file():
        return None
    generation = Path(index_dir) / pointer.read_text(encoding="utf-8").strip()
    return generation if generation.is_dir() else None


def load_index(index_dir: Path) -> StoredIndex:
    generation = live_generation(Path(index_dir))
    if generation is None:
        raise IndexMissingError(f"{index_dir}: no index here; build one with `essa-qa index`")
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{index_dir}: index format {manifest.get('format_version')} is not {FORMAT_VERSION}; "
            "rebuild it with `essa-qa index --rebuild`")
    with open(generation / "chunks.jsonl", encoding="utf-8") as handle:
        chunks = tuple(Chunk.from_json(json.loads(line)) for line in handle if line.strip())
    vectors = np.load(generation / "vectors.npy")
    sentence_vectors = np.load(generation / "sentences.npy")
    if len(chunks) != len(vectors):
        raise IndexMismatchError(f"{generation}: {len(chunks)} chunks but {len(vectors)} vectors")
    n_sentences = sum(len(c.sentences) for c in chunks)
    if n_sentences != len(sentence_vectors):
        raise IndexMismatchError(f"{generation}: {n_sentences} sentences but {len(sentence_vectors)} "
                                 "sentence vectors")
    return StoredIndex(Path(index_dir), manifest, chunks, vectors, sentence_vectors)


def check_compatible(manifest: dict, embedder_fingerprint: str, chunker: dict, index_dir: Path) -> None:
    """Refuse an index whose vectors or chunk boundaries came from other settings."""
    built_with = manifest.get("embedding", {}).get("fingerprint")
    if built_with != embedder_fingerprint:
        raise IndexMismatchError(
            f"{index_dir}: index was built with embedding model {built_with!r}, not "
            f"{embedder_fingerprint!r}; rebuild it with `essa-qa index --rebuild`")
    if manifest.get("chunker") != chunker:
        raise IndexMismatchError(
            f"{index_dir}: index was built with chunker settings {manifest.get('chunker')}, not "
            f"{chunker}; rebuild it with `essa-qa index --rebuild`")


def save_index(index_dir: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray,
               sentence_vectors: np.ndarray) -> Path:
    """Write a new generation aside, then swap CURRENT to it in one rename."""
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    staging = index_dir / f".tmp-{name}"
    staging.mkdir()
    manifest = {**manifest, "format_version": FORMAT_VERSION, "counts": _counts(chunks)}
    _write_text(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    _write_text(staging / "chunks.jsonl",
                "".join(json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in chunks))
    for file_name, array in (("vectors.npy", vectors), ("sentences.npy", sentence_vectors)):
        with open(staging / file_name, "wb") as handle:
            np.save(handle, np.asarray(array, dtype=np.float32))
            handle.flush()
            os.fsync(handle.fileno())
    flat = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        flat.add(vectors.astype(np.float32))
    faiss.write_index(flat, str(staging / "faiss.index"))
    final = index_dir / name
    os.replace(staging, final)
    previous = live_generation(index_dir)
    _write_text(index_dir / f".{CURRENT}.tmp", name)
    os.replace(index_dir / f".{CURRENT}.tmp", index_dir / CURRENT)
    _remove_stale(index_dir, keep={name, previous.name if previous else ""})
    return final


def _counts(chunks: list[Chunk]) -> dict:
    by_state: dict[str, int] = {}
    for chunk in chunks:
        by_state[chunk.state] = by_state.get(chunk.state, 0) + 1
    return {"chunks": len(chunks), "by_state": by_state}


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _remove_stale(index_dir: Path, keep: set[str]) -> None:
    """Old generations and staging left by killed runs; the previous one stays for open readers."""
    for entry in index_dir.iterdir():
        if entry.is_dir() and (entry.name.startswith("gen-") or entry.name.startswith(".tmp-gen-")):
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
