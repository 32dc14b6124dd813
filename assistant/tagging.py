"""Tagging: every chunk gets a score per approach category; a question's category intent is found.

Two features come from the definitions file: the chunk's similarity to a category's prototypes
(the embeddings of its description and example phrases, in the index's own embedding space; the
nearest counts) and lexical cue hits. Without a learned model a score is a calibrated mix of the
two. With one (`categories.model.toml` beside the definitions, fitted on eval/labels by
`essa-qa tag --calibrate --write` for one embedding model; `categories.model.<variant>.toml` for
a quantized variant of it, e.g. `onnx-int8`), a score is a logistic regression over
those two features and the chunk's embedding itself. Either way a category is carried when its
score reaches the category's `threshold`. Template instructions and contents lines score zero:
they are not evidence of what a state does.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .records import RESPONSE, TABLE, Chunk

DEFAULT_CATEGORIES = Path(__file__).resolve().parent / "data" / "categories.toml"
CATEGORIES_ENV = "ESSA_QA_CATEGORIES"
MODEL_SUFFIX = ".model.toml"

# How much of a score comes from embedding similarity, the rest from cue words, unless a category
# sets its own calibrated `similarity_weight`.
SIMILARITY_WEIGHT = 0.6
# Cosine similarities of MiniLM passages to a prototype mostly fall in 0.05-0.65: rescale to 0-1.
SIM_FLOOR, SIM_SPAN = 0.10, 0.45


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    description: str
    examples: tuple[str, ...]
    cues: tuple[re.Pattern[str], ...]
    question_cues: tuple[re.Pattern[str], ...]
    threshold: float
    similarity_weight: float = SIMILARITY_WEIGHT


@dataclass(frozen=True)
class LearnedCategory:
    """One category's logistic regression: score = sigmoid(intercept + similarity * s + cue * c + e . v).

    The intercept is shifted so that the cut chosen in calibration falls at the category's
    `threshold` in the definitions file: both scoring modes share one threshold.
    """

    intercept: float
    similarity: float
    cue: float
    embedding: np.ndarray  # one weight per embedding dimension


@dataclass(frozen=True)
class LearnedModel:
    embedding: str  # fingerprint of the embedder whose space the weights live in
    categories: dict[str, LearnedCategory]


class CategoryTagger:
    def __init__(self, categories: tuple[Category, ...], source_text: str = "",
                 model: LearnedModel | None = None, model_text: str = "",
                 variants: tuple[LearnedModel, ...] = ()):
        self.categories = categories
        self.model = model  # the one in categories.model.toml
        # Every learned model by the embedder it was fitted for (the variants' files too).
        self.models = {m.embedding: m for m in (*variants, *([model] if model else []))}
        self._source_text = source_text
        self._model_text = model_text
        self._prototypes: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "CategoryTagger":
        path = Path(path or os.environ.get(CATEGORIES_ENV) or DEFAULT_CATEGORIES)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read category definitions ({exc})") from exc
        categories = []
        for cid, spec in data.items():
            try:
                categories.append(Category(
                    id=cid, label=spec["label"], description=spec["description"],
                    examples=tuple(spec.get("examples", [])),
                    cues=tuple(_compile(p, path, cid) for p in spec.get("cues", [])),
                    question_cues=tuple(_compile(p, path, cid) for p in spec.get("question_cues", [])),
                    threshold=float(spec.get("threshold", 0.5)),
                    similarity_weight=float(spec.get("similarity_weight", SIMILARITY_WEIGHT)),
                ))
            except KeyError as exc:
                raise ConfigError(f"{path}: category {cid!r} lacks {exc.args[0]!r}") from exc
            except (TypeError, ValueError, AttributeError) as exc:
                raise ConfigError(f"{path}: category {cid!r} is malformed ({exc})") from exc
        if not categories:
            raise ConfigError(f"{path}: no categories defined")
        model, model_text = load_model(model_path_for(path))
        variants = []
        for variant_path in sorted(path.parent.glob(f"{path.stem}.model.*.toml")):
            variant, variant_text = load_model(variant_path)
            variants.append(variant)
            model_text += variant_text
        return cls(tuple(categories), text, model, model_text, tuple(variants))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)

    def label(self, category_id: str) -> str:
        return next((c.label for c in self.categories if c.id == category_id), category_id)

    def fingerprint(self) -> str:
        return hashlib.sha256((self._source_text + self._model_text).encode()).hexdigest()

    def learned_for(self, embedder) -> LearnedModel | None:
        """The learned model if it was fitted in this embedder's space (weights mean nothing elsewhere)."""
        return self.models.get(embedder.fingerprint)

    def components(self, texts: list[str], vectors: np.ndarray, embedder) -> tuple[np.ndarray, np.ndarray]:
        """(similarity, cues): two (len(texts), n_categories) arrays in 0..1 that scores mix."""
        n = len(self.categories)
        if not texts:
            return np.zeros((0, n), dtype=np.float32), np.zeros((0, n), dtype=np.float32)
        vectors = np.asarray(vectors, dtype=np.float32)
        # Nearest prototype phrase, not the mean of them: a passage about one facet of a category
        # (say, foster care) need not resemble the whole definition. Cross-validation on
        # eval/labels preferred it (macro-F1 0.63 -> 0.68).
        nearest = np.stack([(vectors @ self._prototypes_of(c, embedder).T).max(axis=1)
                            for c in self.categories], axis=1)
        similarity = np.clip((nearest - SIM_FLOOR) / SIM_SPAN, 0.0, 1.0)
        lexical = np.array([[self._cue_strength(c, t) for c in self.categories] for t in texts],
                           dtype=np.float32)
        return similarity, lexical

    def scores(self, texts: list[str], vectors: np.ndarray, embedder) -> np.ndarray:
        """(len(texts), n_categories) scores in 0..1."""
        similarity, lexical = self.components(texts, vectors, embedder)
        weight = np.array([c.similarity_weight for c in self.categories], dtype=np.float32)
        mixed = weight * similarity + (1 - weight) * lexical
        model = self.learned_for(embedder)
        if model is None or not len(texts):
            return mixed
        vectors = np.asarray(vectors, dtype=np.float32)
        for j, category in enumerate(self.categories):
            learned = model.categories.get(category.id)
            # A category added after the last calibration keeps the plain mixed score.
            if learned is not None:
                mixed[:, j] = learned_scores(learned, similarity[:, j], lexical[:, j], vectors)
        return mixed

    def tag(self, chunks: list[Chunk], vectors: np.ndarray, embedder) -> list[Chunk]:
        """Chunks with `categories` filled: every category's score, rounded."""
        scores = self.scores([c.text for c in chunks], vectors, embedder)
        tagged = []
        for chunk, row in zip(chunks, scores):
            evidence = chunk.kind in (RESPONSE, TABLE)
            tagged.append(replace(chunk, categories={
                c.id: round(float(s), 4) if evidence else 0.0 for c, s in zip(self.categories, row)}))
        return tagged

    def carried(self, scores: dict[str, float]) -> tuple[str, ...]:
        """The categories whose score reaches their threshold, strongest first."""
        # A zero score (template text) never carries a category, whatever the threshold.
        hits = [(scores.get(c.id, 0.0), c.id) for c in self.categories
                if scores.get(c.id, 0.0) >= c.threshold and scores.get(c.id, 0.0) > 0]
        return tuple(cid for _, cid in sorted(hits, reverse=True))

    def question_categories(self, question: str) -> tuple[str, ...]:
        """Categories a question asks about ("How does Nevada help students moving into high school?")."""
        return tuple(c.id for c in self.categories if any(p.search(question) for p in c.question_cues))

    def _prototypes_of(self, category: Category, embedder) -> np.ndarray:
        """Unit embeddings of the category's description and example phrases, one row each."""
        key = f"{embedder.fingerprint}:{category.id}"
        if key not in self._prototypes:
            self._prototypes[key] = embedder.embed([category.description, *category.examples])
        return self._prototypes[key]

    @staticmethod
    def _cue_strength(category: Category, text: str) -> float:
        distinct = sum(1 for p in category.cues if p.search(text))
        return 1.0 - math.exp(-distinct / 1.5)


