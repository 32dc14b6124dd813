"""Chunking: a Document in, sentence-aligned Chunks out.

A chunk holds whole sentences from one unit (PDF page or DOCX section), one section and one kind
of text, so every citation has one page (or paragraph range) and never mixes the Department's
template with the state's answer. Sizes are counted in cl100k tokens and, so the embedding model
never truncates, in the model's own word pieces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from itertools import groupby

from .ingest import LEADING_BULLET, heading_level
from .records import Block, Chunk, Document, Unit
from .states import state_name
from .tokens import count_tokens, count_wordpieces


@dataclass(frozen=True)
class ChunkerSettings:
    max_tokens: int = 260
    min_tokens: int = 40
    overlap_tokens: int = 60
    max_wordpieces: int = 256
    model_dir: str = ""
    header: bool = True  # state, plan title and section path in what the models read

    def fingerprint(self) -> dict:
        """What must match between an index and the code that reads it."""
        return {"max_tokens": self.max_tokens, "min_tokens": self.min_tokens,
                "overlap_tokens": self.overlap_tokens, "max_wordpieces": self.max_wordpieces,
                "header": self.header, "version": CHUNKER_VERSION}


# Bump when the chunk boundaries, headers or sentence spans change for the same settings: old
# indexes are then refused.
CHUNKER_VERSION = 5
# Word pieces kept free in the model's window for the chunk header.
HEADER_WORDPIECES = 64
HEADER_MAX_CHARS = 220

_ABBREVIATIONS = {"u.s", "e.g", "i.e", "mr", "mrs", "ms", "dr", "no", "st", "vs", "etc", "inc",
                  "jr", "sr", "sec", "p", "pp", "approx", "dept", "gov", "d.c", "a.m", "p.m"}
_SENTENCE_END = re.compile(r"[.!?](?:[\"”’)\]]*)(?=\s+[\"“(•A-Z0-9])|\n\n|\n(?=[•\-–*]|\w)")


def chunk_document(document: Document, settings: ChunkerSettings, title: str = "") -> list[Chunk]:
    """Every sentence of every unit lands in at least one chunk; ids are stable across runs.
    `title` is the plan's title (from the manifest) for the chunk headers."""
    chunks: list[Chunk] = []
    for unit in document.units:
        for blocks in _runs(unit):
            section, kind = blocks[-1].section, blocks[-1].kind
            spans = _sentence_spans(unit.text, blocks[0].start, blocks[-1].end)
            header = chunk_header(document.state, title or document.title, section) if settings.header else ""
            for start, end in _pack(unit.text, spans, settings):
                chunks.append(_make_chunk(document, unit, blocks, section, kind, start, end, header))
    return chunks


def chunk_header(state: str, title: str, section: str) -> str:
    """What the models read before a chunk's text: "Delaware Consolidated State Plan ... › Section 6:
    Supporting All Students › 6.1 ...". A plan title names its state; without one, the state's name
    stands in. Long section paths keep their first and last parts (the most specific)."""
    title = title or f"{state_name(state)} ESSA State Plan"
    if state_name(state).lower() not in title.lower():
        title = f"{state_name(state)}: {title}"
    parts = [p for p in section.split(" › ") if p]
    header = " › ".join([title, *parts])
    while len(header) > HEADER_MAX_CHARS and len(parts) > 1:
        parts = parts[:1] + parts[2:] if len(parts) > 2 else parts[1:]
        header = " › ".join([title, *parts])
    return header[:HEADER_MAX_CHARS]


def embedding_text(chunk: Chunk) -> tuple[str, list[tuple[int, int]]]:
    """The text the models read (header, a newline, the chunk's own words) and where the chunk's
    quotable sentences sit in it. Quotes and the passage shown stay the plan's own words."""
    if not chunk.header:
        return chunk.text, list(chunk.sentences)
    shift = len(chunk.header) + 1
    return f"{chunk.header}\n{chunk.text}", [(a + shift, b + shift) for a, b in chunk.sentences]


def quote_spans(text: str) -> list[tuple[int, int]]:
    """The pieces of a passage a quote can be: each sentence without its leading bullet; of a
    "term | a whole sentence" table row only the sentence cell (any other row stays whole)."""
    out = []
    for start, end in sentence_spans(text):
        if " | " in text[start:end]:
            cut = text.rfind(" | ", start, end) + 3
            if end - cut >= 60:
                start = cut
        bullet = LEADING_BULLET.match(text[start:end])
        if bullet and bullet.end() < end - start:
            start += bullet.end()
        out.append((start, end))
    return out


