"""Parsing: a plan file (PDF or DOCX) in, a `Document` of cleaned, located, section-aware text out.

PDF: one unit per page, keeping the 1-based page index and the printed page label.
DOCX: one unit per Heading 1/2 section; each paragraph or table carries its paragraph number,
because a Word file has no pages to cite.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ocr
from .columns import column_text
from .errors import PlanError
from .records import RESPONSE, TABLE, TEMPLATE, TOC, Block, Document, Unit

SUPPORTED_SUFFIXES = (".pdf", ".docx")
SECTION_SEP = " › "


@dataclass(frozen=True)
class ParseBudget:
    """How much one plan may hold (settings `parse_max_*`). Over a budget the plan is refused
    with one line before the parser spends minutes or gigabytes on it; time and memory are
    bounded separately, by the process that parses (assistant/guarded.py)."""

    pages: int = 5000
    text_mb: float = 64.0
    unzipped_mb: float = 256.0
    table_depth: int = 16
    ocr: bool = True  # read pages with no text layer with tesseract, where it is installed

    @classmethod
    def from_settings(cls, settings) -> "ParseBudget":
        return cls(pages=settings.parse_max_pages, text_mb=settings.parse_max_text_mb,
                   unzipped_mb=settings.parse_max_unzipped_mb,
                   table_depth=settings.parse_max_table_depth, ocr=settings.ocr != "off")

    def check_text(self, path: Path, characters: int) -> None:
        if characters > self.text_mb * 1e6:
            raise PlanError(path, f"holds more than {self.text_mb:g} MB of text (parse_max_text_mb); skipped")


def parse_plan(path: Path, state: str, budget: ParseBudget = ParseBudget()) -> Document:
    """Parse one plan; raise PlanError naming the file and the problem when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(path, "no such file")
    if path.stat().st_size == 0:
        raise PlanError(path, "empty file (0 bytes)")
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _with_layout_warnings(_parse_pdf(path, state, budget))
    if suffix == ".docx":
        return _with_layout_warnings(_parse_docx(path, state, budget))
    raise PlanError(path, f"unsupported file type {suffix or '(none)'}; expected .pdf or .docx")


def _with_layout_warnings(document: Document) -> Document:
    """A plan in a structure the section reader does not know is still indexed, never silently:
    with no section found (no "Section N:", "N.N", "A." headings, no Word heading styles, no
    bookmarks), citations can name only the page or paragraph, and the warning says so."""
    blocks = [b for u in document.units for b in u.blocks]
    if blocks and not any(b.section for b in blocks):
        note = (f"{document.source}: no sections found (numbered template headings, Word heading "
                "styles or PDF bookmarks); passages are cited by "
                + ("page" if document.format == "pdf" else "paragraph") + " only")
        return replace(document, warnings=document.warnings + (note,))
    return document


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---------------------------------------------------------------- text classification

_BULLET_CHARS = "•\uf0b7\uf0a7\uf0d8\uf076\uf0fc◦▪■□●○➢►❖–-*☐☒✓"
LEADING_BULLET = re.compile(rf"^(?:[{re.escape(_BULLET_CHARS)}]|o\s)\s*")
_ENUM_RE = re.compile(r"^\(?(?:\d{1,2}|[a-zA-Z]|[ivxlc]{1,5})[.)]\s+")
_TOC_RE = re.compile(r"(?:\.\s?){5,}\s*\d+\s*$|…{2,}\s*\d+\s*$")
_PAGE_NUMBER_RE = re.compile(r"^(?:page\s+)?(\d{1,4}|[ivxlcdm]{1,7})(?:\s+of\s+\d+)?$", re.IGNORECASE)

_SECTION_L1 = re.compile(r"^(Section\s+(\d+)\s*[:.]\s*[A-Z][^\n]{2,100}?)\s*$")
_SECTION_L2 = re.compile(r"^(\d\.\d{1,2}\.?\s+[A-Z][^.\n]{2,100}\.?)(?:\s|$)")
_SECTION_L3 = re.compile(r"^([A-Z]\.\s+[A-Z][^.\n]{2,80}?\.)(?:\s+|$)")

