"""The saved index: plain files (JSON, JSONL, .npy) in generation folders.

Layout of the index directory:
    CURRENT                 name of the live generation (replaced atomically)
    gen-<time>-<rand>/      manifest.json, chunks.jsonl, vectors.npy (one row per chunk),
                            sentences.npy (one row per quotable sentence, chunk by chunk, in the
                            order of each chunk's `sentences`)
    cache/embeddings.sqlite embeddings by model and text (assistant/embedders/cache.py)
    shared/<id>.json        answers shared from the web app (assistant/permalinks.py)
A writer builds a new generation beside the live one and only then swaps CURRENT, so a run that
is killed midway leaves the previous index loadable.

Integrity: the manifest's "files" records each data file's SHA-256, size, line count (chunks) or
shape and dtype (arrays), and a digest of the manifest's own content; `load_index` checks them
all, and that every vector is finite, before anything is served, so a damaged index fails with
one line (IndexCorruptError) instead of answering wrongly. An index written before these records
is checked for what it can be (parsing, counts, finite vectors).

No FAISS file is written: one used to be, but nothing read it. Dense search builds its exact
inner-product index from vectors.npy at load (assistant/retrieval/dense.py); for a few thousand
vectors that is milliseconds, and a second copy of the vectors would be one more file to verify.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from .records import Chunk

FORMAT_VERSION = 2  # 2: chunk headers and sentence vectors (the "files" records need no new version)
CURRENT = "CURRENT"
MANIFEST, CHUNKS, VECTORS, SENTENCES = "manifest.json", "chunks.jsonl", "vectors.npy", "sentences.npy"
DATA_FILES = (CHUNKS, VECTORS, SENTENCES)
_NPY_HEADERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
_NPY_HEADER_ROOM = 1 << 17  # magic, length and header: numpy itself refuses headers over 10 kB
_GENERATION_NAME = re.compile(r"gen-[0-9A-Za-z-]+")  # gen-<time>-<hex>, as save_index names them


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
    """The live generation's folder, or None when there is none usable (`load_index` says why)."""
    try:
        return _current_generation(Path(index_dir))
    except IndexCorruptError:
        return None


def _current_generation(index_dir: Path) -> Path | None:
    """None when there is no CURRENT; IndexCorruptError when it names no generation folder."""
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(pointer, f"cannot be read ({exc})") from exc
    if not name:
        raise IndexCorruptError(pointer, "is empty")
    # Only a name save_index could have written: an empty or stray one must not point elsewhere.
    if not _GENERATION_NAME.fullmatch(name):
        raise IndexCorruptError(pointer, f"does not name a generation ({name[:60]!r})")
    generation = index_dir / name
    if not generation.is_dir():
        raise IndexCorruptError(pointer, f"names {name}, which is not there")
    return generation


