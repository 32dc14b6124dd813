"""Parsing: pages and paragraphs kept, text cleaned, sections and template text known."""

from __future__ import annotations

import pytest

from assistant.errors import PlanError
from assistant.ingest import heading_level, parse_plan, text_kind
from assistant.records import RESPONSE, TABLE, TEMPLATE, TOC
from conftest import FIXTURE_PAGES, write_pdf


def test_pdf_pages_and_printed_labels(fixture_plans):
    doc = parse_plan(fixture_plans / "RI.pdf", "RI")
    assert doc.n_pages == len(FIXTURE_PAGES)
    assert [u.page for u in doc.units] == [1, 2]
    assert [u.page_label for u in doc.units] == ["1", "2"]  # read from the printed footer
    assert all(not u.text.rstrip().endswith("\n1") for u in doc.units)  # footer number dropped


def test_pdf_lines_rejoined_into_paragraphs(fixture_plans):
    doc = parse_plan(fixture_plans / "RI.pdf", "RI")
    text = doc.units[0].text
    # The fixture wraps this paragraph over several lines; it must come back as one.
    assert "Each incoming ninth grader is paired with a mentor." in text
    paragraph = next(doc.units[0].text[b.start:b.end] for b in doc.units[0].blocks
                     if "summer bridge" in doc.units[0].text[b.start:b.end])
    assert "\n" not in paragraph and "Counselors meet every family" in paragraph


def test_pdf_sections_and_template_marked(fixture_plans):
    doc = parse_plan(fixture_plans / "RI.pdf", "RI")
    blocks = {doc.units[0].text[b.start:b.end][:20]: b for b in doc.units[0].blocks}
    template = next(b for k, b in blocks.items() if k.startswith("A. Transitions"))
    assert template.kind == TEMPLATE
    response = next(b for k, b in blocks.items() if k.startswith("The Ocean State"))
    assert response.kind == RESPONSE
    assert response.section.endswith("A. Transitions")
    assert response.section.startswith("Section 6: Supporting All Students")
    # The section carries over to the next page.
    assert doc.units[1].blocks[0].section == response.section


def test_hyphenated_words_rejoined(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "DE.pdf"
    c = canvas.Canvas(str(path))
    lines = ["The department supports students through an extensive accountabil-",
             "ity system and multi-tiered supports for every learner in the state of Delaware.",
             "Short closing line."]
    for i, line in enumerate(lines):
        c.drawString(60, 740 - 14 * i, line)
    c.showPage()
    c.save()
    text = parse_plan(path, "DE").units[0].text
    assert "accountability system" in text


def test_docx_paragraphs_tables_and_headings(fixture_plans):
    doc = parse_plan(fixture_plans / "kansas-plan.docx", "KS")
    assert doc.format == "docx" and doc.n_pages is None
    blocks = [(u.text[b.start:b.end], b) for u in doc.units for b in u.blocks]
    numbers = [b.paragraph for _, b in blocks]
    assert numbers == list(range(1, len(blocks) + 1))  # every non-empty paragraph/table counted
    table_text, table = next((t, b) for t, b in blocks if b.kind == TABLE)
    assert "Arts grants | 1200" in table_text.split("\n")
    music = next(b for t, b in blocks if "visual arts" in t)
    assert music.section == ("Section 6: Supporting All Students › "
                             "6.1 Well-Rounded and Supportive Education for Students")
    describe = next(b for t, b in blocks if t.startswith("Describe how the SEA"))
    assert describe.kind == TEMPLATE


@pytest.mark.parametrize("text, expected", [
    ("Section 4: Accountability, Support, and Improvement for Schools", (1, "Section 4: Accountability, Support, and Improvement for Schools")),
    ("4.1 Accountability System.", (2, "4.1 Accountability System")),
    ("A. Indicators. Describe the measures included in each indicator.", (3, "A. Indicators")),
    ("The state will act.", None),
])
def test_heading_levels(text, expected):
    assert heading_level(text) == expected


@pytest.mark.parametrize("text, kind", [
    ("Describe how the SEA will support LEAs in meeting the needs of students.", TEMPLATE),
    ("Instructions: Each SEA must describe its system.", TEMPLATE),
    ("The descriptions that an SEA provides must include the following.", TEMPLATE),
    ("The SEA will create a prioritized list of districts.", RESPONSE),
    ("A. The State’s strategies and how it will support LEAs to support the continuum.", TEMPLATE),  # a state's own voice
    ("▪ Provide funding for exam fees for students who are low income;", RESPONSE),
    ("Section 6: Supporting All Students ........................ 86", TOC),
    ("The department funds summer bridge programs.", RESPONSE),
])
def test_template_and_toc_detection(text, kind):
    assert text_kind(text) == kind


# ------------------------------------------------------------- bad input: one clear line each


def test_zero_byte_file(tmp_path):
    path = tmp_path / "DE.pdf"
    path.write_bytes(b"")
    with pytest.raises(PlanError, match=r"DE\.pdf: empty file"):
        parse_plan(path, "DE")


def test_non_pdf_named_pdf(tmp_path):
    path = tmp_path / "DE.pdf"
    path.write_text("<html>Not found</html>")
    with pytest.raises(PlanError, match=r"DE\.pdf: not a PDF"):
        parse_plan(path, "DE")


def test_truncated_pdf(tmp_path, fixture_plans):
    data = (fixture_plans / "RI.pdf").read_bytes()
    path = tmp_path / "RI.pdf"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PlanError, match=r"RI\.pdf: (damaged or truncated PDF|no text layer)"):
        parse_plan(path, "RI")


def test_wrong_password_pdf(tmp_path):
    path = write_pdf(tmp_path / "RI.pdf", FIXTURE_PAGES, encrypt_password="secret")
    with pytest.raises(PlanError, match=r"RI\.pdf: encrypted PDF: the empty password does not open it"):
        parse_plan(path, "RI")


def test_empty_password_encrypted_pdf_opens(tmp_path):
    path = write_pdf(tmp_path / "RI.pdf", FIXTURE_PAGES, encrypt_password="")
    doc = parse_plan(path, "RI")
    assert "summer bridge" in doc.units[0].text


def test_scanned_pdf_without_text_layer(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "RI.pdf"
    c = canvas.Canvas(str(path))
    c.rect(100, 100, 200, 200, fill=1)  # drawing, no text
    c.showPage()
    c.save()
    with pytest.raises(PlanError, match=r"RI\.pdf: no text layer — needs OCR"):
        parse_plan(path, "RI")


def test_docx_that_is_not_a_zip(tmp_path):
    path = tmp_path / "NV.docx"
    path.write_text("plain text")
    with pytest.raises(PlanError, match=r"NV\.docx: not a Word \.docx file"):
        parse_plan(path, "NV")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "NV.txt"
    path.write_text("x")
    with pytest.raises(PlanError, match="unsupported file type"):
        parse_plan(path, "NV")


def test_docx_line_breaks_stay_inside_their_paragraph(tmp_path):
    import docx

    document = docx.Document()
    paragraph = document.add_paragraph("First line of a paragraph.")
    paragraph.add_run().add_break()
    paragraph.add_run().add_break()
    paragraph.add_run("Second line after a blank one.")
    document.add_paragraph("Next paragraph.")
    path = tmp_path / "NV.docx"
    document.save(str(path))
    doc = parse_plan(path, "NV")
    texts = [doc.units[0].text[b.start:b.end] for b in doc.units[0].blocks]
    assert texts[0] == "First line of a paragraph.\nSecond line after a blank one."
    assert [b.paragraph for b in doc.units[0].blocks] == [1, 2]
