"""Fitting the learned parts of the pipeline on an eval question set, in stage order:

    fusion weights  (grid search: which lists, which weights, RRF or a weighted sum; by MRR@10)
    second stage    (logistic regression over candidate features; relevant = the eval's rule)
    sentences       (logistic regression: a sentence of a relevant passage that holds a key term)
    decision        (logistic regression: answerable vs a topic the plan never mentions)

`fit_pipeline(assistant, examples)` fits all four on some questions; evaluation.py calls it per
fold for cross-validated (held-out) numbers and `essa-qa fit --write` on every question for the
shipped file. Questions about states that are not indexed are decided by rule and never fitted on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .answer.compose import SENTENCE_FEATURES, SentenceModel, is_readable_sentence, sentence_features
from .answer.decision import DecisionModel
from .answer.evidence import DECISION_FEATURES, Evidence, gather
from .answer.retrieve import retrieve
from .answer.scope import Scope, scope_question
from .fitted import Fitted
from .learning import fit_linear
from .retrieval import Fusion, QuerySignals, RetrievalModels
from .retrieval.fusion import LISTS
from .retrieval.rerank import FEATURES as RERANK_FEATURES
from .retrieval.rerank import RERANK_DEPTH

DEPTH = 10  # retrieval is scored on the top 10
RRF_KS = (15, 60)
WEIGHT_STEP = 0.1
REGULARIZATION = 1.0  # C of every regression here: features are standardized, examples few
# Sentences: an answer that misses the passage holding the answer fails its reader more than one
# extra citation does, so the cut weighs recall: F-beta with this beta.
SENTENCE_BETA = 2.0
# The decision's threshold: abstaining on an answerable question costs this many missed
# abstentions (a wrong "the plans are silent" misleads more than a weak answer does).
FALSE_ABSTENTION_COST = 2.0


@dataclass(frozen=True)
class Example:
    """One eval question, prepared once: its scope, retrieval signals and relevant chunks."""

    question: object  # evaluation.Question
    scope: Scope
    signals: QuerySignals | None  # as `Assistant.search` sees it; None when nothing is indexed
    relevant: np.ndarray  # per chunk: relevant under the eval's rule

    @property
    def fittable(self) -> bool:
        return self.signals is not None and not self.scope.nothing_to_search


def prepare(assistant, questions: Sequence) -> list[Example]:
    chunks = assistant.retriever.chunks
    out = []
    for q in questions:
        scope = scope_question(q.question, assistant.states, assistant.tagger)
        signals = None
        if not scope.nothing_to_search:
            signals = assistant.retriever.signals(scope.text, scope.group_states(""), None, scope.intent)
        relevant = np.array([q.relevant(c.state, c.page, c.paragraph, c.paragraph_end, c.text)
                             for c in chunks], dtype=bool) if q.answerable else np.zeros(len(chunks), bool)
        out.append(Example(q, scope, signals, relevant))
    return out


# ------------------------------------------------------------------ ranking metrics


def first_relevant_rank(order: np.ndarray, relevant: np.ndarray, depth: int = DEPTH) -> int | None:
    hits = np.flatnonzero(relevant[order[:depth]])
    return int(hits[0]) if len(hits) else None


def mrr(ranks: Sequence[int | None]) -> float:
    return float(np.mean([1.0 / (r + 1) if r is not None else 0.0 for r in ranks])) if ranks else 0.0


def _ordered(scores: np.ndarray) -> np.ndarray:
    finite = np.flatnonzero(np.isfinite(scores))
    return finite[np.argsort(-scores[finite], kind="stable")]


# ------------------------------------------------------------------ fusion


def fusion_grid() -> list[Fusion]:
    steps = np.round(np.arange(0, 1 + 1e-9, WEIGHT_STEP), 2)
    weightings = [dict(zip(LISTS, map(float, w))) for w in itertools.product(steps, repeat=len(LISTS))
                  if abs(sum(w) - 1) < 1e-6]
    grid = [Fusion("linear", w) for w in weightings]
    grid += [Fusion("rrf", w, k) for k in RRF_KS for w in weightings]
    return grid


def fit_fusion(assistant, examples: Sequence[Example]) -> tuple[Fusion, float]:
    """The grid point with the best MRR@10 over these questions (ties: the earlier point)."""
    scored = [e for e in examples if e.fittable and e.question.answerable]
    best, best_mrr = Fusion(), -1.0
    for fusion in fusion_grid():
        retriever = assistant.retriever.with_models(RetrievalModels(fusion, None))
        ranks = [first_relevant_rank(_ordered(retriever.first_stage(e.signals)), e.relevant) for e in scored]
        value = mrr(ranks)
        if value > best_mrr + 1e-12:
            best, best_mrr = fusion, value
    return best, best_mrr


# ------------------------------------------------------------------ second stage


def rerank_rows(retriever, examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of every question, relevant or not; those of a question about a topic the plan
    never mentions are all negatives: near-topic passages that do not answer (hard negatives)."""
    xs, ys = [], []
    for e in examples:
        if not e.fittable:
            continue
        order = _ordered(retriever.first_stage(e.signals))[:RERANK_DEPTH]
        if not len(order):
            continue
        xs.append(retriever.candidate_signals(e.signals, order).matrix())
        ys.append(e.relevant[order])
    if not xs:
        return np.zeros((0, len(RERANK_FEATURES))), np.zeros(0)
    return np.vstack(xs), np.concatenate(ys).astype(float)


