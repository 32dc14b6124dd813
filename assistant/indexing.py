"""Indexing: plans directory in, saved index out; only new or changed plans are embedded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .chunking import HEADER_WORDPIECES, ChunkerSettings, chunk_document, embedding_text
from .config import Settings
from .embedders import Embedder, EmbeddingCache
from .errors import IndexCorruptError, IndexMismatchError, IndexMissingError, PlanError
from . import ocr
from .guarded import ParseLimits, parse_guarded
from .ingest import sha256_of
from .plans import discover_plans
from .records import Chunk
from .store import StoredIndex, check_compatible
from .stores import IndexStore, get_store
from .tagging import CategoryTagger
from .versions import version_of, version_warnings


@dataclass(frozen=True)
class IndexReport:
    index_dir: Path
    embedded: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    relabelled: tuple[str, ...] = ()  # unchanged files whose version or year is named anew
    removed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    chunks_embedded: int = 0  # new or changed chunks, from the cache or the model
    chunks_cached: int = 0  # of those, the ones the embedding cache already held
    embed_seconds: float = 0.0
    total_chunks: int = 0
    changed: bool = False

    @property
    def chunks_per_second(self) -> float:
        """Chunks the model itself embedded, per second of embedding."""
        modelled = self.chunks_embedded - self.chunks_cached
        return modelled / self.embed_seconds if self.embed_seconds and modelled else 0.0


@dataclass
class _Progress:
    """Callbacks the CLI turns into progress bars; all optional."""

    on_plan: Callable[[str], None] | None = None
    on_embed_start: Callable[[str, int], None] | None = None
    on_embedded: Callable[[int], None] | None = None


def chunker_settings(settings: Settings, embedder: Embedder) -> ChunkerSettings:
    # A chunk and its header must fit the model's window, or its tail is never read.
    room = embedder.max_tokens - HEADER_WORDPIECES if embedder.max_tokens and settings.chunk_header else 0
    max_wordpieces = min(settings.model_max_wordpieces, room) if room > 0 else settings.model_max_wordpieces
    return ChunkerSettings(max_tokens=settings.chunk_max_tokens, min_tokens=settings.chunk_min_tokens,
                           overlap_tokens=settings.chunk_overlap_tokens, max_wordpieces=max_wordpieces,
                           model_dir=embedder.model_dir, header=bool(settings.chunk_header))


def embedding_cache(settings: Settings, index_dir: Path) -> EmbeddingCache | None:
    """The index's embedding cache (see Settings.embedding_cache), or None when it is off."""
    if settings.embedding_cache == "off":
        return None
    return EmbeddingCache(settings.embedding_cache or Path(index_dir) / "cache" / "embeddings.sqlite")


def build_index(plans_dir: Path, index_dir: Path, embedder: Embedder, settings: Settings,
                *, rebuild: bool = False, progress: _Progress | None = None,
                tagger: CategoryTagger | None = None) -> IndexReport:
    """Bring the index in line with the plans directory; a failing plan keeps its old chunks."""
    store = get_store(index_dir, settings)
    with store.writing():  # one writer at a time; a second run is refused in one line
        return _build(plans_dir, store, embedder, settings, rebuild, progress or _Progress(), tagger)


