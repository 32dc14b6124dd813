"""Answers as text for the terminal and as Markdown ready to paste into an article or fact-check sheet."""

from __future__ import annotations

from .records import Answer, Citation, format_locator
from .states import state_name


OCR_NOTE = "OCR text: check against the page image"


def citation_locator(citation: Citation) -> str:
    """Page, or paragraph alone: callers print the section next to it. A quote from a page
    read by OCR says so wherever it is cited."""
    where = format_locator(citation.page, citation.page_label, citation.paragraph)
    return f"{where} ({OCR_NOTE})" if citation.ocr else where


def answer_to_text(answer: Answer) -> str:
    lines = [answer.answer.replace("**", ""), ""]
    listed = answer.citations or answer.related
    if listed:
        lines.append("Possibly related:" if answer.abstained else "Sources:")
    for c in listed:
        section = f" · {c.section}" if c.section else ""
        lines.append(f"[{c.rank}] {state_name(c.state)} · {c.source} · {citation_locator(c)}{section}")
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
        out.append(f"{c.rank}. {state_name(c.state)}, *{title}*, {citation_locator(c)}{section}: “{quote}”")
    return "\n".join(out).rstrip() + "\n"
