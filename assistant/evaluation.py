"""Evaluation: run a question set through retrieval ablations and `ask`, score it, write a report.

`run_evaluation(assistant, questions, k, plans_dir)` returns an `EvalReport` (the app's Evaluate
tab and `essa-qa eval` both call it); `write_report(report, directory)` writes Markdown, JSON and
PNG charts; `floor_violations(report, floors)` is the regression check CI runs. The relevance rule
and the metric definitions are in eval/README.md; the metric arithmetic is in metrics.py.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import EssaError
from .metrics import (GoldLocator, abstention_scores, hit_at_k, is_relevant, mean, micro_prf,
                      ndcg_at_k, percentile, quote_in_text, reciprocal_rank)
from .records import Chunk

KINDS = ("lookup", "explain", "compare", "category", "unanswerable")
RANK_DEPTH = 10  # retrieval is scored on the top 10 (hit@10, nDCG@10)
DEFAULT_QUESTIONS = Path("eval/questions.jsonl")
DEFAULT_FLOORS = Path("eval/config.toml")
FAST_SUBSET_EVERY = 3  # the fast subset: every 3rd question of each kind, in file order


class EvalError(EssaError):
    """A question set or floors file that cannot be used."""

    exit_code = 2


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    states: tuple[str, ...]
    locators: tuple[GoldLocator, ...]
    key_terms: tuple[str, ...]
    categories: tuple[str, ...]
    kind: str

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"

    def scope(self, indexed: Iterable[str]) -> str:
        """The breakdown group: one indexed state, "compare", or "not indexed"."""
        if self.kind == "compare":
            return "compare"
        if len(self.states) == 1 and self.states[0] in set(indexed):
            return self.states[0]
        return "not indexed"

    def relevant(self, state: str, page: int | None, paragraph: int | None,
                 paragraph_end: int | None, text: str) -> bool:
        return self.answerable and is_relevant(state, page, paragraph, paragraph_end, text,
                                               self.locators, self.key_terms)


@dataclass(frozen=True)
class RetrievalConfig:
    """One retrieval ablation: a ranker (retrieval.MODES), the second stage on or off, with or
    without the state filter and the category boost."""

    name: str
    mode: str
    rerank: bool = False
    state_filter: bool = True
    boost: bool = True


# One row per step, each adding to the one above: the lists alone, today's fusion of two of them,
# the fitted fusion of all three, then the second stage (what `ask` retrieves with).
CONFIGS = (
    RetrievalConfig("bm25", "bm25"),
    RetrievalConfig("dense", "dense"),
    RetrievalConfig("sentence", "sentence"),
    RetrievalConfig("rrf", "rrf"),
    RetrievalConfig("fused", "hybrid"),
    RetrievalConfig("fused+rerank", "hybrid", rerank=True),
    RetrievalConfig("fused+rerank, no state filter", "hybrid", rerank=True, state_filter=False),
)
# What `ask` itself retrieves with: its numbers are the headline.
MAIN_CONFIG = "fused+rerank"
RETRIEVAL_METRICS = ("hit@1", "hit@5", "hit@10", "mrr", "ndcg@10")


@dataclass(frozen=True)
class QuestionResult:
    id: str
    kind: str
    scope: str
    gold_states: tuple[str, ...]
    answered_states: tuple[str, ...]
    answerable: bool
    abstained: bool
    gold_categories: tuple[str, ...]
    categories: tuple[str, ...]
    citations_relevant: tuple[bool, ...]
    quotes_verbatim: tuple[bool, ...]
    latency_s: float
    n_relevant: int  # relevant chunks in the whole index (the nDCG ideal)
    retrieved: dict[str, tuple[bool, ...]] = field(default_factory=dict)  # config -> top-10 relevance
    search_latency_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalReport:
    created: str
    questions_file: str
    index: str
    k: int
    n_questions: int
    configs: tuple[str, ...]
    summary: dict[str, float | None]
    ablations: dict[str, dict[str, float | None]]
    by_kind: dict[str, dict[str, float | None]]
    by_state: dict[str, dict[str, float | None]]
    latencies_s: tuple[float, ...]
    results: tuple[QuestionResult, ...]
    problems: tuple[str, ...]  # quotes not found, questions missed: what to look at first
    seconds: float
    subset: str = "full"
    cv: int = 0  # > 1: every question answered by models fitted on the other folds (held out)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [asdict(r) for r in self.results]
        return data


# ------------------------------------------------------------------ inputs


def load_questions(path: str | Path) -> list[Question]:
    """Questions from a JSONL file in the eval/README.md format."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"{path}: cannot read question set ({exc.strerror or exc})") from exc
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            questions.append(Question(
                id=str(data["id"]), question=str(data["question"]),
                states=tuple(s.upper() for s in data["states"]),
                locators=tuple(GoldLocator.from_json(loc) for loc in data["locators"]),
                key_terms=tuple(data["key_terms"]), categories=tuple(data["categories"]),
                kind=str(data["kind"])))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise EvalError(f"{path}:{number}: not a valid question ({type(exc).__name__}: {exc})") from exc
    if not questions:
        raise EvalError(f"{path}: no questions")
    return questions


