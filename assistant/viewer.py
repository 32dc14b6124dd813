"""The viewer panel's pages: a cited PDF page with the quote's words marked on the page image, or
a cited DOCX paragraph in its section with the quote marked in the text.

Both are plain HTML documents the app serves at /viewer/<file> and shows in a frame beside the
chat; they run no script (the app's document policy allows none): paging and zoom are links, the
page image comes from /page-image/<file>/<page>, and the first mark carries id="q", so a link
ending in #q scrolls it into view.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

from . import pageview
from .errors import PlanError

PLAN_SUFFIXES = (".pdf", ".docx")
VIEWER_CONTEXT = 6  # paragraphs shown either side of a cited DOCX paragraph
MAX_QUOTE = 2000  # characters of a quote the viewer looks for (a sentence is at most 500)
FIT_RENDER = 1.5  # a page fitted to the panel's width is drawn from the 150% image (sharp when wide)

# Gradio's HTML component treats `${...}` and `{{...}}` as template syntax, and the chat renders
# Markdown and LaTeX: entity-encode the characters those read, on top of the HTML ones.
_EXTRA_ESCAPES = str.maketrans({"{": "&#123;", "}": "&#125;", "$": "&#36;", "`": "&#96;",
                                "*": "&#42;", "_": "&#95;", "[": "&#91;", "]": "&#93;",
                                "\\": "&#92;", "~": "&#126;", "|": "&#124;"})


def escape_text(text: str) -> str:
    """Text shown as text: no HTML, template, Markdown or LaTeX in it is interpreted."""
    return html.escape(text or "", quote=True).translate(_EXTRA_ESCAPES)


def lines_html(text: str) -> str:
    return escape_text(text).replace("\n", "<br>")


def resolve_plan_file(plans_dir: Path, name: str) -> Path | None:
    """The plan file `name` directly inside `plans_dir`, or None: no sub-folders, no way out."""
    if not name or name != Path(name).name or name.startswith(".") or "\\" in name or "\x00" in name:
        return None
    if Path(name).suffix.lower() not in PLAN_SUFFIXES:
        return None
    root = Path(plans_dir).resolve()
    candidate = (root / name).resolve()
    if candidate.parent != root or not candidate.is_file():
        return None
    return candidate


def quote_span(passage: str, quote_text: str) -> tuple[int, int] | None:
    """Where `quote_text` is in `passage`: exactly, or with its spacing and a bullet ignored."""
    if not quote_text:
        return None
    at = passage.find(quote_text)
    if at >= 0:
        return at, at + len(quote_text)
    pattern = r"\s+".join(re.escape(w) for w in quote_text.lstrip("•").split())
    found = re.search(pattern, passage) if pattern else None
    return (found.start(), found.end()) if found else None


def viewer_link(source: str, *, page: int | None = None, paragraph: int | None = None,
                quote_text: str = "", zoom: float | None = None) -> str:
    """The viewer's address (relative to the app's root) for a place in a plan, ending in #q."""
    query: dict = {"page": page} if page is not None else {"paragraph": paragraph or 1}
    if zoom:  # none or 0: the page fits the panel's width
        query["zoom"] = zoom
    if quote_text:
        query["quote"] = quote_text[:MAX_QUOTE]
    return f"viewer/{quote(source)}?{urlencode(query)}#q"


# ------------------------------------------------------------------ DOCX


@dataclass(frozen=True)
class ViewerParagraph:
    number: int
    text: str
    cited: bool


@dataclass(frozen=True)
class ViewerSection:
    source: str
    section: str
    paragraphs: tuple[ViewerParagraph, ...]


@lru_cache(maxsize=8)
def _parsed(path: str, mtime: float):
    from .guarded import ParseLimits, parse_guarded

    # The state code only labels the Document; the viewer needs the text and numbering. Parsed in
    # a child process with a short limit: a hostile file must not pin a server thread.
    return parse_guarded(Path(path), "XX", ParseLimits(seconds=60, memory_mb=2048))


