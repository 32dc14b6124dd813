"""Property-based fuzzing (hypothesis) of the two parsers and the question path, bounded: a fixed
number of examples each (the same in every run), no deadline, about 10 s in all.

- PDF: a fixture plan with bytes overwritten, cut or repeated parses to a Document or fails with
  one PlanError line; never anything else, through the guarded parse the indexer uses.
- DOCX: any paragraph text survives parsing word for word (or the file fails as a PlanError).
- Questions: any text, markup and control characters included, gets an Answer whose quotes are
  verbatim in their passages, or a ConfigError; never a traceback.
"""

from __future__ import annotations

import re
import string
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.errors import EssaError, PlanError
from assistant.guarded import ParseLimits, parse_guarded
from assistant.ingest import parse_plan
from test_hostile import _W, _docx_with_body

# Derandomized: the same examples in every run, so CI is repeatable; a failure prints its example.
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FUZZ_MORE = settings(FUZZ, max_examples=150)  # the in-process ones cost milliseconds each


@st.composite
def damaged(draw, original: bytes) -> bytes:
    """The original file with a few spans overwritten by random bytes, then perhaps cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(data) - 1))
        patch = draw(st.binary(min_size=1, max_size=64))
        data[start:start + len(patch)] = patch
    if draw(st.booleans()):
        data = data[:draw(st.integers(1, len(data)))]
    return bytes(data)


def test_damaged_pdfs_parse_or_fail_in_one_line(fixture_plans, tmp_path_factory):
    original = (fixture_plans / "RI.pdf").read_bytes()
    directory = tmp_path_factory.mktemp("fuzz_pdf")

    @FUZZ
    @given(data=damaged(original))
    def check(data: bytes) -> None:
        path = directory / "RI.pdf"
        path.write_bytes(data)
        try:
            document = parse_guarded(path, "RI", ParseLimits(seconds=20, memory_mb=1024))
        except PlanError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(path))
        else:
            assert document.state == "RI" and document.units

    check()


# Text XML 1.0 can hold, as Word writes it: no control characters but tab and newline.
_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
                    | st.sampled_from(" \t•–"), min_size=1, max_size=120)


def test_any_paragraph_text_survives_a_word_file_word_for_word(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz_docx")

    @FUZZ_MORE
    @given(paragraphs=st.lists(_XML_TEXT, min_size=1, max_size=6))
    def check(paragraphs: list[str]) -> None:
        body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in paragraphs)
        path = _docx_with_body(directory / "KS.docx", f"<w:document {_W}><w:body>{body}</w:body></w:document>")
        try:
            document = parse_plan(path, "KS")
        except PlanError as exc:
            assert "no text" in exc.problem and not "".join(paragraphs).strip(), exc
            return
        parsed = " ".join(" ".join(unit.text.split()) for unit in document.units)
        for paragraph in paragraphs:
            for word in paragraph.split():
                # Symbol-font bullets come out as real bullets; everything else verbatim.
                assert word.strip("\uf0b7\uf0a7\uf0d8\uf076\uf0fc\uf0a8") in parsed or not word.strip(), word

    check()


_QUESTION_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200) | st.builds(
    "{} {} {}".format,
    st.sampled_from(["", "<script>alert(1)</script>", "<b>", "&lt;i&gt;", "\x00", "\u202e", "{{x}}"]),
    st.sampled_from(["How does Kansas fund the arts?", "Rhode Island ninth grade mentors",
                     "What do RI and KS do for English learners?", "?", "", "Texas vouchers"]),
    st.text(string.printable, max_size=40))


def test_any_question_gets_an_answer_with_verbatim_quotes(fixture_assistant):
    @FUZZ_MORE
    @given(question=_QUESTION_TEXT)
    def check(question: str) -> None:
        try:
            answer = fixture_assistant.ask(question)
        except EssaError as exc:  # e.g. an empty question: one line, our own error
            assert "\n" not in str(exc)
            return
        assert answer.question == question
        for citation in answer.citations:
            assert citation.quote in citation.passage
        assert answer.abstained or answer.citations

    check()


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01", "<script></script>"])
def test_questions_with_nothing_to_ask_are_answered_or_refused_in_one_line(fixture_assistant, question):
    try:
        answer = fixture_assistant.ask(question)
    except EssaError as exc:
        assert "\n" not in str(exc)
    else:
        assert answer.abstained and re.search(r"\w", answer.reason or "")
