"""Typed records that flow between the pipeline stages.

Every stage takes and returns these frozen dataclasses, so a stage can be swapped or tested alone.
Locators follow the documents: a PDF passage has a 1-based PDF page index (`page`) and the label
printed on that page (`page_label`); a DOCX passage has no pages, so it has a section and a
paragraph number (1-based count of non-empty paragraphs and tables in document order).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Kinds of text inside a plan. Only "response" is the state's own words; the Department's
# template instructions and the table of contents are kept (nothing is lost) but marked.
RESPONSE = "response"
TEMPLATE = "template"
TOC = "toc"
TABLE = "table"
TEXT_KINDS = (RESPONSE, TEMPLATE, TOC, TABLE)

# The most passages a caller may ask for per state (CLI --k, Assistant.ask/search k).
MAX_K = 100


def format_locator(page: int | None, page_label: str | None, paragraph: int | None,
                   section: str = "") -> str:
    """A place in a plan as people cite it: "p. 86 (PDF page 101)", or for a Word file
    "<section>, paragraph 214" (the section is left out where it is shown beside)."""
    if page is not None:
        if page_label and page_label != str(page):
            return f"p. {page_label} (PDF page {page})"
        return f"PDF page {page}"
    return f"{section}, paragraph {paragraph}" if section else f"paragraph {paragraph}"


@dataclass(frozen=True)
class PlanInfo:
    """One plan as the manifest knows it."""

    state: str
    state_name: str
    title: str
    year: str
    url: str
    filename: str
    sha256: str | None = None
    format: str = "pdf"
    url_checked: bool = False  # the URL was seen to serve this plan (none can be checked offline)
    version: str = ""  # e.g. "2019 amended"; the year where the manifest says no more (versions.py)


@dataclass(frozen=True)
class Block:
    """A paragraph-like stretch of a unit's text, with the section in force and its kind."""

    start: int
    end: int
    section: str
    kind: str = RESPONSE
    paragraph: int | None = None


@dataclass(frozen=True)
class Unit:
    """The citable container of text: one PDF page, or one DOCX section."""

    index: int
    text: str
    blocks: tuple[Block, ...]
    page: int | None = None
    page_label: str | None = None
    ocr: bool = False  # the page had no text layer: its text is what tesseract read


@dataclass(frozen=True)
class Document:
    """A parsed plan: every unit of text in reading order."""

    state: str
    source: str
    sha256: str
    format: str
    units: tuple[Unit, ...]
    title: str = ""
    warnings: tuple[str, ...] = ()
    scanned: tuple[int, ...] = ()  # PDF pages (1-based) with images and no text layer
    template: str = ""  # the template its headings follow: "ccsso", "revised" or "" (ingest.detect_template)

    @property
    def n_pages(self) -> int | None:
        return len(self.units) if self.format == "pdf" else None

    @property
    def n_paragraphs(self) -> int | None:
        if self.format != "docx":
            return None
        return sum(1 for u in self.units for b in u.blocks if b.paragraph is not None)


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: whole sentences from one unit, one section and one kind of text."""

    id: str
    state: str
    source: str
    unit: int
    page: int | None
    page_label: str | None
    paragraph: int | None
    paragraph_end: int | None
    section: str
    kind: str
    text: str
    char_start: int
    char_end: int
    n_tokens: int
    categories: dict[str, float] = field(default_factory=dict)
    header: str = ""  # plan title and section path: read by the models, never quoted
    sentences: tuple[tuple[int, int], ...] = ()  # quotable spans of `text`; one vector each
    ocr: bool = False  # text read by OCR from a page image (Unit.ocr)
    version: str = ""  # the plan version this chunk is from ("2017", "2019 amended"; versions.py)
    year: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Chunk":
        data = dict(data)
        data["sentences"] = tuple(tuple(span) for span in data.get("sentences", ()))
        return cls(**data)


@dataclass(frozen=True)
class Passage:
    """A chunk as retrieval returns it: ranked, scored, with its locator fields at top level."""

    chunk_id: str
    text: str
    state: str
    source: str
    page: int | None
    page_label: str | None
    section: str
    paragraph: int | None
    score: float
    kind: str = RESPONSE
    categories: tuple[str, ...] = ()
    category_scores: dict[str, float] = field(default_factory=dict)
    unit: int = 0
    char_start: int = 0
    similarity: float = 0.0  # cosine of question and passage (chunk vector)
    paragraph_end: int | None = None
    sentence_similarity: float = 0.0  # cosine of question and the passage's best sentence
    relevance: float | None = None  # the second stage's probability that it answers the question
    sentences: tuple[tuple[int, int], ...] = ()  # quotable spans of `text` (Chunk.sentences)
    ocr: bool = False  # text read by OCR from a page image
    version: str = ""  # the plan version quoted (Chunk.version)
    year: str = ""

    @classmethod
    def from_chunk(cls, c: "Chunk", score: float, categories: tuple[str, ...], **signals: Any) -> "Passage":
        """The chunk's locator fields as a passage; `signals` sets similarity, relevance and the like."""
        return cls(chunk_id=c.id, text=c.text, state=c.state, source=c.source, page=c.page,
                   page_label=c.page_label, section=c.section, paragraph=c.paragraph, score=score,
                   kind=c.kind, categories=categories, category_scores=dict(c.categories), unit=c.unit,
                   char_start=c.char_start, paragraph_end=c.paragraph_end, sentences=c.sentences,
                   ocr=c.ocr, version=c.version, year=c.year, **signals)

    @property
    def locator(self) -> str:
        return format_locator(self.page, self.page_label, self.paragraph, self.section or "document")