# The Department's template asks the state; these openings are the asking, not the answer.
_TEMPLATE_OPENING = re.compile(
    r"^(?:Describe|Provide|Identify|Explain|Indicate|List|Consistent with|If (?:the|an|applicable)|"
    r"In (?:its|the text box)|Each SEA|An SEA|The SEA must|Instructions|Please|Does the SEA|"
    r"Check this box|Note: (?:The|An|Each|If)|The description (?:for|of|must|should)|"
    r"An SEA that|If an SEA|Pursuant to section|Attach|Insert)\b"
)
# "A.7. School Transitions (ESEA section 1111(g)(1)(D)):" style item labels before the question.
_ITEM_LABEL_RE = re.compile(r"^[A-Z](?:\.\d+)*\.\s+[^:]{2,80}:\s+")
# A heading that ends in a page number is a table-of-contents entry, not a heading.
_TOC_ENTRY_RE = re.compile(r"\s\d{1,3}$")
_TEMPLATE_SUBJECT = re.compile(r"\b(?:SEA|SEAs|SEA['’]s|State['’]?s?|ESEA|LEAs?|section \d{4}|Title [IVX]+)\b")
_TEMPLATE_ADDRESS = re.compile(
    r"\b(?:[Ee]ach|[Aa]n) SEA\b|\b[Tt]he SEA(?:['’]s)? (?:must|should|may)\b|"
    r"(?:^|\.\s+)(?:Describe|Provide|Identify)\b[^.]{0,80}\bthe SEA\b|\bIf the SEA\b|"
    r"^The State['’]s \w+(?: \w+)? and how (?:it|the State) will\b")


# Templates a plan can be filed on (Document.template), told apart by their headings:
#   "ccsso": the six components of the Department's November 2016 template, "Section 1:
#     Long-term Goals" ... "Section 6: Supporting All Students", items "4.1", "A." (CCSSO's
#     alternative template kept them, with the revised template's questions embedded);
#   "revised": the Department's March 2017 revised template, by program: "A. Title I, Part A:
#     ..." ... "I. Education for Homeless Children and Youth", items "A.4", "A.4.iii", "A.4.iii.a";
#   "": neither (a plan in its own structure: Word heading styles, bookmarks, or none).
CCSSO, REVISED = "ccsso", "revised"
_PROGRAM = r"(?:Title\s+[IVX]+,\s*Part\s+[A-D]\b|Education for Homeless Children and Youth|McKinney-Vento)"
_REVISED_L1 = re.compile(rf"^([A-I]\.\s+{_PROGRAM}[^\n]{{0,140}}?)\s*$")
_REVISED_ITEMS = (  # A.4 / A.4.iii / A.4.iii.a, the title up to "(ESEA section ...)", ":" or the end
    re.compile(r"^([A-I]\.\d{1,2}\.?\s+[A-Z][^\n(:]{2,110}?)\s*(?:[(:]|$)"),
    re.compile(r"^([A-I]\.\d{1,2}\.[ivx]{1,5}\.?\s+[A-Z][^\n(:]{2,110}?)\s*(?:[(:]|$)"),
    re.compile(r"^([A-I]\.\d{1,2}\.[ivx]{1,5}\.[a-f]\.?\s+[A-Z][^\n(:.]{2,110}?)\s*(?:[(:.]|$)"),
)
_REVISED_ITEM = re.compile(r"^[A-I]\.\d{1,2}(?:\.[ivx]{1,5})?(?:\.[a-f])?\.?\s+[A-Z]")