def fast_subset(questions: Sequence[Question]) -> list[Question]:
    """A fixed, stratified third of the set: every 3rd question of each kind in file order."""
    seen: dict[str, int] = {}
    chosen = []
    for q in questions:
        position = seen.get(q.kind, 0)
        seen[q.kind] = position + 1
        if position % FAST_SUBSET_EVERY == 0:
            chosen.append(q)
    return chosen


def plan_files(assistant) -> dict[str, str]:
    """state -> plan file name, as the index recorded them."""
    return {info["state"]: name for name, info in assistant.plans.items()}


def load_plan_texts(plans_dir: str | Path, files: Mapping[str, str]) -> dict[str, dict]:
    """state -> {"pages": {page: text}, "paras": {paragraph: (text, section)}, "all": text}, as
    eval/check_questions.py reads them. Parsed once per process: parsing takes seconds."""
    return _plan_texts(str(Path(plans_dir).resolve()), tuple(sorted(files.items())))


@lru_cache(maxsize=4)
def _plan_texts(plans_dir: str, files: tuple[tuple[str, str], ...]) -> dict[str, dict]:
    from .ingest import parse_plan

    plans = {}
    for state, name in files:
        path = Path(plans_dir) / name
        if not path.is_file():
            raise EvalError(f"{path}: plan not found (verbatim quotes are checked against the plans; "
                            f"pass --plans)")
        document = parse_plan(path, state)
        pages: dict[int, str] = {}
        paras: dict[int, tuple[str, str]] = {}
        for unit in document.units:
            if unit.page is not None:
                pages[unit.page] = pages.get(unit.page, "") + "\n" + unit.text
            for block in unit.blocks:
                if block.paragraph is not None:
                    paras[block.paragraph] = (unit.text[block.start:block.end], block.section or "")
        plans[state] = {"pages": pages, "paras": paras,
                        "all": "\n".join(u.text for u in document.units)}
    return plans


# Metrics where lower is better: their limits are ceilings, named "<metric>" in a [ceilings] table.
LOWER_IS_BETTER = ("false_abstention_rate", "latency_p50_s", "latency_p95_s")


def load_floors(path: str | Path = DEFAULT_FLOORS, subset: str | None = None) -> dict[str, float]:
    """Metric name -> lowest acceptable value: the eval config's `[floors]` table for the full set,
    `[floors_fast]` for the fast subset (its own numbers: a third of the questions). A metric where
    lower is better comes from `[ceilings]` (`[ceilings_fast]`) and is checked the other way."""
    table = "floors_fast" if subset == "fast" else "floors"
    floors = _table(path, table, required=True)
    ceilings = _table(path, table.replace("floors", "ceilings"), required=False)
    for name in ceilings:
        if name not in LOWER_IS_BETTER:
            raise EvalError(f"{path}: {name} is not a lower-is-better metric; give it a floor")
    return {**floors, **ceilings}