def docx_section(plans_dir: Path, name: str, paragraph: int,
                 context: int = VIEWER_CONTEXT) -> ViewerSection | None:
    """The section holding DOCX paragraph `paragraph`, cut to `context` paragraphs either side."""
    path = resolve_plan_file(plans_dir, name)
    if path is None or path.suffix.lower() != ".docx":
        return None
    try:
        document = _parsed(str(path), path.stat().st_mtime)
    except PlanError:
        return None  # shown as "not found", like any paragraph the viewer cannot give
    for unit in document.units:
        numbered = [b for b in unit.blocks if b.paragraph is not None]
        if not any(b.paragraph == paragraph for b in numbered):
            continue
        shown = [b for b in numbered if abs(b.paragraph - paragraph) <= context]
        section = next((b.section for b in numbered if b.paragraph == paragraph), "")
        return ViewerSection(path.name, section, tuple(
            ViewerParagraph(b.paragraph, unit.text[b.start:b.end], b.paragraph == paragraph)
            for b in shown))
    return None


def viewer_page_html(view: ViewerSection | None, name: str, paragraph: int, quote_text: str = "") -> str:
    """A DOCX section with the cited paragraph marked and, inside it, the quoted words."""
    if view is None:
        body = (f'<p class="essa-error">Paragraph {paragraph} of {escape_text(name)} is not '
                "available in the plans directory.</p>")
        return _document("Passage not found", "", body)
    items, marked = [], False
    for p in view.paragraphs:
        text = lines_html(p.text)
        span = quote_span(p.text, quote_text) if p.cited else None
        if span:
            a, b = span
            text = (lines_html(p.text[:a]) + '<mark id="q">' + lines_html(p.text[a:b]) + "</mark>"
                    + lines_html(p.text[b:]))
            marked = True
        anchor = "" if span or not p.cited else ' id="q"'
        items.append(f'<p id="p{p.number}" class="{"cited" if p.cited else ""}"><span class="num">¶ {p.number}'
                     f'</span> <span{anchor}>{text}</span></p>')
    status = ("The quoted words are marked in paragraph %d." % paragraph if marked else
              "Paragraph %d is marked%s." % (paragraph, "; the quote was not found in it" if quote_text else ""))
    toolbar = _toolbar([], view.source)
    body = (f"{toolbar}<p class=\"status\" role=\"status\">{status}</p>"
            f"<h1>{escape_text(view.source)}</h1><h2>{escape_text(view.section or 'Document')}</h2>"
            + "".join(items))
    return _document(f"{view.source}, paragraph {paragraph}", "", body)


# ------------------------------------------------------------------ PDF


def pdf_viewer_html(plans_dir: Path, name: str, page: int, quote_text: str = "",
                    zoom: float = pageview.FIT) -> tuple[str, int]:
    """(HTML, status): a PDF page image with the quote's words boxed, paging and zoom links."""
    path = resolve_plan_file(plans_dir, name)
    if path is None or path.suffix.lower() != ".pdf":
        return not_found_html(name, f"page {page}"), 404
    steps = (pageview.FIT, *pageview.ZOOMS)
    zoom = pageview.snap(zoom, steps)
    try:
        count = pageview.page_count(path)
        if not 1 <= page <= count:
            return not_found_html(name, f"page {page}"), 404
        location = pageview.locate_quote(path, page, quote_text[:MAX_QUOTE]) if quote_text else None
        marks = {m.page: m.boxes for m in location.pages} if location else {page: ()}
        sizes = {n: pageview.page_size(path, n) for n in marks}
    except PlanError as exc:
        return not_found_html(name, f"page {page} ({exc.problem})"), 404
    pages = sorted(marks)
    if not quote_text:
        status = f"Page {page} of {count}."
    elif location and location.found:
        where = f"pages {pages[0]} and {pages[-1]}" if len(pages) > 1 else f"page {page}"
        status = f"The quoted words are marked on {where}."
    else:
        status = (f"The quoted words could not be found in page {page}'s text layer (a scanned page, or "
                  "text the plan draws as an image); the quote as the index stores it is below.")
    figures, anchored = [], False
    for n in pages:
        shown = zoom or FIT_RENDER
        width, height = (round(v * shown * 96 / 72) for v in sizes[n])
        size = ' style="width:100%"' if zoom == pageview.FIT else f' style="width:{width}px"'
        boxes = []
        for box in marks[n]:
            anchor = "" if anchored else ' id="q"'
            boxes.append(f'<mark class="box"{anchor} style="left:{box.left * 100:.3f}%;'
                         f'top:{box.top * 100:.3f}%;width:{box.width * 100:.3f}%;height:{box.height * 100:.3f}%">'
                         "</mark>")
            anchored = True
        image = f"../page-image/{quote(name)}/{n}?zoom={shown:g}"
        figures.append(f'<figure class="page"{size}><div class="sheet">'
                       f'<img src="{html.escape(image)}" width="{width}" height="{height}" '
                       f'alt="Page {n} of {escape_text(name)}">{"".join(boxes)}</div>'
                       f"<figcaption>Page {n}</figcaption></figure>")
    if not anchored:  # nothing marked: #q still lands on the page
        figures[0] = figures[0].replace('<figure class="page"', '<figure id="q" class="page"', 1)
    links = []
    here = dict(quote_text=quote_text, zoom=zoom)
    if page > 1:
        links.append(_link(name, page - 1, zoom=zoom, label="‹ Previous page"))
    links.append(f'<span>Page {page} of {count}</span>')
    if page < count:
        links.append(_link(name, page + 1, zoom=zoom, label="Next page ›"))
    smaller = [z for z in steps if z < zoom]
    larger = [z for z in steps if z > zoom]
    if smaller:
        links.append(_link(name, page, label="Zoom out −", **{**here, "zoom": smaller[-1]}))
    links.append(f"<span>{f'{zoom * 100:.0f}%' if zoom else 'Fit width'}</span>")
    if larger:
        links.append(_link(name, page, label="Zoom in +", **{**here, "zoom": larger[0]}))
    quoted = f'<blockquote class="quote">{lines_html(quote_text)}</blockquote>' if quote_text else ""
    body = (_toolbar(links, name, page) + f'<p class="status" role="status">{status}</p>'
            + "".join(figures) + quoted)
    return _document(f"{name}, page {page}", "", body), 200