def detect_template(lines) -> str:
    """Which template the plan's headings follow (CCSSO, REVISED or ""), from its lines of text."""
    components = programs = items = 0
    for line in lines:
        line = line.strip()
        components += bool(_SECTION_L1.match(line))
        programs += bool(_REVISED_L1.match(line))
        items += bool(_REVISED_ITEM.match(line))
    # Component plans answer the revised template's program questions inside Section 6 (DE's
    # "B.1. Supporting Needs of Migratory Children"): the components decide.
    if components >= 2:
        return CCSSO
    return REVISED if programs >= 2 and items >= 3 else ""


def heading_level(text: str, template: str = CCSSO) -> tuple[int, str] | None:
    """(level, title) when a paragraph opens with a numbered heading of the plan's template
    (the component template's unless told otherwise), else None."""
    first_line = text.split("\n", 1)[0].strip()
    if template == REVISED:
        return _revised_heading(first_line)
    for level, pattern in ((1, _SECTION_L1), (2, _SECTION_L2), (3, _SECTION_L3)):
        m = pattern.match(first_line)
        if m:
            title = m.group(1).strip().rstrip(".").strip()
            if level == 3 and len(title.split()) > 10:
                return None
            return level, title
    return None


def _revised_heading(line: str) -> tuple[int, str] | None:
    m = _REVISED_L1.match(line)
    if m:
        return (1, m.group(1).strip()) if not _TOC_ENTRY_RE.search(m.group(1)) else None
    for level, pattern in reversed(list(enumerate(_REVISED_ITEMS, 2))):  # the deepest label first
        m = pattern.match(line)
        if m and not _TOC_ENTRY_RE.search(m.group(1)):  # "A.4 Accountability 12": a contents line
            title = re.sub(r"^([A-I](?:\.\w+)+)\.\s", r"\1 ", m.group(1).strip())  # "A.4. X" -> "A.4 X"
            return level, title.rstrip(".").strip()
    return None


def text_kind(text: str) -> str:
    """RESPONSE, TEMPLATE or TOC for one paragraph of plan text."""
    stripped = text.strip()
    if _TOC_RE.search(stripped.split("\n", 1)[0]) or stripped.count("....") >= 2:
        return TOC
    heading = heading_level(stripped)
    if heading and _TOC_ENTRY_RE.search(heading[1]):
        return TOC
    if stripped[:1] in "☐☒" or "Revised Template Question" in stripped:
        return TEMPLATE
    body = _strip_heading(stripped)
    # A state's own bullets also open with verbs ("Provide funding for exam fees"): an opening
    # verb only marks the template when the sentence is about the SEA, the State or the statute.
    if _TEMPLATE_OPENING.match(body) and _TEMPLATE_SUBJECT.search(body):
        return TEMPLATE
    # States write "the SEA will ..." in their answers; the template addresses "each SEA must ...".
    if _TEMPLATE_ADDRESS.search(body):
        return TEMPLATE
    return RESPONSE


_TOC_LINE_RE = re.compile(r"^[A-Z0-9][^\n]{1,110}?[A-Za-z.:)]\s+\d{1,3}$")


def _looks_like_toc_entry(paragraph: str, previous_kind: str) -> bool:
    """A "Title  12" line inside a contents list (or opening one with a numbered heading)."""
    if paragraph.strip().lower() in ("contents", "table of contents"):
        return True
    if not _TOC_LINE_RE.match(paragraph.strip()):
        return False
    return previous_kind == TOC or heading_level(paragraph) is not None


def _strip_heading(text: str) -> str:
    body = LEADING_BULLET.sub("", text)
    body = _ENUM_RE.sub("", body)
    label = _ITEM_LABEL_RE.match(body)
    if label:
        return body[label.end():]
    heading = heading_level(body)
    if heading:
        m = (_SECTION_L1.match(body) or _SECTION_L2.match(body) or _SECTION_L3.match(body))
        if m:
            body = body[m.end():].lstrip()
    return body