def cue_regex(pattern: str) -> re.Pattern[str]:
    """A cue as written in a data file: case-insensitive, except that a cue written in capitals
    (an acronym: AP, EL, SEL, ACT) must match case. re.error for a bad pattern."""
    core = re.sub(r"\\.", "", pattern)
    flags = 0 if core.isupper() and re.search(r"[A-Z]{2,}", core) else re.IGNORECASE
    return re.compile(pattern, flags)


def _compile(pattern: str, path: Path, cid: str) -> re.Pattern[str]:
    try:
        return cue_regex(pattern)
    except re.error as exc:
        raise ConfigError(f"{path}: category {cid!r} has a bad pattern {pattern!r} ({exc})") from exc


def learned_scores(learned: LearnedCategory, similarity: np.ndarray, cues: np.ndarray,
                   vectors: np.ndarray) -> np.ndarray:
    z = (learned.intercept + learned.similarity * similarity + learned.cue * cues
         + vectors @ learned.embedding)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def is_variant(embedding: str) -> bool:
    """A quantized variant of a model ("...@sha256:<hex>+onnx-int8"): its learned model goes in a
    file of its own and it shares the definitions' thresholds with the model it comes from."""
    return "+" in embedding


def model_path_for(categories_path: str | os.PathLike, embedding: str = "") -> Path:
    """`categories.toml` -> `categories.model.toml`: a learned model sits beside its definitions.
    A variant embedder ("<model>@sha256:<hex>+onnx-int8") gets `categories.model.onnx-int8.toml`."""
    path = Path(categories_path)
    variant = embedding.rpartition("+")[2] if is_variant(embedding) else ""
    return path.with_name(path.stem + (f".model.{variant}.toml" if variant else MODEL_SUFFIX))


