"""Layouts beyond the Department's template, generated here: a plan in its own structure with no
numbered sections (PDF and Word), and one whose table runs over a page break. Sections, page
labels and text must hold, or the plan is indexed with a warning that says what is lost: never
silently."""

from __future__ import annotations

from assistant.ingest import ParseBudget, parse_plan

from conftest import write_docx, write_pdf

OWN_STRUCTURE = [
    ["Our Vision for Every Learner",
     "The department will expand dual enrollment so that every high school offers college courses.",
     "Family engagement teams visit each middle school twice a year."],
    ["Supporting New Teachers",
     "Every first-year teacher is paired with a mentor for two years."],
]


def test_a_pdf_without_numbered_sections_is_indexed_with_a_warning(tmp_path):
    document = parse_plan(write_pdf(tmp_path / "OH.pdf", OWN_STRUCTURE), "OH", ParseBudget(ocr=False))
    assert [u.page for u in document.units] == [1, 2] and [u.page_label for u in document.units] == ["1", "2"]
    text = " ".join(u.text for u in document.units)
    assert "dual enrollment" in text and "paired with a mentor" in text
    assert document.warnings == ("OH.pdf: no sections found (numbered template headings, Word heading "
                                 "styles or PDF bookmarks); passages are cited by page only",)


def test_a_word_plan_with_heading_styles_but_no_numbers_keeps_its_sections(tmp_path):
    document = parse_plan(write_docx(tmp_path / "OH.docx", [
        ("h1", "Our Vision for Every Learner"), ("p", OWN_STRUCTURE[0][1]),
        ("h1", "Supporting New Teachers"), ("p", OWN_STRUCTURE[1][1])]), "OH")
    sections = {b.section for u in document.units for b in u.blocks if b.section}
    assert any("Supporting New Teachers" in s for s in sections), sections
    assert not any("no sections found" in w for w in document.warnings)


def test_a_word_plan_without_headings_is_indexed_with_a_warning(tmp_path):
    document = parse_plan(write_docx(tmp_path / "OH.docx", [("p", OWN_STRUCTURE[0][1]),
                                                            ("p", OWN_STRUCTURE[1][1])]), "OH")
    assert "dual enrollment" in " ".join(u.text for u in document.units)
    assert any(w.endswith("passages are cited by paragraph only") for w in document.warnings)


def test_a_table_running_over_a_page_break_keeps_both_pages_rows_and_labels(tmp_path):
    rows = [f"Grade {g} target {60 + g}% by 2030" for g in range(3, 9)]
    pages = [["Section 1: Long-term Goals", "1.1 Academic Achievement.", *rows[:3]],
             ["1.1 Academic Achievement (continued).", *rows[3:]]]
    document = parse_plan(write_pdf(tmp_path / "OH.pdf", pages), "OH", ParseBudget(ocr=False))
    first, second = document.units
    assert all(r in first.text for r in rows[:3]) and all(r in second.text for r in rows[3:])
    assert (first.page_label, second.page_label) == ("1", "2")
    sections = [b.section for b in second.blocks if "Grade 8" in second.text[b.start:b.end]]
    assert sections and "Long-term Goals" in sections[0]
    assert not any("no sections found" in w for w in document.warnings)
