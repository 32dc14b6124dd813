"""The browser app: a Gradio chat with cited passages, a comparison view, the coverage map, the
evaluation report, and the routes that serve the plans themselves so every citation can be checked.

Handlers are plain functions that take the assistant and return data or HTML, so they are tested
without a browser; `build_app` only wires them to components. Every string that comes from a plan
goes through `escape_text`: the chat renders HTML, and a plan is third-party text.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import logging
import math
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.requests import HTTPConnection

from . import pageview
from .errors import EssaError, PlanError
from .export import changes_summary, citation_locator, reworded, version_note, word_edits
from .permalinks import AnswerStore, SharedAnswer, SharedCheck, ShareLinks
from .answer.compose import make_citation
from .records import Answer, Citation
from .states import detect_states, state_name
from .viewer import (MAX_QUOTE, docx_section, escape_text, lines_html, not_found_html, pdf_viewer_html,
                     quote_span, resolve_plan_file, viewer_link, viewer_page_html)
from .workers import PooledAssistant

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_K = 5
FRIENDLY_FAILURE = ("Something went wrong while answering. The problem was logged; "
                    "please try again or rephrase the question.")

def _copy_source(text: str) -> str:
    """What the copy button just before it puts on the clipboard (see static/app.js).

    Percent-encoded in a hidden element: the chat's sanitizer drops data-* attributes and
    re-escapes entities there, and %XX survives both and means nothing to HTML or Markdown.
    """
    encoded = quote(text, safe="").replace("_", "%5F").replace(".", "%2E").replace("-", "%2D")
    return f'<span class="essa-copy-text" hidden>{encoded.replace("~", "%7E")}</span>'


def plan_link(citation: Citation, plans_dir: Path | None) -> tuple[str, str] | None:
    """(href, label) showing the citation in the viewer panel (its page with the quote marked, or
    its DOCX section), or None when the file is absent. The viewer links to the whole file."""
    if plans_dir is None or resolve_plan_file(plans_dir, citation.source) is None:
        return None
    if citation.page is not None:
        return (viewer_link(citation.source, page=citation.page, quote_text=citation.quote),
                f"Show page {citation.page_label or citation.page}")
    paragraph = citation.paragraph or 1
    return viewer_link(citation.source, paragraph=paragraph, quote_text=citation.quote), "Show section"


# ------------------------------------------------------------------ answers as HTML


EXCERPT_BEFORE, EXCERPT_AFTER = 280, 520  # characters of context shown around a cited sentence


def highlight_quote(passage: str, quote_text: str) -> str:
    """The passage escaped, cut to the context around the cited sentence, which is in <mark>."""
    span = quote_span(passage, quote_text)
    if span is None:
        return lines_html(passage)
    start, end = span
    lo = 0 if start <= EXCERPT_BEFORE else passage.find(" ", start - EXCERPT_BEFORE, start) + 1
    hi = len(passage) if len(passage) - end <= EXCERPT_AFTER else passage.rfind(" ", end, end + EXCERPT_AFTER)
    hi = hi if hi > end else len(passage)
    return (("… " if lo > 0 else "") + lines_html(passage[lo:start].lstrip("\n")) + "<mark>"
            + lines_html(passage[start:end]) + "</mark>" + lines_html(passage[end:hi].rstrip("\n"))
            + (" …" if hi < len(passage) else ""))


def plan_title(plans: dict[str, dict], source: str) -> str:
    return (plans.get(source) or {}).get("title") or source


def citation_markdown(citation: Citation, plans: dict[str, dict]) -> str:
    """One citation as a line to paste: state, plan title, place, section, the quote."""
    section = f", {citation.section}" if citation.section else ""
    quote_text = " ".join(citation.quote.split())
    return (f"{state_name(citation.state)}, {plan_title(plans, citation.source)}{version_note(citation)}, "
            f"{citation_locator(citation)}{section}: “{quote_text}”")


def citation_card_html(citation: Citation, plans: dict[str, dict], labels: Callable[[str], str],
                       plans_dir: Path | None, *, turn: int | str = 1, related: bool = False,
                       mark_quote: bool = True, root: str = "") -> str:
    """One card: state, plan title, place, section, category chips, passage, links (relative to
    the app's root; `root` leads to it from a page elsewhere, "../" from /answer/<id>)."""
    link = plan_link(citation, plans_dir)
    link = (root + link[0], link[1]) if link else None
    chips = "".join(f'<span class="essa-chip">{escape_text(labels(c))}</span>' for c in citation.categories)
    locator = escape_text(citation_locator(citation))
    section = f" · {escape_text(citation.section)}" if citation.section else ""
    open_link = (f'<a class="essa-open" href="{html.escape(link[0])}" target="_blank" '
                 f'rel="noopener">{escape_text(link[1])}</a>' if link else
                 '<span class="essa-muted">Plan file not available here</span>')
    copy = citation_markdown(citation, plans)
    kind = " essa-related" if related else ""
    return (f'<article class="essa-card{kind}" id="t{turn}-c{citation.rank}" data-state="{html.escape(citation.state)}">'
            f'<div class="essa-card-head"><span class="essa-rank">[{citation.rank}]</span>'
            f'<span class="essa-state">{escape_text(state_name(citation.state))}</span>'
            f'<span class="essa-title">{escape_text(plan_title(plans, citation.source) + version_note(citation))}</span></div>'
            f'<div class="essa-loc">{locator}{section}</div>'
            + (f'<div class="essa-chips">{chips}</div>' if chips else "")
            + f'<div class="essa-passage">{highlight_quote(citation.passage, citation.quote) if mark_quote else lines_html(citation.passage)}</div>'
            f'<div class="essa-actions">{open_link}'
            f'<button type="button" class="essa-copy">Copy citation</button>{_copy_source(copy)}</div>'
            "</article>")


_MARKER = re.compile(r"&#91;(\d+)&#93;")
_STATE_LEAD = re.compile(r"^&#42;&#42;([^<>]{1,60}?):&#42;&#42;")


def answer_text_html(text: str) -> str:
    """The answer's paragraphs escaped, keeping only our own markup: citation markers and state leads."""
    paragraphs = []
    for raw in text.split("\n\n"):
        body = escape_text(raw.strip()).replace("\n", "<br>")
        body = _STATE_LEAD.sub(r"<strong>\1:</strong>", body)
        body = _MARKER.sub(r'<span class="essa-marker">[\1]</span>', body)
        paragraphs.append(f"<p>{body}</p>")
    return "".join(paragraphs)


def answer_html(answer: Answer, plans: dict[str, dict], labels: Callable[[str], str],
                plans_dir: Path | None, *, turn: int = 1, permalink: tuple[str, str] | None = None,
                shared: bool = False) -> str:
    """A chat reply: the answer with markers, a copy button, then one card per citation.
    `permalink`: (href, link to paste) of the shared copy, shown and carried by the Markdown.
    `shared`: the read-only page of a shared answer (no link to itself).

    One line of HTML with no blank lines, so the chat's Markdown pass leaves it as one HTML block.
    """
    copy_md = answer.to_markdown(plans)
    if permalink:
        copy_md += f"\n[Link to this answer]({permalink[1]})\n"
    if answer.abstained:
        head = ('<div class="essa-answer essa-abstained"><span class="essa-badge">Not found in the plans'
                f"</span>{answer_text_html(answer.answer)}</div>")
        cards = answer.related
        title = "Possibly related passages" if cards else ""
    else:
        head = f'<div class="essa-answer">{answer_text_html(answer.answer)}</div>'
        cards = answer.citations
        title = "Sources"
    link = (f'<a class="essa-permalink" href="{html.escape(permalink[0])}" target="_blank" rel="noopener">'
            "Link to this answer</a>" if permalink and not shared else "")
    parts = [head, '<div class="essa-actions"><button type="button" class="essa-copy-md">Copy as '
                   f'Markdown</button>{_copy_source(copy_md)}{link}</div>']
    if cards:
        parts.append(f'<div class="essa-cards-title">{title}</div><div class="essa-cards">')
        parts.extend(citation_card_html(c, plans, labels, plans_dir, turn=turn, related=answer.abstained,
                                        root="../" if shared else "")
                     for c in cards)
        parts.append("</div>")
    return "".join(parts).replace("\n", " ")


def shared_answer_page(shared: SharedAnswer | None, plans: dict[str, dict], labels: Callable[[str], str],
                       plans_dir: Path | None) -> str:
    """The read-only page of a shared answer: the question, when it was answered, the answer and
    its citations as the chat showed them (copy buttons work; "Show page" opens the viewer)."""
    if shared is None:
        body = error_html("No shared answer has this link. It may have been mistyped, or the app "
                          "that keeps it was reset.")
        title = "Shared answer not found"
    else:
        answer = shared.answer
        title = f"Shared answer: {answer.question}"
        built = f" from the index built {escape_text(shared.index_built)}" if shared.index_built else ""
        body = (f'<p class="essa-muted">Shared answer, read-only: answered {escape_text(shared.created)}'
                f"{built}. The cited plans may have changed since.</p>"
                f'<h2 class="essa-question">{escape_text(answer.question)}</h2>'
                + answer_html(answer, plans, labels, plans_dir, shared=True)
                + '<p><a href="../">Ask your own question</a></p>')
    return _shared_page(title, body)


def _shared_page(title: str, body: str) -> str:
    """A read-only page at /answer/<id> or /check/<id>: the app's styles, its copy buttons."""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape_text(title)}</title><style>body{{font-family:system-ui,sans-serif;"
            f"max-width:56em;margin:1em auto;padding:0 1em;color:#0f172a}}{app_css()}</style>"
            f'<script src="../{APP_SCRIPT}"></script></head><body><h1>ESSA Plans Assistant</h1>{body}</body></html>')


VERDICT_LABELS = {"supported": "Supported", "contradicted": "Contradicted", "not_found": "Not found"}


def check_html(assistant, plans_dir: Path | None, text: str, states: Sequence[str] = (),
               share: ShareLinks | None = None) -> str:
    """The Check tab's result: the draft's claims checked, kept for sharing when `share` is given."""
    from .checking import check_text

    if not (text or "").strip():
        return error_html("Paste a sentence or a paragraph to check.")
    try:
        report = check_text(assistant, text, list(states) or None)
    except Exception as exc:  # the page shows a sentence, never a stack trace
        return error_html(friendly_error(exc))
    if not report.claims:
        return error_html("No claim found: a claim is a sentence of three words or more.")
    return check_report_html(report, assistant.plans, assistant.tagger.label, plans_dir,
                             permalink=share.share_check(report, assistant) if share else None)


def check_report_html(report, plans: dict[str, dict], labels: Callable[[str], str], plans_dir: Path | None,
                      *, permalink: tuple[str, str] | None = None, shared: bool = False) -> str:
    """One block per claim, its verdict, the reason and the cited passage with the supporting (or
    contradicting) sentence marked; a Markdown copy (carrying the share link) and the link."""
    counts = {v: sum(c.verdict == v for c in report.claims) for v in VERDICT_LABELS}
    copy_md = report.to_markdown() + (f"\n[Link to this check]({permalink[1]})\n" if permalink else "")
    link = (f'<a class="essa-permalink" href="{html.escape(permalink[0])}" target="_blank" rel="noopener">'
            "Link to this check</a>" if permalink and not shared else "")
    parts = ['<div class="essa-check-summary">' + " · ".join(
        f"{n} {VERDICT_LABELS[v].lower()}" for v, n in counts.items() if n) + "</div>"
        '<div class="essa-actions"><button type="button" class="essa-copy-md">Copy as Markdown</button>'
        f"{_copy_source(copy_md)}{link}</div>"]
    for n, claim in enumerate(report.claims, 1):
        cards = "".join(citation_card_html(c, plans, labels, plans_dir, turn=f"k{n}",
                                           root="../" if shared else "") for c in claim.citations)
        parts.append(f'<section class="essa-claim essa-v-{claim.verdict}" aria-label="Claim {n}">'
                     f'<div class="essa-claim-head"><span class="essa-verdict">{VERDICT_LABELS[claim.verdict]}'
                     f'</span> <span class="essa-claim-text">{escape_text(claim.claim)}</span></div>'
                     f'<p class="essa-reason">{escape_text(claim.reason)}</p>{cards}</section>')
    return "".join(parts)


def shared_check_page(shared: SharedCheck | None, plans: dict[str, dict], labels: Callable[[str], str],
                      plans_dir: Path | None) -> str:
    if shared is None:
        return _shared_page("Shared check not found", error_html(
            "No shared claim check has this link. It may have been mistyped, or the app that keeps it was reset."))
    built = f" against the index built {escape_text(shared.index_built)}" if shared.index_built else ""
    body = (f'<p class="essa-muted">Shared claim check, read-only: checked {escape_text(shared.created)}'
            f"{built}. The cited plans may have changed since.</p>"
            + check_report_html(shared.report, plans, labels, plans_dir, shared=True)
            + '<p><a href="../">Check your own draft</a></p>')
    return _shared_page("Shared claim check", body)


def error_html(message: str) -> str:
    return f'<div class="essa-error">{escape_text(message)}</div>'


def friendly_error(exc: BaseException) -> str:
    """What the page says when a handler fails: our own errors verbatim, others generically."""
    if isinstance(exc, EssaError):
        return str(exc)
    log.exception("web handler failed", exc_info=exc)
    return FRIENDLY_FAILURE


# ------------------------------------------------------------------ the chat


@dataclass(frozen=True)
class Turn:
    """What a later question may build on: the question actually asked and its states."""

    question: str
    states: tuple[str, ...]


_FOLLOW_UP = re.compile(r"^\s*(?:and|what about|how about|same for|and what about|what of)\b", re.I)


def resolve_follow_up(message: str, previous: Turn | None,
                      chosen_states: Sequence[str] = ()) -> tuple[str, list[str] | None]:
    """(question, states) for a chat message read in the light of the previous turn.

    "What about Nevada?" re-asks the previous question for Nevada; a follow-up that names no state
    stays with the previous turn's states. States picked in the filter always win.
    """
    message = message.strip()
    if chosen_states:
        return message, list(chosen_states)
    if previous is None:
        return message, None
    named = detect_states(message)
    if named and _FOLLOW_UP.match(message) and len(message.split()) <= 8:
        return _with_states(previous.question, previous.states, named), named
    if not named and previous.states:
        return message, list(previous.states)
    return message, None


def _with_states(question: str, old: Sequence[str], new: Sequence[str]) -> str:
    """The question with the states it named swapped for the new ones (the words steer retrieval)."""
    names = [state_name(c) for c in new]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    for code in old:
        question = re.sub(rf"\b{re.escape(state_name(code))}\b", joined, question, flags=re.I)
    return question


def chat_reply(assistant, plans_dir: Path | None, message: str, history: list[dict] | None,
               turns: list[Turn] | None, states: Sequence[str] = (), categories: Sequence[str] = (),
               k: int = DEFAULT_K, share: ShareLinks | None = None,
               version: str | None = None) -> tuple[list[dict], list[Turn]]:
    """The chat after one more question: the history (openai-style messages) and the turns. With
    `share`, the answer is kept and its reply carries a link that reopens it read-only; `version`
    is the plan version filter (None: each state's newest)."""
    history = list(history or [])
    turns = list(turns or [])
    message = (message or "").strip()
    if not message:
        return history, turns
    history.append({"role": "user", "content": escape_text(message)})
    try:
        question, wanted = resolve_follow_up(message, turns[-1] if turns else None, states)
        answer = assistant.ask(question, k=int(k or DEFAULT_K), states=wanted,
                               categories=list(categories) or None, version=version or None)
        reply = answer_html(answer, assistant.plans, assistant.tagger.label, plans_dir,
                            turn=len(turns) + 1, permalink=share.share(answer, assistant) if share else None)
        turns.append(Turn(question, tuple(answer.states)))
    except Exception as exc:  # the page shows a sentence, never a stack trace
        reply = error_html(friendly_error(exc))
    history.append({"role": "assistant", "content": reply})
    return history, turns


def example_questions(assistant) -> list[str]:
    """Transitions and social emotional learning for each indexed state."""
    out = []
    for code in assistant.states:
        name = state_name(code)
        out.append(f"How does {name} support students' transitions from middle school to high school?")
        out.append(f"What does {name} do for social emotional learning?")
    return out


def version_choices(assistant) -> list[tuple[str, str]]:
    """The plan version filter: newest (the default), every version, or one label."""
    labels = sorted({v.label for found in assistant.versions.values() for v in found if v.version or v.year})
    return [("Newest plan of each state", ""), ("All versions", "all")] + [(label, label) for label in labels]


def category_choices(tagger) -> list[tuple[str, str]]:
    """(label, id) pairs for the category pickers."""
    return [(c.label, c.id) for c in tagger.categories]


# ------------------------------------------------------------------ compare


def compare_html(assistant, plans_dir: Path | None, states: Sequence[str], topic: str,
                 category: str | None, k: int = DEFAULT_K) -> str:
    """One column per state: that state's answer to the topic, with its citations."""
    states = [s for s in (states or []) if s in assistant.states]
    topic = (topic or "").strip()
    if not states:
        return error_html("Pick at least one state to compare.")
    if not topic and not category:
        return error_html("Type a topic or pick a category to compare.")
    if not topic:
        topic = next((c.description for c in assistant.tagger.categories if c.id == category), category)
    columns = []
    try:
        for code in states:
            answer = assistant.ask(topic, k=int(k or DEFAULT_K), states=[code],
                                   categories=[category] if category else None)
            columns.append(f'<section class="essa-compare-col" data-state="{html.escape(code)}">'
                           f"<h3>{escape_text(state_name(code))}</h3>"
                           f"{answer_html(answer, assistant.plans, assistant.tagger.label, plans_dir, turn=code)}"
                           "</section>")
    except Exception as exc:
        return error_html(friendly_error(exc))
    return f'<div class="essa-compare">{"".join(columns)}</div>'


# ------------------------------------------------------------------ what changed


def versioned_states(assistant) -> list[tuple[str, str]]:
    """States with two or more plan versions indexed: the ones "what changed" can compare."""
    return [(f"{state_name(s)} ({s})", s) for s, found in assistant.versions.items() if len(found) > 1]


def changes_html(assistant, plans_dir: Path | None, state: str, topic: str = "", old: str | None = None,
                 new: str | None = None, limit: int = 50) -> str:
    """What changed in a state's plan between two versions: each change with the sentences removed
    and added, a word-by-word view of an edited sentence, and links that show each side's page."""
    from .changes import compare_versions

    if not state:
        return error_html("Pick a state with two or more plan versions.")
    try:
        report = compare_versions(assistant, state, old=old or None, new=new or None, topic=topic or "",
                                  limit=limit)
    except Exception as exc:
        return error_html(friendly_error(exc))
    on = f" on “{escape_text(report.topic)}”" if report.topic else ""
    head = (f'<h3>{escape_text(state_name(report.state))}: {escape_text(report.old_version)} → '
            f'{escape_text(report.new_version)}{on}</h3>')
    summary = f"<p>{escape_text(changes_summary(report))}</p>"
    items = []
    for n, change in enumerate(report.changes, 1):
        sides = []
        for citation, label in ((change.old, report.old_version), (change.new, report.new_version)):
            if citation is None:
                continue
            link = plan_link(citation, plans_dir)
            where = escape_text(f"{label}: {citation_locator(citation)}" + (f" · {citation.section}" if citation.section else ""))
            sides.append(where + (f' <a class="essa-open" href="{html.escape(link[0])}" target="_blank" '
                                  f'rel="noopener">{escape_text(link[1])}</a>' if link else ""))
        lines = [f'<li class="essa-removed"><span class="essa-muted">Removed:</span> “{lines_html(t)}”</li>'
                 for t in change.removed]
        lines += [f'<li class="essa-added"><span class="essa-muted">Added:</span> “{lines_html(t)}”</li>'
                  for t in change.added]
        lines += [f'<li class="essa-reworded"><span class="essa-muted">Reworded:</span> {_word_diff_html(a, b)}</li>'
                  for a, b in reworded(change.removed, change.added)]
        items.append(f'<article class="essa-card essa-change" data-kind="{change.kind}">'
                     f'<div class="essa-card-head"><span class="essa-rank">{n}.</span>'
                     f'<span class="essa-state">{change.kind.capitalize()}</span></div>'
                     f'<div class="essa-loc">{"<br>".join(sides)}</div><ul>{"".join(lines)}</ul></article>')
    return f'<div class="essa-changes">{head}{summary}{"".join(items)}</div>'


def _word_diff_html(old: str, new: str) -> str:
    tags = {"=": "{}", "-": "<del>{}</del>", "+": "<ins>{}</ins>"}
    return " ".join(tags[op].format(escape_text(text)) for op, text in word_edits(old, new))


# ------------------------------------------------------------------ plan facts


def facts_for(assistant, states: Sequence[str] = (), fact_ids: Sequence[str] = (), filter_text: str = ""):
    """(facts, states kept by the filter): the Facts tab's and the /facts.<format> export's data."""
    from .facts import filter_states, parse_filter

    facts = assistant.facts(states=list(states) or None, fact_ids=list(fact_ids) or None)
    conditions = parse_filter(assistant.fact_schema, filter_text) if (filter_text or "").strip() else []
    if conditions:
        # A filter may name a fact the table does not show ("n-size below 20" over the goals).
        shown = {f.fact for f in facts}
        extra = [c.fact for c in conditions if c.fact not in shown]
        judged = facts + (assistant.facts(states=list(states) or None, fact_ids=extra) if extra else [])
        kept = filter_states(judged, conditions)
    else:
        kept = list(dict.fromkeys(f.state for f in facts))
    return [f for f in facts if f.state in kept], kept


def facts_html(assistant, plans_dir: Path | None, states: Sequence[str] = (), fact_ids: Sequence[str] = (),
               filter_text: str = "") -> str:
    """States x facts: each cell the value, a link that shows its quote in the viewer, and the quote
    as the cell's tooltip; the column headings sort (static/app.js); CSV and Markdown exports."""
    try:
        facts, kept = facts_for(assistant, states, fact_ids, filter_text)
    except Exception as exc:
        return error_html(friendly_error(exc))
    schema = assistant.fact_schema
    specs = schema.select(list(fact_ids) or None)
    by = {(f.state, f.fact): f for f in facts}
    query = "&".join([*(f"state={quote(s)}" for s in states), *(f"fact={quote(f)}" for f in fact_ids),
                      *([f"filter={quote(filter_text)}"] if (filter_text or "").strip() else [])])
    exports = " · ".join(f'<a href="facts.{fmt}{"?" + query if query else ""}" download>{label}</a>'
                         for fmt, label in (("csv", "Download CSV"), ("md", "Download Markdown")))
    if not kept:
        return f'<div class="essa-facts"><p>No state meets “{escape_text(filter_text)}”.</p></div>'
    head = "".join(f'<th scope="col" title="{html.escape(spec.description)}" aria-sort="none">'
                   f'<button type="button" class="essa-sort" data-column="{n}">{escape_text(spec.label)}</button></th>'
                   for n, spec in enumerate(specs, 1))
    rows = []
    for state in kept:
        cells = [f'<th scope="row" data-sort="{html.escape(state)}">{escape_text(state_name(state))} ({state})</th>']
        for spec in specs:
            cells.append(_fact_cell(by.get((state, spec.id)), plans_dir))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    stated = sum(f.stated for f in facts)
    summary = (f"<p>{len(kept)} state(s) × {len(specs)} fact(s); {stated} values stated, each quoted from "
               f"the plan (“not stated” where the plan does not say). {exports}</p>")
    return (f'<div class="essa-facts">{summary}<div class="essa-facts-wrap"><table class="essa-facts-table">'
            f'<thead><tr><th scope="col"><button type="button" class="essa-sort" data-column="0">State</button></th>'
            f'{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div></div>')


def _fact_cell(fact, plans_dir: Path | None) -> str:
    if fact is None or not fact.stated:
        return '<td class="essa-unstated" data-sort=""><span class="essa-muted">not stated</span></td>'
    sort = f"{fact.value:g}" if isinstance(fact.value, (int, float)) else fact.value_label
    c = fact.citation
    link = plan_link(c, plans_dir) if c is not None else None
    where = citation_locator(c) if c is not None else ""
    value = escape_text(fact.value_label if fact.type != "text" else _short(fact.value_label, 90))
    shown = (f'<a class="essa-open" href="{html.escape(link[0])}" target="_blank" rel="noopener" '
             f'title="{html.escape(c.quote[:300])}">{value}</a>' if link else f'<span title="{html.escape(c.quote[:300])}">{value}</span>')
    return (f'<td data-sort="{html.escape(str(sort))}" data-confidence="{fact.confidence:.2f}">{shown}'
            f'<div class="essa-fact-where">{escape_text(where)} · confidence {fact.confidence:.2f}</div></td>')


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rsplit(" ", 1)[0] + "…"


def fact_choices(assistant) -> list[tuple[str, str]]:
    return [(spec.label, spec.id) for spec in assistant.fact_schema.facts]


# ------------------------------------------------------------------ map


@dataclass(frozen=True)
class MapCell:
    state: str
    category: str
    label: str
    passages: int  # strong passages: the state's own words carrying the category
    best: str  # where the strongest one is, for the tile's tooltip


def coverage_cells(table) -> list[MapCell]:
    """The state x category coverage (assistant.coverage's table) as cells for the tile grid."""
    return [MapCell(cell.state, cell.category, label, cell.count,
                    f"{cell.best.source} {cell.best.locator}" if cell.best else "")
            for row in table.cells for cell, label in zip(row, table.labels)]


def _cell_colour(count: int, top: int) -> str:
    """White to deep blue in proportion to the strongest cell, so the grid reads at a glance."""
    t = 0.0 if top <= 0 else min(count / top, 1.0)
    low, high = (248, 250, 252), (29, 78, 216)
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(low, high))
    return "#%02x%02x%02x" % rgb


