"""The browser app's handlers, without a browser: they take the assistant and return data or HTML."""

from __future__ import annotations

import json
import logging
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.config import Settings
from assistant.errors import ConfigError, EssaError
from assistant.records import Citation
from assistant.webapp import (ANSWERS, DEFAULT_QUESTIONS, FRIENDLY_FAILURE, LoginThrottle, Turn,
                              answer_html, answer_text_html, auth_pair, build_app, chat_reply,
                              compare_html, coverage_cell_html, coverage_map_html, create_server,
                              docx_section, escape_text, evaluation_outputs, example_questions,
                              highlight_quote, password_check, plan_link, resolve_follow_up,
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


def test_plan_link_shows_the_pdf_page_or_the_docx_section_in_the_viewer(fixture_plans):
    from urllib.parse import quote_plus

    cited = citation(page=2, page_label="ii")
    assert plan_link(cited, fixture_plans) == (
        "viewer/RI.pdf?page=2&quote=" + quote_plus(cited.quote) + "#q", "Show page ii")
    docx = citation(source="kansas-plan.docx", page=None, page_label=None, paragraph=4)
    assert plan_link(docx, fixture_plans) == (
        "viewer/kansas-plan.docx?paragraph=4&quote=" + quote_plus(docx.quote) + "#q", "Show section")
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
    assert 'href="viewer/RI.pdf?page=1&amp;quote=' in html and "Show page 1" in html
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


def test_map_shows_every_state_indexed_or_not(fixture_assistant, fixture_plans):
    from assistant.states import STATE_NAMES

    html = coverage_map_html(fixture_assistant, fixture_plans)
    assert html.count('class="essa-tile ') == len(STATE_NAMES) == 53
    assert html.count('class="essa-tile essa-indexed"') == len(fixture_assistant.states)
    assert 'data-state="RI" data-category="*"' in html and 'data-state="KS" data-category="*"' in html
    assert 'aria-label="Texas: not fetched"' in html and 'aria-label="Puerto Rico: not fetched"' in html
    assert f"{len(fixture_assistant.states)} of 53 plans indexed" in html
    # A state's tile lists its strongest passages for each approach.
    state = coverage_cell_html(fixture_assistant, fixture_plans, "KS", "*")
    assert "Kansas: the approaches in its plan" in state
    assert state.count("<h4>") == len(fixture_assistant.tagger.ids) and 'class="essa-card"' in state
    assert "Select a tile" in coverage_cell_html(fixture_assistant, fixture_plans, "TX", "*")


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


def test_evaluation_finds_its_question_set_from_any_working_directory(fixture_assistant, fixture_plans,
                                                                       tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository, as when the app is started elsewhere
    assert DEFAULT_QUESTIONS.is_absolute() and DEFAULT_QUESTIONS.is_file()
    summary, _, chart, _, status = evaluation_outputs(
        fixture_assistant, fixture_plans, "eval/questions.jsonl", True, 5, tmp_path / "report")
    assert re.match(r"\d+ questions in", status) and summary
    assert Path(chart).is_file() and Path(chart).is_relative_to(tmp_path / "report")


# ------------------------------------------------------------------ security headers


def test_every_response_carries_the_security_headers(client):
    for path in ("/", "/config", "/gradio_api/info", "/plans/RI.pdf", "/plans/missing.pdf",
                 "/viewer/kansas-plan.docx?paragraph=4", "/essa/app.js", "/theme.css"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "SAMEORIGIN", path
        assert headers["referrer-policy"] == "same-origin", path
        policy = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
        assert policy["frame-ancestors"] == "'self'", path
        assert "'unsafe-inline'" not in policy.get("script-src", ""), path
    document = client.get("/viewer/kansas-plan.docx?paragraph=4").headers["content-security-policy"]
    assert document.startswith("default-src 'none'")  # nothing runs in a plan or the viewer


def test_the_page_runs_only_scripts_with_its_own_fresh_nonce(client):
    first, second = client.get("/"), client.get("/")
    nonces = [re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"]).group(1)
              for r in (first, second)]
    assert nonces[0] != nonces[1]
    tags = re.findall(r"<script\b[^>]*>", first.text)
    assert tags and all(f'nonce="{nonces[0]}"' in tag for tag in tags)
    assert "<script>" not in first.text  # our own script is a file now, not inline code
    assert client.get("/essa/app.js").headers["content-type"].startswith("text/javascript")


# ------------------------------------------------------------------ login


def log_in(c: TestClient, password: str = "s3cret"):
    return c.post("/login", data={"username": "editor", "password": password})


@pytest.fixture
def protected(fixture_assistant, fixture_plans):
    with TestClient(create_server(fixture_assistant, fixture_plans, auth=("editor", "s3cret"))) as c:
        yield c


BEFORE_LOGIN_REFUSED = ("/config", "/config/", "/gradio_api/info", "/gradio_api/info/",
                        "/gradio_api/openapi.json", "/gradio_api/queue/status", "/gradio_api/app_id",
                        "/gradio_api/user", "/gradio_api/token", "/gradio_api/startup-events",
                        "/gradio_api/file=eval/questions.jsonl", "/monitoring", "/plans/RI.pdf",
                        "/viewer/kansas-plan.docx", "/essa/app.js")


def test_nothing_but_the_login_page_before_login(protected, fixture_assistant):
    page = protected.get("/")
    assert page.status_code == 200 and "auth_required" in page.text
    api_info = json.loads(re.search(r"window\.gradio_api_info = (.*?);</script>", page.text).group(1))
    assert api_info == {"named_endpoints": {}, "unnamed_endpoints": {}}
    for leak in ("Rhode Island", "Kansas", '"RI"', '"KS"', "on_ask", "social emotional", "transitions"):
        assert leak not in page.text, leak
    for path in BEFORE_LOGIN_REFUSED:
        assert protected.get(path).status_code == 401, path
    assert protected.post("/gradio_api/call/on_ask", json={"data": ["x", [], [], [], 5, ""]}).status_code == 401
    assert protected.post("/gradio_api/queue/join", json={}).status_code == 401
    for path in ("/openapi.json", "/docs", "/redoc"):  # no schema pages, logged in or not
        assert protected.get(path).status_code in (401, 404), path

    assert log_in(protected).status_code == 200
    config = protected.get("/config")
    assert config.status_code == 200 and "Rhode Island" in config.text  # the examples, now
    assert "/on_ask" in protected.get("/gradio_api/info").json()["named_endpoints"]
    assert "on_ask" in protected.get("/").text
    for path in ("/plans/RI.pdf", "/essa/app.js", "/gradio_api/app_id"):
        assert protected.get(path).status_code == 200, path
    for path in ("/openapi.json", "/docs"):
        assert protected.get(path).status_code == 404, path


def test_failed_logins_are_throttled_until_the_window_passes(protected):
    for _ in range(5):
        assert log_in(protected, "wrong").status_code == 400
    refused = log_in(protected)  # the right password too: the window is closed for this client
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert protected.get("/config").status_code == 401


def test_a_successful_login_clears_the_failures(protected):
    for _ in range(4):
        assert log_in(protected, "wrong").status_code == 400
    assert log_in(protected).status_code == 200
    assert [log_in(protected, "wrong").status_code for _ in range(6)] == [400] * 5 + [429]


def test_login_throttle_counts_attempts_in_a_sliding_window():
    now = [100.0]
    throttle = LoginThrottle(limit=3, window_s=60.0, clock=lambda: now[0])
    assert [throttle.begin("a") for _ in range(3)] == [0, 0, 0]
    assert throttle.begin("a") == 60 and throttle.begin("b") == 0  # per client
    now[0] += 59.5
    assert throttle.begin("a") == 1
    now[0] += 1.0  # the first attempts have left the window
    assert throttle.begin("a") == 0
    throttle.succeeded("a")
    assert [throttle.begin("a") for _ in range(3)] == [0, 0, 0]
    assert all(LoginThrottle(limit=0).begin("a") == 0 for _ in range(10))


def test_password_check_needs_both_fields():
    check = password_check("editor", "s3cret")
    assert check("editor", "s3cret")
    assert not check("editor", "s3cret ") and not check("editr", "s3cret") and not check("", "")


# ------------------------------------------------------------------ concurrency


def test_answer_events_share_one_bounded_concurrency_group(fixture_assistant, fixture_plans):
    demo = build_app(fixture_assistant, fixture_plans, concurrency=3)
    limits = {fn.name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values()}
    for name in ("on_ask", "on_compare", "on_cell", "on_page_load"):
        assert limits[name] == (ANSWERS, 3), name
    assert limits["on_evaluate"] == ("evaluate", 1)


def test_concurrent_questions_get_the_answers_asked_one_at_a_time(fixture_assistant):
    questions = [f"{topic} in {state}? ({n})" for n in range(4) for state in ("Rhode Island", "Kansas")
                 for topic in ("How are ninth graders mentored", "Which arts courses are funded",
                               "How are English learners taught", "What mental health support exists")]
    alone = [fixture_assistant.ask(q) for q in questions]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(fixture_assistant.ask, questions))
    assert [(a.answer, a.citations) for a in together] == [(a.answer, a.citations) for a in alone]


# ------------------------------------------------------------------ a new index generation


def ask_through_the_app(c: TestClient, question: str) -> str:
    """The chat's reply HTML, through the app's HTTP API as any client would get it."""
    event = c.post("/gradio_api/call/on_ask", json={"data": [question, [], [], [], 5, ""]}).json()["event_id"]
    stream = c.get(f"/gradio_api/call/on_ask/{event}").text
    assert "event: complete" in stream, stream
    history = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])[0]
    return history[-1]["content"][0]["text"]


