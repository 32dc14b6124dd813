"""Claim checking: claims split from a draft, the details that must match, and verdicts on the
real plans (supported, a changed number, a program another state runs, an invented program)."""

from __future__ import annotations

import json

import pytest


def test_a_draft_splits_into_its_sentences_in_order():
    from assistant.checking import split_claims

    text = "Delaware counts groups of 15.  It set 2030 as its goal year!\n\nOK. Nevada uses stars?"
    assert split_claims(text) == ["Delaware counts groups of 15.", "It set 2030 as its goal year!",
                                  "Nevada uses stars?"]
    assert split_claims("") == [] and split_claims("Yes. No.") == []


def test_details_are_numbers_names_and_negation_as_written_or_spelled():
    from assistant.checking import details

    found = details("Delaware's plan gives English learners five years and sets a 92.15% graduation "
                    "goal for 2030 under the Smarter Balanced tests in ninth grade.")
    assert found.numbers == {"5", "92.15%", "2030", "9"}
    assert "Smarter Balanced" in found.names and not any("Delaware" in n for n in found.names)
    assert not found.negated and details("Nevada does not use an A-F grade.").negated
    assert details("Massachusetts funds the Bay State Robotics Academy.").names == {"Bay State Robotics Academy"}
    assert details("The n-size is 1,000 students or 12 percent.").numbers == {"1000", "12%"}


def test_details_read_values_as_a_draft_writes_them():
    from assistant.checking import _rounds_to, details

    assert details("only twenty-seven districts out of four hundred and eight").numbers == {"27", "408"}
    assert details("Title One and two thousand five hundred").numbers == {"1", "2500"}
    assert details("reduce the gap by one-third in six years").numbers == {"1/3", "6"}
    assert details("cut the gap in half").numbers == {"1/2"} and details("a third grader").numbers == {"3"}
    # A count carries what it counts; money its scale: "$50M" and "$50 million" alike.
    assert ("120", "clock") in details("log 120 clock hours").units
    assert details("SB 432 invested $50M").units >= {("50", "$m")}
    assert ("50", "$m") in details("put $50 million into").units
    # Quantity bounds are not negations; "leave ... out", "exclude" and "no longer" are.
    assert not details("awards of no less than $10,000 per district").negated
    assert not details("for not more than four years").negated
    assert details("Nevada will leave the five-year rate out of its ratings").negated
    assert details("Delaware excludes charter schools").negated
    assert not details("Senate Resolution No. 22 formed a task force").negated
    # Sentence openers are not names; quoted titles are, capitals or not.
    assert details("Only 15 Massachusetts districts get McKinney-Vento subgrants").names == {"McKinney-Vento"}
    assert "five-year graduation rate plus" in details("Nevada uses a 'five-year graduation rate plus'").names
    assert not details("Delaware's students' needs come first").names
    assert "English" not in details("Delaware serves English learners").names
    # A draft rounds: the plan's 73.55% is the claim's 73.6%, not its 73.5% or 74.0%.
    assert _rounds_to("73.55%", "73.6%") and _rounds_to("73.55%", "74%")
    assert not _rounds_to("73.55%", "73.5%") and not _rounds_to("92.15%", "92.1%") and not _rounds_to("5", "5")


def test_number_verdicts_on_the_real_plans(real_assistant):
    """A count of the same thing, another target year beside a table of interim years, a table's
    rows under their section's title, and a "does not" the plan contradicts in other words."""
    from assistant.checking import CONTRADICTED, SUPPORTED, check_claim

    hours = check_claim(real_assistant, "To renew Delaware's five-year Continuing License, educators must "
                                        "log 120 clock hours of professional development.")
    assert hours.verdict == CONTRADICTED and "90" in hours.reason
    year = check_claim(real_assistant, "Delaware has set 2022 as the target year for its long-term "
                                       "academic achievement goals.")
    assert year.verdict == CONTRADICTED and "2030" in year.reason
    table = check_claim(real_assistant, "Massachusetts plans to lift its four-year cohort graduation rate "
                                        "for all students from 87.3 percent in 2015 to 91.0 percent by 2020.")
    assert table.verdict == SUPPORTED and table.citations[0].state == "MA"
    exams = check_claim(real_assistant, "Nevada does not give end-of-course mathematics exams.")
    assert exams.verdict == CONTRADICTED and "end-of-course" in exams.citations[0].quote


def test_template_questions_are_not_evidence():
    from assistant.checking import _is_prompt

    assert _is_prompt("Does the State: 1) administer end-of-course mathematics assessments to high school students")
    assert _is_prompt("If yes, describe the SEA's strategies to provide all students the opportunity.")
    assert _is_prompt("Will schools report it?")
    assert not _is_prompt("Massachusetts does not administer end-of-course mathematics assessments.")


