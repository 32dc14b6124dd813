"""Calibration of the category tagger against the hand labels in eval/labels/.

Labels name passages by locator (state, PDF page or DOCX paragraph, key terms), never by text, so
the first step maps each label onto a chunk of a real index. Two scorers are then fitted and
scored by K-fold cross-validation stratified by state, and only held-out predictions are scored: a
number measured on the labels a model was fitted on would flatter the tagger.

- the mixed score (each category's share of prototype similarity vs cue words, and a threshold):
  the fallback for indexes in another embedding space;
- a per-category L2 logistic regression over prototype similarity, cue strength and the chunk's
  embedding (a learned direction in the embedding space). Its regularization is chosen by an
  inner cross-validation inside each training split (nested), so the held-out number is honest
  about that choice too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .records import RESPONSE, TABLE, Chunk
from . import learning
from .learning import fit_logistic
from .tagging import CategoryTagger, LearnedCategory, is_variant, learned_scores

# DOCX labels: the passage starts in paragraph p and its key terms lie within p..p+3.
DOCX_SPAN = 3
# Weights of prototype similarity tried per category; the rest of a score is cue evidence.
WEIGHT_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Logistic regression: inverse L2 strengths, and how much the two definition features are scaled up
# against the embedding's (unit-vector) components: a larger scale penalizes them less.
C_GRID = (1.0, 3.0, 10.0)
FEATURE_SCALE_GRID = (1.0, 3.0)


@dataclass(frozen=True)
class Label:
    id: str
    state: str
    page: int | None
    paragraph: int | None
    key_terms: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class LabeledChunk:
    """One chunk with the union of the categories its labels give it."""

    chunk_index: int
    chunk_id: str
    state: str
    kind: str
    label_ids: tuple[str, ...]
    categories: frozenset[str]


@dataclass(frozen=True)
class LabelMapping:
    labeled: tuple[LabeledChunk, ...]
    unmapped: tuple[str, ...]  # label ids with no chunk holding half their key terms
    partial: tuple[str, ...]  # label ids mapped to a chunk holding only some of their key terms
    n_labels: int


@dataclass(frozen=True)
class CategoryFit:
    category: str
    weight: float
    threshold: float


@dataclass(frozen=True)
class CategoryMetrics:
    category: str
    support: int
    true_positives: int
    false_positives: int
    false_negatives: int
    missed_on_template: int  # positives lost because the parser marks their text as template

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class LearnedFit:
    """One category's logistic regression fitted on all labels, with the settings CV chose."""

    category: str
    c: float
    feature_scale: float
    weights: LearnedCategory


@dataclass(frozen=True)
class CalibrationReport:
    mapping: LabelMapping
    folds: int
    cv_metrics: tuple[CategoryMetrics, ...]  # the learned model (what the tagger uses), held out
    final_fits: tuple[CategoryFit, ...]  # fitted on every labeled chunk: what goes into the TOML
    fallback_metrics: tuple[CategoryMetrics, ...] = ()  # the mixed score alone, held out
    learned: tuple[LearnedFit, ...] = ()
    embedding: str = ""  # fingerprint of the embedder the learned model belongs to

    @property
    def macro_f1(self) -> float:
        return _macro_f1(self.cv_metrics)

    @property
    def fallback_macro_f1(self) -> float:
        return _macro_f1(self.fallback_metrics)


def _macro_f1(metrics: Sequence[CategoryMetrics]) -> float:
    return float(np.mean([m.f1 for m in metrics])) if metrics else 0.0


# ------------------------------------------------------------------ labels onto chunks


def load_labels(path: str | Path) -> list[Label]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read labels ({exc})") from exc
    return [Label(id=r["id"], state=r["state"], page=r.get("page"), paragraph=r.get("paragraph"),
                  key_terms=tuple(r["key_terms"]), categories=tuple(r["categories"])) for r in rows]