@dataclass(frozen=True)
class Citation:
    rank: int
    chunk_id: str
    state: str
    source: str
    page: int | None
    page_label: str | None
    section: str
    paragraph: int | None
    quote: str
    passage: str
    score: float
    categories: tuple[str, ...] = ()
    ocr: bool = False  # the quote is OCR text: check it against the page image
    version: str = ""  # the plan version quoted ("2017", "2019 amended")
    year: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        return data


@dataclass(frozen=True)
class CategoryEvidence:
    """Why an answer carries a category: the citation rank whose passage is tagged with it."""

    category: str
    label: str
    citation: int
    score: float


@dataclass(frozen=True)
class Answer:
    question: str
    states: tuple[str, ...]
    abstained: bool
    reason: str | None
    answer: str
    categories: tuple[str, ...]
    citations: tuple[Citation, ...]
    related: tuple[Citation, ...] = ()
    evidence: tuple[CategoryEvidence, ...] = ()
    sections: tuple[tuple[str, str], ...] = ()

    def to_markdown(self, plans: dict[str, dict] | None = None) -> str:
        from .export import answer_to_markdown

        return answer_to_markdown(self, plans)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "states": list(self.states),
            "abstained": self.abstained,
            "reason": self.reason,
            "answer": self.answer,
            "categories": list(self.categories),
            "citations": [c.to_dict() for c in self.citations],
        }


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a plan: the passages on each side (None where the
    text was added or removed whole) and the sentences only one side holds, verbatim."""

    kind: str  # "changed", "added" (only in the newer version) or "removed" (only in the older)
    old: Citation | None
    new: Citation | None
    added: tuple[str, ...] = ()  # sentences of `new` that the older version does not hold
    removed: tuple[str, ...] = ()  # sentences of `old` that the newer version does not hold
    topic_rank: int | None = None  # best rank of either passage in a search for the topic

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "old": self.old.to_dict() if self.old else None,
                "new": self.new.to_dict() if self.new else None, "added": list(self.added),
                "removed": list(self.removed), "topic_rank": self.topic_rank}


@dataclass(frozen=True)
class VersionChanges:
    """What changed in a state's plan between two versions, on a topic or throughout."""

    state: str
    old_version: str
    new_version: str
    old_source: str
    new_source: str
    topic: str
    changes: tuple[Change, ...]
    compared: int  # passages compared (on the topic, or every passage of both versions)
    total: int  # changes found before any limit

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "old": {"version": self.old_version, "source": self.old_source},
                "new": {"version": self.new_version, "source": self.new_source}, "topic": self.topic,
                "compared": self.compared, "total": self.total,
                "changes": [c.to_dict() for c in self.changes]}


@dataclass(frozen=True)
class PlanFact:
    """One fact of one state's plan (assistant/facts.py): its value, or stated=False where the
    plan does not say, with the sentence that states it cited verbatim."""

    state: str
    fact: str
    label: str
    type: str  # number | percentage | year | years | list | choice | text (data/facts.toml)
    value: Any  # float for number/percentage, int for year/years, tuple of ids for list, str else
    unit: str
    stated: bool
    confidence: float
    citation: Citation | None
    value_label: str = ""  # the value as people read it: "20 students", "Stars", "ACCESS for ELLs"
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"state": self.state, "fact": self.fact, "label": self.label, "type": self.type,
                "value": value, "value_label": self.value_label, "unit": self.unit,
                "stated": self.stated, "confidence": self.confidence, "version": self.version,
                "citation": self.citation.to_dict() if self.citation else None}