VERMONT = [("h1", "Section 6: Supporting All Students"), ("h2", "6.1 Transitions"),
           ("p", "The Green Mountain agency pairs every ninth grader with a mentor and runs a summer "
                 "bridge week before high school starts.")]


@pytest.fixture
def live_plans(tmp_path, fixture_plans, index_copy, hash_settings):
    """A plans folder and an index of its own (the fixture plans), for a test that re-indexes."""
    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    return plans, index_copy


def test_a_new_index_generation_goes_live_without_a_restart(live_plans, hash_settings):
    from assistant.api import LiveAssistant
    from assistant.embedders import HashEmbedder
    from assistant.indexing import build_index
    from conftest import write_docx

    plans, index = live_plans
    live = LiveAssistant(index, settings=hash_settings, check_every_s=0)
    before = live.generation
    question = "How does Vermont help students moving into high school?"
    with TestClient(create_server(live, plans)) as c:
        assert "do not include Vermont" in ask_through_the_app(c, question)
        write_docx(plans / "VT.docx", VERMONT)
        build_index(plans, index, HashEmbedder(), hash_settings)
        reply = ask_through_the_app(c, question)
        assert "Green Mountain agency" in reply and 'data-state="VT"' in reply
        assert "Rhode Island" in ask_through_the_app(c, "How does Rhode Island mentor ninth graders?")
    assert live.generation != before and "VT" in live.current().states


