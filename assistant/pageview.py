"""The viewer's PDF side: a plan page rendered as an image, and where a quote's words sit on it.

Rendering and text positions come from PDFium (pypdfium2), server side, so the panel needs no
script: the page is a PNG and the quote is marked by boxes laid over it in page fractions.

Quotes are verbatim from the text the index stores (pypdf's extraction); PDFium reads the same
characters but may space, break and join them differently (line ends, hyphens, ligatures). So
both texts are compared as their letters and digits only, NFKC-folded and lower-cased, and every
kept PDFium character maps back to its index, whose boxes PDFium gives. A quote that runs over
the page's end is marked on this page as far as it goes and on the next page from its start.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .columns import find_columns, line_boxes, page_rects, reading_order
from .errors import PlanError

MIN_CARRIED = 12  # letters of a quote that must end a page before its rest is looked for on the next
PAGE_SLACK = 120  # letters of running header or footer allowed between a page's edge and a quote
ZOOMS = (1.0, 1.5, 2.0)  # the viewer's zoom steps; 1.0 renders at 96 dpi
FIT = 0.0  # the viewer's default: the page fits the panel's width (rendered at 1.5)
_PDFIUM = threading.Lock()  # PDFium is not thread-safe: one call into it at a time


def snap(zoom: float, steps: tuple[float, ...] = ZOOMS) -> float:
    """The step nearest to an asked-for zoom: only these are drawn (and cached)."""
    return min(steps, key=lambda z: abs(z - zoom))


@dataclass(frozen=True)
class Box:
    """A rectangle on the page in fractions of its width and height, from the top left."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class PageMarks:
    page: int  # 1-based
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class QuoteLocation:
    """Where a quote is: its marks on one page, or on two when it crosses a page break."""

    pages: tuple[PageMarks, ...]

    @property
    def found(self) -> bool:
        return any(p.boxes for p in self.pages)


def page_count(path: Path) -> int:
    with _PDFIUM:
        document = _open(path)
        try:
            return len(document)
        finally:
            document.close()


def page_size(path: Path, page: int) -> tuple[float, float]:
    """(width, height) of page `page` in points, as rendered (its crop box)."""
    with _PDFIUM:
        document = _open(path)
        try:
            return tuple(document[page - 1].get_size())
        finally:
            document.close()


@lru_cache(maxsize=64)
def _rendered(path: str, mtime: float, page: int, zoom: float) -> bytes:
    import io

    with _PDFIUM:
        document = _open(Path(path))
        try:
            bitmap = document[page - 1].render(scale=zoom * 96 / 72)
            image = bitmap.to_pil()
        finally:
            document.close()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def render_png(path: Path, page: int, zoom: float = 1.0) -> bytes:
    """Page `page` (1-based) as a PNG; the last 64 renders are kept."""
    return _rendered(str(path), path.stat().st_mtime, page, zoom)


def locate_quote(path: Path, page: int, quote: str) -> QuoteLocation:
    """The quote's boxes on `page`, and on the next page for the part that runs over."""
    wanted = _folded(quote)[0]
    if not wanted:
        return QuoteLocation((PageMarks(page, ()),))
    with _PDFIUM:
        document = _open(path)
        try:
            if not 1 <= page <= len(document):
                return QuoteLocation(())
            here = _PageText(document, page)
            at = here.folded.find(wanted)
            if at >= 0:
                return QuoteLocation((PageMarks(page, here.boxes(at, at + len(wanted))),))
            carried = _carried(here.folded, wanted)
            if carried and page < len(document):
                at, n = carried
                after = _PageText(document, page + 1)
                rest = wanted[n:]
                start = after.folded.find(rest)
                if 0 <= start <= PAGE_SLACK:  # only a running header before it
                    return QuoteLocation((PageMarks(page, here.boxes(at, at + n)),
                                          PageMarks(page + 1, after.boxes(start, start + len(rest)))))
            return QuoteLocation((PageMarks(page, ()),))
        finally:
            document.close()


