"""Hybrid retrieval, state filters and abstention on states that are not indexed."""

from __future__ import annotations

import pytest


def test_state_named_in_question_filters(fixture_assistant):
    passages = fixture_assistant.search("How does Kansas fund music and visual arts?", k=10)
    assert passages and {p.state for p in passages} == {"KS"}


def test_explicit_state_filter_wins(fixture_assistant):
    passages = fixture_assistant.search("music and visual arts courses", k=10, states=["RI"])
    assert passages and {p.state for p in passages} == {"RI"}


def test_no_state_named_searches_all(fixture_assistant):
    states = {p.state for p in fixture_assistant.search("students schools programs", k=20)}
    assert states == {"KS", "RI"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_every_mode_finds_the_obvious_passage(fixture_assistant, mode):
    top = fixture_assistant.search("dual enrollment community college", k=3, mode=mode)
    assert "dual enrollment" in top[0].text


def test_state_response_outranks_template(fixture_assistant):
    top = fixture_assistant.search("support transitions for students", k=5, states=["RI"])
    kinds = [p.kind for p in top]
    assert kinds[0] == "response"


def test_unindexed_state_abstains(fixture_assistant):
    answer = fixture_assistant.ask("What does Texas do about dual enrollment?")
    assert answer.abstained
    assert "Texas (TX)" in answer.reason and answer.citations == ()
    assert fixture_assistant.search("What does Texas do about dual enrollment?") == []


def test_passage_fields(fixture_assistant):
    p = fixture_assistant.search("dual enrollment", k=1)[0]
    assert (p.state, p.source, p.page, p.page_label) == ("RI", "RI.pdf", 2, "2")
    assert p.text and p.score > 0 and p.chunk_id
    docx = fixture_assistant.search("music visual arts computer science", k=1, states=["KS"])[0]
    assert docx.page is None and docx.paragraph >= 1 and docx.section.startswith("Section 6")
