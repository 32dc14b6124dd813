"""Extractive answers: readable sentences, verbatim quotes at their cited place, per-state sections,
abstention, and the Markdown export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.answer.compose import _TEMPLATE_LIKE, is_readable_sentence
from assistant.export import answer_to_markdown, answer_to_text
from assistant.ingest import parse_plan, text_kind
from assistant.records import RESPONSE

ROOT = Path(__file__).resolve().parent.parent


def eval_questions() -> list[dict]:
    return [json.loads(line) for line in (ROOT / "eval" / "questions.jsonl").read_text().splitlines() if line]


# ------------------------------------------------------------ sentence filter (made-up text)


@pytest.mark.parametrize("sentence", [
    "Describe how the State will support districts in providing effective transitions.",
    "Does the State administer end-of-course tests to all high school students in grade nine?",
    "Contents and overview of the plan for every school ........ 12",
    "This means every district will receive more support from the state office.",
    "Furthermore, every district will receive more support from the state office.",
    "Scale: 194 counselors hired across 12 districts in the first two years.",
    "B. The State’s strategies and how it will support districts with rigorous coursework.",
    "225, 80%) met the threshold required to receive a school-level data report.",
    "For more detail about the program, please see Appendix C of this document online.",
    "Program name | 1200 | 800 | 400 | students served in the state this year.",
    "Promoting social and emotional learning in every classroom (SEL).",
    "in the state office every district will receive more support and guidance.",
    "6.1 Well-Rounded and Supportive Education for All Students in the State.",
])
def test_unreadable_sentences_are_left_out(sentence):
    assert not is_readable_sentence(sentence)


@pytest.mark.parametrize("sentence", [
    "The department runs summer bridge programs for students moving into ninth grade.",
    "Each incoming ninth grader is paired with a mentor during the first semester.",
    "Counselors meet every family before the first day of high school in August.",
])
def test_readable_sentences_are_kept(sentence):
    assert is_readable_sentence(sentence)


# ------------------------------------------------------------ fixture index (hash embedder)


def test_answer_cites_each_sentence(fixture_assistant):
    answer = fixture_assistant.ask("How are students helped when moving from eighth grade into ninth grade?")
    assert not answer.abstained
    assert answer.citations
    for citation in answer.citations:
        assert f"[{citation.rank}]" in answer.answer
        assert citation.quote in citation.passage


def test_state_not_indexed_abstains_with_reason(fixture_assistant):
    answer = fixture_assistant.ask("What does the Texas plan say about ninth grade transitions?")
    assert answer.abstained and "Texas (TX)" in answer.reason
    assert answer.citations == ()
    assert answer.to_dict()["abstained"] is True


def test_unrelated_question_abstains_and_lists_related(fixture_assistant):
    answer = fixture_assistant.ask("How many buses does Rhode Island run on snowy mornings?")
    assert answer.abstained
    assert answer.reason and answer.answer.startswith(answer.reason)
    assert answer.reason.startswith("The indexed plans do not appear to address ")


def test_two_states_get_one_section_each(fixture_assistant):
    answer = fixture_assistant.ask("How do Rhode Island and Kansas support music and arts courses?")
    assert [s for s, _ in answer.sections] == ["RI", "KS"]
    assert "**Rhode Island:**" in answer.answer and "**Kansas:**" in answer.answer
    ri, ks = (body for _, body in answer.sections)
    ks_ranks = {c.rank for c in answer.citations if c.state == "KS"}
    assert ks_ranks and all(f"[{r}]" in ks for r in ks_ranks)
    assert not any(f"[{r}]" in ri for r in ks_ranks)


def test_which_states_question_answers_per_state(fixture_assistant):
    answer = fixture_assistant.ask("Which states offer dual enrollment courses?")
    assert {s for s, _ in answer.sections} == set(fixture_assistant.states)
    kansas = dict(answer.sections)["KS"]
    assert kansas.startswith("The Kansas plan does not appear to address ") or "[" in kansas


def test_markdown_export_has_numbered_citations(fixture_assistant):
    answer = fixture_assistant.ask("How are students helped when moving from eighth grade into ninth grade?")
    markdown = answer.to_markdown(fixture_assistant.plans)
    assert markdown == answer_to_markdown(answer, fixture_assistant.plans)
    lines = markdown.splitlines()
    assert lines[0] == f"**Q:** {answer.question}"
    assert "**Sources**" in lines
    numbered = [line for line in lines[lines.index("**Sources**"):] if line[:1].isdigit()]
    assert len(numbered) == len(answer.citations)
    for citation, line in zip(answer.citations, numbered):
        assert line.startswith(f"{citation.rank}. Rhode Island, *")
        assert "PDF page" in line and line.endswith("”")
        assert citation.quote.replace("*", r"\*") in line
    assert "Sources:" in answer_to_text(answer)


def test_cli_ask_formats(fixture_index):
    from click.testing import CliRunner

    from assistant.cli import main

    runner = CliRunner()
    question = "How are students helped when moving from eighth grade into ninth grade?"
    env = {"ESSA_QA_EMBEDDER": "hash"}
    as_json = runner.invoke(main, ["ask", question, "--index", str(fixture_index), "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    assert set(json.loads(as_json.output)) == {"question", "states", "abstained", "reason", "answer",
                                               "categories", "citations"}
    as_md = runner.invoke(main, ["ask", question, "--index", str(fixture_index), "--format", "md"], env=env)
    assert as_md.output.startswith("**Q:** ")


# ------------------------------------------------------------ the real plans


@pytest.fixture(scope="session")
def real_documents(shared_plans):
    return {state: parse_plan(shared_plans / name, state)
            for state, name in (("DE", "DE.pdf"), ("MA", "MA.pdf"), ("NV", "NV.docx"))}


@pytest.fixture(scope="session")
def real_answers(real_assistant):
    """Every eval question asked once (about 30 s with the real model)."""
    return {q["id"]: (q, real_assistant.ask(q["question"])) for q in eval_questions()}


def text_at_citation(documents, citation) -> str:
    document = documents[citation.state]
    if citation.page is not None:
        return next(u.text for u in document.units if u.page == citation.page)
    return next(u.text[b.start:b.end] for u in document.units for b in u.blocks
                if b.paragraph == citation.paragraph)


@pytest.mark.real
def test_every_quote_is_verbatim_at_its_cited_page_or_paragraph(real_answers, real_documents):
    checked = 0
    for qid, (_, answer) in real_answers.items():
        for citation in (*answer.citations, *answer.related):
            assert citation.quote in text_at_citation(real_documents, citation), (qid, citation.rank)
            checked += 1
    assert checked > 300


@pytest.mark.real
def test_answers_hold_no_template_instructions(real_answers):
    for qid, (_, answer) in real_answers.items():
        for citation in answer.citations:
            assert text_kind(citation.quote) == RESPONSE, (qid, citation.quote)
            assert not _TEMPLATE_LIKE.search(citation.quote), (qid, citation.quote)
            assert is_readable_sentence(citation.quote), (qid, citation.quote)


@pytest.mark.real
def test_answers_are_short_and_cited(real_answers):
    for qid, (question, answer) in real_answers.items():
        if answer.abstained:
            continue
        n_sections = max(1, len(answer.sections))
        assert 1 <= len(answer.citations) <= 6 * n_sections, qid
        assert all(f"[{c.rank}]" in answer.answer for c in answer.citations), qid


@pytest.mark.real
def test_abstention_on_states_not_indexed_and_calibrated_rates(real_answers):
    not_indexed = [a for q, a in real_answers.values() if q["id"].startswith("un-st-")]
    assert not_indexed and all(a.abstained for a in not_indexed)
    topics = [a for q, a in real_answers.values() if q["id"].startswith("un-top-")]
    # The fitted decision (assistant/data/pipeline.mpnet.toml) as shipped abstained on 29 of the 34
    # absent topics and on 4 of the 141 answerable questions (held out, `essa-qa eval --cv 5`: recall
    # 0.86, false abstentions 0.071). The false-abstention bar stays the first version's 3%.
    assert sum(a.abstained for a in topics) >= 0.8 * len(topics)
    assert all(a.related for a in topics if a.abstained)
    answerable = [a for q, a in real_answers.values() if q["kind"] != "unanswerable"]
    false_abstentions = sum(a.abstained for a in answerable)
    assert false_abstentions <= 0.03 * len(answerable)


@pytest.mark.real
def test_compare_questions_get_a_section_per_state(real_answers):
    for qid, (question, answer) in real_answers.items():
        if question["kind"] != "compare" or answer.abstained:
            continue
        assert [s for s, _ in answer.sections] == question["states"], qid
        for state, body in answer.sections:
            ranks = [c.rank for c in answer.citations if c.state == state]
            assert all(f"[{r}]" in body for r in ranks), (qid, state)


# ------------------------------------------------------------ topical terms and the decision


def test_topical_terms_leave_out_scaffolding_state_names_and_plan_words():
    from assistant.terms import topical_terms

    question = "What does Nevada's state plan say about banning cell phones for students in schools?"
    assert [question[t.start:t.end] for t in topical_terms(question)] == ["banning", "cell", "phones"]
    assert [t.stem for t in topical_terms(question)] == ["ban", "cell", "phone"]  # the BM25 index's stems
    assert topical_terms("How does the Delaware plan support students?") == ()
    # Repeated stems count once; a bare number is no topic, a year is.
    assert [t.stem for t in topical_terms("COVID-19 covid rules in 2020")] == ["covid", "rule", "2020"]


def test_coverage_weights_terms_by_rarity():
    import numpy as np

    from assistant.terms import coverage, idf_weights, stems, topical_terms

    terms = topical_terms("How do grants pay for vaping prevention?")
    frequency = {"grant": 80, "pay": 40, "prevent": 30}
    idf = idf_weights(terms, lambda s: frequency.get(s, 0), 100)
    stems_ = [t.stem for t in terms]
    assert coverage(stems_, idf, stems("Grants pay for prevention work.")) < 0.5  # the rare one is missing
    assert coverage(stems_, idf, stems("Vaping prevention grants pay off.")) == 1.0
    assert coverage([], np.array([]), set()) == 1.0  # no topic words: nothing can be missing


@pytest.mark.parametrize("question,anchor,phrase", [
    ("How many school resource officers does Delaware fund?", "resource", "school resource officers"),
    ("What is Nevada doing about student vaping?", "vaping", "student vaping"),
    ("Does Nevada allow districts to move to a four-day school week?", "day", "four-day school week"),
    ("How many minutes of recess does Delaware require for elementary students?", "recess", "recess"),
    ("Does Delaware's plan create private school vouchers?", "vouchers", "private school vouchers"),
    ("How do Rhode Island and Kansas support English learners?", "English", "English learners"),
    ("<script>alert(1)</script> What is Kansas doing about vaping?", "vaping", "vaping"),
])
def test_topic_phrase_is_the_questions_own_words_around_the_missing_term(question, anchor, phrase):
    from assistant.answer.decision import topic_phrase
    from assistant.answer.scope import _MARKUP
    from assistant.terms import topical_terms

    text = " ".join(_MARKUP.sub(" ", question).split())
    terms = topical_terms(text)
    assert not {"script", "alert"} & {t.stem for t in terms}  # markup is not a topic
    chosen = next(t for t in terms if text[t.start:t.end] == anchor)
    assert topic_phrase(text, terms, chosen) == phrase


VAPING = "What is Kansas doing about student vaping?"


def _evidence(question=VAPING, missing=("vaping",), **features):
    """Evidence for `question` whose passages lack the `missing` words, with these features."""
    import numpy as np

    from assistant.answer.evidence import DECISION_FEATURES, Evidence
    from assistant.records import Passage
    from assistant.terms import topical_terms

    passage = Passage(chunk_id="c1", text="Kansas funds health education.", state="KS", source="KS.docx",
                      page=None, page_label=None, section="", paragraph=1, score=1.0)
    values = {name: 0.0 for name in DECISION_FEATURES} | features
    terms = topical_terms(question)
    absent = tuple(t for t in terms if question[t.start:t.end] in missing)
    return Evidence("", (passage,), (passage,), (), np.zeros((0, 4), dtype=np.float32), terms, absent,
                    absent[0] if absent else terms[0], values)


def test_fallback_rule_needs_a_close_passage_and_no_missing_topic():
    from assistant.answer.decision import decide

    text = VAPING
    close = _evidence(best_dense=0.7, coverage=1.0)
    assert decide(close, text, None, bar=0.48).answer
    far = _evidence(best_dense=0.3, coverage=1.0)
    assert not decide(far, text, None, bar=0.48).answer
    absent = _evidence(best_dense=0.5, coverage=0.0, rarest_missing=1.0)
    assert not decide(absent, text, None, bar=0.48).answer
    # Close enough to outweigh a missing word (a paraphrase avoids the plan's own words).
    assert decide(_evidence(best_dense=0.7, coverage=0.0, rarest_missing=1.0), text, None, bar=0.48).answer
    # A phrase of the question found word for word rescues a passage just under the bar.
    assert decide(_evidence(best_dense=0.43, coverage=1.0, phrase=1.0), text, None, bar=0.48).answer


def test_fitted_decision_model_reads_the_features():
    from assistant.answer.decision import DecisionModel, decide
    from assistant.answer.evidence import DECISION_FEATURES
    from assistant.learning import LinearModel

    n = len(DECISION_FEATURES)
    weights = tuple(1.0 if f == "best_sentence" else 0.0 for f in DECISION_FEATURES)
    model = DecisionModel(LinearModel(DECISION_FEATURES, (0.0,) * n, (1.0,) * n, weights, -5.0), threshold=0.5)
    text = VAPING
    yes = decide(_evidence(best_sentence=9.0), text, model, bar=0.48)
    no = decide(_evidence(best_sentence=1.0), text, model, bar=0.48)
    assert yes.answer and yes.probability > 0.5
    assert not no.answer and no.reason() == "The indexed plans do not appear to address student vaping."


def test_decision_model_reads_the_features_it_names_and_refuses_unknown_ones():
    import pytest

    from assistant.answer.decision import DecisionModel, decide
    from assistant.errors import ConfigError
    from assistant.fitted import Fitted
    from assistant.learning import LinearModel

    # A file fitted before a feature was added still reads: only its own features, in its order.
    older = DecisionModel(LinearModel(("phrase", "best_sentence"), (0.0, 0.0), (1.0, 1.0), (0.0, 1.0), -5.0),
                          threshold=0.5)
    assert decide(_evidence(best_sentence=9.0, bm25_best=-100.0), VAPING, older, bar=0.48).answer
    assert not decide(_evidence(best_sentence=1.0, bm25_best=100.0), VAPING, older, bar=0.48).answer
    table = Fitted(decision=older).to_toml().replace('"best_sentence"]', '"best_sentense"]')
    with pytest.raises(ConfigError, match="best_sentense"):
        Fitted.from_toml(table, "pipeline.toml")


def test_phrases_of_the_question_are_adjacent_topical_words():
    from assistant.terms import holds_phrase, question_phrases, topical_terms

    phrases = question_phrases(topical_terms("Which states offer dual enrollment or early college?"))
    assert ("earli", "colleg") in phrases and ("dual", "enrol") in phrases
    assert holds_phrase("We expand Early College programs.", phrases)
    assert not holds_phrase("College readiness starts early.", phrases)


def test_cli_ask_llm_without_an_endpoint_is_one_line_error(fixture_index):
    from click.testing import CliRunner

    from assistant.cli import main

    result = CliRunner().invoke(main, ["ask", "How do ninth graders get help?", "--index", str(fixture_index),
                                       "--llm"], env={"ESSA_QA_EMBEDDER": "hash", "ESSA_QA_LLM_BASE_URL": ""})
    assert result.exit_code != 0
    assert result.output.strip().startswith("error: --llm: no language model configured")
    assert len(result.output.strip().splitlines()) == 1


# Written for this test, not in the eval set: topics the three 2017 plans never mention.
ABSENT_TOPIC_QUESTIONS = [
    ("What does Nevada's plan say about esports leagues?", "NV", "esport", "esports"),
    ("How does Delaware deal with snow days and school closures for weather?", "DE", "snow", "snow"),
]


@pytest.mark.real
@pytest.mark.parametrize("question,state,stem,word", ABSENT_TOPIC_QUESTIONS)
def test_absent_topic_questions_abstain_naming_the_topic(real_assistant, question, state, stem, word):
    assert real_assistant.retriever.document_frequency(stem, [state]) == 0  # really absent
    answer = real_assistant.ask(question)
    assert answer.abstained, answer.answer
    assert answer.reason.startswith("The indexed plans do not appear to address ") and word in answer.reason
    assert answer.citations == () and answer.related  # still shows the closest passages
    assert {c.state for c in answer.related} == {state}


@pytest.mark.parametrize("markup", [
    "<script>alert('pwned')</script> {q}",
    "<b>{q}</b>",
    "{q} <style>body {{ color: red }}</style>",
    "<img src=x onerror=alert(1)>{q}",
])
def test_markup_in_a_question_changes_nothing_it_is_asked(fixture_assistant, markup):
    question = "How does Kansas fund music and visual arts?"
    plain = fixture_assistant.ask(question)
    marked = fixture_assistant.ask(markup.format(q=question))
    assert not marked.abstained
    assert [c.chunk_id for c in marked.citations] == [c.chunk_id for c in plain.citations]
    assert marked.question == markup.format(q=question)  # shown back as asked (and escaped there)


@pytest.mark.parametrize("options, message", [
    (dict(k=0), "k must be"), (dict(k=-3), "k must be"), (dict(k=101), "k must be"),
    (dict(categories=["bogus"]), "'bogus' is not a category"),
    (dict(states=["Atlantis"]), "'Atlantis' is not a state"),
])
def test_bad_options_are_refused_not_answered(fixture_assistant, options, message):
    from assistant.errors import ConfigError

    for call in (fixture_assistant.ask, fixture_assistant.search):
        with pytest.raises(ConfigError, match=message):
            call("How does Kansas fund music and visual arts?", **options)


def test_an_abstention_names_the_missing_thing_not_a_missing_verb():
    from dataclasses import replace

    from assistant.answer.decision import topic_anchor, topic_phrase

    question = "Does Kansas reward teachers who earn National Board certification?"
    evidence = _evidence(question, missing=("reward", "earn"))
    terms = {question[t.start:t.end]: t for t in evidence.terms}
    # Only verbs are missing; the words "National" and "Board" appear, the phrase does not.
    evidence = replace(evidence, absent_phrases=((terms["National"], terms["Board"]),))
    assert topic_phrase(question, evidence.terms, topic_anchor(question, evidence)) == "National Board certification"
    # With no phrase to go on, the rarest missing word still names it (in the question's words).
    plain = _evidence(question, missing=("reward", "earn"))
    assert topic_phrase(question, plain.terms, topic_anchor(question, plain)).startswith("reward")
    vaping = _evidence(VAPING, missing=("vaping",))
    assert topic_phrase(VAPING, vaping.terms, topic_anchor(VAPING, vaping)) == "student vaping"


@pytest.mark.parametrize("question,anchor,topic", [
    ("Can Nevada graduates earn a seal of biliteracy on their diploma?", "seal", "seal of biliteracy"),
    ("Does Massachusetts run a grow-your-own program to turn local students into teachers?", "grow",
     "grow-your-own"),
    ("Does Delaware require schools to hold lockdown or active-shooter drills?", "lockdown", "lockdown"),
    ("How do Delaware teachers earn tenure?", "tenure", "tenure"),
    ("Is Massachusetts expanding full-day kindergarten?", "full", "full-day kindergarten"),
    ("How is Delaware handling school reopening after COVID-19?", "reopening", "school reopening"),
])
def test_the_topic_is_named_in_the_question_s_words(question, anchor, topic):
    from assistant.answer.decision import topic_phrase
    from assistant.terms import topical_terms

    terms = topical_terms(question)
    (term,) = [t for t in terms if question[t.start:t.end].lower() == anchor]
    assert topic_phrase(question, terms, term) == topic