def _runs(unit: Unit) -> list[list[Block]]:
    """Consecutive blocks of one section and kind; bare headings join the run they open."""
    runs = [list(g) for _, g in groupby(unit.blocks, key=lambda b: (b.section, b.kind))]
    merged: list[list[Block]] = []
    pending: list[Block] = []
    for run in runs:
        if all(_is_heading(unit, b) for b in run):
            pending.extend(run)
            continue
        if pending and not run[0].section.startswith(pending[-1].section):
            merged.append(pending)
            pending = []
        merged.append(pending + run)
        pending = []
    if pending:
        merged.append(pending)
    return merged


def _is_heading(unit: Unit, block: Block) -> bool:
    text = unit.text[block.start:block.end]
    return len(text) < 120 and heading_level(text) is not None and "\n" not in text


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text, whitespace trimmed."""
    return _sentence_spans(text, 0, len(text))


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    cursor = start
    for m in _SENTENCE_END.finditer(text, start, end):
        cut = m.end() if text[m.start()] in ".!?" else m.start()
        if text[m.start()] == "." and _ends_with_abbreviation(text, cursor, m.start()):
            continue
        _add_span(text, cursor, cut, spans)
        cursor = cut
    _add_span(text, cursor, end, spans)
    return spans


def _ends_with_abbreviation(text: str, start: int, dot: int) -> bool:
    word = re.search(r"([A-Za-z.]+)$", text[start:dot])
    if not word:
        return False
    token = word.group(1).lower().strip(".")
    # Single capitals ("A.", "B.") open template items; keep them attached to their heading.
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def _pack(text: str, spans: list[tuple[int, int]], settings: ChunkerSettings) -> list[tuple[int, int]]:
    """Greedy packing of sentences up to the budget, carrying one short sentence as overlap."""
    pieces = [piece for span in spans for piece in _fit(text, span, settings)]
    sizes = [count_tokens(text[a:b]) for a, b in pieces]
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        j, total = i, 0
        while j < len(pieces) and (j == i or total + sizes[j] <= settings.max_tokens):
            total += sizes[j]
            j += 1
        while j - i > 1 and not _fits_model(text[pieces[i][0]:pieces[j - 1][1]], settings):
            j -= 1
        windows.append((pieces[i][0], pieces[j - 1][1]))
        if j >= len(pieces):
            break
        overlap = j - 1 if j - 1 > i and sizes[j - 1] <= settings.overlap_tokens else j
        i = overlap
    return _merge_small_tail(text, windows, settings)


def _merge_small_tail(text: str, windows: list[tuple[int, int]],
                      settings: ChunkerSettings) -> list[tuple[int, int]]:
    """A last window far below the minimum joins its neighbour when that still fits."""
    if len(windows) >= 2 and count_tokens(text[windows[-1][0]:windows[-1][1]]) < settings.min_tokens:
        merged = (windows[-2][0], windows[-1][1])
        if (count_tokens(text[merged[0]:merged[1]]) <= settings.max_tokens * 1.15
                and _fits_model(text[merged[0]:merged[1]], settings)):
            return windows[:-2] + [merged]
    return windows


def _fit(text: str, span: tuple[int, int], settings: ChunkerSettings) -> list[tuple[int, int]]:
    """A sentence too long for one chunk (a table, a run-on list) is cut at word boundaries."""
    start, end = span
    if count_tokens(text[start:end]) <= settings.max_tokens and _fits_model(text[start:end], settings):
        return [span]
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    pieces: list[tuple[int, int]] = []
    first = 0
    while first < len(words):
        last = min(len(words), first + 120)
        while last - first > 1 and not (
            count_tokens(text[start + words[first][0]:start + words[last - 1][1]]) <= settings.max_tokens
            and _fits_model(text[start + words[first][0]:start + words[last - 1][1]], settings)
        ):
            last -= max(1, (last - first) // 8)
        pieces.append((start + words[first][0], start + words[last - 1][1]))
        first = last
    return pieces


def _fits_model(text: str, settings: ChunkerSettings) -> bool:
    if not settings.model_dir:
        return True
    return count_wordpieces(text, settings.model_dir) <= settings.max_wordpieces


def _make_chunk(document: Document, unit: Unit, blocks: list[Block], section: str, kind: str,
                start: int, end: int, header: str) -> Chunk:
    first = next(b for b in blocks if b.end >= start)
    last = next(b for b in reversed(blocks) if b.start <= end)
    key = f"{document.sha256}:{unit.index}:{start}:{end}"
    text = unit.text[start:end]
    return Chunk(
        id=hashlib.sha1(key.encode()).hexdigest()[:16],
        state=document.state,
        source=document.source,
        unit=unit.index,
        page=unit.page,
        page_label=unit.page_label,
        paragraph=first.paragraph,
        paragraph_end=last.paragraph,
        section=section,
        kind=kind,
        text=text,
        char_start=start,
        char_end=end,
        n_tokens=count_tokens(text),
        header=header,
        sentences=tuple(quote_spans(text)),
        ocr=unit.ocr,
    )
