"""The viewer panel: PDF pages rendered with the quote's words boxed, DOCX sections with the quote
marked, the routes that serve them, and the real plans' quotes found on their pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import write_docx, write_pdf

LONG = ("The Ocean State agency pairs every ninth grader with an adult mentor who meets the student "
        "twice a month and keeps in touch with the family until the end of the first year.")
ACROSS = ("Rhode Island will publish a statewide transition guide for families of students who move "
          "between schools during the year, with a named contact at each receiving school.")


@pytest.fixture
def two_page_pdf(tmp_path) -> Path:
    """Page 1 ends inside ACROSS, page 2 goes on with it (after its running header)."""
    words = ACROSS.split()
    filler = ["Other text about state assessments fills this page."] * 30
    return write_pdf(tmp_path / "RI.pdf", [filler[:20] + [LONG] + [" ".join(words[:14])],
                                          ["Rhode Island plan", " ".join(words[14:]), "More text."]])


def test_a_quote_is_boxed_inside_the_page_where_its_words_are(two_page_pdf):
    from assistant import pageview

    location = pageview.locate_quote(two_page_pdf, 1, LONG)
    assert location.found and [m.page for m in location.pages] == [1]
    boxes = location.pages[0].boxes
    assert len(boxes) >= 2  # the sentence wraps over lines: one box per line run
    for box in boxes:
        assert 0 <= box.left < 1 and 0 <= box.top < 1 and 0 < box.width <= 1 and 0 < box.height < 0.05
    # The boxes sit where reportlab drew the lines: from x = 60 pt on a 612 pt page, top to bottom.
    assert abs(boxes[0].left - 60 / 612) < 0.01
    assert [b.top for b in boxes] == sorted(b.top for b in boxes)
    # Not a near match: one changed word and nothing is marked.
    assert not pageview.locate_quote(two_page_pdf, 1, LONG.replace("twice", "three times")).found


def test_a_quote_over_a_page_break_is_marked_on_both_pages(two_page_pdf):
    from assistant import pageview

    location = pageview.locate_quote(two_page_pdf, 1, ACROSS)
    assert [m.page for m in location.pages] == [1, 2] and all(m.boxes for m in location.pages)
    first, second = location.pages
    assert first.boxes[-1].top > 0.5 and second.boxes[0].top < 0.2  # bottom of 1, top of 2
    assert not pageview.locate_quote(two_page_pdf, 2, LONG).found


def test_pages_render_as_png_at_each_zoom(two_page_pdf):
    from assistant import pageview

    small, large = (pageview.render_png(two_page_pdf, 1, z) for z in (1.0, 2.0))
    assert small.startswith(b"\x89PNG") and large.startswith(b"\x89PNG") and len(large) > len(small)
    assert pageview.page_size(two_page_pdf, 2) == (612.0, 792.0)


def test_viewer_page_marks_the_quote_and_links_paging_zoom_and_the_whole_file(two_page_pdf):
    from assistant.viewer import pdf_viewer_html

    page, status = pdf_viewer_html(two_page_pdf.parent, "RI.pdf", 1, ACROSS, zoom=1.0)
    assert status == 200
    assert page.count('class="box"') >= 2 and page.count('id="q"') == 1
    assert "marked on pages 1 and 2" in page and "../page-image/RI.pdf/2?zoom=1" in page
    assert 'href="RI.pdf?page=2&amp;zoom=1.0#q"' in page and "Previous page" not in page
    assert "zoom=1.5" in page and "Zoom out" in page and 'href="../plans/RI.pdf#page=1"' in page
    fitted, _ = pdf_viewer_html(two_page_pdf.parent, "RI.pdf", 1, LONG)  # the default: fit the width
    assert "Fit width" in fitted and 'style="width:100%"' in fitted and "Zoom out" not in fitted
    assert "../page-image/RI.pdf/1?zoom=1.5" in fitted
    assert "<script" not in page
    missing, status = pdf_viewer_html(two_page_pdf.parent, "RI.pdf", 2, "Words that are on no page of it.")
    assert status == 200 and "could not be found" in missing and 'id="q"' in missing
    assert pdf_viewer_html(two_page_pdf.parent, "RI.pdf", 3)[1] == 404
    assert pdf_viewer_html(two_page_pdf.parent, "../RI.pdf", 1)[1] == 404


def test_docx_viewer_marks_the_quoted_words_in_the_cited_paragraph(tmp_path):
    from assistant.viewer import docx_section, viewer_page_html

    write_docx(tmp_path / "VT.docx", [("h1", "Section 6"), ("p", "An opening paragraph."),
                                       ("p", "First sentence here. " + LONG + " Last one."),
                                       ("p", "A closing paragraph.")])
    view = docx_section(tmp_path, "VT.docx", 3)  # the heading is paragraph 1
    page = viewer_page_html(view, "VT.docx", 3, LONG)
    assert '<mark id="q">' + LONG + "</mark>" in page
    assert "First sentence here." in page and "quoted words are marked" in page
    assert 'href="../plans/VT.docx"' in page
    unmarked = viewer_page_html(view, "VT.docx", 3, "Not in it.")
    assert "<mark" not in unmarked and 'id="q"' in unmarked and "not found" in unmarked


def test_viewer_routes_serve_the_panel_and_images(two_page_pdf, fixture_assistant):
    from assistant.viewer import viewer_link
    from assistant.webapp import create_server

    with TestClient(create_server(fixture_assistant, two_page_pdf.parent)) as c:
        link = viewer_link("RI.pdf", page=1, quote_text=LONG)
        page = c.get("/" + link.split("#")[0])
        assert page.status_code == 200 and 'class="box"' in page.text
        assert "script-src" not in page.headers["content-security-policy"]  # the document policy
        image = c.get("/page-image/RI.pdf/1?zoom=1.5")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert c.get("/page-image/RI.pdf/9").status_code == 404
        assert c.get("/page-image/..%2FRI.pdf/1").status_code == 404
        assert c.get("/page-image/RI.pdf/1?zoom=40").status_code == 200  # snapped to a zoom step
        # A PDF in the folder that the index does not hold (it failed to index) is never drawn.
        (two_page_pdf.parent / "XX.pdf").write_bytes(two_page_pdf.read_bytes())
        assert c.get("/page-image/XX.pdf/1").status_code == 404
        assert c.get("/viewer/XX.pdf?page=1").status_code == 404


def test_quotes_from_the_real_index_are_found_on_their_pdf_pages(real_assistant, shared_plans):
    """Every 10th PDF passage of the real index: its first readable sentence, as an answer would
    quote it, is found and boxed on the page the citation names (or over that page's end)."""
    from assistant import pageview
    from assistant.answer.compose import is_readable_sentence

    checked = found = 0
    missed = []
    for chunk in real_assistant.retriever.chunks[::10]:
        if chunk.page is None:
            continue
        quote = next((chunk.text[a:b] for a, b in chunk.sentences if is_readable_sentence(chunk.text[a:b])), None)
        if quote is None:
            continue
        checked += 1
        if pageview.locate_quote(shared_plans / chunk.source, chunk.page, quote).found:
            found += 1
        else:
            missed.append((chunk.source, chunk.page, quote[:60]))
    assert checked >= 60
    assert found == checked, missed