def _build(plans_dir: Path, store: IndexStore, embedder: Embedder, settings: Settings, rebuild: bool,
           progress: _Progress, tagger: CategoryTagger | None) -> IndexReport:
    index_dir = store.directory
    chunker = chunker_settings(settings, embedder)
    tagger = tagger or CategoryTagger.load()
    old, unusable = _previous_index(store, embedder, chunker, rebuild)
    old_plans = old.manifest.get("plans", {}) if old else {}
    ocr_engine = ocr.version() if settings.ocr != "off" else ""
    found, unknown = discover_plans(plans_dir)
    failed = [str(err) for err in unknown]
    warnings: list[str] = [unusable] if unusable else []
    kept_chunks: list[Chunk] = []
    kept_vectors: list[np.ndarray] = []
    kept_sentences: list[np.ndarray] = []
    plans_meta: dict[str, dict] = {}
    embedded, unchanged, relabelled_plans = [], [], []
    new_chunks: list[Chunk] = []

    for plan in found:
        try:
            digest = sha256_of(plan.path)
        except OSError as exc:
            failed.append(str(PlanError(plan.path, f"cannot be read ({exc.strerror or exc})")))
            continue
        version, year = version_of(plan.info, plan.path.name)
        previous = old_plans.get(plan.path.name)
        # A plan with scanned pages is read again when the OCR engine changed (or arrived).
        # (An index from before OCR did not record its scanned pages: read once more.)
        same_ocr = not previous or ("scanned" in previous and (not previous["scanned"] or
                                                               previous.get("ocr", "") == ocr_engine))
        if previous and previous["sha256"] == digest and previous["state"] == plan.state and same_ocr:
            # A version named anew (manifest or file name) relabels the chunks; nothing is embedded.
            _keep(old, plan.path.name, kept_chunks, kept_vectors, kept_sentences, version, year)
            relabelled = (previous.get("version"), previous.get("year")) != (version, year)
            plans_meta[plan.path.name] = {**previous, "version": version, "year": year}
            (relabelled_plans if relabelled else unchanged).append(plan.path.name)
            continue
        if progress.on_plan:
            progress.on_plan(plan.path.name)
        try:
            document = parse_guarded(plan.path, plan.state, ParseLimits.from_settings(settings))
        except PlanError as exc:
            failed.append(str(exc))
            if previous:  # keep what was indexed rather than lose it to a broken copy
                _keep(old, plan.path.name, kept_chunks, kept_vectors, kept_sentences)
                plans_meta[plan.path.name] = previous
            continue
        warnings.extend(document.warnings)
        chunks = [replace(c, version=version, year=year)
                  for c in chunk_document(document, chunker, title=plan.info.title if plan.info else "")]
        new_chunks.extend(chunks)
        plans_meta[plan.path.name] = {
            "state": plan.state, "sha256": digest, "format": document.format,
            "pages": document.n_pages, "paragraphs": document.n_paragraphs,
            "chunks": len(chunks), "title": plan.info.title if plan.info else "",
            "scanned": list(document.scanned), "ocr": ocr_engine if document.scanned else "",
            "ocr_pages": [u.page for u in document.units if u.ocr],
            "version": version, "year": year, "template": document.template,
        }
        embedded.append(plan.path.name)

    removed = tuple(sorted(set(old_plans) - set(plans_meta)))
    warnings.extend(version_warnings(plans_meta))
    started = time.perf_counter()
    if progress.on_embed_start:
        progress.on_embed_start("embedding", len(new_chunks))
    # One pass gives each chunk's vector and its sentences' vectors (see embedders.transformer).
    inputs = [embedding_text(c) for c in new_chunks]
    cache = embedding_cache(settings, index_dir)
    try:
        new_vectors, sentence_rows = embedder.embed_with_spans(
            [text for text, _ in inputs], [spans for _, spans in inputs],
            progress=progress.on_embedded, cache=cache)
        cached = cache.hits if cache is not None else 0
    finally:
        if cache is not None:
            cache.close()
    embed_seconds = time.perf_counter() - started
    chunks = kept_chunks + tagger.tag(new_chunks, new_vectors, embedder)
    vectors = np.vstack(kept_vectors + [new_vectors]).reshape(len(chunks), embedder.dim)
    sentence_vectors = np.vstack(kept_sentences + sentence_rows + [np.zeros((0, embedder.dim))])
    # An index written before the integrity records gets them on the next run, nothing re-embedded.
    changed = bool(embedded or removed or relabelled_plans or old is None
                   or (store.name == "files" and "files" not in old.manifest))
    if changed:
        manifest = {
            "tool_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedding": embedder.info(),
            "chunker": chunker.fingerprint(),
            "categories": tagger.fingerprint(),
            "plans": plans_meta,
        }
        store.save(manifest, chunks, vectors, sentence_vectors.astype(np.float32))
    return IndexReport(index_dir=Path(index_dir), embedded=tuple(embedded), unchanged=tuple(unchanged),
                       relabelled=tuple(relabelled_plans),
                       removed=removed, failed=tuple(failed), warnings=tuple(warnings),
                       chunks_embedded=len(new_chunks), chunks_cached=cached, embed_seconds=embed_seconds,
                       total_chunks=len(chunks), changed=changed)


def _previous_index(store: IndexStore, embedder: Embedder, chunker: ChunkerSettings,
                    rebuild: bool) -> tuple[StoredIndex | None, str | None]:
    """The index to reuse unchanged plans from (None: embed all), and why a damaged one was not."""
    if rebuild:
        return None, None
    try:
        old = store.load()
    except IndexMissingError:
        return None, None
    except IndexCorruptError as exc:
        # Nothing in it can be trusted, so every plan is embedded again (the embedding cache,
        # which lives outside the generations, keeps that cheap); the new generation replaces it.
        return None, f"{exc.path}: {exc.problem}; the existing index is not reused, every plan is re-indexed"
    try:
        check_compatible(old.manifest, embedder.fingerprint, chunker.fingerprint(), store.directory)
    except IndexMismatchError as exc:
        raise IndexMismatchError(f"{exc} (the existing index is left as it is)") from exc
    return old, None


def _keep(old: StoredIndex | None, source: str, chunks: list[Chunk], vectors: list[np.ndarray],
          sentences: list[np.ndarray], version: str | None = None, year: str | None = None) -> None:
    """Carry a plan's chunks and vectors over from the old index (relabelled with its version)."""
    if old is None:
        return
    rows = [i for i, c in enumerate(old.chunks) if c.source == source]
    chunks.extend(old.chunks[i] if version is None else replace(old.chunks[i], version=version, year=year)
                  for i in rows)
    vectors.append(old.vectors[rows])
    sentences.extend(old.sentence_rows(i) for i in rows)
