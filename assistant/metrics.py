"""Evaluation metrics: small pure functions over relevance lists, sets and numbers.

Nothing here touches an index or a model, so every metric is tested on hand-made cases with known
answers (tests/test_metrics.py). The evaluation runner (evaluation.py) decides what is relevant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class GoldLocator:
    """Where an answer is: a PDF page, or a DOCX paragraph (the first one holding the answer)."""

    state: str
    page: int | None = None
    paragraph: int | None = None

    @classmethod
    def from_json(cls, data: Mapping) -> "GoldLocator":
        return cls(state=str(data["state"]).upper(), page=data.get("page"),
                   paragraph=data.get("paragraph"))


def at_gold_locator(state: str, page: int | None, paragraph: int | None, paragraph_end: int | None,
                    locators: Iterable[GoldLocator]) -> bool:
    """Same state and same PDF page, or a DOCX paragraph range that contains the gold paragraph."""
    for gold in locators:
        if gold.state != state:
            continue
        if gold.page is not None and page == gold.page:
            return True
        if gold.paragraph is not None and paragraph is not None:
            last = paragraph if paragraph_end is None else paragraph_end
            if paragraph <= gold.paragraph <= last:
                return True
    return False


def key_terms_needed(n_terms: int) -> int:
    """At least half of the key terms, rounded up."""
    return -(-n_terms // 2)


def holds_key_terms(text: str, key_terms: Sequence[str]) -> bool:
    """The text contains at least half (rounded up) of the key terms, case-insensitive."""
    if not key_terms:
        return False
    lowered = text.lower()
    return sum(term.lower() in lowered for term in key_terms) >= key_terms_needed(len(key_terms))


def is_relevant(state: str, page: int | None, paragraph: int | None, paragraph_end: int | None,
                text: str, locators: Sequence[GoldLocator], key_terms: Sequence[str]) -> bool:
    """The eval/README.md relevance rule: at a gold locator and holding enough key terms."""
    return (at_gold_locator(state, page, paragraph, paragraph_end, locators)
            and holds_key_terms(text, key_terms))


# ------------------------------------------------------------------ ranking


def hit_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 when a relevant item is among the first k, else 0.0."""
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool]) -> float:
    """1 / rank of the first relevant item; 0.0 when none is relevant."""
    for rank, flag in enumerate(relevant, 1):
        if flag:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(relevant: Sequence[bool], k: int, n_relevant: int | None = None) -> float:
    """Binary-gain nDCG@k. `n_relevant` is how many relevant items exist in the whole collection
    (the ideal ranking puts min(n_relevant, k) of them first); by default, those retrieved."""
    gains = [1.0 if flag else 0.0 for flag in relevant[:k]]
    dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, 1))
    ideal_count = min(k, sum(1 for flag in relevant if flag) if n_relevant is None else n_relevant)
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, ideal_count + 1))
    return dcg / idcg if idcg > 0 else 0.0


# ------------------------------------------------------------------ sets and rates


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float


def precision_recall_f1(true_positives: int, false_positives: int, false_negatives: int) -> PRF:
    """Precision, recall and F1 from counts; an empty denominator gives 0.0."""
    precision = _ratio(true_positives, true_positives + false_positives)
    recall = _ratio(true_positives, true_positives + false_negatives)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return PRF(precision, recall, f1)


def set_counts(predicted: Iterable[str], gold: Iterable[str]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one predicted set against gold."""
    p, g = set(predicted), set(gold)
    return len(p & g), len(p - g), len(g - p)


def micro_prf(pairs: Iterable[tuple[Iterable[str], Iterable[str]]]) -> PRF:
    """Micro-averaged precision/recall/F1 over (predicted, gold) set pairs."""
    tp = fp = fn = 0
    for predicted, gold in pairs:
        a, b, c = set_counts(predicted, gold)
        tp, fp, fn = tp + a, fp + b, fn + c
    return precision_recall_f1(tp, fp, fn)


@dataclass(frozen=True)
class AbstentionScores:
    precision: float  # of the questions declined, the share that were unanswerable
    recall: float  # of the unanswerable questions, the share declined
    false_abstention_rate: float  # of the answerable questions, the share declined
    false_abstentions: int


def abstention_scores(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> AbstentionScores:
    """Declining as a classifier of unanswerable questions."""
    pairs = list(zip(abstained, unanswerable, strict=True))
    declined_right = sum(1 for a, u in pairs if a and u)
    declined = sum(1 for a, _ in pairs if a)
    n_unanswerable = sum(1 for _, u in pairs if u)
    false = sum(1 for a, u in pairs if a and not u)
    return AbstentionScores(precision=_ratio(declined_right, declined),
                            recall=_ratio(declined_right, n_unanswerable),
                            false_abstention_rate=_ratio(false, len(pairs) - n_unanswerable),
                            false_abstentions=false)


def mean(values: Iterable[float]) -> float | None:
    """The mean, or None for no values (a metric that does not apply is not 0)."""
    values = list(values)
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def squash_space(text: str) -> str:
    """Whitespace runs as one space: a quote laid out over lines is still the same words."""
    return _SPACE.sub(" ", text).strip()


def quote_in_text(quote: str, text: str) -> bool:
    """The quote occurs verbatim in the text (whitespace layout aside)."""
    return bool(quote.strip()) and squash_space(quote) in squash_space(text)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0