def map_labels(labels: Sequence[Label], chunks: Sequence[Chunk]) -> LabelMapping:
    """Each label onto the chunk at its locator that holds its key terms.

    A labelled passage (150-250 words) often straddles a chunk boundary; then no chunk holds every
    key term and the label goes to the chunk holding most of them (at least half): the one that
    carries most of the passage. Ties prefer the state's own words, then the earlier chunk (where
    the passage starts). Labels sharing a chunk pool their categories.
    """
    texts = [_normalized(c.text) for c in chunks]
    by_chunk: dict[int, list[Label]] = {}
    unmapped, partial = [], []
    for label in labels:
        terms = [_normalized(t) for t in label.key_terms]
        held = {i: sum(t in texts[i] for t in terms) for i, c in enumerate(chunks)
                if c.state == label.state and _at_locator(c, label)}
        most = max(held.values(), default=0)
        if most == 0 or 2 * most < len(terms):
            unmapped.append(label.id)
            continue
        best = min((i for i, n in held.items() if n == most),
                   key=lambda i: (chunks[i].kind not in (RESPONSE, TABLE), chunks[i].unit,
                                  chunks[i].char_start, len(texts[i])))
        if most < len(terms):
            partial.append(label.id)
        by_chunk.setdefault(best, []).append(label)
    labeled = tuple(
        LabeledChunk(chunk_index=i, chunk_id=chunks[i].id, state=chunks[i].state, kind=chunks[i].kind,
                     label_ids=tuple(lab.id for lab in group),
                     categories=frozenset(c for lab in group for c in lab.categories))
        for i, group in sorted(by_chunk.items()))
    return LabelMapping(labeled=labeled, unmapped=tuple(unmapped), partial=tuple(partial),
                        n_labels=len(labels))


def _at_locator(chunk: Chunk, label: Label) -> bool:
    if label.page is not None:
        return chunk.page == label.page
    if label.paragraph is None or chunk.paragraph is None:
        return False
    end = chunk.paragraph_end if chunk.paragraph_end is not None else chunk.paragraph
    return chunk.paragraph <= label.paragraph + DOCX_SPAN and end >= label.paragraph


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[\u2010-\u2015]", "-", text).lower().split())


# ------------------------------------------------------------------ fitting


