"""Two-column pages: found from where PDFium puts the text lines, read column by column.

A PDF draws text in whatever order its generator chose; on a two-column page many draw line by
line across both columns, and a plain extraction then runs the columns together ("...summer
bridge / Mentors meet each... / programs for every..."). A page is read as two columns when a
vertical gutter near the middle separates two bodies of full lines (each side at least
MIN_LINES, most of them filling their column) and no line crosses it between the columns' top and
bottom. Its text is then: what sits above the columns (a heading across the page), the left
column, the right column, what sits below (a footer, the page number). A table of short cells is
not two columns of text: its cells do not fill the column, so it keeps the order it is drawn in.

Ingest reads such pages in this order (`column_text`), and the page viewer searches a quote in
the same order (`reading_order`), so what is quoted is found and marked on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

Rect = tuple[float, float, float, float]  # left, bottom, right, top (PDF points, y up)

GUTTER = 12.0  # points of clear space between the columns
MIN_LINES = 6  # lines each column needs before a page counts as two columns
FULL_LINE = 0.6  # a line "fills" its column at this share of the column's width
FULL_SHARE = 0.5  # and at least this share of a column's lines must fill it


@dataclass(frozen=True)
class Columns:
    gutter: float  # x of the gutter's middle
    top: float  # top of the band both columns share
    bottom: float  # its bottom

    def region(self, rect: Rect) -> int:
        """0 above the columns, 1 left column, 2 right column, 3 below them."""
        middle = (rect[1] + rect[3]) / 2
        if middle > self.top:
            return 0
        if middle < self.bottom:
            return 3
        return 1 if (rect[0] + rect[2]) / 2 < self.gutter else 2


def find_columns(rects: list[Rect], width: float) -> Columns | None:
    """The page's two-column layout, or None for a page in one column (or a table)."""
    lines = [r for r in rects if r[2] - r[0] > 1 and r[3] - r[1] > 1]
    if len(lines) < 2 * MIN_LINES:
        return None
    best: tuple[int, float, Columns] | None = None
    x = 0.35 * width
    while x <= 0.65 * width:
        found = _columns_at(lines, x)
        if found is not None:
            left, right, columns = found
            score = (min(left, right), -abs(x - width / 2))
            if best is None or score > best[:2]:
                best = (*score, columns)
        x += 2.0
    return best[2] if best else None


def _columns_at(lines: list[Rect], x: float) -> tuple[int, int, Columns] | None:
    left = [r for r in lines if r[2] <= x - GUTTER / 2]
    right = [r for r in lines if r[0] >= x + GUTTER / 2]
    if len(left) < MIN_LINES or len(right) < MIN_LINES:
        return None
    top = min(max(r[3] for r in left), max(r[3] for r in right))
    bottom = max(min(r[1] for r in left), min(r[1] for r in right))
    if top <= bottom:
        return None
    band = Columns(gutter=x, top=top, bottom=bottom)
    if any(r[0] < x + GUTTER / 2 and r[2] > x - GUTTER / 2 and band.region(r) in (1, 2) for r in lines):
        return None  # a line runs across the gutter between the columns' top and bottom
    in_left = [r for r in left if band.region(r) == 1]
    in_right = [r for r in right if band.region(r) == 2]
    if len(in_left) < MIN_LINES or len(in_right) < MIN_LINES:
        return None
    if not (_fills(in_left, min(r[0] for r in in_left), x) and _fills(in_right, x, max(r[2] for r in in_right))):
        return None
    return len(in_left), len(in_right), band


def _fills(lines: list[Rect], start: float, end: float) -> bool:
    """Most of the lines span most of the column (prose, not a column of short table cells)."""
    room = max(end - start - GUTTER / 2, 1.0)
    full = sum(1 for r in lines if (r[2] - r[0]) >= FULL_LINE * room)
    return full >= FULL_SHARE * len(lines)


def reading_order(rects: list[Rect], columns: Columns) -> list[Rect]:
    """The page's lines in reading order: above, left column, right column, below; each region
    top to bottom, the pieces of one line joined."""
    out: list[Rect] = []
    for region in range(4):
        out += line_boxes([r for r in rects if columns.region(r) == region])
    return out


def line_boxes(rects: list[Rect]) -> list[Rect]:
    """Pieces of text whose heights overlap by half are one line: their union, top to bottom."""
    rows: list[list[float]] = []
    for r in sorted(rects, key=lambda r: (-r[3], r[0])):
        row = rows[-1] if rows else None
        overlap = min(r[3], row[3]) - max(r[1], row[1]) if row else 0.0
        if row and overlap >= 0.5 * min(r[3] - r[1], row[3] - row[1]):
            row[:] = [min(row[0], r[0]), min(row[1], r[1]), max(row[2], r[2]), max(row[3], r[3])]
        else:
            rows.append(list(r))
    return [tuple(row) for row in rows]


def page_rects(text_page) -> list[Rect]:
    return [tuple(text_page.get_rect(i)) for i in range(text_page.count_rects())]


def column_text(page) -> str | None:
    """A PDFium page's text column by column, line by line; None when it is not two columns."""
    text_page = page.get_textpage()
    rects = page_rects(text_page)
    columns = find_columns(rects, page.get_size()[0])
    if columns is None:
        return None
    lines = [" ".join(text_page.get_text_bounded(*row).split()) for row in reading_order(rects, columns)]
    return "\n".join(line for line in lines if line)