def load_index(index_dir: Path) -> StoredIndex:
    """The live generation, verified against its manifest; IndexCorruptError names what is wrong."""
    generation = _current_generation(Path(index_dir))
    if generation is None:
        raise IndexMissingError(f"{index_dir}: no index here; build one with `essa-qa index`")
    manifest = _read_manifest(generation / MANIFEST)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{index_dir}: index format {manifest.get('format_version')} is not {FORMAT_VERSION}; "
            "rebuild it with `essa-qa index --rebuild`")
    records = _file_records(generation / MANIFEST, manifest)
    chunks = _parse_chunks(generation / CHUNKS, _verified_bytes(generation / CHUNKS, records))
    vectors = _parse_array(generation / VECTORS, _verified_bytes(generation / VECTORS, records))
    sentence_vectors = _parse_array(generation / SENTENCES, _verified_bytes(generation / SENTENCES, records))
    for name, loaded in ((CHUNKS, chunks), (VECTORS, vectors), (SENTENCES, sentence_vectors)):
        _check_against_record(generation / name, loaded, records.get(name))
    _check_consistent(generation, manifest, chunks, vectors, sentence_vectors)
    return StoredIndex(Path(index_dir), manifest, chunks, vectors, sentence_vectors)


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(path, "is missing") from exc
    except OSError as exc:
        raise IndexCorruptError(path, f"cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise IndexCorruptError(path, f"is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(path, "is not a JSON object")
    return manifest


def _file_records(path: Path, manifest: dict) -> dict[str, dict]:
    """The manifest's per-file records ({} for an index written before them), its own digest checked."""
    if "files" not in manifest:
        return {}
    records = manifest["files"]
    if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
        raise IndexCorruptError(path, "its \"files\" records are damaged")
    # A flipped byte inside a string still parses; the digest of the content catches it.
    if records.get(MANIFEST, {}).get("sha256") != _manifest_digest(manifest):
        raise IndexCorruptError(path, "content does not match its recorded checksum")
    missing = [name for name in DATA_FILES if name not in records]
    if missing:
        raise IndexCorruptError(path, f"has no record of {', '.join(missing)}")
    return records


def _manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's content less its own digest, key order and spacing aside."""
    files = {name: r for name, r in manifest.get("files", {}).items() if name != MANIFEST}
    canonical = json.dumps({**manifest, "files": files}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _verified_bytes(path: Path, records: dict[str, dict]) -> bytearray:
    """The file's bytes, once read: hashed against its record here, then parsed from memory."""
    try:
        with open(path, "rb") as handle:
            # Into a writable buffer, so that the arrays can be views of it rather than copies.
            data = bytearray(os.fstat(handle.fileno()).st_size)
            del data[handle.readinto(data):]  # in case it shrank meanwhile
    except FileNotFoundError as exc:
        raise IndexCorruptError(path, "is missing") from exc
    except OSError as exc:
        raise IndexCorruptError(path, f"cannot be read ({exc.strerror or exc})") from exc
    record = records.get(path.name)
    if record is None:
        return data
    if len(data) != record.get("bytes"):
        raise IndexCorruptError(path, f"is {len(data)} bytes, the manifest recorded {record.get('bytes')} "
                                      "(truncated or replaced)")
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise IndexCorruptError(path, "content does not match its recorded SHA-256 (damaged or changed)")
    return data


def _parse_chunks(path: Path, data: bytearray) -> tuple[Chunk, ...]:
    try:
        # Split on "\n" alone: str.splitlines would also cut at U+2028 and the like, which
        # json.dumps(ensure_ascii=False) leaves unescaped inside a chunk's text.
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise IndexCorruptError(path, f"is not UTF-8 text ({exc})") from exc
    chunks = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            chunks.append(Chunk.from_json(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IndexCorruptError(path, f"line {number} is not a chunk record ({exc})") from exc
    return tuple(chunks)


def _parse_array(path: Path, data: bytearray) -> np.ndarray:
    """A 2-D float32 .npy from its bytes. The header is read and the size checked before any data:
    a damaged header must not make numpy allocate its claimed shape, nor fall back on unpickling."""
    stream = io.BytesIO(bytes(data[:_NPY_HEADER_ROOM]))  # the header only: no copy of the data
    try:
        version = npy_format.read_magic(stream)
        if version not in _NPY_HEADERS:
            raise ValueError(f"unknown .npy version {version}")
        shape, fortran_order, dtype = _NPY_HEADERS[version](stream)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise IndexCorruptError(path, f"is not a readable .npy array ({exc})") from exc
    if len(shape) != 2 or min(shape) < 0 or dtype != np.float32 or fortran_order:
        raise IndexCorruptError(path, f"holds a {dtype} array of shape {shape}, "
                                      "not rows of float32 vectors")
    expected = stream.tell() + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise IndexCorruptError(path, f"is {len(data)} bytes, its header implies {expected} "
                                      "(truncated or padded)")
    return np.frombuffer(data, dtype=np.float32, offset=stream.tell()).reshape(shape)


def _check_against_record(path: Path, loaded: tuple | np.ndarray, record: dict | None) -> None:
    if record is None:
        return
    if isinstance(loaded, np.ndarray):
        if list(loaded.shape) != record.get("shape") or str(loaded.dtype) != record.get("dtype"):
            raise IndexCorruptError(path, f"holds {loaded.dtype} {list(loaded.shape)}, the manifest "
                                          f"recorded {record.get('dtype')} {record.get('shape')}")
    elif len(loaded) != record.get("lines"):
        raise IndexCorruptError(path, f"has {len(loaded)} chunks, the manifest recorded "
                                      f"{record.get('lines')}")


def _check_consistent(generation: Path, manifest: dict, chunks: tuple[Chunk, ...], vectors: np.ndarray,
                      sentence_vectors: np.ndarray) -> None:
    """What holds across files: all an index written before the records can be checked for."""
    if len(chunks) != len(vectors):
        raise IndexCorruptError(generation / VECTORS, f"has {len(vectors)} vectors for {len(chunks)} chunks")
    n_sentences = sum(len(c.sentences) for c in chunks)
    if n_sentences != len(sentence_vectors):
        raise IndexCorruptError(generation / SENTENCES, f"has {len(sentence_vectors)} sentence vectors for "
                                                       f"{n_sentences} sentences")
    dim = manifest.get("embedding", {}).get("dim") if isinstance(manifest.get("embedding"), dict) else None
    for name, array in ((VECTORS, vectors), (SENTENCES, sentence_vectors)):
        if dim is not None and array.shape[1] != dim:
            raise IndexCorruptError(generation / name, f"has {array.shape[1]}-wide vectors, "
                                                       f"the model's are {dim}")
        # NaN or inf scores sort anywhere: wrong citations or abstentions with no error.
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            raise IndexCorruptError(generation / name, f"row {int(np.argmin(finite))} is not finite "
                                                       f"(NaN or inf; {int((~finite).sum())} such rows)")


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
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    staging = index_dir / f".tmp-{name}"
    staging.mkdir()
    records = {CHUNKS: _write_bytes(staging / CHUNKS, "".join(
        json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in chunks).encode("utf-8"))}
    records[CHUNKS]["lines"] = len(chunks)
    for file_name, array in ((VECTORS, vectors), (SENTENCES, sentence_vectors)):
        array = np.asarray(array, dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, array)
        records[file_name] = {**_write_bytes(staging / file_name, buffer.getvalue()),
                              "shape": list(array.shape), "dtype": str(array.dtype)}
    # Whatever "files" an earlier manifest carried (retag passes one on) is replaced whole.
    manifest = {**manifest, "format_version": FORMAT_VERSION, "counts": _counts(chunks), "files": records}
    manifest["files"] = {**records, MANIFEST: {"sha256": _manifest_digest(manifest)}}
    _write_text(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
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


def _write_bytes(path: Path, data: bytes) -> dict:
    """Write and fsync; returns the file's record for the manifest."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


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