# The US as a tile grid (row, column): one square per state, roughly where it lies; DC beside
# Maryland, then Puerto Rico and the Bureau of Indian Education set apart at the bottom right.
US_TILES = {
    "AK": (0, 0), "ME": (0, 10), "VT": (1, 9), "NH": (1, 10),
    "WA": (2, 0), "ID": (2, 1), "MT": (2, 2), "ND": (2, 3), "MN": (2, 4), "IL": (2, 5), "WI": (2, 6),
    "MI": (2, 7), "NY": (2, 8), "RI": (2, 9), "MA": (2, 10),
    "OR": (3, 0), "NV": (3, 1), "WY": (3, 2), "SD": (3, 3), "IA": (3, 4), "IN": (3, 5), "OH": (3, 6),
    "PA": (3, 7), "NJ": (3, 8), "CT": (3, 9),
    "CA": (4, 0), "UT": (4, 1), "CO": (4, 2), "NE": (4, 3), "MO": (4, 4), "KY": (4, 5), "WV": (4, 6),
    "VA": (4, 7), "MD": (4, 8), "DE": (4, 9),
    "AZ": (5, 1), "NM": (5, 2), "KS": (5, 3), "AR": (5, 4), "TN": (5, 5), "NC": (5, 6), "SC": (5, 7),
    "DC": (5, 8), "OK": (6, 3), "LA": (6, 4), "MS": (6, 5), "AL": (6, 6), "GA": (6, 7),
    "HI": (7, 0), "TX": (7, 3), "FL": (7, 8), "PR": (7, 10), "BIE": (6, 10),
}


