"""The three real plans with the real model (session index built once; runs in CI)."""

from __future__ import annotations

from collections import Counter

import pytest

from assistant.chunking import ChunkerSettings, chunk_document
from assistant.config import Settings
from assistant.embedders import get_embedder
from assistant.ingest import parse_plan
from assistant.tokens import count_wordpieces
from test_chunking import assert_no_text_lost

PLANS = [("DE.pdf", "DE"), ("MA.pdf", "MA"), ("NV.docx", "NV")]


@pytest.fixture(scope="module")
def documents(shared_plans):
    return {state: parse_plan(shared_plans / name, state) for name, state in PLANS}


def test_page_counts_and_encrypted_ma_opens(documents):
    assert documents["DE"].n_pages == 144
    assert documents["MA"].n_pages == 138
    assert "Massachusetts" in documents["MA"].units[0].text  # decrypted, real text


def test_de_printed_page_labels_differ_from_indices(documents):
    labels = {u.page: u.page_label for u in documents["DE"].units}
    assert labels[6] == "iv"
    assert labels[41] == "26"


def test_nv_heading1_sections(documents):
    sections = Counter(b.section.split(" › ")[0] for u in documents["NV"].units for b in u.blocks)
    for n in range(1, 7):
        assert any(s.startswith(f"Section {n}:") for s in sections), n
    assert documents["NV"].n_paragraphs > 400


def test_de_numbered_section_titles(documents):
    sections = {b.section.split(" › ")[0] for u in documents["DE"].units for b in u.blocks}
    assert "Section 4: Accountability, Support, and Improvement for Schools" in sections
    assert sum(s.startswith("Section ") for s in sections) == 6


def test_template_text_is_marked_in_every_plan(documents):
    for state, doc in documents.items():
        kinds = Counter(b.kind for u in doc.units for b in u.blocks)
        assert kinds["template"] > 20 and kinds["response"] > kinds["template"], (state, kinds)


@pytest.mark.parametrize("state", ["DE", "MA", "NV"])
def test_no_text_lost_and_chunks_fit_model(documents, state):
    model_dir = get_embedder(settings=Settings()).model_dir
    chunks = chunk_document(documents[state], ChunkerSettings(model_dir=model_dir))
    assert_no_text_lost(documents[state], chunks)
    assert max(count_wordpieces(c.text, model_dir) for c in chunks) <= 256
    again = chunk_document(documents[state], ChunkerSettings(model_dir=model_dir))
    assert [c.id for c in chunks] == [c.id for c in again]


def test_delaware_transitions_question(real_assistant):
    passages = real_assistant.search("How does Delaware support students moving from middle to high school?", k=5)
    assert passages and all(p.state == "DE" for p in passages)
    assert any("transition" in p.text.lower() and ("ninth grade" in p.text.lower() or "high school" in p.text.lower())
               for p in passages[:3])


def test_state_filter_and_detection_on_real_index(real_assistant):
    assert real_assistant.states == ("DE", "MA", "NV")
    for question, state in [("How does Nevada support English learners?", "NV"),
                            ("What is Massachusetts doing about chronic absenteeism?", "MA")]:
        assert {p.state for p in real_assistant.search(question, k=8)} == {state}
    answer = real_assistant.ask("What does Ohio's plan say about early literacy?")
    assert answer.abstained and "Ohio (OH)" in answer.reason
