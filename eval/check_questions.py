"""Check an evaluation question set against the parsed plans.

Usage (from the repository root, venv active):

    python eval/check_questions.py [--questions eval/questions.jsonl] [--plans DIR (default $ESSA_QA_PLANS_DIR or ../shared/plans)]

Asserts: unique ids, required fields, valid kinds and categories, every key term found at its
locators (PDF: on the page; DOCX: in the paragraph or the 3 following), unanswerable questions
without locators or key terms, every absent-topic question's `absent_search` patterns compiling
and matching nothing in its state's parsed plan, the minimum counts, and that no question
shares an 8-word sequence with the plan text. Prints a counts table. Exits 1 and lists the
problems on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.ingest import parse_plan  # noqa: E402

DEFAULT_PLANS = Path(os.environ.get("ESSA_QA_PLANS_DIR")
                     or Path(__file__).resolve().parents[1].parent / "shared" / "plans")

KINDS = ("lookup", "explain", "compare", "category", "unanswerable")
CATEGORIES = ("multiple_pathways", "personalized_competency", "technology", "transitions",
              "well_rounded", "special_populations", "sel")
REQUIRED = ("id", "question", "states", "locators", "key_terms", "categories", "kind")
DOCX_WINDOW = 3          # a DOCX locator covers its paragraph and the 3 following
SHINGLE = 8              # no 8-word sequence may be shared with the plan text
PLAN_FILES = {"DE": "DE.pdf", "MA": "MA.pdf", "NV": "NV.docx"}

MIN_PER_STATE = 20
MIN_COMPARE = 12
MIN_UNANSWERABLE = 40
MIN_UNINDEXED = 8
MIN_ABSENT_TOPIC = 30
MIN_TOTAL = 96
MIN_PER_CATEGORY = 3

ABSENT_PREFIX = "un-top-"  # absent-topic questions: a topic the named indexed plan does not cover

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def load_plans(plans_dir: Path) -> dict:
    """state -> {"pages": {page: text}, "paras": {paragraph: (text, section)}, "all": text}."""
    plans = {}
    for state, name in PLAN_FILES.items():
        doc = parse_plan(plans_dir / name, state)
        pages, paras, parts = {}, {}, []
        for unit in doc.units:
            parts.append(unit.text)
            if unit.page is not None:
                pages[unit.page] = pages.get(unit.page, "") + "\n" + unit.text
            for block in unit.blocks:
                if block.paragraph is not None:
                    paras[block.paragraph] = (unit.text[block.start:block.end], block.section or "")
        plans[state] = {"pages": pages, "paras": paras, "all": "\n".join(parts)}
    return plans


def locator_text(plans: dict, loc: dict) -> str | None:
    plan = plans.get(loc.get("state"))
    if plan is None:
        return None
    if "page" in loc:
        return plan["pages"].get(loc["page"])
    if "paragraph" in loc:
        p = loc["paragraph"]
        if p not in plan["paras"]:
            return None
        return "\n".join(plan["paras"][i][0] for i in range(p, p + DOCX_WINDOW + 1) if i in plan["paras"])
    return None


def absent_problems(q: dict, plans: dict) -> list[str]:
    """An absent-topic question must list, in `absent_search`, every pattern searched for its topic
    (synonyms, spellings, abbreviations, inflections); each must compile and match nothing
    (case-insensitive) in the parsed text of every state the question names."""
    qid = q.get("id", "?")
    patterns = q.get("absent_search")
    if not isinstance(patterns, list) or not patterns:
        return [f"{qid}: absent-topic question needs a non-empty absent_search list of patterns"]
    errs = []
    states = q["states"]
    # Pages where a pattern occurs without touching the question (a boilerplate notice), each
    # named with why: `absent_mentions: [{"state", "page", "note"}]`. Each must still match.
    allowed: dict[str, set[int]] = {}
    for mention in q.get("absent_mentions", []):
        if not (isinstance(mention, dict) and mention.get("state") in states
                and isinstance(mention.get("page"), int) and str(mention.get("note", "")).strip()):
            errs.append(f"{qid}: absent_mentions entries need a named state, a page and a note: {mention!r}")
            continue
        page_text = plans.get(mention["state"], {}).get("pages", {}).get(mention["page"], "")
        if not any(re.search(p, page_text, re.IGNORECASE) for p in patterns if isinstance(p, str)):
            errs.append(f"{qid}: absent_mentions {mention['state']} page {mention['page']} matches no "
                        f"absent_search pattern: remove it")
        allowed.setdefault(mention["state"], set()).add(mention["page"])
    if not states or not set(states) <= set(plans):
        errs.append(f"{qid}: absent-topic question must name indexed states only, not {states}")
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            errs.append(f"{qid}: absent_search pattern must be a non-empty string: {pattern!r}")
            continue
        try:
            rx = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            errs.append(f"{qid}: absent_search pattern {pattern!r} does not compile: {exc}")
            continue
        for st in states:
            if st not in plans:
                continue
            text = _searched_text(plans[st], allowed.get(st, set()))
            m = rx.search(text)
            if m:
                context = " ".join(text[max(0, m.start() - 60):m.end() + 60].split())
                errs.append(f"{qid}: 'absent' topic found in {st}: pattern {pattern!r} matched "
                            f"{m.group(0)!r} in ...{context}...")
    return errs


def _searched_text(plan: dict, skipped_pages: set[int]) -> str:
    if not skipped_pages:
        return plan["all"]
    return "\n".join(text for page, text in plan["pages"].items() if page not in skipped_pages)


def check(questions: list[dict], plans: dict) -> tuple[list[str], list[str]]:
    errors, warnings = [], []
    ids = Counter(q.get("id") for q in questions)
    for qid, n in ids.items():
        if n > 1:
            errors.append(f"duplicate id {qid} ({n}x)")

    shingles = set()
    for plan in plans.values():
        w = words(plan["all"])
        shingles.update(tuple(w[i:i + SHINGLE]) for i in range(len(w) - SHINGLE + 1))

    for q in questions:
        qid = q.get("id", "?")
        missing = [f for f in REQUIRED if f not in q]
        if missing:
            errors.append(f"{qid}: missing fields {missing}")
            continue
        if q["kind"] not in KINDS:
            errors.append(f"{qid}: bad kind {q['kind']!r}")
        for c in q["categories"]:
            if c not in CATEGORIES:
                errors.append(f"{qid}: bad category {c!r}")
        if not q["states"]:
            errors.append(f"{qid}: empty states")
        qw = words(q["question"])
        for i in range(len(qw) - SHINGLE + 1):
            if tuple(qw[i:i + SHINGLE]) in shingles:
                errors.append(f"{qid}: question shares an {SHINGLE}-word sequence with a plan: "
                              f"{' '.join(qw[i:i + SHINGLE])!r}")
                break

        if "absent_search" in q and not (q["kind"] == "unanswerable"
                                         and set(q["states"]) <= set(plans)):
            errors.append(f"{qid}: absent_search belongs only to unanswerable questions about "
                          f"indexed states")
        if q["kind"] == "unanswerable":
            if q["locators"] or q["key_terms"]:
                errors.append(f"{qid}: unanswerable but has locators or key terms")
            if str(qid).startswith(ABSENT_PREFIX) or set(q["states"]) <= set(plans):
                errors += absent_problems(q, plans)
            continue

        if not q["locators"]:
            errors.append(f"{qid}: answerable but no locators")
        if not q["key_terms"]:
            errors.append(f"{qid}: answerable but no key terms")
        for t in q["key_terms"]:
            if len(t.split()) > 3:
                errors.append(f"{qid}: key term too long {t!r}")
        loc_states = {loc.get("state") for loc in q["locators"]}
        if loc_states != set(q["states"]):
            errors.append(f"{qid}: locator states {sorted(loc_states)} != states {q['states']}")
        texts = []
        for loc in q["locators"]:
            if loc.get("state") == "NV" and "paragraph" not in loc:
                errors.append(f"{qid}: NV locator needs a paragraph: {loc}")
            text = locator_text(plans, loc)
            if text is None:
                errors.append(f"{qid}: locator not found {loc}")
                continue
            if "section" in loc and "paragraph" in loc:
                sec = plans[loc["state"]]["paras"][loc["paragraph"]][1]
                if loc["section"] not in sec:
                    errors.append(f"{qid}: paragraph {loc['paragraph']} is in section {sec!r}, "
                                  f"not {loc['section']!r}")
            texts.append((loc, text.lower()))
        for t in q["key_terms"]:
            hits = [loc for loc, text in texts if t.lower() in text]
            if not hits:
                errors.append(f"{qid}: key term {t!r} found at none of its locators")
            elif len(hits) < len(texts):
                warnings.append(f"{qid}: key term {t!r} only at {len(hits)}/{len(texts)} locators")
        for loc, text in texts:
            need = -(-len(q["key_terms"]) // 2)
            have = sum(t.lower() in text for t in q["key_terms"])
            if have < need:
                errors.append(f"{qid}: locator {loc} holds {have} key terms, fewer than half ({need})")

    errors += count_problems(questions, plans)
    return errors, warnings


def scope(q: dict, indexed) -> str:
    if q["kind"] == "compare":
        return "compare"
    if len(q["states"]) == 1 and q["states"][0] in indexed:
        return q["states"][0]
    return "not indexed"


def count_problems(questions: list[dict], plans: dict) -> list[str]:
    errs = []
    per = Counter(scope(q, plans) for q in questions)
    for st in plans:
        if per[st] < MIN_PER_STATE:
            errs.append(f"only {per[st]} questions about {st} (need {MIN_PER_STATE})")
        kinds = {q["kind"] for q in questions if scope(q, plans) == st and q["kind"] != "unanswerable"}
        for k in ("lookup", "explain", "category"):
            if k not in kinds:
                errs.append(f"{st} has no {k} question")
    compares = [q for q in questions if q["kind"] == "compare"]
    if len(compares) < MIN_COMPARE:
        errs.append(f"only {len(compares)} compare questions (need {MIN_COMPARE})")
    for q in compares:
        if not 2 <= len(q["states"]) <= 3 or not set(q["states"]) <= set(plans):
            errs.append(f"{q['id']}: compare question must name 2-3 indexed states")
    un = [q for q in questions if q["kind"] == "unanswerable"]
    unindexed = [q for q in un if not set(q["states"]) & set(plans)]
    absent = [q for q in un if set(q["states"]) <= set(plans)]
    if len(un) < MIN_UNANSWERABLE:
        errs.append(f"only {len(un)} unanswerable (need {MIN_UNANSWERABLE})")
    if len(unindexed) < MIN_UNINDEXED:
        errs.append(f"only {len(unindexed)} unanswerable about unindexed states (need {MIN_UNINDEXED})")
    if len(absent) < MIN_ABSENT_TOPIC:
        errs.append(f"only {len(absent)} unanswerable about absent topics (need {MIN_ABSENT_TOPIC})")
    cats = Counter(c for q in questions for c in q["categories"])
    for c in CATEGORIES:
        if cats[c] < MIN_PER_CATEGORY:
            errs.append(f"category {c} has {cats[c]} questions (need {MIN_PER_CATEGORY})")
    if len(questions) < MIN_TOTAL:
        errs.append(f"only {len(questions)} questions (need {MIN_TOTAL})")
    return errs


def print_table(questions: list[dict], plans: dict) -> None:
    rows = list(plans) + ["compare", "not indexed"]
    table = Counter((scope(q, plans), q["kind"]) for q in questions)
    head = f"{'scope':<12}" + "".join(f"{k:>13}" for k in KINDS) + f"{'total':>8}"
    print(head)
    for r in rows:
        cells = [table[(r, k)] for k in KINDS]
        print(f"{r:<12}" + "".join(f"{c:>13}" for c in cells) + f"{sum(cells):>8}")
    totals = [sum(table[(r, k)] for r in rows) for k in KINDS]
    print(f"{'total':<12}" + "".join(f"{c:>13}" for c in totals) + f"{sum(totals):>8}")
    cats = Counter(c for q in questions for c in q["categories"])
    print("\ncategories: " + ", ".join(f"{c}={cats[c]}" for c in CATEGORIES))


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=Path, default=here / "questions.jsonl")
    ap.add_argument("--plans", type=Path, default=DEFAULT_PLANS)
    ap.add_argument("--warnings", action="store_true", help="also list key terms missing at some locators")
    args = ap.parse_args(argv)

    questions = []
    for n, line in enumerate(args.questions.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                questions.append(json.loads(line))
            except json.JSONDecodeError as exc:
                print(f"line {n}: bad JSON: {exc}")
                return 1
    plans = load_plans(args.plans)
    errors, warnings = check(questions, plans)
    print_table(questions, plans)
    if args.warnings:
        for w in warnings:
            print("warning:", w)
    elif warnings:
        print(f"\n{len(warnings)} warnings (key terms not at every locator); --warnings lists them")
    if errors:
        print(f"\nFAILED: {len(errors)} problems")
        for e in errors:
            print(" -", e)
        return 1
    print(f"\nOK: {len(questions)} questions pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