def us_map_html(table, plans_dir: Path | None) -> str:
    """Every state on a US tile grid: an indexed plan is a button shaded by how many approaches
    its own text covers (select it to list its passages); the others say what they lack."""
    from .coverage import INDEXED, plan_statuses

    covered = {state: sum(c.count > 0 for c in row) for state, row in zip(table.states, table.cells)}
    statuses = plan_statuses(table.states, plans_dir)
    total = len(table.categories)
    tiles = []
    for code, (row, col) in US_TILES.items():
        place = f"grid-row:{row + 1};grid-column:{col + 1}"
        name = state_name(code)
        if statuses.get(code) == INDEXED:
            n = covered.get(code, 0)
            ink = "#ffffff" if total and n / total > 0.5 else "#0f172a"
            label = f"{name}: indexed, {n} of {total} approaches in its own text; select to list its passages"
            tiles.append(f'<button type="button" class="essa-tile essa-indexed" data-state="{escape_text(code)}" '
                         f'data-category="*" style="{place};background:{_cell_colour(n, total)};color:{ink}" '
                         f'title="{escape_text(label)}" aria-label="{escape_text(label)}">'
                         f'<span>{escape_text(code)}</span><small>{n}/{total}</small></button>')
        else:
            status = statuses.get(code, "not fetched")
            label = f"{name}: {status}"
            tiles.append(f'<div class="essa-tile essa-absent" role="img" style="{place}" '
                         f'title="{escape_text(label)}" aria-label="{escape_text(label)}">'
                         f'<span>{escape_text(code)}</span><small>{escape_text(status)}</small></div>')
    indexed = sum(s == INDEXED for s in statuses.values())
    return (f'<div class="essa-us" role="group" aria-label="Plans of every state: {indexed} of '
            f'{len(statuses)} indexed">{"".join(tiles)}</div>'
            f'<div class="essa-legend">{indexed} of {len(statuses)} plans indexed. A shaded tile is an '
            f'indexed plan (the number: approaches its own text covers, of {total}); grey tiles are plans '
            'not fetched yet (<code>essa-qa plans fetch --state XX</code>) or fetched but not indexed.</div>')