class SectionTracker:
    """The section path in force while walking a document in reading order."""

    def __init__(self) -> None:
        self.path: list[str] = []

    def see(self, level: int, title: str) -> None:
        number = re.match(r"(\d)\.\d", title)
        if level == 2 and number and not (self.path and self.path[0].startswith(f"Section {number.group(1)}")):
            # The "Section N" heading was lost (wrapped or drawn as an image): its N.x child names it.
            self.path = [f"Section {number.group(1)}"]
        del self.path[level - 1:]
        while len(self.path) < level - 1:
            self.path.append("")
        self.path.append(title)

    @property
    def current(self) -> str:
        return SECTION_SEP.join(p for p in self.path if p)


# ---------------------------------------------------------------- PDF


def _parse_pdf(path: Path, state: str, budget: ParseBudget) -> Document:
    head = path.read_bytes()[:1024]
    if b"%PDF-" not in head:
        shown = head[:16].decode("latin-1", "replace").strip() or "binary data"
        raise PlanError(path, f"not a PDF (starts with {shown!r})")
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            _decrypt(reader, path)
        if len(reader.pages) > budget.pages:
            raise PlanError(path, f"has {len(reader.pages)} pages, more than {budget.pages} "
                                  "(parse_max_pages); skipped")
        raw_pages = _page_texts(reader, path, budget)
        labels = _pdf_page_labels(reader)
        outline = _outline_titles(reader)
    except PlanError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PlanError(path, f"damaged or truncated PDF ({exc.__class__.__name__}: {exc})") from exc
    if not raw_pages:
        raise PlanError(path, "PDF has no pages")
    scanned = [i for i, t in enumerate(raw_pages) if not t.strip() and _page_has_images(reader.pages[i])]
    read, warnings = _ocr(path, raw_pages, scanned, budget)
    warnings += _read_columns(path, raw_pages)
    if not any(t.strip() for t in raw_pages):
        raise PlanError(path, "no text layer — needs OCR" + ("" if budget.ocr and ocr.tesseract() else
                                                           " (tesseract is not installed)" if budget.ocr else
                                                           " (ocr = \"off\")"))
    units, template = _pdf_units(raw_pages, labels, outline)
    units = tuple(replace(u, ocr=True) if u.index in read else u for u in units)
    return Document(state=state, source=path.name, sha256=sha256_of(path), format="pdf",
                    units=units, warnings=warnings, scanned=tuple(i + 1 for i in scanned), template=template)


def _read_columns(path: Path, raw_pages: list[str]) -> tuple[str, ...]:
    """Pages laid out in two columns are read column by column (assistant/columns.py), in place;
    one warning lists them, so a reader knows to check the order against the page."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return ()  # pypdf read it; PDFium cannot: its pages keep pypdf's order
    found = []
    try:
        for i, text in enumerate(raw_pages):
            if text.strip():
                columns = column_text(document[i])
                if columns is not None:
                    raw_pages[i] = columns
                    found.append(i + 1)
    finally:
        document.close()
    if not found:
        return ()
    pages = ", ".join(map(str, found))
    return (f"{path.name}: {'page' if len(found) == 1 else 'pages'} {pages} laid out in two columns; "
            "read column by column",)


def _ocr(path: Path, raw_pages: list[str], scanned: list[int], budget: ParseBudget) -> tuple[set[int], tuple[str, ...]]:
    """Pages with images and no text, read by tesseract in place in `raw_pages`: (the pages read,
    a warning per page). Without tesseract (or with ocr off) each such page keeps its warning."""
    program = ocr.tesseract() if budget.ocr else None
    digest = sha256_of(path) if program and scanned else ""
    read, warnings = set(), []
    for i in scanned:
        text = ocr.ocr_page(path, i + 1, program, digest) if program else ""
        if text:
            raw_pages[i] = text
            read.add(i)
            warnings.append(f"{path.name} page {i + 1}: no text layer; read by OCR (check it against the page)")
        else:
            warnings.append(f"{path.name} page {i + 1}: no text layer — needs OCR"
                            + ("" if program else " (tesseract is not installed)" if budget.ocr else ""))
    return read, tuple(warnings)


def _page_texts(reader, path: Path, budget: ParseBudget) -> list[str]:
    texts: list[str] = []
    total = 0
    for page in reader.pages:
        texts.append(page.extract_text() or "")
        total += len(texts[-1])
        budget.check_text(path, total)  # stop at the page that crosses it, not after them all
    return texts


def _decrypt(reader, path: Path) -> None:
    try:
        opened = reader.decrypt("")
    except Exception as exc:  # pypdf raises DependencyError without `cryptography`
        raise PlanError(path, f"encrypted PDF cannot be opened ({exc})") from exc
    if not opened:
        raise PlanError(path, "encrypted PDF: the empty password does not open it (password needed)")


def _pdf_page_labels(reader) -> list[str | None]:
    """Labels from the PDF's own /PageLabels, or None per page where the PDF has none."""
    root = reader.trailer["/Root"]
    if "/PageLabels" not in root:
        return [None] * len(reader.pages)
    return list(reader.page_labels)