def load_model(path: Path) -> tuple[LearnedModel | None, str]:
    """The learned model at `path` and its text, or (None, "") when there is none."""
    if not path.exists():
        return None, ""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
        categories = {cid: LearnedCategory(
            intercept=float(spec["intercept"]), similarity=float(spec["similarity"]),
            cue=float(spec["cue"]), embedding=np.asarray(spec["embedding"], dtype=np.float32))
            for cid, spec in data["categories"].items()}
        dims = {m.embedding.shape for m in categories.values()}
        if len(dims) > 1:
            raise ValueError("embedding weights differ in length")
        return LearnedModel(embedding=str(data["embedding"]), categories=categories), text
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: cannot read the learned category model ({exc})") from exc


def retag_index(index_dir: str | os.PathLike, tagger: CategoryTagger) -> int:
    """Re-score every chunk of a saved index with its stored vectors and write a new generation.

    Returns how many chunks changed the categories they carry. Nothing is re-embedded: the
    embedder is needed only for the category prototypes (a few phrases).
    """
    from .config import load_settings
    from .embedders import embedder_for_index
    from .stores import get_store

    store = get_store(Path(index_dir), load_settings())
    with store.writing():
        stored = store.load()
        embedder = embedder_for_index(stored.manifest["embedding"])
        chunks = tagger.tag(list(stored.chunks), stored.vectors, embedder)
        changed = sum(1 for old, new in zip(stored.chunks, chunks)
                      if set(tagger.carried(old.categories)) != set(tagger.carried(new.categories)))
        manifest = {**stored.manifest, "categories": tagger.fingerprint()}
        store.save(manifest, chunks, stored.vectors, stored.sentence_vectors)
    return changed