def fit_rerank(retriever, examples: Sequence[Example]):
    x, y = rerank_rows(retriever, examples)
    if not len(y) or y.min() == y.max():
        return None
    return fit_linear(x, y, RERANK_FEATURES, REGULARIZATION)


# ------------------------------------------------------------------ sentences and decision


def _groups(assistant, example: Example, k: int) -> tuple[Evidence, ...]:
    hits = retrieve(assistant.retriever, example.scope, k=k)
    return gather(assistant.retriever, example.scope, hits, k=k)


def sentence_rows(assistant, examples: Sequence[Example], k: int) -> tuple[np.ndarray, np.ndarray]:
    """A readable sentence is wanted when its chunk is relevant and it holds one of the key terms."""
    rows = assistant.retriever.row
    xs, ys = [], []
    for e in examples:
        if not (e.fittable and e.question.answerable):
            continue
        terms = [t.lower() for t in e.question.key_terms]
        for evidence in _groups(assistant, e, k):
            if not evidence.sentences:
                continue
            x = sentence_features(evidence)
            for s, row in zip(evidence.sentences, x):
                if not is_readable_sentence(s.text):
                    continue
                chunk_relevant = e.relevant[rows(evidence.passages[s.passage].chunk_id)]
                xs.append(row)
                ys.append(float(chunk_relevant and any(t in s.text.lower() for t in terms)))
    if not xs:
        return np.zeros((0, len(SENTENCE_FEATURES))), np.zeros(0)
    return np.array(xs), np.array(ys)


def fit_sentence(assistant, examples: Sequence[Example], k: int) -> SentenceModel | None:
    x, y = sentence_rows(assistant, examples, k)
    if not len(y) or y.min() == y.max():
        return None
    model = fit_linear(x, y, SENTENCE_FEATURES, REGULARIZATION)
    return SentenceModel(model, _best_f_threshold(model.probability(x), y, SENTENCE_BETA))


def decision_rows(assistant, examples: Sequence[Example], k: int) -> tuple[np.ndarray, np.ndarray]:
    """One row per answer group: 1 = the plans answer it, 0 = a topic the plan never mentions."""
    xs, ys = [], []
    for e in examples:
        if not e.fittable:
            continue
        for evidence in _groups(assistant, e, k):
            xs.append(evidence.feature_row())
            ys.append(float(e.question.answerable))
    if not xs:
        return np.zeros((0, len(DECISION_FEATURES))), np.zeros(0)
    return np.array(xs), np.array(ys)


def fit_decision(assistant, examples: Sequence[Example], k: int) -> DecisionModel | None:
    x, y = decision_rows(assistant, examples, k)
    if not len(y) or y.min() == y.max():
        return None
    # Both classes weigh the same in the fit, whatever their counts.
    weight = np.where(y > 0, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * len(y)
    model = fit_linear(x, y, DECISION_FEATURES, REGULARIZATION, sample_weight=weight)
    return DecisionModel(model, _decision_threshold(model.probability(x), y))


def _best_f_threshold(probability: np.ndarray, truth: np.ndarray, beta: float) -> float:
    """The cut with the best F-beta (beta > 1 weighs recall over precision)."""
    best, cut = -1.0, 0.5
    for t in np.unique(np.round(probability, 4)):
        predicted = probability >= t
        tp = float((predicted & (truth > 0)).sum())
        f = (1 + beta ** 2) * tp / (predicted.sum() + beta ** 2 * truth.sum()) if tp else 0.0
        if f > best:
            best, cut = f, float(t)
    return cut


def _decision_threshold(probability: np.ndarray, answerable: np.ndarray) -> float:
    """The cut with the fewest costed mistakes: a false abstention counts FALSE_ABSTENTION_COST
    rates of missed abstentions (each side as a rate over its own class)."""
    positives, negatives = max(answerable.sum(), 1), max((1 - answerable).sum(), 1)
    best, cut = np.inf, 0.5
    candidates = np.unique(np.round(probability, 4))
    for t in np.concatenate([candidates, [candidates.max() + 1e-4 if len(candidates) else 1.0]]):
        answers = probability >= t
        false_abstentions = float((~answers & (answerable > 0)).sum()) / positives
        missed = float((answers & (answerable == 0)).sum()) / negatives
        cost = FALSE_ABSTENTION_COST * false_abstentions + missed
        if cost < best - 1e-12:
            best, cut = cost, float(t)
    # Halfway to the next lower score: a cut sitting on a training point is fragile.
    lower = probability[probability < cut]
    return float((cut + lower.max()) / 2) if len(lower) else cut


# ------------------------------------------------------------------ all of it


def fit_pipeline(assistant, examples: Sequence[Example], k: int = 5, notes: dict | None = None) -> Fitted:
    fusion, _ = fit_fusion(assistant, examples)
    staged = assistant.with_fitted(Fitted(RetrievalModels(fusion, None), embedding=assistant.embedder.fingerprint))
    rerank = fit_rerank(staged.retriever, examples)
    staged = staged.with_fitted(replace(staged.fitted, retrieval=RetrievalModels(fusion, rerank)))
    sentence = fit_sentence(staged, examples, k)
    staged = staged.with_fitted(replace(staged.fitted, sentence=sentence))
    decision = fit_decision(staged, examples, k)
    return replace(staged.fitted, decision=decision, notes=dict(notes or {}))
