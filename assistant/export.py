"""Answers as text for the terminal and as Markdown ready to paste into an article or fact-check sheet."""

from __future__ import annotations

from difflib import SequenceMatcher

from .records import Answer, Citation, PlanFact, VersionChanges, format_locator
from .states import state_name


OCR_NOTE = "OCR text: check against the page image"


def citation_locator(citation: Citation) -> str:
    """Page, or paragraph alone: callers print the section next to it. A quote from a page
    read by OCR says so wherever it is cited."""
    where = format_locator(citation.page, citation.page_label, citation.paragraph)
    return f"{where} ({OCR_NOTE})" if citation.ocr else where


def version_note(citation: Citation) -> str:
    """" (2019 amended)", " (amended, 2019)": which version of the plan is quoted, with its
    year; "" where none is known."""
    label = citation.version or citation.year
    if citation.year and citation.year not in label:
        label = f"{label}, {citation.year}"
    return f" ({label})" if label else ""


def answer_to_text(answer: Answer) -> str:
    lines = [answer.answer.replace("**", ""), ""]
    listed = answer.citations or answer.related
    if listed:
        lines.append("Possibly related:" if answer.abstained else "Sources:")
    for c in listed:
        section = f" · {c.section}" if c.section else ""
        lines.append(f"[{c.rank}] {state_name(c.state)} · {c.source}{version_note(c)} · {citation_locator(c)}{section}")
        lines.append(f"    “{c.quote}”")
    if answer.categories:
        lines.append("")
        lines.append("Approaches: " + ", ".join(answer.categories))
    return "\n".join(lines).rstrip()


def answer_to_markdown(answer: Answer, plans: dict[str, dict] | None = None) -> str:
    """The answer with numbered citations: state, plan title, page, verbatim quote."""
    plans = plans or {}
    out = [f"**Q:** {answer.question}", "", answer.answer, ""]
    listed = answer.citations or answer.related
    if listed:
        out.append("**Possibly related passages**" if answer.abstained else "**Sources**")
        out.append("")
    for c in listed:
        title = (plans.get(c.source) or {}).get("title") or c.source
        section = f", {c.section}" if c.section else ""
        quote = c.quote.replace("\n", " ").replace("*", r"\*")
        out.append(f"{c.rank}. {state_name(c.state)}, *{title}*{version_note(c)}, {citation_locator(c)}{section}: “{quote}”")
    return "\n".join(out).rstrip() + "\n"


