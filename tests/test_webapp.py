"""The browser app's handlers, without a browser: they take the assistant and return data or HTML."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.config import Settings
from assistant.errors import ConfigError, EssaError
from assistant.records import Citation
from assistant.webapp import (FRIENDLY_FAILURE, Turn, answer_html, answer_text_html, auth_pair,
                              chat_reply, compare_html, coverage_cell_html, coverage_map_html,
                              create_server, docx_section, escape_text, evaluation_outputs,
                              example_questions, highlight_quote, plan_link, resolve_follow_up,
                              resolve_plan_file, viewer_page_html)

RI_QUESTION = "How does Rhode Island help students moving from eighth grade into ninth grade?"


def citation(**changes) -> Citation:
    base = Citation(rank=1, chunk_id="c1", state="RI", source="RI.pdf", page=1, page_label="1",
                    section="6.1 Transitions", paragraph=None, quote="Each ninth grader has a mentor.",
                    passage="Summer bridge. Each ninth grader has a mentor. Counselors call.", score=0.5,
                    categories=("transitions",))
    return replace(base, **changes)


# ------------------------------------------------------------------ escaping


def test_escape_text_neutralises_html_templates_and_markdown():
    out = escape_text("<script>x()</script> ${a} {{b}} **bold** [l](javascript:y) $x$ `c`")
    for dangerous in ("<", ">", "${", "{{", "**", "](", "$x$", "`"):
        assert dangerous not in out
    assert "&lt;script&gt;" in out


def test_highlight_marks_the_quote_and_escapes_the_rest():
    html = highlight_quote("Before <b>. Each ninth grader\nhas a mentor. After.", "Each ninth grader has a mentor.")
    assert "<mark>Each ninth grader<br>has a mentor.</mark>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "<mark>" not in highlight_quote("Nothing matches here.", "Absent sentence.")
    long = "Early words. " * 60 + "The cited sentence is here. " + "Later words. " * 80
    cut = highlight_quote(long, "The cited sentence is here.")
    assert cut.startswith("… ") and cut.endswith(" …") and "<mark>The cited sentence is here.</mark>" in cut
    assert len(cut) < len(long) / 2


def test_answer_text_keeps_only_our_markers_and_state_leads():
    html = answer_text_html("**Delaware:** Ninth graders get mentors <i>now</i>. [1]\n\n**Nevada:** x [2]")
    assert "<strong>Delaware:</strong>" in html and "<strong>Nevada:</strong>" in html
    assert html.count('class="essa-marker"') == 2
    assert "<i>" not in html


# ------------------------------------------------------------------ plan files and viewer


def test_resolve_plan_file_serves_only_plan_files_directly_in_the_directory(tmp_path):
    plans = tmp_path / "plans"
    (plans / "sub").mkdir(parents=True)
    for name in ("RI.pdf", "sub/MA.pdf", ".hidden.pdf", "notes.txt"):
        (plans / name).write_bytes(b"%PDF-1.4")
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"%PDF-1.4")
    (plans / "link.pdf").symlink_to(outside)
    assert resolve_plan_file(plans, "RI.pdf") == (plans / "RI.pdf").resolve()
    for name in ("../outside.pdf", "sub/MA.pdf", "/etc/passwd", str(plans / "RI.pdf"), ".hidden.pdf",
                 "notes.txt", "missing.pdf", "", "..", "RI.pdf\x00.txt", "link.pdf"):
        assert resolve_plan_file(plans, name) is None, name


def test_plan_link_opens_the_pdf_page_or_the_docx_viewer(fixture_plans):
    assert plan_link(citation(page=2, page_label="ii"), fixture_plans) == ("plans/RI.pdf#page=2", "Open page ii")
    docx = citation(source="kansas-plan.docx", page=None, page_label=None, paragraph=4)
    assert plan_link(docx, fixture_plans) == ("viewer/kansas-plan.docx?paragraph=4#p4", "Open section")
    assert plan_link(citation(source="XX.pdf"), fixture_plans) is None
    assert plan_link(citation(), None) is None


def test_docx_section_shows_the_cited_paragraph_in_its_section(fixture_plans):
    view = docx_section(fixture_plans, "kansas-plan.docx", 4)
    assert view is not None and "6.1" in view.section
    cited = [p for p in view.paragraphs if p.cited]
    assert [p.number for p in cited] == [4] and "music, visual arts" in cited[0].text
    assert docx_section(fixture_plans, "kansas-plan.docx", 999) is None
    assert docx_section(fixture_plans, "RI.pdf", 1) is None
    page = viewer_page_html(view, "kansas-plan.docx", 4)
    assert 'id="p4" class="cited"' in page
    assert "not available" in viewer_page_html(None, "<x>.docx", 3) and "<x>" not in viewer_page_html(None, "<x>.docx", 3)


# ------------------------------------------------------------------ answers and chat


def test_answer_html_has_a_card_per_citation_with_state_title_place_and_link(fixture_assistant, fixture_plans):
    answer = fixture_assistant.ask(RI_QUESTION)
    assert not answer.abstained and answer.citations
    html = answer_html(answer, fixture_assistant.plans, fixture_assistant.tagger.label, fixture_plans, turn=3)
    assert html.count('class="essa-card"') == len(answer.citations)
    assert 'id="t3-c1"' in html and "Rhode Island" in html
    assert 'href="plans/RI.pdf#page=1"' in html
    assert "Copy as Markdown" in html and html.count("Copy citation") == len(answer.citations)
    assert "<mark>" in html
    assert "\n" not in html  # one HTML block for the chat's Markdown pass


def test_abstention_looks_different_and_lists_related_passages(fixture_assistant, fixture_plans):
    answer = fixture_assistant.ask("What is the state's policy on submarine maintenance crews?",
                                   states=["RI"])
    assert answer.abstained
    html = answer_html(answer, fixture_assistant.plans, fixture_assistant.tagger.label, fixture_plans)
    assert "essa-abstained" in html and "Not found in the plans" in html
    if answer.related:
        assert "Possibly related passages" in html
        assert html.count("essa-card essa-related") == len(answer.related)


def test_copy_buttons_carry_the_markdown_as_attribute_text(fixture_assistant, fixture_plans):
    import re

    answer = fixture_assistant.ask(RI_QUESTION)
    page = answer_html(answer, fixture_assistant.plans, fixture_assistant.tagger.label, fixture_plans)
    from urllib.parse import unquote

    encoded = re.search(r'class="essa-copy-md">[^<]*</button><span class="essa-copy-text" '
                        r'hidden>([^<]*)</span>', page).group(1)
    assert re.fullmatch(r"[A-Za-z0-9%]+", encoded)  # nothing HTML or Markdown could read
    copied = unquote(encoded)
    assert copied == answer.to_markdown(fixture_assistant.plans)


def test_chat_keeps_the_conversation_and_each_turn_has_its_own_citations(fixture_assistant, fixture_plans):
    history, turns = chat_reply(fixture_assistant, fixture_plans, RI_QUESTION, [], [])
    history, turns = chat_reply(fixture_assistant, fixture_plans, "What about Kansas?", history, turns)
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert 'id="t1-c1"' in history[1]["content"] and 'id="t2-c' in history[3]["content"]
    # The follow-up re-asked the question for Kansas.
    assert turns[1] == Turn(RI_QUESTION.replace("Rhode Island", "Kansas"), ("KS",))
    assert chat_reply(fixture_assistant, fixture_plans, "   ", history, turns) == (history, turns)


def test_follow_up_rules():
    previous = Turn("How are transitions supported?", ("DE",))
    assert resolve_follow_up("What about Nevada?", previous) == ("How are transitions supported?", ["NV"])
    named = Turn("How does Delaware support transitions?", ("DE",))
    assert resolve_follow_up("And Nevada and Massachusetts?", named) == (
        "How does Nevada and Massachusetts support transitions?", ["NV", "MA"])
    assert resolve_follow_up("And counselors?", previous) == ("And counselors?", ["DE"])
    assert resolve_follow_up("Does Nevada fund arts?", previous) == ("Does Nevada fund arts?", None)
    assert resolve_follow_up("What about Nevada?", previous, ["MA"]) == ("What about Nevada?", ["MA"])
    assert resolve_follow_up("Any question", None) == ("Any question", None)


def test_chat_errors_are_one_friendly_sentence(fixture_plans):
    class Broken:
        def ask(self, *args, **kwargs):
            raise RuntimeError("secret internals\nTraceback (most recent call last)")

    class Ours:
        def ask(self, *args, **kwargs):
            raise EssaError("index/: no index here; run essa-qa index")

    history, _ = chat_reply(Broken(), fixture_plans, "q", [], [])
    assert FRIENDLY_FAILURE in history[-1]["content"] and "secret" not in history[-1]["content"]
    history, _ = chat_reply(Ours(), fixture_plans, "q", [], [])
    assert "no index here" in history[-1]["content"] and "essa-error" in history[-1]["content"]


def test_examples_cover_transitions_and_sel_for_each_state(fixture_assistant):
    examples = example_questions(fixture_assistant)
    assert len(examples) == 2 * len(fixture_assistant.states)
    assert any("Kansas" in e and "social emotional" in e for e in examples)
    assert any("Rhode Island" in e and "transitions" in e for e in examples)


# ------------------------------------------------------------------ compare and map


def test_compare_has_one_column_per_state(fixture_assistant, fixture_plans):
    html = compare_html(fixture_assistant, fixture_plans, ["KS", "RI"], "arts and music courses", None)
    assert html.count('class="essa-compare-col"') == 2
    assert 'data-state="KS"' in html and 'data-state="RI"' in html
    by_category = compare_html(fixture_assistant, fixture_plans, ["RI"], "", "transitions")
    assert 'data-state="RI"' in by_category
    assert "Pick at least one state" in compare_html(fixture_assistant, fixture_plans, [], "x", None)
    assert "Type a topic" in compare_html(fixture_assistant, fixture_plans, ["RI"], " ", None)


def test_map_has_a_tile_per_state_and_category(fixture_assistant):
    html = coverage_map_html(fixture_assistant)
    n = len(fixture_assistant.states) * len(fixture_assistant.tagger.ids)
    assert html.count('class="essa-cell"') == n
    assert 'data-state="KS" data-category="sel"' in html


def test_map_cell_lists_its_passages_as_cards(fixture_assistant, fixture_plans):
    from assistant.coverage import coverage_table

    table = coverage_table(fixture_assistant)
    state, category = next((c.state, c.category) for row in table.cells for c in row if c.count)
    html = coverage_cell_html(fixture_assistant, fixture_plans, state, category)
    assert html.count('class="essa-card"') == min(table.cell(state, category).count, 10)
    assert "Select a tile" in coverage_cell_html(fixture_assistant, fixture_plans, "ZZ", "<x>")


# ------------------------------------------------------------------ server, routes, auth


@pytest.fixture(scope="module")
def client(fixture_assistant, fixture_plans):
    with TestClient(create_server(fixture_assistant, fixture_plans)) as c:
        yield c


def test_plan_route_serves_pdfs_inline_and_nothing_else(client):
    response = client.get("/plans/RI.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.content.startswith(b"%PDF")
    for path in ("/plans/..%2Fconftest.py", "/plans/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/plans/missing.pdf",
                 "/plans/notes.txt", "/plans/.hidden.pdf"):
        assert client.get(path).status_code == 404, path


def test_viewer_route_shows_the_section(client):
    response = client.get("/viewer/kansas-plan.docx", params={"paragraph": 4})
    assert response.status_code == 200 and 'class="cited"' in response.text
    assert client.get("/viewer/kansas-plan.docx", params={"paragraph": 999}).status_code == 404


def test_the_ui_is_served(client):
    assert client.get("/").status_code == 200
    config = client.get("/config").json()
    assert config["title"] == "ESSA Plans Assistant"


def test_password_protects_the_ui_and_the_plan_files(fixture_assistant, fixture_plans):
    app = create_server(fixture_assistant, fixture_plans, auth=("editor", "s3cret"))
    with TestClient(app) as c:
        assert c.get("/plans/RI.pdf").status_code == 401
        assert c.post("/login", data={"username": "editor", "password": "wrong"}).status_code == 400
        assert c.post("/login", data={"username": "editor", "password": "s3cret"}).status_code == 200
        assert c.get("/plans/RI.pdf").status_code == 200


def test_auth_comes_from_settings():
    assert auth_pair(Settings()) is None
    assert auth_pair(Settings(auth_user="a", auth_password="b")) == ("a", "b")
    with pytest.raises(ConfigError):
        auth_pair(Settings(auth_user="a"))


# ------------------------------------------------------------------ evaluate


def test_evaluation_outputs_metrics_and_charts(fixture_assistant, fixture_plans, tmp_path):
    questions = tmp_path / "questions.jsonl"
    rows = [{"id": "ri-01", "question": RI_QUESTION, "states": ["RI"], "locators": [{"state": "RI", "page": 1}],
             "key_terms": ["mentor"], "categories": ["transitions"], "kind": "lookup"},
            {"id": "ks-01", "question": "Does Kansas fund submarine crews?", "states": ["KS"], "locators": [],
             "key_terms": [], "categories": [], "kind": "unanswerable"}]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary, ablations, chart, latency, status = evaluation_outputs(
        fixture_assistant, fixture_plans, str(questions), False, 5, tmp_path / "report")
    assert any(label == "hit@5" for label, _ in summary)
    assert ablations and all(len(row) == 6 for row in ablations)
    assert Path(chart).is_file() and Path(latency).is_file()
    assert status.startswith("2 questions")