def coverage_map_html(assistant, plans_dir: Path | None = None) -> str:
    """Every state on a US tile grid, then a grid of the indexed ones: one row per state, one
    column per category; each tile a button."""
    from .coverage import coverage_table

    try:  # one coverage table for both grids: it reads every chunk's categories
        table = coverage_table(assistant)
        cells = coverage_cells(table)
        us = us_map_html(table, plans_dir)
    except Exception as exc:
        return error_html("The coverage map could not be built: " + friendly_error(exc))
    if not cells:
        return error_html("The index holds no passages to map.")
    states = list(dict.fromkeys(c.state for c in cells))
    categories = list(dict.fromkeys((c.category, c.label) for c in cells))
    by_key = {(c.state, c.category): c for c in cells}
    top = max(c.passages for c in cells)
    head = "".join(f'<th scope="col">{escape_text(label)}</th>' for _, label in categories)
    rows = []
    for state in states:
        tiles = []
        for cid, label in categories:
            cell = by_key.get((state, cid))
            if cell is None:
                tiles.append("<td></td>")
                continue
            ink = "#ffffff" if top and cell.passages / top > 0.5 else "#0f172a"
            name = f"{state_name(state)}, {label}: {cell.passages} passages"
            name += f"; strongest: {cell.best}" if cell.best else ""
            tiles.append(
                f'<td><button type="button" class="essa-cell" data-state="{escape_text(state)}" '
                f'data-category="{escape_text(cid)}" '
                f'style="background:{_cell_colour(cell.passages, top)};color:{ink}" '
                f'title="{escape_text(name)}" aria-label="{escape_text(name)}">{cell.passages}</button></td>')
        rows.append(f'<tr><th scope="row" class="essa-row">{escape_text(state_name(state))}</th>'
                    f'{"".join(tiles)}</tr>')
    return (us + f'<div class="essa-map-wrap"><table class="essa-map"><thead><tr><th></th>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div>'
            '<div class="essa-legend">Each number counts the passages of the state\'s own text that '
            "carry the approach; darker tiles have more.</div>")


def coverage_cell_html(assistant, plans_dir: Path | None, state: str, category: str,
                       limit: int = 10) -> str:
    """The passages behind one tile, as citation cards."""
    from .coverage import coverage_cell_passages

    if state in assistant.states and category == "*":
        return coverage_state_html(assistant, plans_dir, state)
    if state not in assistant.states or category not in assistant.tagger.ids:
        return error_html("Select a tile in the map above.")
    try:
        citations = _as_citations(coverage_cell_passages(assistant, state, category, limit))
    except Exception as exc:
        return error_html(friendly_error(exc))
    title = f"{state_name(state)} · {assistant.tagger.label(category)}"
    if not citations:
        return f"<h3>{escape_text(title)}</h3>" + error_html("No passage of this plan carries this category.")
    cards = "".join(citation_card_html(c, assistant.plans, assistant.tagger.label, plans_dir,
                                       turn="map", mark_quote=False) for c in citations)
    return (f'<h3>{escape_text(title)}</h3><div class="essa-muted">{len(citations)} strongest passages'
            f'</div><div class="essa-cards">{cards}</div>')


def _as_citations(passages) -> list[Citation]:
    """Passages shown as cards; the quote marked is the passage's lead sentence."""
    from .chunking import sentence_spans

    out = []
    for rank, p in enumerate(passages, 1):
        spans = sentence_spans(p.text)
        lead = p.text[spans[0][0]:spans[0][1]] if spans else p.text
        out.append(make_citation(rank, p, lead, spans[0][0] if spans else 0))
    return out


# ------------------------------------------------------------------ evaluate


PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the repository, where eval/ lives
DEFAULT_QUESTIONS = PROJECT_ROOT / "eval" / "questions.jsonl"
DEFAULT_REPORT_DIR = PROJECT_ROOT / "eval" / "reports" / "app"


