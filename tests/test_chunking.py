"""Chunking: sentence-aligned, sized for the model's window, nothing lost, stable ids."""

from __future__ import annotations

from assistant.chunking import ChunkerSettings, chunk_document, sentence_spans
from assistant.config import Settings
from assistant.embedders import get_embedder
from assistant.ingest import parse_plan
from assistant.records import Block, Document, Unit
from assistant.tokens import count_tokens, count_wordpieces


def _document(text: str, section: str = "S") -> Document:
    return Document(state="RI", source="RI.pdf", sha256="0" * 64, format="pdf",
                    units=(Unit(0, text, (Block(0, len(text), section),), page=1, page_label="1"),))


def test_sentence_spans_respect_abbreviations():
    text = "The U.S. Department approved it. Schools e.g. in Dover agreed! Next one?"
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    assert sentences == ["The U.S. Department approved it.", "Schools e.g. in Dover agreed!", "Next one?"]


def test_chunks_hold_whole_sentences_within_budget():
    sentences = [f"Sentence number {i} talks about students and their schools in some detail." for i in range(80)]
    doc = _document(" ".join(sentences))
    chunks = chunk_document(doc, ChunkerSettings(max_tokens=120, overlap_tokens=20))
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith("detail.")
        assert chunk.n_tokens == count_tokens(chunk.text) <= 120
        assert doc.units[0].text[chunk.char_start:chunk.char_end] == chunk.text
    # modest overlap: consecutive chunks share at most one sentence
    assert chunks[1].char_start < chunks[0].char_end


def test_never_across_sections_or_kinds():
    text = "Alpha one. Alpha two.\n\nBeta one. Beta two."
    unit = Unit(0, text, (Block(0, 21, "A"), Block(23, len(text), "B")), page=1)
    doc = Document("RI", "RI.pdf", "0" * 64, "pdf", (unit,))
    chunks = chunk_document(doc, ChunkerSettings())
    assert [(c.section, c.text) for c in chunks] == [("A", "Alpha one. Alpha two."), ("B", "Beta one. Beta two.")]


def test_chunks_fit_the_model_window():
    # Numbers and rare words expand to many word pieces: the wordpiece bound must bite first.
    model_dir = get_embedder(settings=Settings()).model_dir
    text = " ".join(f"ID-{i:05d}-XQZ/{i * 7:04d}." for i in range(600))
    chunks = chunk_document(_document(text), ChunkerSettings(model_dir=model_dir))
    assert all(count_wordpieces(c.text, model_dir) <= 256 for c in chunks)


def test_ids_are_stable_and_unique(fixture_plans):
    doc = parse_plan(fixture_plans / "RI.pdf", "RI")
    first = chunk_document(doc, ChunkerSettings())
    second = chunk_document(parse_plan(fixture_plans / "RI.pdf", "RI"), ChunkerSettings())
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)


def test_no_sentence_lost_in_fixture(fixture_plans):
    for name, state in (("RI.pdf", "RI"), ("kansas-plan.docx", "KS")):
        doc = parse_plan(fixture_plans / name, state)
        assert_no_text_lost(doc, chunk_document(doc, ChunkerSettings()))


def assert_no_text_lost(doc, chunks) -> None:
    """Every sentence of the parsed text lies in a chunk (a sentence too long for one chunk lies
    in consecutive chunks that cover it)."""
    by_unit: dict[int, list[tuple[int, int]]] = {}
    for c in chunks:
        by_unit.setdefault(c.unit, []).append((c.char_start, c.char_end))
    for unit in doc.units:
        spans = sorted(by_unit.get(unit.index, []))
        for start, end in sentence_spans(unit.text):
            if any(a <= start and end <= b for a, b in spans):
                continue
            covering = [(a, b) for a, b in spans if a < end and b > start]
            assert covering, f"{doc.source} unit {unit.index}: sentence at {start} not in any chunk"
            reach = covering[0][0]
            assert reach <= start
            for a, b in covering:
                assert unit.text[reach:a].strip() == "", "gap inside a long sentence"
                reach = max(reach, b)
            assert reach >= end
