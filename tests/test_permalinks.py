"""Shareable answers: every chat answer gets a link that reopens it read-only, with the same
citations, for a colleague (and behind the login when there is one)."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

RI_QUESTION = "How does Rhode Island help ninth graders with mentors?"


def test_a_stored_answer_comes_back_whole_under_a_content_id(tmp_path, fixture_assistant):
    from assistant.permalinks import AnswerStore

    answer = fixture_assistant.ask(RI_QUESTION)
    assert answer.citations
    store = AnswerStore(tmp_path / "shared")
    first = store.save(answer, "2026-12-03T10:00:00Z")
    assert re.fullmatch(r"[0-9a-f]{20}", first) and store.save(answer, "2026-12-03T10:00:00Z") == first
    shared = store.load(first)
    assert shared.answer == answer and shared.index_built == "2026-12-03T10:00:00Z" and shared.created
    abstained = fixture_assistant.ask("What does Rhode Island say about esports leagues?")
    other = store.save(abstained)
    assert other != first and store.load(other).answer == abstained
    assert [p.name for p in (tmp_path / "shared").iterdir()] and not list((tmp_path / "shared").glob(".tmp-*"))
    for bad in ("../x", first.upper(), first + "0", "", "0" * 20):
        assert store.load(bad) is None


def _chat(c: TestClient, question: str) -> str:
    event = c.post("/gradio_api/call/on_ask", json={"data": [question, [], [], [], 5, ""]}).json()["event_id"]
    stream = c.get(f"/gradio_api/call/on_ask/{event}").text
    return json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])[0][-1]["content"][0]["text"]


def test_the_chat_links_each_answer_and_the_link_reopens_it_read_only(tmp_path, index_copy, fixture_plans,
                                                                       hash_settings):
    from urllib.parse import unquote

    from assistant.api import Assistant
    from assistant.webapp import create_server

    assistant = Assistant.load(index_copy, settings=hash_settings)
    with TestClient(create_server(assistant, fixture_plans)) as c:
        reply = _chat(c, RI_QUESTION)
        link = re.search(r'class="essa-permalink" href="(answer/[0-9a-f]{20})"', reply).group(1)
        copied = unquote(re.search(r'class="essa-copy-md">.*?<span class="essa-copy-text" hidden>([^<]*)',
                                   reply).group(1))
        assert copied.rstrip().endswith(f"[Link to this answer](http://testserver/{link})")
        page = c.get("/" + link)
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "read-only" in page.text and "Rhode Island" in page.text
        # The same citations, each with its quote and a viewer link that works from this page.
        cards = re.findall(r'<article class="essa-card"', reply)
        assert page.text.count('<article class="essa-card"') == len(cards) >= 1
        for quote in re.findall(r"<mark>(.*?)</mark>", reply):
            assert quote in page.text
        viewer = re.search(r'class="essa-open" href="([^"]+)"', page.text).group(1)
        assert viewer.startswith("../viewer/")
        assert c.get("/answer/" + viewer.removeprefix("../")).status_code == 404
        assert c.get("/" + viewer.removeprefix("../").replace("&amp;", "&")).status_code == 200
        assert "essa-permalink" not in page.text  # no link to itself
        assert c.get("/answer/" + "0" * 20).status_code == 404
        assert c.get("/answer/..%2F..%2Fmanifest").status_code == 404
    assert list((index_copy / "shared").glob("*.json"))


def test_shared_answers_are_behind_the_login(index_copy, fixture_plans, hash_settings):
    from assistant.api import Assistant
    from assistant.permalinks import AnswerStore
    from assistant.webapp import create_server

    assistant = Assistant.load(index_copy, settings=hash_settings)
    answer_id = AnswerStore.beside(index_copy).save(assistant.ask(RI_QUESTION))
    with TestClient(create_server(assistant, fixture_plans, auth=("editor", "s3cret"))) as c:
        refused = c.get(f"/answer/{answer_id}", follow_redirects=False)
        assert refused.status_code in (302, 303, 307, 401) and "Rhode Island" not in refused.text
        assert c.post("/login", data={"username": "editor", "password": "s3cret"}).status_code == 200
        assert "Rhode Island" in c.get(f"/answer/{answer_id}").text


def test_a_claim_check_is_shared_the_same_way(index_copy, fixture_plans, hash_settings):
    from assistant.api import Assistant
    from assistant.permalinks import AnswerStore, ShareLinks
    from assistant.webapp import check_html, create_server

    assistant = Assistant.load(index_copy, settings=hash_settings)
    share = ShareLinks(AnswerStore.beside(index_copy), "https://essa.example.org/")
    page = check_html(assistant, fixture_plans, "Rhode Island pairs ninth graders with mentors. "
                                                "Ohio requires cursive.", (), share)
    link = re.search(r'class="essa-permalink" href="(check/[0-9a-f]{20})"', page).group(1)
    assert f"https://essa.example.org/{link}" in page.replace("%3A", ":").replace("%2F", "/").replace("%2E", ".")
    verdicts = re.findall(r'class="essa-verdict">([^<]+)<', page)
    assert len(verdicts) == 2 and verdicts[1] == "Not found"
    with TestClient(create_server(assistant, fixture_plans)) as c:
        shared = c.get("/" + link)
        assert shared.status_code == 200 and "read-only" in shared.text
        assert re.findall(r'class="essa-verdict">([^<]+)<', shared.text) == verdicts
        assert "essa-permalink" not in shared.text and "Ohio requires cursive." in shared.text
        assert c.get("/check/" + "0" * 20).status_code == 404
        answer_id = AnswerStore.beside(index_copy).save(assistant.ask(RI_QUESTION))
        assert c.get(f"/check/{answer_id}").status_code == 404  # an answer's id is not a check