def project_path(path: str | Path) -> Path:
    """A relative path read against the project root, not the working directory: the app may be
    started from anywhere, and its question set and reports live in the repository's eval/."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def evaluation_outputs(assistant, plans_dir: Path | None, questions_file: str | Path, fast: bool, k: int,
                       report_dir: str | Path, on_question: Callable | None = None):
    """(summary rows, ablation rows, metrics chart path, latency chart path, status line)."""
    from .evaluation import (MAIN_CONFIG, RETRIEVAL_METRICS, SUMMARY_ROWS, fast_subset,
                             load_questions, run_evaluation, write_report)

    questions_file = project_path(questions_file)
    questions = load_questions(questions_file)
    if fast:
        questions = fast_subset(questions)
    plans = plans_dir if plans_dir is not None and Path(plans_dir).is_dir() else None
    report = run_evaluation(assistant, questions, k=int(k or DEFAULT_K), plans_dir=plans,
                            questions_file=str(questions_file), on_question=on_question)
    paths = write_report(report, project_path(report_dir))
    summary = [[label, _metric(report.summary.get(key))] for key, label in SUMMARY_ROWS]
    ablations = [[name, *(_metric(m.get(x)) for x in RETRIEVAL_METRICS)]
                 for name, m in report.ablations.items()]
    status = (f"{report.n_questions} questions in {report.seconds:.1f} s; headline retrieval config "
              f"{MAIN_CONFIG}; report written to {paths['markdown']}")
    return summary, ablations, str(paths["configs_chart"]), str(paths["latency_chart"]), status


def _metric(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _shown_path(path: Path) -> str:
    """A path as the page shows it: relative to the project, so the page does not map the server."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return path.name


# ------------------------------------------------------------------ the app


INTRO = ("Ask about the states' ESSA plans. Every sentence of an answer is quoted from a plan and "
         "cited; open the page to check it.")
def coverage_state_html(assistant, plans_dir: Path | None, state: str, per_category: int = 2) -> str:
    """One indexed state's plan across the approaches: its strongest passages for each."""
    from .coverage import coverage_cell_passages

    parts = [f"<h3>{escape_text(state_name(state))}: the approaches in its plan</h3>"]
    for category in assistant.tagger.ids:
        label = assistant.tagger.label(category)
        try:
            citations = _as_citations(coverage_cell_passages(assistant, state, category, per_category))
        except Exception as exc:
            return error_html(friendly_error(exc))
        parts.append(f"<h4>{escape_text(label)}</h4>")
        if not citations:
            parts.append('<div class="essa-muted">No passage of this plan carries this approach.</div>')
            continue
        parts.append('<div class="essa-cards">' + "".join(
            citation_card_html(c, assistant.plans, assistant.tagger.label, plans_dir, turn="map",
                               mark_quote=False) for c in citations) + "</div>")
    return "".join(parts)


MAP_CLICK_JS = """
element.addEventListener('click', function (event) {
  var cell = event.target.closest('[data-category]');
  if (cell) { trigger('click', {state: cell.dataset.state, category: cell.dataset.category}); }
});
"""
# The viewer panel: a frame the citations' "Show page" links open in (static/app.js); its pages are
# the app's own /viewer documents.
VIEWER_PANEL = ('<h2 class="essa-viewer-hint" id="essa-viewer-title">Plan viewer</h2>'
                '<p class="essa-viewer-hint">Choose "Show page" or "Show section" under a citation: the '
                "page appears here with the quoted words marked.</p>"
                '<iframe id="essa-viewer-frame" name="essa-viewer-frame" class="essa-viewer-frame" '
                'title="Plan viewer: the cited page" src="about:blank" aria-labelledby="essa-viewer-title"></iframe>')
FACTS_VIEWER_PANEL = ('<h2 class="essa-viewer-hint" id="essa-facts-viewer-title">Plan viewer</h2>'
                      '<p class="essa-viewer-hint">Choose a value: its page appears here with the quote marked.</p>'
                      '<iframe id="essa-facts-viewer-frame" name="essa-facts-viewer-frame" class="essa-viewer-frame" '
                      'title="Plan viewer: the page that states the fact" src="about:blank" '
                      'aria-labelledby="essa-facts-viewer-title"></iframe>')
# Every event that runs the answer path shares one concurrency group, so `concurrency` bounds the
# answers computed at once whichever tab asks; the evaluation runs alone in its own group.
ANSWERS = "answers"


def snapshots(assistant) -> Callable[[], Any]:
    """What a handler calls once per request for the Assistant it uses throughout: a
    LiveAssistant's current generation, or the one Assistant given."""
    from .api import LiveAssistant

    if isinstance(assistant, LiveAssistant):
        return assistant.current
    return lambda: assistant


def state_choices(assistant) -> list[tuple[str, str]]:
    return [(f"{state_name(s)} ({s})", s) for s in assistant.states]


