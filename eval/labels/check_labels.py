"""Validate eval/labels/labels.jsonl against the parsed plans.

For each label: categories are among the 7 ids, ids are unique, and every
key term occurs (case-insensitively) on the labelled PDF page or in the DOCX
paragraph and the next 3 paragraphs. Prints counts per state x category.

Usage (from the repo root):  python eval/labels/check_labels.py [labels.jsonl]
"""
from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from assistant.ingest import parse_plan  # noqa: E402

# Like the tests: $ESSA_QA_PLANS_DIR, else ../shared/plans beside the project.
PLANS = Path(os.environ.get("ESSA_QA_PLANS_DIR") or ROOT.parent / "shared" / "plans")
FILES = {"DE": "DE.pdf", "MA": "MA.pdf", "NV": "NV.docx"}
CATEGORIES = [
    "multiple_pathways", "personalized_competency", "technology", "transitions",
    "well_rounded", "special_populations", "sel",
]


def norm(s: str) -> str:
    return " ".join(s.lower().split())


def load_texts(state: str, kinds: tuple[str, ...] | None = None) -> dict[int, str]:
    """PDF: page -> page text. DOCX: paragraph number -> paragraph text.

    With ``kinds``, only blocks of those kinds are included."""
    doc = parse_plan(PLANS / FILES[state], state)
    out: dict[int, str] = defaultdict(str)
    for unit in doc.units:
        for b in unit.blocks:
            if kinds is not None and b.kind not in kinds:
                continue
            key = unit.page if FILES[state].endswith(".pdf") else b.paragraph
            if key is not None:
                out[key] += " " + unit.text[b.start:b.end]
        if kinds is None and FILES[state].endswith(".pdf"):
            out[unit.page] += " " + unit.text
    return {k: norm(v) for k, v in out.items()}


def hay_for(label: dict, texts: dict[int, str], pdf: bool) -> str:
    if pdf:
        return texts.get(label["page"], "")
    p = label["paragraph"]
    return " ".join(texts.get(q, "") for q in range(p, p + 4))


def main(path: Path) -> int:
    labels = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    texts = {s: load_texts(s) for s in FILES}
    resp_texts = {s: load_texts(s, ("response", "table")) for s in FILES}
    warnings: list[str] = []
    errors: list[str] = []
    ids = Counter(l["id"] for l in labels)
    for i, n in ids.items():
        if n > 1:
            errors.append(f"duplicate id {i}")
    for l in labels:
        st = l["state"]
        if st not in FILES:
            errors.append(f"{l['id']}: unknown state {st}")
            continue
        for c in l["categories"]:
            if c not in CATEGORIES:
                errors.append(f"{l['id']}: unknown category {c}")
        terms = l["key_terms"]
        if not 2 <= len(terms) <= 4:
            errors.append(f"{l['id']}: {len(terms)} key terms")
        pdf = FILES[st].endswith(".pdf")
        hay = hay_for(l, texts[st], pdf)
        resp_hay = hay_for(l, resp_texts[st], pdf)
        if any(norm(t) not in resp_hay for t in terms) and not l.get("template"):
            warnings.append(f"{l['id']} {l['categories']}: key terms not all in response/table blocks"
                            + (" (noted)" if l.get("note") else " (NOT noted)"))
        if not hay:
            errors.append(f"{l['id']}: no text at that location")
        for t in terms:
            if len(t.split()) > 3:
                errors.append(f"{l['id']}: key term too long: {t!r}")
            if norm(t) not in hay:
                errors.append(f"{l['id']}: key term not found: {t!r}")
    # counts
    table: dict[str, Counter] = defaultdict(Counter)
    for l in labels:
        table[l["state"]]["total"] += 1
        if not l["categories"]:
            table[l["state"]]["negative"] += 1
        if l.get("template"):
            table[l["state"]]["template"] += 1
        for c in l["categories"]:
            table[l["state"]][c] += 1
    cols = ["total", "negative", "template"] + CATEGORIES
    print("state | " + " | ".join(cols))
    for st in sorted(table):
        print(st + " | " + " | ".join(str(table[st][c]) for c in cols))
    tot = Counter()
    for st in table:
        tot.update(table[st])
    print("ALL | " + " | ".join(str(tot[c]) for c in cols))
    print(f"negative share: {tot['negative'] / max(1, tot['total']):.0%}")
    if warnings:
        print(f"\n{len(warnings)} warnings (passage text the parser does not classify as response/table):")
        for w in warnings:
            print("  " + w)
    if errors:
        print(f"\n{len(errors)} ERRORS:")
        for e in errors:
            print("  " + e)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    p = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("labels.jsonl")
    sys.exit(main(p))