def changes_to_markdown(report: VersionChanges) -> str:
    """What changed, as Markdown: each entry with the sentences removed and added, cited."""
    topic = f" on “{report.topic}”" if report.topic else ""
    name = f"{state_name(report.state)} ({report.state})"
    out = [f"## {name}: what changed{topic} from {report.old_version} ({report.old_source}) "
           f"to {report.new_version} ({report.new_source})", "", changes_summary(report)]
    if not report.changes:
        return "\n".join(out) + "\n"
    out.append("")
    for n, change in enumerate(report.changes, 1):
        where = " → ".join(_where(c, label) for c, label in ((change.old, report.old_version),
                                                              (change.new, report.new_version)) if c)
        out.append(f"### {n}. {change.kind.capitalize()}: {where}")
        out.append("")
        for verb, sentences in (("Removed", change.removed), ("Added", change.added)):
            for sentence in sentences:
                out.append(f"- {verb}: “{_md(sentence)}”")
        for old, new in reworded(change.removed, change.added):
            out.append(f"- Reworded: {word_diff(old, new)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def changes_summary(report: VersionChanges) -> str:
    """One line: how many changes were found (and shown) of how many passages compared."""
    topic = f" on “{report.topic}”" if report.topic else ""
    if not report.changes:
        return (f"No difference found{topic}: the {report.compared} passages compared read the same in both "
                "versions (case, spacing and punctuation aside).")
    shown = f"{len(report.changes)} of {report.total}" if report.total > len(report.changes) else str(report.total)
    return f"{shown} change(s){topic}; {report.compared} passages compared."


def _md(text: str) -> str:
    return " ".join(text.split()).replace("*", r"\*").replace("~", r"\~")


def reworded(removed, added) -> list[tuple[str, str]]:
    """Removed and added sentences that are one sentence edited (most of their words kept)."""
    pairs = []
    for new in added:
        scored = [(SequenceMatcher(None, old.split(), new.split()).ratio(), old) for old in removed]
        ratio, best = max(scored, key=lambda pair: pair[0], default=(0.0, None))
        if best is not None and ratio >= 0.6:
            pairs.append((best, new))
    return pairs


def word_edits(old: str, new: str) -> list[tuple[str, str]]:
    """An edited sentence word by word: ("=", kept words), ("-", removed ones), ("+", added ones)."""
    a, b = old.split(), new.split()
    out = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("=", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", " ".join(b[j1:j2])))
    return out


def word_diff(old: str, new: str) -> str:
    """The edit in Markdown: ~~removed words~~ **added words**, the rest as is."""
    marks = {"=": "{}", "-": "~~{}~~", "+": "**{}**"}
    return " ".join(marks[op].format(_md(text)) for op, text in word_edits(old, new))


def _where(citation: Citation, label: str) -> str:
    section = f", {citation.section}" if citation.section else ""
    return f"{label} {citation_locator(citation)}{section}"


# ------------------------------------------------------------ plan facts

FACT_CSV_COLUMNS = ("state", "fact", "label", "value", "unit", "stated", "confidence", "quote", "source",
                    "version", "page", "page_label", "paragraph", "section")


def fact_cells(fact: PlanFact) -> dict[str, str]:
    """One fact as flat text cells (CSV, the app's table): a list's choices joined by "; "."""
    c = fact.citation
    value = "; ".join(fact.value) if isinstance(fact.value, tuple) else ("" if fact.value is None else fact.value)
    return {"state": fact.state, "fact": fact.fact, "label": fact.label, "value": str(value), "unit": fact.unit,
            "stated": "yes" if fact.stated else "no", "confidence": f"{fact.confidence:.2f}",
            "quote": c.quote if c else "", "source": c.source if c else "", "version": fact.version,
            "page": "" if c is None or c.page is None else str(c.page),
            "page_label": (c.page_label or "") if c else "",
            "paragraph": "" if c is None or c.paragraph is None else str(c.paragraph),
            "section": c.section if c else ""}


def facts_to_csv(facts: list[PlanFact]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FACT_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for fact in facts:
        writer.writerow(fact_cells(fact))
    return out.getvalue()


def facts_to_markdown(facts: list[PlanFact]) -> str:
    """Per state, a table of its facts: value, where the plan says it, and the quote verbatim."""
    out = []
    for state in dict.fromkeys(f.state for f in facts):
        out += [f"## {state_name(state)} ({state})", "", "| Fact | Value | Where | Quote |", "|---|---|---|---|"]
        for f in (f for f in facts if f.state == state):
            c = f.citation
            where = f"{c.source}{version_note(c)}, {citation_locator(c)}" if c else ""
            quote = f"“{_cell(c.quote)}”" if c else ""
            value = _cell(f.value_label) if f.stated else "*not stated*"
            out.append(f"| {_cell(f.label)} | {value} | {_cell(where)} | {quote} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n" if out else "No facts.\n"


def facts_to_text(facts: list[PlanFact]) -> str:
    lines = []
    for f in facts:
        c = f.citation
        where = f"  [{c.source}{version_note(c)}, {citation_locator(c)}]" if c else ""
        value = f.value_label if f.stated else "not stated"
        lines.append(f"{f.state}  {f.label}: {value}" + (f"  (confidence {f.confidence:.2f}){where}" if f.stated else ""))
        if c:
            lines.append(f"    “{' '.join(c.quote.split())}”")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", r"\|").replace("*", r"\*")