def build_app(assistant, plans_dir: str | Path | None = "plans", *,
              questions_file: str | Path = DEFAULT_QUESTIONS,
              report_dir: str | Path = DEFAULT_REPORT_DIR, concurrency: int = 0, pool=None,
              store: AnswerStore | None = None):
    """The Gradio Blocks: Ask, Compare, Map and Evaluate tabs over an Assistant or a LiveAssistant
    (each request answers from the generation live when it starts). `concurrency` 0: the
    assistant's `web_concurrency` setting. With `pool` (workers.AnswerPool) the chat's answers
    run in its processes. With `store`, every answer is kept there and carries a share link."""
    # Gradio recomputes its monitoring summary (a pandas DataFrame over the last 10,000 events)
    # after every event, by default: measured 1.8 ms an answer after 1,000 answers and 9.8 ms
    # after 10,000, all of it holding the GIL. This app shows no such summary; once per 1,000.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    current = snapshots(assistant)
    first = current()
    concurrency = concurrency or first.settings.web_concurrency
    plans_dir = Path(plans_dir) if plans_dir is not None else None
    questions_file, report_dir = project_path(questions_file), project_path(report_dir)
    states = state_choices(first)
    categories = category_choices(first.tagger)
    answers = dict(concurrency_id=ANSWERS, concurrency_limit=max(1, concurrency))

    with gr.Blocks(title="ESSA Plans Assistant") as demo:
        gr.Markdown("# ESSA Plans Assistant\n" + INTRO)
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        turns = gr.State([])
                        chat = gr.Chatbot(label="Conversation", elem_id="essa-chat", height=620,
                                          latex_delimiters=[], buttons=[], feedback_options=None,
                                          placeholder="Ask a question, or pick an example below.")
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(label="Question", placeholder="How does Delaware support "
                                                  "students moving into high school?", scale=5,
                                                  elem_id="essa-question", autofocus=True, lines=1,
                                                  max_lines=4, submit_btn=False)
                            ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="essa-ask",
                                                   min_width=80)
                        with gr.Accordion("Filters", open=False):
                            with gr.Row():
                                state_filter = gr.Dropdown(states, multiselect=True, label="States",
                                                           info="Empty: the states the question names.",
                                                           elem_id="essa-state-filter")
                                category_filter = gr.Dropdown(categories, multiselect=True,
                                                              label="Approach categories",
                                                              info="Only passages tagged with these.")
                                k_slider = gr.Slider(1, 10, value=DEFAULT_K, step=1,
                                                     label="Passages per state")
                                version_filter = gr.Dropdown(version_choices(first), value="",
                                                             label="Plan version", elem_id="essa-version-filter",
                                                             info="Which version of each plan to quote.")
                        gr.Examples(example_questions(first), inputs=[question], label="Examples")
                        clear = gr.Button("New conversation", size="sm")
                    with gr.Column(scale=2, min_width=320):
                        gr.HTML(VIEWER_PANEL, elem_id="essa-viewer")

                def on_ask(message, history, turn_state, chosen_states, chosen_categories, k, version,
                           request: gr.Request):
                    live = current()
                    answering = PooledAssistant(live, pool) if pool is not None else live
                    share = share_links(store, live, request)
                    history, turn_state = chat_reply(answering, plans_dir, message, history, turn_state,
                                                     chosen_states or (), chosen_categories or (), k, share,
                                                     version or None)
                    return history, turn_state, ""

                inputs = [question, chat, turns, state_filter, category_filter, k_slider, version_filter]
                outputs = [chat, turns, question]
                question.submit(on_ask, inputs, outputs, **answers)
                ask_button.click(on_ask, inputs, outputs, **answers)
                clear.click(lambda: ([], [], ""), None, outputs)

            with gr.Tab("Check", id="check"):
                gr.Markdown("Paste a paragraph from a draft. Each sentence is a claim, judged against the "
                            "plans: **supported** (a passage says it; numbers, years, percentages and names "
                            "match exactly), **contradicted** (the passage on the point says otherwise, or "
                            "another state's plan is the one that says it) or **not found**.")
                check_input = gr.Textbox(label="Draft", lines=6, max_lines=20, elem_id="essa-check-text",
                                         placeholder="Delaware counts student groups of 15 or more. ...")
                with gr.Row():
                    check_states = gr.Dropdown(states, multiselect=True, label="States",
                                               info="Empty: the states each claim names.")
                    check_button = gr.Button("Check", variant="primary", elem_id="essa-check-button")
                check_out = gr.HTML(elem_id="essa-check", js_on_load=None)

                def on_check(text, chosen, request: gr.Request):
                    live = current()
                    share = share_links(store, live, request)
                    return check_html(live, plans_dir, text, chosen or (), share)

                check_button.click(on_check, [check_input, check_states], check_out, **answers)

            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    compare_states = gr.Dropdown(states, value=list(first.states), multiselect=True,
                                                 label="States")
                    compare_category = gr.Dropdown([("(none)", "")] + categories, value="",
                                                   label="Category")
                compare_topic = gr.Textbox(label="Topic or question",
                                           placeholder="e.g. supporting transitions into high school")
                compare_button = gr.Button("Compare", variant="primary")
                compare_out = gr.HTML(elem_id="essa-compare", js_on_load=None)

                def on_compare(chosen, topic, category):
                    return compare_html(current(), plans_dir, chosen or [], topic, category or None)

                compare_inputs = [compare_states, compare_topic, compare_category]
                compare_button.click(on_compare, compare_inputs, compare_out, **answers)
                compare_topic.submit(on_compare, compare_inputs, compare_out, **answers)

            with gr.Tab("Changes", id="changes"):
                gr.Markdown("What changed between two versions of a state's plan: the sentences added "
                            "and removed, on a topic or throughout. Answers quote each state's newest "
                            "plan unless the Ask tab's version filter says otherwise.")
                with gr.Row():
                    changes_state = gr.Dropdown(versioned_states(first), label="State",
                                                info="States with two or more plan versions indexed.",
                                                elem_id="essa-changes-state")
                    changes_old = gr.Dropdown([], label="From version", info="Empty: the one before the newest.")
                    changes_new = gr.Dropdown([], label="To version", info="Empty: the newest.")
                changes_topic = gr.Textbox(label="Topic (optional)", elem_id="essa-changes-topic",
                                           placeholder="e.g. chronic absenteeism")
                changes_button = gr.Button("Show changes", variant="primary", elem_id="essa-changes-button")
                changes_out = gr.HTML(elem_id="essa-changes", js_on_load=None)

                def on_changes_state(state):
                    found = current().versions.get(state or "", [])
                    choices = [("(default)", "")] + [(f"{v.label} ({v.source})", v.source) for v in found]
                    return gr.Dropdown(choices=choices, value=""), gr.Dropdown(choices=choices, value="")

                def on_changes(state, old, new, topic):
                    return changes_html(current(), plans_dir, state or "", topic or "", old, new)

                changes_state.change(on_changes_state, [changes_state], [changes_old, changes_new])
                changes_inputs = [changes_state, changes_old, changes_new, changes_topic]
                changes_button.click(on_changes, changes_inputs, changes_out, **answers)
                changes_topic.submit(on_changes, changes_inputs, changes_out, **answers)

            with gr.Tab("Facts", id="facts"):
                gr.Markdown("The hard facts of each plan, read out of it with the sentence that states "
                            "them: minimum n-size, long-term goals, the rating system, how schools are "
                            "identified for support. Select a value to see its page; select a heading to sort. "
                            "Filter in words: `n-size below 20`, `rating is stars`, `science goal not stated`.")
                with gr.Row():
                    facts_states = gr.Dropdown(states, multiselect=True, label="States",
                                               info="Empty: every indexed state.", elem_id="essa-facts-states")
                    facts_chosen = gr.Dropdown(fact_choices(first), multiselect=True, label="Facts",
                                               info="Empty: every fact.", elem_id="essa-facts-chosen")
                facts_filter = gr.Textbox(label="Filter", elem_id="essa-facts-filter",
                                          placeholder="e.g. n-size below 20 and graduation goal >= 90")
                facts_button = gr.Button("Show facts", variant="primary", elem_id="essa-facts-button")
                facts_out = gr.HTML(elem_id="essa-facts", js_on_load=None)
                gr.HTML(FACTS_VIEWER_PANEL, elem_id="essa-facts-viewer")

                def on_facts(chosen_states, chosen_facts, filter_text):
                    return facts_html(current(), plans_dir, chosen_states or (), chosen_facts or (), filter_text or "")

                facts_inputs = [facts_states, facts_chosen, facts_filter]
                facts_button.click(on_facts, facts_inputs, facts_out, **answers)
                facts_filter.submit(on_facts, facts_inputs, facts_out, **answers)
                demo.load(on_facts, facts_inputs, facts_out)

            with gr.Tab("Map", id="map"):
                gr.Markdown("Every state's plan, and how strongly each indexed plan covers each "
                            "approach. Select a state or a tile to list the passages behind it.")
                map_html = gr.HTML(coverage_map_html(first, plans_dir), elem_id="essa-map",
                                   js_on_load=MAP_CLICK_JS)
                cell_out = gr.HTML(elem_id="essa-cell", js_on_load=None)

                def on_cell(evt: gr.EventData):
                    data = getattr(evt, "_data", None) or {}
                    return coverage_cell_html(current(), plans_dir, data.get("state", ""),
                                              data.get("category", ""))

                map_html.click(on_cell, None, cell_out, **answers)

            with gr.Tab("Evaluate", id="evaluate"):
                gr.Markdown("Run the evaluation question set against this index: retrieval, "
                            "citation and abstention metrics, with charts.")
                gr.Markdown(f"Questions: `{escape_text(_shown_path(questions_file))}`")
                with gr.Row():
                    eval_fast = gr.Checkbox(True, label="Fast subset (every 3rd question)")
                    eval_k = gr.Slider(1, 10, value=DEFAULT_K, step=1, label="k")
                eval_button = gr.Button("Run evaluation", variant="primary")
                eval_status = gr.Markdown()
                eval_summary = gr.Dataframe(headers=["metric", "value"], label="Summary",
                                            interactive=False)
                eval_ablation = gr.Dataframe(headers=["config", "hit@1", "hit@5", "hit@10", "MRR",
                                                      "nDCG@10"], label="Retrieval ablations",
                                             interactive=False)
                with gr.Row():
                    eval_chart = gr.Image(label="Metrics by configuration", type="filepath")
                    eval_latency = gr.Image(label="Latency", type="filepath")

                # The questions file is fixed here, not typed in the page: a shared app must not
                # read files that its users name.
                def on_evaluate(fast, k, progress=gr.Progress()):
                    try:
                        return evaluation_outputs(
                            current(), plans_dir, questions_file, fast, k, report_dir,
                            on_question=lambda n, total, _q: progress((n, total), desc="questions"))
                    except Exception as exc:
                        return None, None, None, None, "**Error:** " + escape_text(friendly_error(exc))

                eval_button.click(on_evaluate, [eval_fast, eval_k],
                                  [eval_summary, eval_ablation, eval_chart, eval_latency, eval_status],
                                  concurrency_id="evaluate", concurrency_limit=1)

        # A page opened after a new index generation went live gets its states and map.
        def on_page_load():
            live = current()
            choices = state_choices(live)
            return (gr.Dropdown(choices=choices), gr.Dropdown(choices=choices, value=list(live.states)),
                    coverage_map_html(live, plans_dir), gr.Dropdown(choices=version_choices(live)),
                    gr.Dropdown(choices=versioned_states(live)))

        demo.load(on_page_load, None, [state_filter, compare_states, map_html, version_filter, changes_state],
                  **answers)
    # Queue positions go to waiting pages once a second, not to every waiting page at every event
    # ("auto"): with 16 of 20 users waiting, that was 16 messages per answer (bench/load.py, 20
    # users: 26.2-27.4 answers/s against 24.3-25.0, two alternating runs each).
    demo.queue(default_concurrency_limit=max(1, concurrency), status_update_rate=1.0)
    return demo


def share_links(store: AnswerStore | None, assistant, request) -> ShareLinks | None:
    """How this request's results are shared: links start with `public_url`, or else with the
    app's root as this request reached it."""
    if store is None:
        return None
    try:
        root = str(request.base_url)
    except Exception:  # no HTTP request behind this event (a test calling the handler directly)
        root = ""
    return ShareLinks(store, assistant.settings.public_url or root)


def app_css() -> str:
    return (STATIC_DIR / "app.css").read_text(encoding="utf-8")