def _outline_titles(reader) -> dict[int, list[str]]:
    """PDF outline titles by 0-based page index: used to recognise headings the text hides."""
    titles: dict[int, list[str]] = {}

    def walk(items) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            if page is not None and page >= 0:
                titles.setdefault(page, []).append(_squash(str(item.title)))

    try:
        walk(reader.outline)
    except Exception:
        return {}
    return titles


def _page_has_images(page) -> bool:
    try:
        resources = page.get("/Resources") or {}
        xobjects = resources.get("/XObject") or {}
        return any(xobjects[name].get_object().get("/Subtype") == "/Image" for name in xobjects)
    except Exception:
        return False


# Symbol-font bullets come out as private-use code points: show them as real bullets.
_SYMBOL_BULLETS = str.maketrans({"\uf0b7": "•", "\uf0a7": "▪", "\uf0d8": "➢", "\uf076": "❖",
                                 "\uf0fc": "✓", "\uf0a8": "□"})


def _visible_bullets(text: str) -> str:
    return text.translate(_SYMBOL_BULLETS)


def _squash(text: str) -> str:
    return re.sub(r"[ \t\u00a0]+", " ", text).strip()


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())


@dataclass
class _PageLines:
    lines: list[str]
    label: str | None = None
    dropped: list[str] = field(default_factory=list)


def _pdf_units(raw_pages: list[str], pdf_labels: list[str | None],
               outline: dict[int, list[str]]) -> tuple[tuple[Unit, ...], str]:
    pages = [_PageLines([_squash(_visible_bullets(l)) for l in t.split("\n")]) for t in raw_pages]
    running = _running_line_keys(pages)
    for page in pages:
        _drop_margins(page, running)
    tracker = SectionTracker()
    template = detect_template(line for page in pages for line in page.lines)
    units = []
    for i, page in enumerate(pages):
        paragraphs = _paragraphs(page.lines, template)
        label = pdf_labels[i] or page.label
        units.append(_unit_from_paragraphs(i, paragraphs, tracker, page=i + 1, page_label=label,
                                           outline_titles=outline.get(i, []), template=template))
    return tuple(units), template


def _running_line_keys(pages: list[_PageLines]) -> set[str]:
    """Lines that open or close many pages: running headers and footers."""
    counts: Counter[str] = Counter()
    for page in pages:
        content = [l for l in page.lines if l]
        counts.update({_line_key(l) for l in content[:2] + content[-2:]})
    threshold = max(3, int(0.3 * len(pages)))
    return {key for key, n in counts.items() if n >= threshold and len(key) > 1}


