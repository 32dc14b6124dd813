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


LEFT_COLUMN = ["6.1 Transitions.", "The department runs summer bridge", "programs for every rising ninth", "grader in the state, with a mentor",
               "for each student and a counselor", "who calls each family before the", "first day of high school begins."]
RIGHT_COLUMN = ["6.2 English Learners.", "Newcomer centers open in every", "region so that immigrant students", "learn English while they study",
                "mathematics and science with", "teachers certified in language", "instruction for older students."]


def write_two_column_pdf(path, pages):
    """Each page: a heading across the page, then two columns drawn line by line across both (as
    some generators write them, which a plain extraction runs together), then the page number."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    for number, (heading, left, right) in enumerate(pages, 1):
        c.drawString(60, 750, heading)
        y = 720
        for l, r in zip(left, right):
            c.drawString(60, y, l)
            c.drawString(330, y, r)
            y -= 14
        c.drawString(300, 40, str(number))
        c.showPage()
    c.save()
    return path


def test_a_two_column_page_is_read_column_by_column_with_its_sections(tmp_path):
    path = write_two_column_pdf(tmp_path / "OH.pdf", [("Section 6: Supporting All Students", LEFT_COLUMN, RIGHT_COLUMN)])
    document = parse_plan(path, "OH", ParseBudget(ocr=False))
    (unit,) = document.units
    flat = " ".join(unit.text.split())
    assert " ".join(LEFT_COLUMN[1:]) in flat and " ".join(RIGHT_COLUMN[1:]) in flat
    assert flat.index(LEFT_COLUMN[-1]) < flat.index(RIGHT_COLUMN[0])
    assert unit.page_label == "1"
    sections = {unit.text[b.start:b.end].split()[0]: b.section for b in unit.blocks}
    assert sections.get("The", "").endswith("6.1 Transitions") and sections["Newcomer"].endswith("6.2 English Learners")
    assert "OH.pdf: page 1 laid out in two columns; read column by column" in document.warnings


def test_the_viewer_marks_a_quote_inside_one_column(tmp_path):
    from assistant.pageview import locate_quote

    path = write_two_column_pdf(tmp_path / "OH.pdf", [("Section 6: Supporting All Students", LEFT_COLUMN, RIGHT_COLUMN)])
    found = locate_quote(path, 1, "a counselor who calls each family before the first day of high school begins.")
    (marks,) = found.pages
    assert found.found and len(marks.boxes) == 3  # three lines of the left column
    assert all(box.left + box.width < 0.5 for box in marks.boxes)
    right = locate_quote(path, 1, "Newcomer centers open in every region so that immigrant students learn English")
    assert right.found and all(box.left > 0.5 for box in right.pages[0].boxes)


def test_a_table_of_short_cells_is_not_taken_for_two_columns(tmp_path):
    rows = [(f"Grade {g} reading target", f"{60 + g}%") for g in range(3, 12)]
    path = write_two_column_pdf(tmp_path / "OH.pdf", [("Section 1: Long-term Goals", [r[0] for r in rows], [r[1] for r in rows])])
    document = parse_plan(path, "OH", ParseBudget(ocr=False))
    assert not any("two columns" in w for w in document.warnings)
    assert "Grade 3 reading target" in document.units[0].text


# The Department's revised template (March 2017) runs by program with dotted item labels; the
# answers under each question are the state's own words.
REVISED_PAGES = [
    ["A. Title I, Part A: Improving Basic Programs Operated by Local Educational Agencies (LEAs)",
     "A.4. Statewide Accountability System and School Support and Improvement Activities (ESEA section 1111(c) and (d)):",
     "A.4.iii. Establishment of Long-Term Goals (ESEA section 1111(c)(4)(A)):",
     "A.4.iii.a. Academic Achievement.",
     "The Prairie State expects 75 percent of students to read on grade level by 2030."],
    ["A.4.iii.b. Graduation Rate.",
     "The four-year graduation rate goal is 92 percent for every student group by 2030.",
     "E. Title III, Part A: English Language Acquisition and Language Enhancement",
     "E.1. Entrance and Exit Procedures (ESEA section 3113(b)(2)):",
     "Every district screens new students with the same home language survey within 30 days."],
]


def _section_of(document, needle: str) -> str:
    for unit in document.units:
        for block in unit.blocks:
            if needle in unit.text[block.start:block.end]:
                return block.section
    raise AssertionError(f"{needle!r} not in the document")


def test_a_plan_on_the_revised_template_keeps_its_program_sections(tmp_path):
    from assistant.ingest import REVISED

    document = parse_plan(write_pdf(tmp_path / "KS.pdf", REVISED_PAGES), "KS", ParseBudget(ocr=False))
    assert document.template == REVISED
    section = _section_of(document, "75 percent of students")
    assert section.startswith("A. Title I, Part A: Improving Basic Programs")
    assert section.endswith("› A.4 Statewide Accountability System and School Support and Improvement Activities"
                            " › A.4.iii Establishment of Long-Term Goals › A.4.iii.a Academic Achievement"), section
    assert _section_of(document, "92 percent").endswith("A.4.iii Establishment of Long-Term Goals › A.4.iii.b Graduation Rate")
    assert _section_of(document, "home language survey").startswith("E. Title III, Part A")
    assert _section_of(document, "home language survey").endswith("E.1 Entrance and Exit Procedures")
    assert [u.page_label for u in document.units] == ["1", "2"]
    assert not any("no sections found" in w for w in document.warnings)


def test_a_word_plan_on_the_revised_template_without_heading_styles(tmp_path):
    from assistant.ingest import REVISED

    blocks = [("p", line) for page in REVISED_PAGES for line in page]
    document = parse_plan(write_docx(tmp_path / "KS.docx", blocks), "KS")
    assert document.template == REVISED
    assert _section_of(document, "92 percent").endswith("A.4.iii.b Graduation Rate")
    assert _section_of(document, "home language survey").endswith("E.1 Entrance and Exit Procedures")


def test_a_component_plan_with_the_revised_questions_embedded_stays_a_component_plan(tmp_path):
    from assistant.ingest import CCSSO

    pages = [["Section 1: Long-term Goals", "A. Academic Achievement.",
              "Revised Template Question A.4.iii.a: Describe the long-term goals for all students.",
              "The Ocean State expects 80 percent of students to read on grade level by 2028."],
             ["Section 6: Supporting All Students", "6.2 Program-Specific Requirements.",
              "B. Title I, Part C: Education of Migratory Children.",
              "B.1. Supporting Needs of Migratory Children (ESEA section 1304(b)(1)): Describe how the SEA will meet needs.",
              "Migrant liaisons visit each family within two weeks of its arrival."]]
    document = parse_plan(write_pdf(tmp_path / "RI.pdf", pages), "RI", ParseBudget(ocr=False))
    assert document.template == CCSSO
    assert _section_of(document, "80 percent").startswith("Section 1: Long-term Goals")
    assert _section_of(document, "Migrant liaisons").startswith("Section 6: Supporting All Students")
    kinds = {unit.text[b.start:b.end][:24]: b.kind for unit in document.units for b in unit.blocks}
    assert kinds["Revised Template Questio"] == "template"


def test_plans_list_names_each_plan_s_template(tmp_path):
    import json

    from click.testing import CliRunner

    from assistant.cli import main

    plans = tmp_path / "plans"
    plans.mkdir()
    write_pdf(plans / "KS.pdf", REVISED_PAGES)
    write_pdf(plans / "OH.pdf", OWN_STRUCTURE)
    result = CliRunner().invoke(main, ["plans", "list", "--plans", str(plans), "--index", str(tmp_path / "none"),
                                       "--json"], catch_exceptions=False)
    rows = {row["file"]: row for row in json.loads(result.output)}
    assert (rows["KS.pdf"]["template"], rows["OH.pdf"]["template"]) == ("revised", "")
    assert rows["AL.pdf"]["template"] is None  # not fetched: not read