def load_reference(path: str | Path = DEFAULT_FLOORS) -> dict[str, float]:
    """The `[before]` table: the system's numbers before this version, shown beside the new ones."""
    return _table(path, "before", required=False)


def load_claim_limits(path: str | Path = DEFAULT_FLOORS, claim_set: str = "claims") -> tuple[dict[str, float], dict[str, float]]:
    """(floors, ceilings) for one claim set (its file stem): the eval config's [<stem>.floors]
    and [<stem>.ceilings]."""
    return (_table(path, f"{claim_set}.floors", required=False),
            _table(path, f"{claim_set}.ceilings", required=False))


def _table(path: str | Path, name: str, required: bool) -> dict[str, float]:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EvalError(f"{path}: cannot read eval config ({exc})") from exc
    table = data
    for part in name.split("."):  # "claims.floors": a table inside a table
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict) or (required and not table):
        raise EvalError(f"{path}: no [{name}] table")
    try:
        return {str(metric): float(value) for metric, value in table.items() if not isinstance(value, dict)}
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{path}: [{name}] values must be numbers ({exc})") from exc


def floor_violations(report: "EvalReport | Mapping[str, float | None]",
                     floors: Mapping[str, float]) -> list[str]:
    """One line per metric past its limit (or not measured); empty when the report passes."""
    summary = report.summary if isinstance(report, EvalReport) else report
    problems = []
    for metric, limit in floors.items():
        if metric not in summary:
            problems.append(f"{metric}: unknown metric (not in the report)")
            continue
        value = summary[metric]
        if value is None:
            problems.append(f"{metric}: not measured (limit {limit:.3f})")
        elif metric in LOWER_IS_BETTER and value > limit + 1e-9:
            problems.append(f"{metric}: {value:.3f} is above its ceiling {limit:.3f}")
        elif metric not in LOWER_IS_BETTER and value < limit - 1e-9:
            problems.append(f"{metric}: {value:.3f} is below its floor {limit:.3f}")
    return problems


# ------------------------------------------------------------------ running


def run_evaluation(assistant, questions: Sequence[Question], k: int = 5,
                   plans_dir: str | Path | None = "plans", *,
                   configs: Sequence[RetrievalConfig] = CONFIGS, questions_file: str = "",
                   subset: str = "full", cv: int = 0,
                   on_question: Callable[[int, int, Question], None] | None = None) -> EvalReport:
    """Every question through every retrieval config and once through `ask`, scored.

    `plans_dir` holds the plan files the index was built from; the verbatim-quote check parses
    them. With None, that metric is not measured (None in the report). With `cv` > 1 the learned
    parts are fitted `cv` times, each time without one fold of the questions, and each question
    is answered by the models that never saw it: every number is then a held-out number."""
    started = time.perf_counter()
    plans = load_plan_texts(plans_dir, plan_files(assistant)) if plans_dir is not None else None
    chunks = {c.id: c for c in assistant.index.chunks}
    answerers = cross_fitted(assistant, questions, k, cv) if cv > 1 else [assistant] * len(questions)
    results = []
    for number, (question, answerer) in enumerate(zip(questions, answerers), 1):
        results.append(_evaluate_question(answerer, question, k, configs, chunks, plans))
        if on_question:
            on_question(number, len(questions), question)
    names = tuple(c.name for c in configs)
    main = MAIN_CONFIG if MAIN_CONFIG in names else names[-1]
    ablations = {name: retrieval_metrics(results, name) for name in names}
    groups_kind = {kind: [r for r in results if r.kind == kind] for kind in KINDS}
    scopes = list(dict.fromkeys([*assistant.states, "compare", "not indexed"]))
    groups_state = {s: [r for r in results if r.scope == s] for s in scopes}
    return EvalReport(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        questions_file=str(questions_file), index=str(assistant.index.directory), k=k,
        n_questions=len(results), configs=names,
        summary=summarize(results, main, verbatim_measured=plans is not None),
        ablations=ablations,
        by_kind={g: summarize(rs, main, plans is not None) for g, rs in groups_kind.items() if rs},
        by_state={g: summarize(rs, main, plans is not None) for g, rs in groups_state.items() if rs},
        latencies_s=tuple(r.latency_s for r in results), results=tuple(results),
        problems=tuple(_problems(results, main)), seconds=round(time.perf_counter() - started, 2),
        subset=subset, cv=cv if cv > 1 else 0)