def _drop_margins(page: _PageLines, running: set[str]) -> None:
    """Remove running headers/footers and bare page numbers; keep the printed number as label."""
    for from_top in (True, False):
        for _ in range(3):
            idx = _first_content(page.lines, from_top)
            if idx is None:
                break
            line = page.lines[idx]
            number = _PAGE_NUMBER_RE.match(line)
            if number:
                page.label = page.label or number.group(1)
            elif _line_key(line) in running:
                trailing = re.search(r"(\d{1,4})\s*$", line)
                if trailing and not page.label:
                    page.label = trailing.group(1)
            else:
                break
            page.dropped.append(page.lines.pop(idx))


def _first_content(lines: list[str], from_top: bool) -> int | None:
    order = range(len(lines)) if from_top else range(len(lines) - 1, -1, -1)
    for i in order:
        if lines[i]:
            return i
    return None


def _paragraphs(lines: list[str], template: str = CCSSO) -> list[str]:
    """Join wrapped lines into paragraphs, rejoining words hyphenated across lines.

    Linear in the page's text: a paragraph is kept as a list of pieces joined once, and only
    its first `_QUESTION_SCAN` characters are ever classified (a page of one 2 MB paragraph
    took minutes when the growing string was copied and re-classified at every line)."""
    lengths = [len(l) for l in lines if l]
    full = max(40, statistics.quantiles(lengths, n=10)[-1]) if len(lengths) >= 2 else 80
    paragraphs: list[str] = []
    current = _Building()
    prev = ""
    for line in lines:
        if not line:
            if current:
                paragraphs.append(current.text())
            current, prev = _Building(), ""
            continue
        starts_new = bool(LEADING_BULLET.match(line) or _ENUM_RE.match(line) or heading_level(line, template))
        ends_prev = bool(prev) and (
            len(prev) < 0.6 * full
            or (len(prev) < 0.85 * full and prev[-1] in ".:?!;)\"”")
            or _TOC_RE.search(prev)
            or _SECTION_L1.match(prev)  # "Section 4: ..." stands alone even when long
        )
        if current and (starts_new or ends_prev or _answer_follows_question(current, prev, line)):
            paragraphs.append(current.text())
            current = _Building()
        if not current:
            current.add("", line)
        elif _is_table_row(prev) and _is_table_row(line):
            current.add("\n", line)  # keep table rows as rows
        elif re.fullmatch(r"[A-Za-z]-", current.tail) and line[:1].islower():
            current.unhyphenate(line)
        else:
            current.add(" ", line)
        prev = line
    if current:
        paragraphs.append(current.text())
    return paragraphs


# A template question runs a few sentences; text past this many characters is a state's answer
# (or one endless line), so a paragraph that long is not split where a question would end.
_QUESTION_SCAN = 4000


class _Building:
    """A paragraph being joined from lines: pieces, its last two characters and its opening."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0
        self.tail = ""
        self.opening = ""  # the first _QUESTION_SCAN + 1 characters, for classification

    def __bool__(self) -> bool:
        return self.length > 0

    def add(self, separator: str, line: str) -> None:
        piece = separator + line
        self.pieces.append(piece)
        self.length += len(piece)
        self.tail = (self.tail + piece)[-2:]
        if len(self.opening) <= _QUESTION_SCAN:
            self.opening = (self.opening + piece)[:_QUESTION_SCAN + 1]

    def unhyphenate(self, line: str) -> None:
        """Drop the trailing hyphen and run `line` on: a word split across two lines."""
        self.pieces[-1] = self.pieces[-1][:-1]
        self.length -= 1
        if self.length < len(self.opening):
            self.opening = self.opening[:-1]
        self.tail = self.tail[:-1]
        self.add("", line)

    def text(self) -> str:
        return "".join(self.pieces)


_NUMBER_CELL = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*%?(?![\w])")


def _is_table_row(line: str) -> bool:
    return len(_NUMBER_CELL.findall(line)) >= 3


def _is_table(paragraph: str) -> bool:
    rows = paragraph.split("\n")
    return len(rows) >= 3 and sum(_is_table_row(r) for r in rows) >= 0.6 * len(rows)


def _answer_follows_question(paragraph: _Building, prev: str, line: str) -> bool:
    """A template question whose last line runs full width is followed straight by the answer:
    with no short line to end it, split where the instruction's voice stops."""
    return (prev[-1:] in ".?:" and line[:1].isupper() and paragraph.length <= _QUESTION_SCAN
            and text_kind(paragraph.opening) == TEMPLATE and text_kind(line) == RESPONSE)