APP_SCRIPT = "essa/app.js"  # static/app.js, served by create_server


def app_head() -> str:
    # A file, not inline code: the page's CSP runs no inline script it did not give a nonce to.
    return f'<script src="{APP_SCRIPT}"></script>'


def auth_pair(settings) -> tuple[str, str] | None:
    """Gradio auth from settings: both user and password set, or no password at all."""
    if settings.auth_user and settings.auth_password:
        return settings.auth_user, settings.auth_password
    if settings.auth_user or settings.auth_password:
        from .errors import ConfigError

        raise ConfigError("set both auth_user and auth_password (ESSA_QA_AUTH_USER, "
                          "ESSA_QA_AUTH_PASSWORD) or neither")
    return None


def password_check(user: str, password: str) -> Callable[[str, str], bool]:
    """Gradio's login check: both fields compared in constant time, the password even when the
    user name is wrong, so the time taken tells nothing about either."""
    want_user, want_password = user.encode("utf-8"), password.encode("utf-8")

    def check(given_user: str, given_password: str) -> bool:
        user_ok = hmac.compare_digest(given_user.encode("utf-8"), want_user)
        password_ok = hmac.compare_digest(given_password.encode("utf-8"), want_password)
        return user_ok and password_ok

    return check


# ------------------------------------------------------------------ security headers and login


def page_policy(nonce: str) -> str:
    """The Content-Security-Policy of the Gradio page (see the README's security notes).

    Scripts: only those carrying this response's nonce (Gradio's inline bootstrap and its module
    entry point, nonced in `SecurityHeaders`) and what they load ('strict-dynamic': Gradio's own
    chunks and our static/app.js, which it inserts); 'unsafe-eval' because Gradio's HTML component
    renders every value through `Function` (templates and js_on_load). Styles inline: Gradio
    injects its theme and our CSS as <style> elements, and map tiles carry style attributes.
    """
    return "; ".join((
        "default-src 'self'",
        f"script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",  # Gradio's stylesheet draws some icons as data: URLs
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ))


# Everything else (plan files, the DOCX viewer, API answers, assets): nothing runs if a response
# is ever shown as a document; the viewer's own <style> is inline.
DOCUMENT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
                   "form-action 'none'; frame-ancestors 'self'")
# A shared answer's page: its copy buttons need static/app.js, and nothing else runs.
SHARED_POLICY = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
                 "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "same-origin",
}
PAGE_PATHS = frozenset({"/"})  # where Gradio serves its page (one page, mounted at the root)
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.I)


class PageUnavailable(Exception):
    """A page could not be rewritten as it must be before it may be sent."""


def _with_headers(message: dict, headers: dict[str, str]) -> dict:
    kept = [(k, v) for k, v in message.get("headers", []) if k.decode("latin-1").lower() not in headers]
    return {**message, "headers": kept + [(k.encode("latin-1"), v.encode("latin-1"))
                                          for k, v in headers.items()]}


def _uncompressed(scope: dict) -> dict:
    """The request without Accept-Encoding, so Gradio's compression leaves the page readable."""
    return {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}


def _rewriting_html(send, transform: Callable[[bytes], bytes]):
    """`send` with an HTML response's body collected, passed through `transform`, then sent with
    its new length; other responses pass untouched. A transform that raises PageUnavailable turns
    the response into a 503: what could not be cleaned is not sent."""
    held: dict = {}
    chunks: list[bytes] = []

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if content_type.startswith(b"text/html"):
                held["start"] = message
                return
        elif message["type"] == "http.response.body" and "start" in held:
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            start = held.pop("start")
            try:
                body = transform(b"".join(chunks))
            except PageUnavailable as exc:
                log.error("page not sent: %s", exc)
                start, body = {**start, "status": 503}, b"This page is unavailable; the problem was logged."
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped


class SecurityHeaders:
    """ASGI middleware: CSP, nosniff, frame and referrer headers on every response, and on the
    Gradio page a fresh nonce on each of its inline scripts: that page inlines its config per
    request, so no fixed hash could allow it, and nothing but Gradio's template writes <script>
    there (its JSON escapes "<")."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] in PAGE_PATHS and scope["method"] == "GET"
        nonce = secrets.token_urlsafe(16) if page else ""
        policy = (page_policy(nonce) if page else
                  SHARED_POLICY if scope["path"].startswith(("/answer/", "/check/")) else DOCUMENT_POLICY)
        headers = {**SECURITY_HEADERS, "content-security-policy": policy}

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = _with_headers(message, headers)
            await send(message)

        if not page:
            await self.app(scope, receive, send_with_headers)
            return
        tag = f'<script nonce="{nonce}"'.encode()
        await self.app(_uncompressed(scope), receive,
                       _rewriting_html(send_with_headers, lambda body: _SCRIPT_TAG.sub(tag, body)))


class LoginThrottle:
    """At most `limit` unsuccessful logins per client within any `window_s` seconds. An attempt
    counts as failed from the moment it starts until it succeeds, so a burst of parallel guesses
    is cut at `limit` too; a success forgets the client. `limit` 0: no throttling."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._attempts: dict[str, deque[float]] = {}

    def begin(self, client: str) -> int:
        """0 with the attempt counted, or the whole seconds the client must wait first."""
        if self.limit <= 0:
            return 0
        now = self._clock()
        self._forget_before(now - self.window_s)
        recent = self._attempts.setdefault(client, deque())
        if len(recent) >= self.limit:
            return max(1, math.ceil(recent[0] + self.window_s - now))
        recent.append(now)
        if len(recent) == self.limit:
            log.warning("login: %d failed attempts from %s; further ones refused for %.0f s",
                        self.limit, client, self.window_s)
        return 0

    def succeeded(self, client: str) -> None:
        self._attempts.pop(client, None)

    def _forget_before(self, cutoff: float) -> None:
        for client in list(self._attempts):
            recent = self._attempts[client]
            while recent and recent[0] <= cutoff:
                recent.popleft()
            if not recent:
                del self._attempts[client]


LOGIN_PATHS = frozenset({"/login", "/login/"})
# What the login page loads before anyone has logged in: Gradio's built front end, theme and icons.
PUBLIC_PATHS = frozenset({"/favicon.ico", "/manifest.json", "/robots.txt", "/theme.css",
                          "/gradio_api/theme.css", "/logout"})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
_API_INFO = re.compile(rb"window\.gradio_api_info = .*?;</script>", re.S)
_NO_API_INFO = b'window.gradio_api_info = {"named_endpoints":{},"unnamed_endpoints":{}};</script>'


def without_api_info(page: bytes) -> bytes:
    """The login page without Gradio's API description, which names every endpoint, state and
    category; Gradio writes it into the page whether or not the visitor has logged in."""
    cleaned, found = _API_INFO.subn(_NO_API_INFO, page, count=1)
    if not found and b"gradio_api_info" in page:
        raise PageUnavailable("the login page's API description is not where it was expected")
    return cleaned


class LoginGate:
    """ASGI middleware in front of a password-protected app. Before login: the login page (without
    the API description) and the files it loads, nothing else: no config, schema, queue, plan
    file or viewer. Logins are throttled per client address (LoginThrottle)."""

    def __init__(self, app, user_of: Callable[[HTTPConnection], str | None], throttle: LoginThrottle):
        self.app, self.user_of, self.throttle = app, user_of, throttle

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and path in LOGIN_PATHS and scope["method"] == "POST":
            await self._login(scope, receive, send)
        elif self.user_of(HTTPConnection(scope)) is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif path == "/" and scope["method"] in ("GET", "HEAD"):
            await self.app(_uncompressed(scope), receive, _rewriting_html(send, without_api_info))
        elif path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
        else:
            await JSONResponse({"detail": "Log in first."}, status_code=401)(scope, receive, send)

    async def _login(self, scope, receive, send) -> None:
        client = (scope.get("client") or ("unknown",))[0]
        wait = self.throttle.begin(client)
        if wait:
            refused = JSONResponse({"detail": "Too many failed logins; try again later."},
                                   status_code=429, headers={"Retry-After": str(wait)})
            await refused(scope, receive, send)
            return
        status: dict = {}

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status.get("code") == 200:
            self.throttle.succeeded(client)


def session_user(gradio_app, connection: HTTPConnection) -> str | None:
    """Who the request's Gradio login cookie belongs to, or None."""
    token = (connection.cookies.get(f"access-token-{gradio_app.cookie_id}")
             or connection.cookies.get(f"access-token-unsecure-{gradio_app.cookie_id}"))
    return gradio_app.tokens.get(token) if token else None