def cross_fitted(assistant, questions: Sequence[Question], k: int, folds: int) -> list:
    """Per question, the assistant under models fitted on the folds it is not in."""
    from .fit import fit_pipeline, prepare
    from .learning import stratified_folds

    examples = prepare(assistant, questions)
    fold_of = stratified_folds([f"{q.scope(assistant.states)}:{q.kind}" for q in questions], folds)
    by_fold = {}
    for fold in range(folds):
        training = [e for e, f in zip(examples, fold_of) if f != fold]
        by_fold[fold] = assistant.with_fitted(fit_pipeline(assistant, training, k))
    return [by_fold[f] for f in fold_of]


def _evaluate_question(assistant, question: Question, k: int, configs: Sequence[RetrievalConfig],
                       chunks: Mapping[str, Chunk], plans: dict | None) -> QuestionResult:
    retrieved: dict[str, tuple[bool, ...]] = {}
    search_latency: dict[str, float] = {}
    if question.answerable:
        for config in configs:
            # Without the filter, every indexed state is allowed even when the question names one.
            states = None if config.state_filter else list(assistant.states)
            t0 = time.perf_counter()
            passages = assistant.search(question.question, k=RANK_DEPTH, states=states,
                                        mode=config.mode, boost=config.boost, rerank=config.rerank)
            search_latency[config.name] = time.perf_counter() - t0
            retrieved[config.name] = tuple(
                question.relevant(p.state, p.page, p.paragraph, p.paragraph_end, p.text) for p in passages)
    t0 = time.perf_counter()
    answer = assistant.ask(question.question, k=k)
    latency = time.perf_counter() - t0
    cited = [chunks.get(c.chunk_id) for c in answer.citations]
    return QuestionResult(
        id=question.id, kind=question.kind, scope=question.scope(assistant.states),
        gold_states=question.states, answered_states=tuple(answer.states),
        answerable=question.answerable, abstained=answer.abstained,
        gold_categories=question.categories, categories=tuple(answer.categories),
        citations_relevant=tuple(
            chunk is not None and question.relevant(chunk.state, chunk.page, chunk.paragraph,
                                                    chunk.paragraph_end, chunk.text)
            for chunk in cited),
        quotes_verbatim=tuple(quote_at_citation(plans, c) for c in answer.citations) if plans else (),
        latency_s=round(latency, 4),
        n_relevant=sum(question.relevant(c.state, c.page, c.paragraph, c.paragraph_end, c.text)
                       for c in chunks.values()) if question.answerable else 0,
        retrieved=retrieved, search_latency_s={n: round(s, 4) for n, s in search_latency.items()})


def quote_at_citation(plans: Mapping[str, dict], citation) -> bool:
    """The citation's quote occurs in the parsed plan at its cited PDF page or DOCX paragraph."""
    plan = plans.get(citation.state)
    if plan is None:
        return False
    if citation.page is not None:
        text = plan["pages"].get(citation.page, "")
    elif citation.paragraph is not None:
        text = plan["paras"].get(citation.paragraph, ("", ""))[0]
    else:
        return False
    return quote_in_text(citation.quote, text)


# ------------------------------------------------------------------ scoring


def retrieval_metrics(results: Sequence[QuestionResult], config: str) -> dict[str, float | None]:
    """hit@1/5/10, MRR, nDCG@10 averaged over the answerable questions (and search latency)."""
    scored = [r for r in results if config in r.retrieved]
    ranks = [r.retrieved[config] for r in scored]
    latencies = [r.search_latency_s[config] for r in scored if config in r.search_latency_s]
    return {
        "hit@1": mean(hit_at_k(f, 1) for f in ranks),
        "hit@5": mean(hit_at_k(f, 5) for f in ranks),
        "hit@10": mean(hit_at_k(f, 10) for f in ranks),
        "mrr": mean(reciprocal_rank(f) for f in ranks),
        "ndcg@10": mean(ndcg_at_k(f, RANK_DEPTH, r.n_relevant) for f, r in zip(ranks, scored)),
        "search_p50_s": percentile(latencies, 50),
        "n": float(len(scored)),
    }