def _unit_from_paragraphs(index: int, paragraphs: list[str], tracker: SectionTracker, *,
                          page: int | None = None, page_label: str | None = None,
                          outline_titles: list[str] | None = None,
                          numbers: list[int | None] | None = None,
                          kinds: list[str | None] | None = None,
                          styled_levels: list[int | None] | None = None, template: str = CCSSO) -> Unit:
    """Lay paragraphs out as one unit text, each a Block with its section and kind."""
    outline_keys = {t.lower().rstrip(". ") for t in outline_titles or []}
    text_parts: list[str] = []
    blocks: list[Block] = []
    offset = 0
    previous_kind = ""
    template_asks_list = False
    for j, paragraph in enumerate(paragraphs):
        kind = (kinds[j] if kinds and kinds[j] else None) or text_kind(paragraph)
        if kind == RESPONSE and _is_table(paragraph):
            kind = TABLE
        if kind == RESPONSE and previous_kind == TEMPLATE and LEADING_BULLET.match(paragraph) and (
                template_asks_list or blocks[-1].kind == TEMPLATE and LEADING_BULLET.match(text_parts[-1])):
            # The bullets under "... must include:" belong to the instruction, not the answer.
            kind = TEMPLATE
        if kind == RESPONSE and _looks_like_toc_entry(paragraph, previous_kind):
            kind = TOC
        template_asks_list = kind == TEMPLATE and paragraph.rstrip().endswith(":")
        previous_kind = kind
        styled = styled_levels[j] if styled_levels else None
        heading = heading_level(paragraph, template)
        if styled:
            tracker.see(styled, paragraph.rstrip(". "))
        elif heading and kind != TOC and not (kinds and kinds[j]):
            tracker.see(*heading)
        elif paragraph.lower().rstrip(". ") in outline_keys:
            tracker.see(1, paragraph.rstrip(". "))
        if text_parts:
            offset += 2
        start = offset
        text_parts.append(paragraph)
        offset += len(paragraph)
        blocks.append(Block(start=start, end=offset, section=tracker.current, kind=kind,
                            paragraph=numbers[j] if numbers else None))
    return Unit(index=index, text="\n\n".join(text_parts), blocks=tuple(blocks), page=page,
                page_label=page_label)


# ---------------------------------------------------------------- DOCX


def _parse_docx(path: Path, state: str, budget: ParseBudget) -> Document:
    if not zipfile.is_zipfile(path):
        raise PlanError(path, "not a Word .docx file (not a ZIP package)")
    _check_unzipped_size(path, budget)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise PlanError(path, f"damaged Word file ({exc.__class__.__name__}: {exc})") from exc
    tables = _TableReader(budget.table_depth)
    items = list(_docx_items(document, tables))
    budget.check_text(path, sum(len(text) for text, _, _ in items))
    if not any(text for text, _, _ in items):
        raise PlanError(path, "Word file has no text")
    template = detect_template(text for text, _, _ in items)
    units = _docx_units(items, template)
    warnings = ()
    if tables.flattened:
        warnings = (f"{path.name}: {tables.flattened} table(s) nested more than {budget.table_depth} "
                    "deep (parse_max_table_depth); their text is kept as plain text",)
    return Document(state=state, source=path.name, sha256=sha256_of(path), format="docx",
                    units=units, warnings=warnings, template=template)