# ------------------------------------------------------------------ the server


def create_server(assistant, plans_dir: str | Path = "plans", *, auth: tuple[str, str] | None = None,
                  settings=None, **app_options):
    """A FastAPI app: the Gradio UI at /, the plan files at /plans/<file>, the DOCX viewer at
    /viewer/<file>?paragraph=N, security headers on every response. `assistant` is an Assistant
    or a LiveAssistant (new index generations go live without a restart). With `auth`, nothing
    but the login page answers before login, and logins are throttled. `settings` (default: the
    assistant's) gives the concurrency and the login limits."""
    from gradio.routes import App

    settings = settings or snapshots(assistant)().settings
    plans_dir = Path(plans_dir)
    pool = answer_pool(assistant, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        if pool is not None:
            pool.close()

    server = FastAPI(title="ESSA Plans Assistant", docs_url=None, redoc_url=None, openapi_url=None,
                     lifespan=lifespan)
    server.state.answer_pool = pool
    ui: dict = {}

    def logged_in(request: Request) -> None:
        gradio_app = ui.get("app")
        if auth is None or gradio_app is None:
            return
        if session_user(gradio_app, request) is None:
            raise HTTPException(status_code=401, detail="Log in to the app first.")

    @server.get("/plans/{name}", dependencies=[Depends(logged_in)])
    def plan_file(name: str):
        path = resolve_plan_file(plans_dir, name)
        if path is None:
            raise HTTPException(status_code=404, detail="No such plan file.")
        media = ("application/pdf" if path.suffix.lower() == ".pdf" else
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        return FileResponse(path, media_type=media, filename=path.name,
                            content_disposition_type="inline")

    def drawable(name: str) -> bool:
        """Only plans the index holds are drawn: PDFium runs in this process, and a file in the
        folder that failed to index (a decompression bomb, say) must not reach it."""
        return name in snapshots(assistant)().plans

    @server.get("/viewer/{name}", response_class=HTMLResponse, dependencies=[Depends(logged_in)])
    def viewer(name: str, paragraph: int = 1, page: int | None = None, quote: str = "",
               zoom: float = pageview.FIT):
        quote = quote[:MAX_QUOTE]
        if page is not None:
            if not drawable(name):
                return HTMLResponse(not_found_html(name, f"page {page}"), status_code=404)
            body, status = pdf_viewer_html(plans_dir, name, page, quote, zoom)
            return HTMLResponse(body, status_code=status)
        try:
            view = docx_section(plans_dir, name, paragraph)
        except EssaError as exc:
            log.warning("viewer: %s", exc)
            view = None
        return HTMLResponse(viewer_page_html(view, name, paragraph, quote), status_code=200 if view else 404)

    @server.get("/page-image/{name}/{page}", dependencies=[Depends(logged_in)])
    def page_image(name: str, page: int, zoom: float = 1.0):
        path = resolve_plan_file(plans_dir, name) if drawable(name) else None
        try:
            if path is None or path.suffix.lower() != ".pdf" or not 1 <= page <= pageview.page_count(path):
                raise HTTPException(status_code=404, detail="No such page.")
            png = pageview.render_png(path, page, pageview.snap(zoom))
        except PlanError as exc:
            log.warning("page image: %s", exc)
            raise HTTPException(status_code=404, detail="No such page.") from exc
        return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    @server.get("/" + APP_SCRIPT, dependencies=[Depends(logged_in)])
    def app_script():
        return FileResponse(STATIC_DIR / "app.js", media_type="text/javascript")

    @server.get("/facts.{fmt}", dependencies=[Depends(logged_in)])
    def facts_export(fmt: str, request: Request):
        """The Facts tab's table as a file: ?state=DE&fact=n_size&filter=n-size below 20."""
        from .export import facts_to_csv, facts_to_markdown

        if fmt not in ("csv", "md", "json"):
            raise HTTPException(status_code=404, detail="Formats: csv, md, json.")
        params = request.query_params
        try:
            facts, _ = facts_for(snapshots(assistant)(), params.getlist("state"), params.getlist("fact"),
                                 params.get("filter", ""))
        except EssaError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        if fmt == "json":
            return JSONResponse({"facts": [f.to_dict() for f in facts]})
        body, media = ((facts_to_csv(facts), "text/csv") if fmt == "csv" else
                       (facts_to_markdown(facts), "text/markdown"))
        return Response(body, media_type=f"{media}; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="essa-facts.{fmt}"'})

    store = AnswerStore.beside(snapshots(assistant)().index.directory)

    def shared_page(shared, page) -> HTMLResponse:
        live = snapshots(assistant)()
        return HTMLResponse(page(shared, live.plans, live.tagger.label, plans_dir),
                            status_code=200 if shared else 404)

    @server.get("/answer/{answer_id}", response_class=HTMLResponse, dependencies=[Depends(logged_in)])
    def shared_answer(answer_id: str):
        return shared_page(store.load(answer_id), shared_answer_page)

    @server.get("/check/{check_id}", response_class=HTMLResponse, dependencies=[Depends(logged_in)])
    def shared_check(check_id: str):
        return shared_page(store.load_check(check_id), shared_check_page)

    demo = build_app(assistant, plans_dir, concurrency=settings.web_concurrency, pool=pool, store=store,
                     **app_options)
    # System fonts: the default theme fetches web fonts, and the app must work offline.
    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
                              font_mono=["ui-monospace", "Menlo", "monospace"])
    # No run history (it keeps questions in the browser) and no schema pages of Gradio's own app.
    gr.mount_gradio_app(server, demo, path="/", auth=password_check(*auth) if auth else None,
                        css=app_css(), head=app_head(), theme=theme, show_error=False, ssr_mode=False,
                        footer_links=[], run_history=False,
                        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None})
    # The file routes and the gate check logins against the mounted Gradio app's session tokens.
    ui["app"] = next(r.app for r in server.routes if isinstance(getattr(r, "app", None), App))
    if auth is not None:
        server.add_middleware(LoginGate, user_of=lambda connection: session_user(ui["app"], connection),
                              throttle=LoginThrottle(settings.login_max_failures, settings.login_window_s))
    server.add_middleware(SecurityHeaders)  # added last: outermost, so refusals get the headers too
    return server


def answer_pool(assistant, settings):
    """With `web_workers` N > 0 and an index directory to load (a LiveAssistant): N started
    worker processes for the chat's answers (assistant/workers.py); otherwise None (threads)."""
    from .api import LiveAssistant
    from .workers import AnswerPool

    if settings.web_workers <= 0 or not isinstance(assistant, LiveAssistant):
        return None
    pool = AnswerPool(assistant.index_dir, settings, settings.web_workers)
    pool.warm()
    return pool


class BackgroundServer:
    """The app served by uvicorn in a thread: for tests and benchmarks."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        self.host, self.port = host, port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> "BackgroundServer":
        import time

        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def web_settings(settings):
    """The settings the web app answers under: with several answers at once and no thread count
    set, each answer's forward pass runs on one thread, so concurrent answers take the other
    cores instead of splitting each pass across all of them. Measured with bench/load.py on two
    cores (20 s per level): 20 users 20.0-21.4 answers/s against 14.9-16.6 with a pass on both
    cores; one user 12.1-13.0 against 13.8-14.5. `web_workers` -1 becomes one answer process
    per core where there are several cores and several answers at once (assistant/workers.py)."""
    if settings.embedder_threads == 0 and settings.web_concurrency > 1:
        settings = replace(settings, embedder_threads=1)
    if settings.web_workers < 0:
        cores = os.cpu_count() or 1
        settings = replace(settings, web_workers=cores if cores > 1 and settings.web_concurrency > 1 else 0)
    return settings


def serve(index_dir: str | Path = "index", plans_dir: str | Path = "plans", host: str = "127.0.0.1",
          port: int = 7860) -> None:
    """Load the index and model once, then serve until interrupted; a new index generation
    (`essa-qa index` while it runs) goes live on its own."""
    import uvicorn

    from .api import LiveAssistant
    from .config import load_settings

    settings = web_settings(load_settings())
    auth = auth_pair(settings)
    live = LiveAssistant(index_dir, settings=settings, check_every_s=settings.index_check_s)
    live.current().ask("warm up")  # the first question pays for lazy model set-up; do it before serving
    app = create_server(live, plans_dir, auth=auth, settings=settings)
    print(f"ESSA Plans Assistant on http://{host}:{port}/" + (" (login required)" if auth else ""))
    uvicorn.run(app, host=host, port=port, log_level="warning")