def score_components(tagger: CategoryTagger, chunks: Sequence[Chunk], vectors: np.ndarray,
                     embedder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(similarity, cue, evidence) for the given chunks: the parts a score is mixed from."""
    texts = [c.text for c in chunks]
    similarity, cues = tagger.components(texts, vectors, embedder)
    evidence = np.array([c.kind in (RESPONSE, TABLE) for c in chunks], dtype=bool)
    return similarity, cues, evidence


def fit_category(similarity: np.ndarray, cues: np.ndarray, evidence: np.ndarray,
                 truth: np.ndarray) -> CategoryFit:
    """The weight and threshold with the best F1 on these rows (one category's columns).

    Ties go to the larger margin: the threshold midway between the scores it separates, so a
    small shift in the corpus does not flip tags.
    """
    best = (-1.0, 0.0, 0.6, 0.5)
    for weight in WEIGHT_GRID:
        scores = np.where(evidence, weight * similarity + (1 - weight) * cues, 0.0)
        f1, threshold = _best_threshold(scores, truth)
        key = (f1, -abs(weight - 0.6))
        if key > best[:2]:
            best = (f1, -abs(weight - 0.6), weight, threshold)
    return CategoryFit(category="", weight=best[2], threshold=round(best[3], 4))


def _best_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    values = np.unique(scores[scores > 0])
    if not len(values) or not truth.any():
        return 0.0, 1.0
    # Candidate cuts lie midway between consecutive distinct scores.
    cuts = np.concatenate([[values[0] / 2], (values[:-1] + values[1:]) / 2])
    best_f1, best_cut = -1.0, 1.0
    positives = truth.sum()
    for cut in cuts:
        predicted = scores >= cut
        tp = int((predicted & truth).sum())
        denominator = predicted.sum() + positives
        f1 = 2 * tp / denominator if denominator else 0.0
        if f1 > best_f1 + 1e-12:
            best_f1, best_cut = f1, float(cut)
    return best_f1, best_cut


def stratified_folds(labeled: Sequence[LabeledChunk], k: int, seed: int = 13) -> list[int]:
    """A fold number per labeled chunk; every state and every category is spread across folds."""
    frequency: dict[str, int] = {}
    for item in labeled:
        for c in item.categories:
            frequency[c] = frequency.get(c, 0) + 1
    # Stratify by state and by the rarest category the chunk carries, so rare categories
    # do not end up all in one fold.
    groups = [f"{item.state}\t{min(sorted(item.categories), key=frequency.__getitem__) if item.categories else ''}"
              for item in labeled]
    return learning.stratified_folds(groups, k, seed)


def _features(vectors: np.ndarray, similarity: np.ndarray, cues: np.ndarray, scale: float) -> np.ndarray:
    return np.hstack([vectors, scale * similarity[:, None], scale * cues[:, None]])


def _fit_learned(vectors, similarity, cues, truth, c: float, scale: float) -> tuple[LearnedCategory, float]:
    """The regression in tagger form (scale folded into its weights) and its best-F1 cut on these rows."""
    weights, intercept = fit_logistic(_features(vectors, similarity, cues, scale), truth, c)
    d = vectors.shape[1]
    learned = LearnedCategory(intercept=intercept, similarity=float(weights[d] * scale),
                              cue=float(weights[d + 1] * scale), embedding=weights[:d].astype(np.float32))
    _, cut = _best_threshold(learned_scores(learned, similarity, cues, vectors), truth)
    return learned, cut


def _choose_settings(vectors, similarity, cues, truth, fold_of: np.ndarray) -> tuple[float, float]:
    """(C, feature scale) with the best cross-validated F1 over these rows' folds."""
    best = (-1.0, C_GRID[0], FEATURE_SCALE_GRID[0])
    for c in C_GRID:
        for scale in FEATURE_SCALE_GRID:
            predicted = np.zeros(len(truth), dtype=bool)
            for fold in np.unique(fold_of):
                train, test = fold_of != fold, fold_of == fold
                learned, cut = _fit_learned(vectors[train], similarity[train], cues[train],
                                            truth[train], c, scale)
                predicted[test] = learned_scores(learned, similarity[test], cues[test],
                                                 vectors[test]) >= cut
            f1 = _f1(predicted, truth)
            if f1 > best[0] + 1e-12:
                best = (f1, c, scale)
    return best[1], best[2]


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    denominator = predicted.sum() + truth.sum()
    return 2 * float((predicted & truth).sum()) / denominator if denominator else 0.0


def _metrics(category: str, predicted: np.ndarray, truth: np.ndarray, evidence: np.ndarray) -> CategoryMetrics:
    return CategoryMetrics(
        category=category, support=int(truth.sum()),
        true_positives=int((predicted & truth).sum()),
        false_positives=int((predicted & ~truth).sum()),
        false_negatives=int((~predicted & truth).sum()),
        missed_on_template=int((truth & ~evidence).sum()))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def calibrate(tagger: CategoryTagger, chunks: Sequence[Chunk], vectors: np.ndarray, embedder,
              labels: Sequence[Label], folds: int = 5, seed: int = 13) -> CalibrationReport:
    """Cross-validated metrics per category for both scorers, and the fits on all labels."""
    mapping = map_labels(labels, chunks)
    rows = [item.chunk_index for item in mapping.labeled]
    if not rows:
        raise ConfigError("no label matched a chunk of this index; is it built from the labelled plans?")
    similarity, cues, evidence = score_components(tagger, [chunks[i] for i in rows], vectors[rows],
                                                  embedder)
    embedded = np.asarray(vectors[rows], dtype=np.float32)
    fold_of = np.array(stratified_folds(mapping.labeled, folds, seed))
    metrics, fallback, fits, learned_fits = [], [], [], []
    for j, category in enumerate(tagger.ids):
        truth = np.array([category in item.categories for item in mapping.labeled], dtype=bool)
        sim, cue = similarity[:, j], cues[:, j]
        mixed_pred = np.zeros(len(rows), dtype=bool)
        learned_pred = np.zeros(len(rows), dtype=bool)
        for fold in range(folds):
            train, test = fold_of != fold, fold_of == fold
            fit = fit_category(sim[train], cue[train], evidence[train], truth[train])
            scores = np.where(evidence[test], fit.weight * sim[test] + (1 - fit.weight) * cue[test], 0.0)
            mixed_pred[test] = (scores >= fit.threshold) & (scores > 0)
            # Template text is never scored, so it is not learned from either.
            fit_rows = train & evidence
            c, scale = _choose_settings(embedded[fit_rows], sim[fit_rows], cue[fit_rows],
                                        truth[fit_rows], fold_of[fit_rows])
            model, cut = _fit_learned(embedded[fit_rows], sim[fit_rows], cue[fit_rows],
                                      truth[fit_rows], c, scale)
            learned_pred[test] = (learned_scores(model, sim[test], cue[test], embedded[test]) >= cut) \
                & evidence[test]
        metrics.append(_metrics(category, learned_pred, truth, evidence))
        fallback.append(_metrics(category, mixed_pred, truth, evidence))
        whole = fit_category(sim, cue, evidence, truth)
        fits.append(CategoryFit(category=category, weight=whole.weight, threshold=whole.threshold))
        c, scale = _choose_settings(embedded[evidence], sim[evidence], cue[evidence], truth[evidence],
                                    fold_of[evidence])
        model, cut = _fit_learned(embedded[evidence], sim[evidence], cue[evidence], truth[evidence],
                                  c, scale)
        # Shift the intercept so the learned cut lands on the TOML threshold the tagger applies: the
        # one written with this fit, or for a variant embedder (int8), which leaves the TOML as it
        # is, the one already there.
        applied = tagger.categories[j].threshold if is_variant(embedder.fingerprint) else whole.threshold
        model = LearnedCategory(intercept=model.intercept - _logit(cut) + _logit(applied),
                                similarity=model.similarity, cue=model.cue, embedding=model.embedding)
        learned_fits.append(LearnedFit(category=category, c=c, feature_scale=scale, weights=model))
    return CalibrationReport(mapping=mapping, folds=folds, cv_metrics=tuple(metrics),
                             final_fits=tuple(fits), fallback_metrics=tuple(fallback),
                             learned=tuple(learned_fits), embedding=embedder.fingerprint)


# ------------------------------------------------------------------ output


def report_markdown(report: CalibrationReport, command: str = "") -> str:
    mapping = report.mapping
    n_mapped = sum(len(item.label_ids) for item in mapping.labeled)
    on_template = sum(1 for item in mapping.labeled if item.kind not in (RESPONSE, TABLE))
    lines = [
        "# Category tagger calibration",
        "",
        *( [f"Command: `{command}`", ""] if command else []),
        f"Labels: {mapping.n_labels}; mapped onto a chunk: {n_mapped} "
        f"({n_mapped - len(mapping.partial)} to a chunk holding all their key terms, "
        f"{len(mapping.partial)} to the chunk holding most of them because the passage straddles "
        f"a chunk boundary); {len(mapping.labeled)} distinct chunks; unmapped: "
        f"{len(mapping.unmapped)}" + (f" ({', '.join(mapping.unmapped)})" if mapping.unmapped else "")
        + ".",
        f"Labeled chunks the parser marks template/toc (scored 0 by design): {on_template}.",
        "",
        f"Held-out metrics of the learned model the tagger uses ({report.folds}-fold cross-validation, "
        "folds stratified by state and rarest category; each fold's logistic regression, its cut and "
        "its regularization (inner cross-validation on the training folds) are fitted on the "
        "training folds only). Last column: F1 of the fallback mixed score (similarity/cue weight "
        "and threshold fitted on the training folds), used when an index is in another embedding "
        "space:",
        "",
        "| category | support | precision | recall | F1 | positives on template text | fallback F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    fallback = {m.category: m.f1 for m in report.fallback_metrics}
    for m in report.cv_metrics:
        lines.append(f"| {m.category} | {m.support} | {m.precision:.3f} | {m.recall:.3f} | "
                     f"{m.f1:.3f} | {m.missed_on_template} | "
                     + (f"{fallback[m.category]:.3f} |" if m.category in fallback else "|"))
    lines += [f"| **macro** | | {np.mean([m.precision for m in report.cv_metrics]):.3f} | "
              f"{np.mean([m.recall for m in report.cv_metrics]):.3f} | **{report.macro_f1:.3f}** | | "
              + (f"{report.fallback_macro_f1:.3f} |" if report.fallback_metrics else "|"),
              "", "Final fit on all labels (with `--write`: thresholds and weights into categories.toml, "
              "the regression into categories.model.toml):", "",
              "| category | similarity_weight | threshold | C | feature scale | learned similarity / cue weight |",
              "|---|---|---|---|---|---|"]
    learned = {f.category: f for f in report.learned}
    for f in report.final_fits:
        lf = learned.get(f.category)
        extra = (f"{lf.c:g} | {lf.feature_scale:g} | {lf.weights.similarity:.2f} / {lf.weights.cue:.2f}"
                 if lf else " | | ")
        lines.append(f"| {f.category} | {f.weight} | {f.threshold} | {extra} |")
    return "\n".join(lines) + "\n"


def write_fits(path: str | Path, fits: Sequence[CategoryFit]) -> None:
    """Set each category's threshold and similarity_weight in the TOML, keeping its comments."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    for fit in fits:
        text = _set_key(text, fit.category, "threshold", f"{fit.threshold:g}")
        text = _set_key(text, fit.category, "similarity_weight", f"{fit.weight:g}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    CategoryTagger.load(path)  # refuse to leave a file the tagger cannot read


def _set_key(text: str, section: str, key: str, value: str) -> str:
    header = re.search(rf"(?m)^\[{re.escape(section)}\]\s*$", text)
    if header is None:
        raise ConfigError(f"category {section!r} not found in the definitions file")
    following = re.search(r"(?m)^\[", text[header.end():])
    end = header.end() + following.start() if following else len(text)
    body = text[header.end():end]
    line = re.compile(rf"(?m)^{key}\s*=.*$")
    if line.search(body):
        body = line.sub(f"{key} = {value}", body, count=1)
    else:
        body = body.rstrip("\n") + f"\n{key} = {value}\n" + ("\n" if following else "")
    return text[:header.end()] + body + text[end:]


def write_model(categories_path: str | Path, report: CalibrationReport) -> Path:
    """Write the learned regression beside the definitions (plain numbers in TOML, no pickles)."""
    from .tagging import load_model, model_path_for

    path = model_path_for(categories_path, report.embedding)
    lines = [
        "# Learned category model: one logistic regression per category over prototype similarity,",
        "# cue strength and the chunk embedding. Written by `essa-qa tag --calibrate --write`; do not",
        "# edit by hand (delete this file to fall back to the mixed score in categories.toml). It only",
        "# applies to indexes built with the embedder below.",
        f"embedding = {json.dumps(report.embedding)}",
        f"labels = {len(report.mapping.labeled)}",
        f"cv_macro_f1 = {report.macro_f1:.4f}",
        "",
    ]
    for fit in report.learned:
        w = fit.weights
        lines += [f"[categories.{fit.category}]",
                  f"c = {fit.c:g}", f"feature_scale = {fit.feature_scale:g}",
                  f"intercept = {w.intercept:.6g}", f"similarity = {w.similarity:.6g}",
                  f"cue = {w.cue:.6g}",
                  "embedding = [" + ", ".join(f"{x:.6g}" for x in w.embedding) + "]", ""]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    load_model(path)  # refuse to leave a file the tagger cannot read
    return path
