"""Scoring plan-fact extraction on gold values (eval/facts.jsonl): exact match per fact and
overall, "not stated" where the plan is silent, citations verbatim at their page or paragraph.

Exact match: a number or percentage equal to two decimals (to the gold value, or to one the
record's "accept" lists where the plan states the same goal twice, rounded differently), a year or count of years equal, a
list the same set of choices, a choice the same one, and for a text fact (its value is the
plan's own sentence) the citation at one of the gold places. A gold "stated": false matches only
"not stated".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .claims_eval import share, summary_rows
from .errors import ConfigError
from .records import PlanFact


@dataclass(frozen=True)
class GoldFact:
    state: str
    fact: str
    stated: bool
    value: object
    pages: tuple[int, ...]
    paragraphs: tuple[int, ...]
    terms: tuple[str, ...]
    note: str = ""
    accept: tuple = ()  # the same value as the plan also states it elsewhere (92.1 for 92.15)


def load_gold(path: str | Path) -> list[GoldFact]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    gold = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            value = tuple(d["value"]) if isinstance(d["value"], list) else d["value"]
            gold.append(GoldFact(str(d["state"]), str(d["fact"]), bool(d["stated"]), value,
                                 tuple(int(p) for p in d.get("pages", [])),
                                 tuple(int(p) for p in d.get("paragraphs", [])),
                                 tuple(str(t) for t in d.get("terms", [])), str(d.get("note", "")),
                                 tuple(d.get("accept", []))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: not a gold fact record ({exc})") from exc
    return gold


def value_matches(kind: str, predicted: PlanFact, gold: GoldFact) -> bool:
    if not gold.stated:
        return not predicted.stated
    if not predicted.stated:
        return False
    if kind == "text":
        return located(predicted, gold)
    if kind in ("list",):
        return set(predicted.value) == set(gold.value)
    if kind in ("number", "percentage"):
        return any(round(float(predicted.value), 2) == round(float(v), 2) for v in (gold.value, *gold.accept))
    return predicted.value in (gold.value, *gold.accept)


def located(predicted: PlanFact, gold: GoldFact) -> bool:
    """The citation is at one of the gold places (a Word paragraph within 2: chunks join several)."""
    c = predicted.citation
    if c is None:
        return False
    if c.page is not None:
        return c.page in gold.pages
    return c.paragraph is not None and any(abs(c.paragraph - p) <= 2 for p in gold.paragraphs)


def evaluate_facts(assistant, gold: Sequence[GoldFact], plans: dict | None = None) -> dict:
    """Extract every gold (state, fact) from the assistant's index and score it. `plans` (from
    evaluation.load_plan_texts) measures whether each quote is verbatim at its cited place."""
    from .evaluation import quote_at_citation

    schema = assistant.fact_schema
    states = sorted({g.state for g in gold} & set(assistant.states))
    # Extracted afresh: the numbers are those of the code and schema as they are now, never a cache.
    predicted = {(f.state, f.fact): f for f in assistant.facts(states=states, refresh=True)}
    rows = []
    for g in gold:
        fact = predicted.get((g.state, g.fact))
        if fact is None:
            continue  # a state not indexed, or a fact no longer in the schema
        kind = schema.get(g.fact).type
        verbatim = (quote_at_citation(plans, fact.citation) if plans is not None and fact.citation else None)
        rows.append({"state": g.state, "fact": g.fact, "expected": _shown(g.value) if g.stated else "not stated",
                     "got": fact.value_label if kind != "text" or not fact.stated else "(a sentence)",
                     "correct": value_matches(kind, fact, g), "gold_stated": g.stated,
                     "stated": fact.stated, "located": located(fact, g) if fact.stated and g.stated else None,
                     "verbatim": verbatim, "confidence": fact.confidence,
                     "cited": _locator(fact)})
    summary = {
        "n_facts": len(rows),
        "exact_match": share(r["correct"] for r in rows),
        "stated_exact_match": share(r["correct"] for r in rows if r["gold_stated"]),
        "not_stated_correct": share(r["correct"] for r in rows if not r["gold_stated"]),
        "invented_values": share(r["stated"] for r in rows if not r["gold_stated"]),
        "cited_at_gold_place": share(r["located"] for r in rows if r["located"] is not None),
        "verbatim_citations": share(r["verbatim"] for r in rows if r["verbatim"] is not None),
    }
    by_fact = {f: {"n": sum(r["fact"] == f for r in rows),
                   "exact_match": share(r["correct"] for r in rows if r["fact"] == f)}
               for f in dict.fromkeys(r["fact"] for r in rows)}
    return {"summary": summary, "by_fact": by_fact, "facts": rows}


def facts_markdown(result: dict) -> str:
    s = result["summary"]
    out = ["## Plan facts", "", f"{s['n_facts']} gold values (eval/facts.jsonl), each extracted from the index.", "",
           *summary_rows(s, skip=("n_facts",))]
    out += ["", "| fact | values | exact match |", "|---|---:|---:|"]
    out += [f"| {f} | {v['n']} | {v['exact_match']} |" for f, v in result["by_fact"].items()]
    wrong = [r for r in result["facts"] if not r["correct"]]
    if wrong:
        out += ["", "Wrong values:", ""]
        out += [f"- {r['state']} {r['fact']}: expected {r['expected']}, got {r['got']} ({r['cited'] or 'no citation'})"
                for r in wrong]
    return "\n".join(out) + "\n"


def _shown(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _locator(fact: PlanFact) -> str:
    c = fact.citation
    if c is None:
        return ""
    return f"PDF page {c.page}" if c.page is not None else f"paragraph {c.paragraph}"