def summarize(results: Sequence[QuestionResult], config: str,
              verbatim_measured: bool = True) -> dict[str, float | None]:
    """Every headline metric for a group of results; None where a metric does not apply."""
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    citations = [flag for r in answerable if not r.abstained for flag in r.citations_relevant]
    quotes = [flag for r in results for flag in r.quotes_verbatim]
    abstention = abstention_scores([r.abstained for r in results], [not r.answerable for r in results])
    with_categories = [r for r in results if r.gold_categories]
    categories = micro_prf((r.categories, r.gold_categories) for r in with_categories)
    latencies = [r.latency_s for r in results]
    retrieval = retrieval_metrics(results, config)
    return {
        **{m: retrieval[m] for m in RETRIEVAL_METRICS},
        "state_accuracy": mean(float(set(r.answered_states) == set(r.gold_states)) for r in results),
        # Of the answerable questions, the share whose answer cites a relevant passage (an
        # abstention cites none): what a reader checking the answer needs first.
        "answers_citing_relevant": mean(float(any(r.citations_relevant)) for r in answerable),
        "citation_precision": mean(float(f) for f in citations),
        "verbatim_quotes": mean(float(f) for f in quotes) if verbatim_measured else None,
        "abstention_precision": abstention.precision if any(r.abstained for r in results) else None,
        "abstention_recall": abstention.recall if unanswerable else None,
        "false_abstention_rate": abstention.false_abstention_rate if answerable else None,
        "category_precision": categories.precision if with_categories else None,
        "category_recall": categories.recall if with_categories else None,
        "category_f1": categories.f1 if with_categories else None,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "n_questions": float(len(results)),
        "n_citations": float(len(citations)),
    }


def _problems(results: Sequence[QuestionResult], config: str) -> list[str]:
    out = []
    for r in results:
        if r.answerable and config in r.retrieved and not any(r.retrieved[config]):
            out.append(f"{r.id}: no relevant passage in the top {RANK_DEPTH} ({config})")
        if r.answerable and r.abstained:
            out.append(f"{r.id}: declined an answerable question")
        if not r.answerable and not r.abstained:
            out.append(f"{r.id}: answered an unanswerable question")
        missing = [i + 1 for i, ok in enumerate(r.quotes_verbatim) if not ok]
        if missing:
            out.append(f"{r.id}: quote(s) {missing} not found at the cited location")
    return out


# ------------------------------------------------------------------ the report


