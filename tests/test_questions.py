"""The question set's gold answers hold against the parsed real plans (eval/check_questions.py)."""

import importlib.util
import json
from pathlib import Path

import pytest

from assistant.evaluation import load_plan_texts, load_questions

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def _checker():
    spec = importlib.util.spec_from_file_location("check_questions", ROOT / "eval" / "check_questions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checker():
    return _checker()


@pytest.fixture(scope="module")
def real_texts(shared_plans, checker):
    # Shared with the evaluation runner's cache: the plans are parsed once per test session.
    return load_plan_texts(shared_plans, checker.PLAN_FILES)


def _raw_questions() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.real
def test_every_gold_locator_and_key_term_holds(checker, real_texts):
    errors, _ = checker.check(_raw_questions(), real_texts)
    assert errors == []


@pytest.mark.real
def test_checker_catches_a_wrong_locator_and_a_copied_sentence(checker, real_texts):
    questions = _raw_questions()
    broken = dict(next(q for q in questions if q["locators"] and "page" in q["locators"][0]))
    broken["locators"] = [{**broken["locators"][0], "page": broken["locators"][0]["page"] + 40}]
    copied = dict(questions[0], id="copied")
    # Eight words straight from the plan's own text must be rejected.
    copied["question"] = " ".join(checker.words(real_texts["DE"]["pages"][broken["locators"][0]["page"] - 40])[:12])
    errors, _ = checker.check([broken, copied], real_texts)
    assert any(broken["id"] in e and "key term" in e for e in errors)
    assert any("copied" in e and "8-word sequence" in e for e in errors)


def test_question_set_parses_for_the_runner():
    questions = load_questions(QUESTIONS)
    assert len(questions) == len(_raw_questions()) >= 96
    assert len({q.id for q in questions}) == len(questions)
    assert all(q.locators and q.key_terms for q in questions if q.answerable)


def test_absent_mentions_skip_a_named_boilerplate_page_and_must_stay_true(checker):
    plans = {"DE": {"pages": {1: "Goals for every school.", 2: "We do not discriminate on sexual orientation."},
                    "paras": {}, "all": "Goals for every school.\nWe do not discriminate on sexual orientation."}}
    question = {"id": "un-top-x", "states": ["DE"], "absent_search": ["sexual orientation"]}
    assert "'absent' topic found in DE" in checker.absent_problems(question, plans)[0]
    noted = question | {"absent_mentions": [{"state": "DE", "page": 2, "note": "a non-discrimination notice"}]}
    assert checker.absent_problems(noted, plans) == []
    stale = question | {"absent_mentions": [{"state": "DE", "page": 1, "note": "moved"}]}
    assert any("matches no absent_search pattern" in e for e in checker.absent_problems(stale, plans))
    bare = question | {"absent_mentions": [{"state": "DE", "page": 2}]}
    assert any("need a named state, a page and a note" in e for e in checker.absent_problems(bare, plans))