def test_verdicts_on_the_real_plans(real_assistant):
    from assistant.checking import CONTRADICTED, NOT_FOUND, SUPPORTED, check_claim

    supported = check_claim(real_assistant, "Delaware uses a minimum n-size of 15 students for accountability.")
    assert supported.verdict == SUPPORTED and supported.citations[0].state == "DE"
    assert "15" in supported.citations[0].passage
    changed = check_claim(real_assistant, "Delaware uses a minimum n-size of 25 students for accountability.")
    assert changed.verdict == CONTRADICTED and "not 25" in changed.reason
    wrong_state = check_claim(real_assistant, "Delaware runs the Read by Grade 3 program.")
    assert wrong_state.verdict == CONTRADICTED and wrong_state.citations[0].state == "NV"
    invented = check_claim(real_assistant, "Massachusetts funds the Bay State Robotics Academy for middle schools.")
    assert invented.verdict == NOT_FOUND and "Bay State Robotics Academy" in invented.reason
    missing = check_claim(real_assistant, "Ohio requires every school to teach cursive.")
    assert missing.verdict == NOT_FOUND and "do not include Ohio" in missing.reason


def test_cli_check_prints_one_entry_per_claim_in_order(real_index, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import main

    draft = tmp_path / "draft.txt"
    draft.write_text("Delaware uses a minimum n-size of 25 students. Nevada runs the Read by Grade 3 program.",
                     encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--file", str(draft), "--index", str(real_index), "--json"])
    assert result.exit_code == 0, result.output
    claims = json.loads(result.output)["claims"]
    assert [c["verdict"] for c in claims] == ["contradicted", "supported"]
    assert claims[0]["claim"].startswith("Delaware uses") and set(claims[0]) == {"claim", "verdict", "reason",
                                                                                "citations"}
    assert {"state", "source", "page", "paragraph", "quote", "section"} <= set(claims[1]["citations"][0])
    md = CliRunner().invoke(main, ["check", "Nevada runs the Read by Grade 3 program.", "--index",
                                   str(real_index), "--format", "md"])
    assert md.exit_code == 0 and "| 1 |" in md.output and "supported" in md.output
    none = CliRunner().invoke(main, ["check", "--index", str(real_index)])
    assert none.exit_code == 2 and "TEXT or --file" in none.output and "Traceback" not in none.output


def test_check_tab_shows_each_verdict_with_the_sentence_marked(real_assistant, shared_plans):
    from assistant.webapp import check_html

    page = check_html(real_assistant, shared_plans, "Delaware uses a minimum n-size of 25 students. "
                                                    "Nevada runs the Read by Grade 3 program.")
    assert page.count('class="essa-claim ') == 2
    assert "essa-v-contradicted" in page and "essa-v-supported" in page and "<mark>" in page
    assert "1 supported · 1 contradicted" in page and "viewer/NV.docx?paragraph=" in page
    assert "Paste a sentence" in check_html(real_assistant, shared_plans, "  ")


@pytest.mark.parametrize("claim_set, size", [("claims", 80), ("claims_holdout", 60), ("claims_holdout2", 45)])
def test_claim_set_meets_its_limits_on_the_real_index(real_assistant, claim_set, size):
    """Each claim set through the checker, against its limits in eval/config.toml."""
    from pathlib import Path

    from assistant.claims_eval import evaluate_claims, load_claims
    from assistant.evaluation import load_claim_limits

    root = Path(__file__).resolve().parent.parent
    claims = load_claims(root / "eval" / f"{claim_set}.jsonl")
    assert len(claims) >= size and {c.verdict for c in claims} == {"supported", "contradicted", "not_found"}
    floors, ceilings = load_claim_limits(root / "eval" / "config.toml", claim_set)
    assert floors and ceilings
    summary = evaluate_claims(real_assistant, claims)["summary"]
    for name, floor in floors.items():
        assert summary[name] >= floor, (name, summary)
    for name, ceiling in ceilings.items():
        assert summary[name] <= ceiling, (name, summary)


def test_a_malformed_claim_set_is_one_line(tmp_path):
    from assistant.claims_eval import load_claims
    from assistant.errors import ConfigError

    bad = tmp_path / "claims.jsonl"
    bad.write_text('{"id": "x", "claim": "A claim here.", "state": "DE", "verdict": "maybe", "kind": "faithful"}\n')
    with pytest.raises(ConfigError, match="claims.jsonl:1: verdict must be one of"):
        load_claims(bad)
    bad.write_text("{not json\n")
    with pytest.raises(ConfigError, match="claims.jsonl:1: not a claim record"):
        load_claims(bad)