def write_report(report: EvalReport, directory: str | Path,
                 floors: Mapping[str, float] | None = None,
                 before: Mapping[str, float] | None = None) -> dict[str, Path]:
    """report.md, report.json, metrics_by_config.png and latency.png in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "report.json", "markdown": directory / "report.md",
             "configs_chart": directory / "metrics_by_config.png",
             "latency_chart": directory / "latency.png"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    chart_metrics_by_config(report, paths["configs_chart"])
    chart_latency(report, paths["latency_chart"])
    paths["markdown"].write_text(report_markdown(report, floors, before), encoding="utf-8")
    return paths


SUMMARY_ROWS = (
    ("hit@1", "hit@1"), ("hit@5", "hit@5"), ("hit@10", "hit@10"), ("mrr", "MRR"),
    ("ndcg@10", "nDCG@10"), ("state_accuracy", "state accuracy"),
    ("answers_citing_relevant", "answers citing a relevant passage"),
    ("citation_precision", "citation precision"), ("verbatim_quotes", "verbatim quotes"),
    ("abstention_precision", "abstention precision"), ("abstention_recall", "abstention recall"),
    ("false_abstention_rate", "false abstentions (share of answerable)"),
    ("category_precision", "category precision"), ("category_recall", "category recall"),
    ("category_f1", "category F1"), ("latency_p50_s", "ask latency p50 (s)"),
    ("latency_p95_s", "ask latency p95 (s)"),
)
BREAKDOWN_COLUMNS = ("n_questions", "hit@5", "mrr", "state_accuracy", "answers_citing_relevant",
                     "verbatim_quotes", "abstention_recall", "false_abstention_rate", "category_f1",
                     "latency_p50_s")


def report_markdown(report: EvalReport, floors: Mapping[str, float] | None = None,
                    before: Mapping[str, float] | None = None) -> str:
    floors, before = floors or {}, before or {}
    lines = [
        "# ESSA Plans Assistant: evaluation report", "",
        f"- created: {report.created}", f"- questions: {report.n_questions} from `{report.questions_file}` ({report.subset} set)",
        f"- index: `{report.index}`", f"- passages per state for `ask` (k): {report.k}",
        f"- retrieval scored on the top {RANK_DEPTH}; headline retrieval config: `{MAIN_CONFIG}`",
        "- learned parts: " + (f"cross-fitted over {report.cv} folds: every number is held out"
                                if report.cv else "as shipped (fitted on this question set: in-sample; "
                                "`essa-qa eval --cv 5` gives held-out numbers)"),
        f"- run time: {report.seconds:.1f} s", "",
        "## Summary", "", "| metric | value | before | limit |", "|---|---:|---:|---:|",
    ]
    for key, label in SUMMARY_ROWS:
        limit = floors.get(key)
        value = report.summary.get(key)
        past = limit is not None and floor_violations({key: value}, {key: limit})
        bound = ("≤ " if key in LOWER_IS_BETTER else "") + _fmt(limit) if limit is not None else ""
        lines.append(f"| {label} | {_fmt(value)}{' ✗' if past else ''} | {_fmt(before.get(key))} | {bound} |")
    lines += ["", "## Retrieval ablations (answerable questions)", "",
              "| config | hit@1 | hit@5 | hit@10 | MRR | nDCG@10 | search p50 (s) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    if before:
        lines.append("| before (MiniLM dense + BM25, RRF) | " + " | ".join(
            _fmt(before.get(x)) for x in RETRIEVAL_METRICS) + " | |")
    for name, m in report.ablations.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m[x]) for x in (*RETRIEVAL_METRICS, "search_p50_s")) + " |")
    lines += ["", "![metrics by configuration](metrics_by_config.png)", ""]
    for title, groups in (("By kind", report.by_kind), ("By state", report.by_state)):
        lines += [f"## {title}", "", "| group | " + " | ".join(BREAKDOWN_COLUMNS) + " |",
                  "|---|" + "---:|" * len(BREAKDOWN_COLUMNS)]
        for group, m in groups.items():
            lines.append(f"| {group} | " + " | ".join(_fmt(m.get(c)) for c in BREAKDOWN_COLUMNS) + " |")
        lines.append("")
    lines += ["## Latency of `ask`", "", "![latency distribution](latency.png)", "",
              "## Problems", ""]
    lines += [f"- {p}" for p in report.problems] or ["None."]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value.is_integer() and value > 1:
        return str(int(value))
    return f"{value:.3f}"


def chart_metrics_by_config(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(report.ablations)
    x = np.arange(len(RETRIEVAL_METRICS))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for i, name in enumerate(names):
        values = [report.ablations[name][m] or 0.0 for m in RETRIEVAL_METRICS]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks(x, ["hit@1", "hit@5", "hit@10", "MRR", "nDCG@10"])
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("score (answerable questions)")
    ax.set_title(f"Retrieval by configuration ({report.n_questions} questions)")
    ax.legend(fontsize=8, loc="upper center", ncol=len(names))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def chart_latency(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latencies_ms = [s * 1000 for s in report.latencies_s]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.hist(latencies_ms, bins=min(30, max(5, len(latencies_ms) // 3)), color="#4C72B0")
    for q, style in ((50, "--"), (95, ":")):
        value = percentile(latencies_ms, q)
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.0f} ms")
    ax.set_xlabel("ask latency (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Latency of ask, one call per question")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
