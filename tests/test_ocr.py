"""OCR for pages with no text layer: a scanned page made here (an image of text, saved as a PDF
page) is read by tesseract, marked as OCR text from the parser to the citation, and quoted
verbatim against what the index stores; with OCR off (or no tesseract) the one-line warning
stays. On the real plans, Delaware's scanned pages 2 and 5 become searchable."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import ocr
from assistant.ingest import ParseBudget, parse_plan

needs_tesseract = pytest.mark.skipif(ocr.tesseract() is None, reason="tesseract not installed (make ocr)")
SCANNED_LINES = ["Summer bridge programs help", "ninth graders start high school.",
                 "Each student meets a counselor."]


def scanned_pdf(path: Path) -> Path:
    """Page 1 has a text layer; page 2 is only an image of printed text (a scan)."""
    from PIL import Image, ImageDraw, ImageFont
    from pypdf import PdfReader, PdfWriter

    from conftest import write_pdf

    text_pdf = write_pdf(path.with_name("text.pdf"), [["Section 1: Overview", "The state plan has two pages."]])
    page = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=56)
    for n, line in enumerate(SCANNED_LINES):
        draw.text((150, 250 + 110 * n), line, fill=0, font=font)
    image_pdf = path.with_name("scan.pdf")
    page.save(image_pdf, "PDF", resolution=200.0)
    writer = PdfWriter()
    for source in (text_pdf, image_pdf):
        for p in PdfReader(source).pages:
            writer.add_page(p)
    with open(path, "wb") as out:
        writer.write(out)
    return path


@needs_tesseract
def test_a_scanned_page_is_read_and_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    document = parse_plan(scanned_pdf(tmp_path / "RI.pdf"), "RI")
    assert document.scanned == (2,)
    text_page, scanned = document.units
    assert not text_page.ocr and scanned.ocr
    words = " ".join(scanned.text.split()).lower()
    assert "summer bridge programs" in words and "counselor" in words
    assert document.warnings == ("RI.pdf page 2: no text layer; read by OCR (check it against the page)",)
    # Read once: the second parse takes the text from the cache, the same to the character.
    assert list((tmp_path / "cache" / "essa-qa" / "ocr").glob("*-2-*.txt"))
    assert parse_plan(tmp_path / "RI.pdf", "RI").units[1].text == scanned.text


@needs_tesseract
def test_a_page_pdfium_cannot_render_keeps_its_warning_and_the_plan_its_text(tmp_path, monkeypatch):
    from assistant import pageview
    from assistant.errors import PlanError

    def refuse(path, page, zoom=1.0):
        raise PlanError(path, "cannot be opened for viewing (damaged)")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(pageview, "render_png", refuse)
    document = parse_plan(scanned_pdf(tmp_path / "RI.pdf"), "RI")
    assert "two pages" in document.units[0].text and not document.units[1].ocr
    assert document.warnings == ("RI.pdf page 2: no text layer — needs OCR",)


def test_with_ocr_off_the_warning_stays(tmp_path):
    document = parse_plan(scanned_pdf(tmp_path / "RI.pdf"), "RI", ParseBudget(ocr=False))
    assert not any(u.ocr for u in document.units) and document.scanned == (2,)
    assert document.warnings == ("RI.pdf page 2: no text layer — needs OCR",)


@needs_tesseract
def test_ocr_text_is_indexed_and_cited_as_ocr(tmp_path, monkeypatch):
    from assistant.api import Assistant
    from assistant.config import Settings
    from assistant.embedders import HashEmbedder
    from assistant.export import OCR_NOTE, citation_locator
    from assistant.indexing import build_index

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plans = tmp_path / "plans"
    plans.mkdir()
    scanned_pdf(plans / "RI.pdf")
    settings = Settings(embedder="hash")
    report = build_index(plans, tmp_path / "index", HashEmbedder(), settings)
    assert "RI.pdf page 2: no text layer; read by OCR (check it against the page)" in report.warnings
    assistant = Assistant.load(tmp_path / "index", settings=settings)
    answer = assistant.ask("How do summer bridge programs help ninth graders in Rhode Island?")
    ocr_citations = [c for c in answer.citations if c.page == 2]
    assert ocr_citations and all(c.ocr for c in ocr_citations)
    for citation in ocr_citations:
        assert citation.quote in citation.passage  # verbatim against what the index stores
        assert citation_locator(citation).endswith(f"({OCR_NOTE})")
    assert not any(c.ocr for c in answer.citations if c.page == 1)


@pytest.mark.real
def test_delawares_scanned_pages_are_searchable(real_assistant):
    if ocr.tesseract() is None:
        pytest.fail("tesseract is not installed: `make test` installs it (make ocr)")
    ocr_chunks = [c for c in real_assistant.retriever.chunks if c.ocr]
    assert {c.page for c in ocr_chunks if c.state == "DE"} == {2, 5}
    hits = real_assistant.search("contact information and signatures of the state education agency",
                                 k=5, states=["DE"])
    assert any(p.ocr and p.page == 5 for p in hits)