def _check_unzipped_size(path: Path, budget: ParseBudget) -> None:
    """Refuse a zip bomb from the sizes its directory declares; zipfile stops reading a member
    at its declared size, so a member cannot unpack to more than this says."""
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise PlanError(path, f"damaged Word file ({exc.__class__.__name__}: {exc})") from exc
    if unzipped > budget.unzipped_mb * 1e6:
        raise PlanError(path, f"unpacks to {unzipped / 1e6:,.0f} MB, more than {budget.unzipped_mb:g} MB "
                              "(parse_max_unzipped_mb); skipped")


def _docx_items(document, tables: "_TableReader"):
    """(text, heading level or None, kind or None) for each paragraph and table in order."""
    from docx.text.paragraph import Paragraph

    def walk(parent_element):
        for element in parent_element.iterchildren():
            tag = _local(element)
            if tag == "p":
                paragraph = Paragraph(element, document)
                # Line breaks inside a paragraph stay single: blank lines separate paragraphs.
                text = re.sub(r"\s*\n\s*", "\n", _squash(_visible_bullets(paragraph.text)))
                yield text.strip(), _docx_heading(paragraph), None
            elif tag == "tbl":
                yield tables.text(element, document), None, TABLE
            elif tag == "sdt":
                for content in element.iterchildren():
                    if content.tag.endswith("sdtContent"):
                        yield from walk(content)

    yield from walk(document.element.body)


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _plain_paragraphs(element) -> list[str]:
    """The text of every paragraph under `element`, at any depth (lxml's iter does not recurse
    in Python, so a table nested hundreds deep costs no stack)."""
    from docx.oxml.ns import qn

    texts = ("".join(t.text or "" for t in p.iter(qn("w:t"))) for p in element.iter(qn("w:p")))
    return [text for text in texts if text.strip()]


class _TableReader:
    """Table text: rows as lines of ' | '-separated cells. A table nested in a cell joins that
    cell's text (rows ' ; '-separated) instead of being dropped; below `max_depth` levels its text
    is taken plain, and counted so the plan can say so."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.flattened = 0

    def text(self, element, document, depth: int = 1) -> str:
        from docx.table import Table

        rows = []
        for row in Table(element, document).rows:
            cells: list[str] = []
            for cell in row.cells:  # merged cells repeat in python-docx, so dedupe
                text = _squash(self._cell_text(cell._tc, document, depth).replace("\n", " "))
                if text and (not cells or cells[-1] != text):
                    cells.append(text)
            if cells:
                rows.append(" | ".join(cells))
        return "\n".join(rows)

    def _cell_text(self, tc, document, depth: int) -> str:
        from docx.text.paragraph import Paragraph

        parts = []
        for element in tc.iterchildren():
            tag = _local(element)
            if tag == "p":
                parts.append(Paragraph(element, document).text)
            elif tag == "tbl" and depth < self.max_depth:
                parts.append(self.text(element, document, depth + 1).replace("\n", " ; "))
            elif tag == "tbl":
                self.flattened += 1
                parts.append(" ".join(_plain_paragraphs(element)))
        return "\n".join(parts)


def _docx_heading(paragraph) -> int | None:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    m = re.match(r"Heading (\d)", name)
    return int(m.group(1)) if m else None


def _docx_units(items, template: str = CCSSO) -> tuple[Unit, ...]:
    tracker = SectionTracker()
    units: list[Unit] = []
    batch: list[tuple[str, int | None, int, str | None]] = []
    number = 0

    def flush() -> None:
        if batch:
            texts, levels, numbers, kinds = (list(col) for col in zip(*batch))
            units.append(_unit_from_paragraphs(len(units), texts, tracker, styled_levels=levels,
                                               numbers=numbers, kinds=kinds, template=template))
            batch.clear()

    for text, level, kind in items:
        if not text:
            continue
        number += 1
        if level in (1, 2):
            flush()
        batch.append((text, level, number, kind))
    flush()
    return tuple(units)
