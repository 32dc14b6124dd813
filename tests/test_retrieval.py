"""Hybrid retrieval, state filters and abstention on states that are not indexed."""

from __future__ import annotations

import numpy as np
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


def test_scoring_only_the_scope_gives_the_same_scores_there():
    import numpy as np

    from assistant.retrieval.dense import DenseIndex

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    counts = np.array([2, 0, 3, 1, 2, 1])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sentences = rng.normal(size=(int(counts.sum()), 8)).astype(np.float32)
    index = DenseIndex(vectors, sentences, starts, counts)
    query = rng.normal(size=8).astype(np.float32)
    rows = np.array([1, 2, 5])
    full, part = index.chunk_scores(query), index.chunk_scores(query, rows)
    assert np.allclose(part[rows], full[rows], atol=1e-5) and (np.delete(part, rows) == -1).all()
    full_s, part_s = index.sentence_scores(query), index.sentence_scores(query, rows)
    chosen = np.concatenate([np.arange(starts[r], starts[r] + counts[r]) for r in rows])
    assert np.allclose(part_s[chosen], full_s[chosen], atol=1e-5)
    assert (np.delete(part_s, chosen) == -1).all()


def test_the_bm25_index_is_kept_beside_the_index_and_read_back_the_same(tmp_path, caplog):
    from assistant.retrieval.lexical import LexicalIndex

    texts = ["Summer bridge programs help ninth graders.", "Chronic absenteeism is reported yearly.",
             "Counselors meet every family before high school."]
    cache = tmp_path / "bm25"
    built = LexicalIndex(texts, cache)
    read = LexicalIndex(texts, cache)
    assert not built.from_cache and read.from_cache
    for query in ("ninth grade bridge", "absent students", "unheard-of words"):
        assert np.array_equal(built.scores(query), read.scores(query))
    assert list(read.documents_with("counselor")) == list(built.documents_with("counselor")) == [2]
    (folder,) = cache.iterdir()
    other = LexicalIndex(texts[:2], cache)  # other texts: their own cache, the old one removed
    assert not other.from_cache and [p.name for p in cache.iterdir()] != [folder.name]
    assert len(list(cache.iterdir())) == 1
    (folder,) = cache.iterdir()
    (folder / "vocab.index.json").write_text("{not json", encoding="utf-8")
    damaged = LexicalIndex(texts[:2], cache)  # rebuilt, with a warning, never trusted
    assert not damaged.from_cache and np.array_equal(damaged.scores("absent"), other.scores("absent"))
    assert "unreadable" in caplog.text