def _link(name: str, page: int, *, label: str, quote_text: str = "", zoom: float = pageview.FIT) -> str:
    href = viewer_link(name, page=page, quote_text=quote_text, zoom=zoom).removeprefix("viewer/")
    return f'<a href="{html.escape(href)}">{escape_text(label)}</a>'


def _toolbar(links: list[str], name: str, page: int | None = None) -> str:
    whole = f"../plans/{quote(name)}" + (f"#page={page}" if page else "")
    return (f'<nav class="bar" aria-label="Viewer controls">{"".join(links)}'
            f'<a href="{html.escape(whole)}" target="_blank" rel="noopener">Whole file ↗</a></nav>')


def not_found_html(name: str, where: str) -> str:
    body = f'<p class="essa-error">{escape_text(where.capitalize())} of {escape_text(name)} is not available in the plans directory.</p>'
    return _document("Passage not found", "", body)


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:0 auto;padding:0 .8em 1em;"
    "line-height:1.5;color:#0f172a;background:#fff}h1{font-size:1.1em}h2{font-size:1em;color:#475569}"
    ".num{color:#64748b;font-size:.8em;margin-right:.4em}"
    ".cited{background:#fef3c7;border-left:4px solid #d97706;padding:.3em .6em}"
    "mark{background:#fde047;color:inherit}#q{scroll-margin-top:4em}"
    ".bar{position:sticky;top:0;left:0;background:#f8fafc;border-bottom:1px solid #cbd5e1;display:flex;"
    "flex-wrap:wrap;gap:.4em 1em;align-items:center;padding:.4em 0;font-size:.9em;z-index:2}"
    ".bar a{color:#1d4ed8}.bar a:focus{outline:3px solid #2563eb;outline-offset:2px}"
    ".status{font-size:.9em;color:#334155}"
    ".page{position:relative;margin:.5em 0 1em;max-width:none;box-shadow:0 0 0 1px #cbd5e1}"
    ".sheet{position:relative}.page img{display:block}.page figcaption{font-size:.8em;color:#64748b}"
    ".box{position:absolute;background:rgba(250,204,21,.38);outline:2px solid #ca8a04;"
    "mix-blend-mode:multiply;scroll-margin:6em}"
    ".quote{border-left:4px solid #cbd5e1;margin:0;padding:.2em .8em;color:#334155}"
    ".essa-error{color:#7f1d1d}"
    ".page img{width:100%;height:auto}"
)


def _document(title: str, head: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape_text(title)}</title><style>{STYLE}</style>{head}</head>"
            f"<body>{body}</body></html>")