def test_answers_in_worker_processes_follow_new_generations_and_survive_a_dead_worker(live_plans,
                                                                                      hash_settings):
    import os
    import signal
    import time

    from assistant.api import LiveAssistant
    from assistant.embedders import HashEmbedder
    from assistant.indexing import build_index
    from conftest import write_docx

    plans, index = live_plans
    settings = replace(hash_settings, web_workers=2, index_check_s=0.0)
    live = LiveAssistant(index, settings=settings, check_every_s=0)
    question = "How does Vermont help students moving into high school?"
    app = create_server(live, plans, settings=settings)
    pool = app.state.answer_pool
    workers = pool.pids()
    assert len(workers) == 2 and os.getpid() not in workers
    with TestClient(app) as c:
        assert "do not include Vermont" in ask_through_the_app(c, question)
        write_docx(plans / "VT.docx", VERMONT)
        build_index(plans, index, HashEmbedder(), settings)
        for _ in range(4):  # both workers, whichever takes each question, answer from the new one
            assert "Green Mountain agency" in ask_through_the_app(c, question)
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(0.5)  # the pool sees its worker gone
        # The request that meets the dead worker gets one sentence; the pool starts again.
        replies = [ask_through_the_app(c, question) for _ in range(2)]
        assert "essa-error" in replies[0] and "stopped unexpectedly" in replies[0], replies[0]
        assert "Traceback" not in replies[0] and "Green Mountain agency" in replies[1]
        assert not set(pool.pids()) & set(workers)
    assert pool.pids() == []  # shut down with the server


def test_web_settings_answer_in_one_process_per_core(monkeypatch):
    from assistant.webapp import web_settings

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert web_settings(Settings()).web_workers == 2
    assert web_settings(replace(Settings(), web_workers=0)).web_workers == 0  # threads, as asked
    assert web_settings(replace(Settings(), web_concurrency=1)).web_workers == 0  # one answer at a time
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert web_settings(Settings()).web_workers == 0


def test_errors_cross_process_boundaries_whole():
    import pickle

    from assistant.errors import ConfigError, IndexCorruptError, PlanError

    for error in (PlanError("a\nb.pdf", "cannot be read"), IndexCorruptError("vectors.npy", "bad"),
                  ConfigError("k must be at least 1")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.exit_code == error.exit_code


def test_a_generation_that_fails_to_load_leaves_the_old_one_answering(live_plans, hash_settings, caplog):
    from assistant.api import LiveAssistant

    _, index = live_plans
    live = LiveAssistant(index, settings=hash_settings, check_every_s=0)
    serving, generation = live.current(), live.generation
    broken = index / "gen-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{ not json")
    (index / "CURRENT").write_text("gen-broken")
    with caplog.at_level(logging.WARNING, logger="assistant.api"):
        assert live.current() is serving and live.current() is serving
        (index / "CURRENT").write_text("gen-not-there")
        assert live.current() is serving and live.current() is serving
    assert live.generation == generation
    for name in ("gen-broken", "gen-not-there"):
        logged = [r for r in caplog.records if name in r.getMessage()]
        assert len(logged) == 1, name  # one line, not one per request
    assert not live.current().ask("How does Rhode Island mentor ninth graders?").abstained


def test_the_web_app_runs_each_answers_model_pass_on_one_thread():
    from assistant.webapp import web_settings

    assert web_settings(Settings()).embedder_threads == 1  # several answers at once: one core each
    assert web_settings(replace(Settings(), embedder_threads=2)).embedder_threads == 2  # the user's choice
    assert web_settings(replace(Settings(), web_concurrency=1)).embedder_threads == 0  # one answer: all cores