def _carried(page_text: str, wanted: str) -> tuple[int, int] | None:
    """(where, how many) of the quote's first letters end the page, before at most PAGE_SLACK
    letters of footer (a page number, a running title); None when fewer than MIN_CARRIED do."""
    for n in range(min(len(wanted) - 1, len(page_text)), MIN_CARRIED - 1, -1):
        at = page_text.rfind(wanted[:n])
        if at >= 0 and len(page_text) - (at + n) <= PAGE_SLACK:
            return at, n
    return None


class _PageText:
    """One page's characters, folded, each folded letter knowing its PDFium character index."""

    def __init__(self, document, page: int):
        self.page = document[page - 1]
        self.text_page = self.page.get_textpage()
        count = self.text_page.count_chars()
        raw = self.text_page.get_text_range(0, count) if count else ""
        if len(raw) != count:  # characters outside the BMP: read them one index at a time
            raw = "".join(self.text_page.get_text_range(i, 1)[:1] or " " for i in range(count))
        self.folded, self.index = _folded(raw)
        left, bottom, right, top = self.page.get_cropbox()
        self._frame = (left, bottom, right - left or 1.0, top - bottom or 1.0)
        # A two-column page is searched in the order ingest read it: column by column.
        rects = page_rects(self.text_page)
        self._columns = find_columns(rects, self.page.get_size()[0])
        if self._columns is not None:
            self._reorder(reading_order(rects, self._columns))

    def _reorder(self, rows: list) -> None:
        def key(n: int) -> tuple[int, float, int]:
            """(reading-order row, x, position) of the n-th kept letter."""
            box = self.text_page.get_charbox(self.index[n])
            x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            row = next((r for r, (left, bottom, right, top) in enumerate(rows)
                        if left - 1 <= x <= right + 1 and bottom - 1 <= y <= top + 1), len(rows))
            return row, box[0], n

        keyed = sorted(key(n) for n in range(len(self.index)))
        self.folded = "".join(self.folded[n] for _, _, n in keyed)
        self.index = [self.index[n] for _, _, n in keyed]

    def boxes(self, start: int, end: int) -> tuple[Box, ...]:
        """Boxes of folded letters [start, end): one per line run PDFium reports."""
        if end <= start:
            return ()
        if self._columns is not None:  # the letters are not in PDFium's order: boxes from each one
            lines = line_boxes([self.text_page.get_charbox(i) for i in self.index[start:end]])
        else:
            first, last = self.index[start], self.index[end - 1]
            lines = _lines_of([self.text_page.get_rect(i)
                               for i in range(self.text_page.count_rects(first, last - first + 1))])
        left0, bottom0, width, height = self._frame
        return tuple(Box(round((left - left0) / width, 5), round((bottom0 + height - top) / height, 5),
                         round((right - left) / width, 5), round((top - bottom) / height, 5))
                     for left, bottom, right, top in lines)


def _lines_of(rects: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """PDFium's rectangles (one per word or text object) joined into one per line: those whose
    heights overlap by half, in reading order, become their union."""
    lines: list[list[float]] = []
    for left, bottom, right, top in rects:
        line = lines[-1] if lines else None
        overlap = min(top, line[3]) - max(bottom, line[1]) if line else 0.0
        if line and overlap >= 0.5 * min(top - bottom, line[3] - line[1]) and left >= line[0] - 1:
            line[:] = [min(line[0], left), min(line[1], bottom), max(line[2], right), max(line[3], top)]
        else:
            lines.append([left, bottom, right, top])
    return [tuple(line) for line in lines]


def _folded(text: str) -> tuple[str, list[int]]:
    """Letters and digits only, NFKC-folded and lower-cased, with each one's index in `text`."""
    letters, index = [], []
    for i, ch in enumerate(text):
        for folded in unicodedata.normalize("NFKC", ch).lower():
            if folded.isalnum():
                letters.append(folded)
                index.append(i)
    return "".join(letters), index


def _open(path: Path):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))  # an owner-password-only plan (MA) opens as is
    except pdfium.PdfiumError as exc:
        raise PlanError(path, f"cannot be opened for viewing ({exc})") from exc
