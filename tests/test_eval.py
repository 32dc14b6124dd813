"""The evaluation runner: report files, floors enforced, and the regression floors on the real index."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.evaluation import (CONFIGS, EvalError, fast_subset, floor_violations,
                                  load_floors, load_questions, load_reference, run_evaluation,
                                  write_report)

ROOT = Path(__file__).resolve().parent.parent
FLOORS_FILE = ROOT / "eval" / "config.toml"


@pytest.fixture(scope="module")
def fixture_report(fixture_assistant, fixture_questions, fixture_plans):
    return run_evaluation(fixture_assistant, fixture_questions, k=3, plans_dir=fixture_plans,
                          questions_file="fixture")


def test_report_measures_every_config_and_question(fixture_report, fixture_questions):
    assert fixture_report.n_questions == len(fixture_questions)
    assert set(fixture_report.ablations) == {c.name for c in CONFIGS}
    for metrics in fixture_report.ablations.values():
        assert metrics["n"] == 3  # answerable questions only
        assert 0.0 <= metrics["hit@1"] <= metrics["hit@5"] <= metrics["hit@10"] <= 1.0
    unanswerable = next(r for r in fixture_report.results if r.id == "un-1")
    assert unanswerable.abstained and unanswerable.retrieved == {}
    assert fixture_report.summary["abstention_recall"] == 1.0
    assert fixture_report.summary["state_accuracy"] == 1.0
    assert set(fixture_report.by_kind) == {"category", "lookup", "explain", "unanswerable"}
    assert set(fixture_report.by_state) == {"KS", "RI", "not indexed"}


def test_quotes_are_found_at_their_cited_location(fixture_report):
    quotes = [flag for r in fixture_report.results for flag in r.quotes_verbatim]
    assert quotes and all(quotes)
    assert fixture_report.summary["verbatim_quotes"] == 1.0


def test_a_quote_moved_elsewhere_is_not_verbatim(fixture_report, fixture_plans, fixture_assistant):
    from dataclasses import replace

    from assistant.evaluation import load_plan_texts, plan_files, quote_at_citation
    from assistant.records import Citation

    plans = load_plan_texts(fixture_plans, plan_files(fixture_assistant))
    quote = "Each incoming ninth grader is paired with a mentor."
    cited = Citation(rank=1, chunk_id="x", state="RI", source="RI.pdf", page=1, page_label="1",
                     section="", paragraph=None, quote=quote, passage=quote, score=1.0)
    assert quote_at_citation(plans, cited)
    assert not quote_at_citation(plans, replace(cited, page=2))
    assert not quote_at_citation(plans, replace(cited, quote=quote.replace("mentor", "tutor")))


def test_report_files_written(fixture_report, tmp_path):
    paths = write_report(fixture_report, tmp_path / "report", floors={"hit@5": 0.5})
    data = json.loads(paths["json"].read_text())
    assert data["n_questions"] == 4 and len(data["results"]) == 4
    assert set(data["ablations"]) == {c.name for c in CONFIGS}
    markdown = paths["markdown"].read_text()
    for config in CONFIGS:
        assert f"| {config.name} |" in markdown
    assert "## By kind" in markdown and "## By state" in markdown
    for chart in ("configs_chart", "latency_chart"):
        assert paths[chart].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert paths[chart].stat().st_size > 5000


def test_floors_enforced(fixture_report):
    summary = fixture_report.summary
    assert floor_violations(fixture_report, {"hit@5": 0.0, "state_accuracy": 1.0}) == []
    too_high = floor_violations(fixture_report, {"hit@5": summary["hit@5"] + 0.01})
    assert len(too_high) == 1 and too_high[0].startswith("hit@5:")
    assert floor_violations({"mrr": None}, {"mrr": 0.1}) == ["mrr: not measured (limit 0.100)"]
    assert "unknown metric" in floor_violations(fixture_report, {"no_such_metric": 0.0})[0]
    # Lower-is-better metrics have ceilings.
    assert floor_violations({"false_abstention_rate": 0.02}, {"false_abstention_rate": 0.03}) == []
    assert floor_violations({"false_abstention_rate": 0.05}, {"false_abstention_rate": 0.03}) == [
        "false_abstention_rate: 0.050 is above its ceiling 0.030"]


def test_ceilings_only_for_lower_is_better_metrics(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[floors]\nmrr = 0.5\n[ceilings]\nfalse_abstention_rate = 0.03\n[before]\nmrr = 0.4\n')
    assert load_floors(config) == {"mrr": 0.5, "false_abstention_rate": 0.03}
    assert load_reference(config) == {"mrr": 0.4}
    config.write_text('[floors]\nmrr = 0.5\n[ceilings]\nmrr = 0.9\n')
    with pytest.raises(EvalError, match="not a lower-is-better metric"):
        load_floors(config)


def test_floors_file_names_real_metrics(fixture_report):
    for subset in ("full", "fast"):
        floors = load_floors(FLOORS_FILE, subset)
        assert floors["verbatim_quotes"] == 1.0
        assert set(floors) <= set(fixture_report.summary)


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(EvalError, match="q.jsonl:1"):
        load_questions(bad)
    floors = tmp_path / "c.toml"
    floors.write_text("[other]\n")
    with pytest.raises(EvalError, match="no \\[floors\\] table"):
        load_floors(floors)


def test_fast_subset_is_fixed_and_stratified():
    questions = load_questions(ROOT / "eval" / "questions.jsonl")
    subset = fast_subset(questions)
    assert subset == fast_subset(questions)
    assert {q.kind for q in subset} == {q.kind for q in questions}
    assert len(questions) / 4 < len(subset) < len(questions) / 2


def one_question(tmp_path):
    """A question set of one, about the fixture plan RI."""
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({
        "id": "ri-1", "question": "How are ninth graders helped in Rhode Island?", "states": ["RI"],
        "locators": [{"state": "RI", "page": 1}], "key_terms": ["summer bridge"],
        "categories": ["transitions"], "kind": "category"}) + "\n")
    return questions


def test_cli_eval_writes_report(fixture_index, fixture_plans, tmp_path, monkeypatch):
    from assistant.cli import main

    monkeypatch.setenv("ESSA_QA_EMBEDDER", "hash")
    questions = one_question(tmp_path)
    floors = tmp_path / "floors.toml"
    floors.write_text("[floors]\nstate_accuracy = 1.0\n\"hit@10\" = 1.01\n")
    result = CliRunner().invoke(main, ["eval", "--questions", str(questions), "--index", str(fixture_index),
                                       "--plans", str(fixture_plans), "--report", str(tmp_path / "r"),
                                       "--floors", str(floors), "--json"])
    assert result.exit_code == 1, result.output
    assert (tmp_path / "r" / "report.md").is_file()
    assert "hit@10: " in result.output and "below its floor" in result.output


def test_cli_eval_scores_each_claim_set_against_its_own_limits(fixture_index, fixture_plans, tmp_path,
                                                               monkeypatch):
    from assistant.cli import main

    monkeypatch.setenv("ESSA_QA_EMBEDDER", "hash")
    questions = one_question(tmp_path)
    record = {"state": "RI", "locator": None, "detail": "", "searched": ""}
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(json.dumps(record | {"id": "a", "claim": "Texas pays every teacher a bonus of $5,000.",
                                          "verdict": "not_found", "kind": "absent_topic"}) + "\n")
    second.write_text(json.dumps(record | {"id": "b", "claim": "Texas runs the Lone Star Robotics Academy.",
                                           "verdict": "supported", "kind": "faithful"}) + "\n")
    floors = tmp_path / "floors.toml"
    floors.write_text("[floors]\nstate_accuracy = 0.0\n[first.floors]\naccuracy = 1.0\n"
                      "[second.floors]\naccuracy = 1.0\n")
    result = CliRunner().invoke(main, ["eval", "--questions", str(questions), "--index", str(fixture_index),
                                       "--plans", str(fixture_plans), "--report", str(tmp_path / "r"),
                                       "--floors", str(floors), "--claims", str(first), "--claims",
                                       str(second), "--claims", str(tmp_path / "absent.jsonl"), "--json"])
    assert result.exit_code == 1, result.output  # the second set's claim is not "supported"
    data = json.loads(result.stdout)
    assert set(data["claims"]) == {"first", "second"}
    assert data["claims"]["first"]["summary"]["accuracy"] == 1.0
    assert data["floor_violations"] == ["second accuracy 0.0 < 1.0"]
    assert (tmp_path / "r" / "first.json").is_file() and (tmp_path / "r" / "second.json").is_file()
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Claim checking: first" in report and "## Claim checking: second" in report


@pytest.mark.real
def test_real_index_meets_floors(real_assistant, shared_plans, tmp_path):
    """CI's regression gate: the whole question set on the real plans, the learned parts
    cross-fitted over 5 folds so every number is held out, every metric within its limit."""
    questions = load_questions(ROOT / "eval" / "questions.jsonl")
    report = run_evaluation(real_assistant, questions, k=5, plans_dir=shared_plans, subset="full", cv=5)
    floors = load_floors(FLOORS_FILE, "full")
    write_report(report, tmp_path / "report", floors, load_reference(FLOORS_FILE))
    assert floor_violations(report, floors) == [], (tmp_path / "report" / "report.md").read_text()
