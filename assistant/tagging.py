"""Tagging: every chunk gets a score per approach category; a question's category intent is found.

A score mixes the chunk's similarity to a category prototype (the mean embedding of the category's
description and example phrases, in the index's own embedding space) with lexical cue hits.
Template instructions and contents lines score zero: they are not evidence of what a state does.
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

# How much of a score comes from embedding similarity; the rest from cue words.
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


class CategoryTagger:
    def __init__(self, categories: tuple[Category, ...], source_text: str = ""):
        self.categories = categories
        self._source_text = source_text
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
                ))
            except KeyError as exc:
                raise ConfigError(f"{path}: category {cid!r} lacks {exc.args[0]!r}") from exc
        return cls(tuple(categories), text)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)

    def label(self, category_id: str) -> str:
        return next((c.label for c in self.categories if c.id == category_id), category_id)

    def fingerprint(self) -> str:
        return hashlib.sha256(self._source_text.encode()).hexdigest()

    def scores(self, texts: list[str], vectors: np.ndarray, embedder) -> np.ndarray:
        """(len(texts), n_categories) scores in 0..1."""
        if not texts:
            return np.zeros((0, len(self.categories)), dtype=np.float32)
        prototypes = np.stack([self._prototype(c, embedder) for c in self.categories])
        similarity = np.clip((vectors @ prototypes.T - SIM_FLOOR) / SIM_SPAN, 0.0, 1.0)
        lexical = np.array([[self._cue_strength(c, t) for c in self.categories] for t in texts],
                           dtype=np.float32)
        return SIMILARITY_WEIGHT * similarity + (1 - SIMILARITY_WEIGHT) * lexical

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
        hits = [(scores.get(c.id, 0.0), c.id) for c in self.categories
                if scores.get(c.id, 0.0) >= c.threshold]
        return tuple(cid for _, cid in sorted(hits, reverse=True))

    def question_categories(self, question: str) -> tuple[str, ...]:
        """Categories a question asks about ("How does Nevada help students moving into high school?")."""
        return tuple(c.id for c in self.categories if any(p.search(question) for p in c.question_cues))

    def _prototype(self, category: Category, embedder) -> np.ndarray:
        key = f"{embedder.fingerprint}:{category.id}"
        if key not in self._prototypes:
            phrases = [category.description, *category.examples]
            mean = embedder.embed(phrases).mean(axis=0)
            self._prototypes[key] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return self._prototypes[key]

    @staticmethod
    def _cue_strength(category: Category, text: str) -> float:
        distinct = sum(1 for p in category.cues if p.search(text))
        return 1.0 - math.exp(-distinct / 1.5)


def _compile(pattern: str, path: Path, cid: str) -> re.Pattern[str]:
    try:
        # Cues for acronyms (AP, EL, SEL) are written in capitals and must match case.
        core = re.sub(r"\\.", "", pattern)
        flags = 0 if core.isupper() and re.search(r"[A-Z]{2,}", core) else re.IGNORECASE
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"{path}: category {cid!r} has a bad pattern {pattern!r} ({exc})") from exc
