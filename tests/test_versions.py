"""Plan versions: two versions of a fixture plan made here, indexed side by side. Answers read the
newest unless asked, every citation names its version, and "what changed" lists the sentences
that differ, verbatim, on a topic or throughout."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from assistant.api import Assistant
from assistant.changes import compare_versions
from assistant.cli import main
from assistant.embedders import HashEmbedder
from assistant.errors import ConfigError
from assistant.export import answer_to_markdown, answer_to_text, changes_to_markdown, version_note
from assistant.indexing import build_index
from assistant.records import PlanInfo
from assistant.versions import plan_versions, version_of, version_warnings

from conftest import write_pdf

BRIDGE = "Summer bridge programs help students moving from eighth grade into ninth grade."
MENTOR = "Each incoming ninth grader is paired with a mentor."
COUNSELOR = "Counselors call every family before the first day of high school."
GOAL_2017 = "The Ocean State sets a goal of 80 percent of students reading on grade level by 2025."
GOAL_2019 = "The Ocean State sets a goal of 85 percent of students reading on grade level by 2030."
ABSENCE = "Every school reports its chronic absenteeism rate each year."
GIFTED = "Gifted students may take advanced placement courses in middle school."
COMPUTING = "Every high school offers a computer science course taught by a certified teacher."

ORIGINAL = [["Section 4: Accountability", "4.1 Long-term Goals.", f"{GOAL_2017} {ABSENCE}"],
            ["Section 6: Supporting All Students", "6.1 Transitions.", f"{BRIDGE} {MENTOR}"],
            ["Section 7: Enrichment", "7.1 Gifted Education.", GIFTED]]
AMENDED = [["Section 4: Accountability", "4.1 Long-term Goals.", f"{GOAL_2019} {ABSENCE}"],
           ["Section 6: Supporting All Students", "6.1 Transitions.", f"{BRIDGE} {COUNSELOR}"],
           ["Section 7: Enrichment", "7.2 Computer Science.", COMPUTING]]


@pytest.fixture(scope="module")
def versions_index(tmp_path_factory, hash_settings):
    plans = tmp_path_factory.mktemp("version_plans")
    write_pdf(plans / "RI-2017.pdf", ORIGINAL)
    write_pdf(plans / "RI-2019-amended.pdf", AMENDED)
    write_pdf(plans / "KS.pdf", [["Section 6: Supporting All Students", "Kansas pairs new teachers with mentors."]])
    index = tmp_path_factory.mktemp("version_index")
    report = build_index(plans, index, HashEmbedder(), hash_settings)
    assert not report.failed, report.failed
    return plans, index, report


@pytest.fixture(scope="module")
def assistant(versions_index, hash_settings):
    return Assistant.load(versions_index[1], settings=hash_settings)


def test_version_and_year_come_from_the_manifest_else_the_file_name():
    info = PlanInfo(state="DE", state_name="Delaware", title="", year="2019", url="", filename="DE.pdf",
                    version="2019 amended")
    assert version_of(info, "DE.pdf") == ("2019 amended", "2019")
    assert version_of(PlanInfo("DE", "Delaware", "", "2017", "", "DE.pdf"), "DE.pdf") == ("2017", "2017")
    assert version_of(None, "delaware-2019-amended.pdf") == ("2019 amended", "2019")
    assert version_of(None, "RI_revised_2018.docx") == ("2018 revised", "2018")
    assert version_of(None, "DE.pdf") == ("", "")


def test_versions_are_ordered_and_ambiguities_are_warned():
    plans = {"DE.pdf": {"state": "DE", "version": "", "year": ""},
             "DE-2019.pdf": {"state": "DE", "version": "2019", "year": "2019"},
             "DE-2017.pdf": {"state": "DE", "version": "2017", "year": "2017"},
             "DE-2017-copy.pdf": {"state": "DE", "version": "2017", "year": "2017"}}
    assert [v.source for v in plan_versions(plans)["DE"]] == ["DE.pdf", "DE-2017-copy.pdf", "DE-2017.pdf", "DE-2019.pdf"]
    warnings = version_warnings(plans)
    assert any("DE-2017-copy.pdf, DE-2017.pdf: all are DE's 2017 plan" in w for w in warnings), warnings
    assert any(w.startswith("DE.pdf: no year known") and "DE-2019.pdf (2019), which answers" in w
               for w in warnings), warnings


def test_the_index_keeps_each_version_with_its_label(versions_index, assistant):
    _, _, report = versions_index
    assert sorted(report.embedded) == ["KS.pdf", "RI-2017.pdf", "RI-2019-amended.pdf"]
    assert assistant.plans["RI-2019-amended.pdf"]["version"] == "2019 amended"
    assert assistant.plans["RI-2017.pdf"]["year"] == "2017"
    assert [v.label for v in assistant.versions["RI"]] == ["2017", "2019 amended"]
    assert {c.version for c in assistant.index.chunks if c.source == "RI-2017.pdf"} == {"2017"}


def test_answers_read_the_newest_version_unless_asked(assistant):
    question = "What is Rhode Island's long-term goal for reading on grade level?"
    newest = assistant.ask(question)
    assert not newest.abstained and newest.citations
    assert {c.source for c in newest.citations} == {"RI-2019-amended.pdf"}
    assert {(c.version, c.year) for c in newest.citations} == {("2019 amended", "2019")}
    assert "85 percent" in newest.answer and "80 percent" not in newest.answer
    original = assistant.ask(question, version="2017")
    assert {c.source for c in original.citations} == {"RI-2017.pdf"} and "80 percent" in original.answer
    both = assistant.search(question, k=10, version="all", states=["RI"])
    assert {p.source for p in both} == {"RI-2017.pdf", "RI-2019-amended.pdf"}
    assert {p.source for p in assistant.search(question, k=10, states=["RI"])} == {"RI-2019-amended.pdf"}


def test_a_version_a_state_lacks_is_refused_naming_the_ones_it_has(assistant):
    with pytest.raises(ConfigError, match=r"Rhode Island has no plan version '2015' in the index "
                                          r"\(indexed versions: Rhode Island: 2017 \(RI-2017.pdf\), "
                                          r"2019 amended \(RI-2019-amended.pdf\)\)"):
        assistant.ask("What is Rhode Island's reading goal?", version="2015")
    # No state named: only the states that have that version are searched.
    answer = assistant.ask("Which goal is set for reading on grade level?", version="2017")
    assert {c.state for c in answer.citations} <= {"RI"}


def test_every_citation_names_its_version(assistant):
    answer = assistant.ask("What is Rhode Island's long-term goal for reading on grade level?")
    assert "RI-2019-amended.pdf (2019 amended) · " in answer_to_text(answer)
    markdown = answer_to_markdown(answer, assistant.plans)
    assert "* (2019 amended), " in markdown or "(2019 amended), PDF page" in markdown, markdown
    assert answer.to_dict()["citations"][0]["version"] == "2019 amended"
    assert version_note(replace(answer.citations[0], version="amended")) == " (amended, 2019)"
    assert version_note(replace(answer.citations[0], version="", year="")) == ""


def test_what_changed_lists_added_and_removed_sentences_verbatim(assistant):
    report = compare_versions(assistant, "RI")
    assert (report.old_version, report.new_version) == ("2017", "2019 amended")
    added = {s for c in report.changes for s in c.added}
    removed = {s for c in report.changes for s in c.removed}
    assert {GOAL_2019, COUNSELOR, COMPUTING} <= added and {GOAL_2017, MENTOR, GIFTED} <= removed
    assert not ({BRIDGE, ABSENCE} & (added | removed))  # unchanged sentences are not listed
    goal = next(c for c in report.changes if GOAL_2019 in c.added)
    assert goal.kind == "changed" and goal.removed == (GOAL_2017,)
    assert goal.old.source == "RI-2017.pdf" and goal.new.source == "RI-2019-amended.pdf"
    assert goal.new.quote == GOAL_2019 and GOAL_2019 in goal.new.passage and goal.new.page == 1
    for change in report.changes:  # each quote is verbatim in its version's passage
        for citation in (change.old, change.new):
            assert citation is None or citation.quote in citation.passage
    text = changes_to_markdown(report)
    assert "from 2017 (RI-2017.pdf) to 2019 amended (RI-2019-amended.pdf)" in text
    assert f"- Removed: “{GOAL_2017}”" in text and f"- Added: “{GOAL_2019}”" in text
    assert "goal of ~~80~~ **85** percent" in text and "by ~~2025.~~ **2030.**" in text


def test_what_changed_on_a_topic_keeps_that_topic(assistant):
    report = compare_versions(assistant, "RI", topic="mentors for students entering ninth grade")
    assert report.changes and report.topic
    first = report.changes[0]
    assert MENTOR in first.removed or COUNSELOR in first.added
    assert all(c.topic_rank is not None for c in report.changes)
    assert not any(GIFTED in c.removed for c in report.changes[:1])


def test_what_changed_needs_two_versions(assistant):
    with pytest.raises(ConfigError, match=r"Kansas \(KS\) has one plan version in the index"):
        compare_versions(assistant, "KS")
    with pytest.raises(ConfigError, match="has no plan version '2021'"):
        compare_versions(assistant, "RI", new="2021")
    with pytest.raises(ConfigError, match="is not in the index"):
        compare_versions(assistant, "TX")


def test_changes_and_version_on_the_command_line(versions_index):
    index = str(versions_index[1])
    result = CliRunner().invoke(main, ["changes", "RI", "--index", index, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["old"] == {"version": "2017", "source": "RI-2017.pdf"}
    assert any(GOAL_2019 in c["added"] for c in data["changes"])
    result = CliRunner().invoke(main, ["changes", "RI", "--index", index], catch_exceptions=False)
    assert "goal of [-80-] {+85+} percent" in result.output and "**" not in result.output
    result = CliRunner().invoke(main, ["ask", "What is Rhode Island's reading goal?", "--index", index,
                                       "--version", "2017", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert {c["version"] for c in json.loads(result.output)["citations"]} == {"2017"}
    result = CliRunner().invoke(main, ["changes", "KS", "--index", index])
    assert result.exit_code != 0 and result.output.count("\n") == 1 and "one plan version" in result.output


def test_a_version_named_anew_relabels_without_embedding(tmp_path, hash_settings):
    plans = tmp_path / "plans"
    plans.mkdir()
    write_pdf(plans / "RI.pdf", ORIGINAL)
    index = tmp_path / "index"
    build_index(plans, index, HashEmbedder(), hash_settings)
    (plans / "manifest.toml").write_text('[[plan]]\nstate = "RI"\nfilename = "RI.pdf"\nyear = "2017"\n'
                                         'version = "2017 original"\n', encoding="utf-8")
    report = build_index(plans, index, HashEmbedder(), hash_settings)
    assert report.relabelled == ("RI.pdf",) and report.chunks_embedded == 0 and report.changed
    relabelled = Assistant.load(index, settings=hash_settings)
    assert {c.version for c in relabelled.index.chunks} == {"2017 original"}
    assert relabelled.plans["RI.pdf"]["year"] == "2017"


def test_the_app_filters_by_version_and_shows_what_changed(versions_index, assistant):
    from assistant.webapp import changes_html, chat_reply, version_choices, versioned_states

    plans = versions_index[0]
    assert version_choices(assistant)[:2] == [("Newest plan of each state", ""), ("All versions", "all")]
    assert ("2019 amended", "2019 amended") in version_choices(assistant)
    assert versioned_states(assistant) == [("Rhode Island (RI)", "RI")]
    question = "What is Rhode Island's long-term goal for reading on grade level?"
    history, _ = chat_reply(assistant, plans, question, [], [], version="2017")
    assert "80 percent" in history[-1]["content"] and "(2017)" in history[-1]["content"]
    history, _ = chat_reply(assistant, plans, question, [], [])
    assert "85 percent" in history[-1]["content"] and "(2019 amended)" in history[-1]["content"]
    page = changes_html(assistant, plans, "RI")
    assert "Rhode Island: 2017 → 2019 amended" in page and 'data-kind="changed"' in page
    assert "<del>80</del> <ins>85</ins>" in page and 'class="essa-open"' in page
    assert "has one plan version" in changes_html(assistant, plans, "KS")
    assert "<script>" not in changes_html(assistant, plans, "RI", topic="<script>alert(1)</script>")


def test_plans_list_names_each_file_s_version(versions_index):
    plans, index, _ = versions_index
    result = CliRunner().invoke(main, ["plans", "list", "--plans", str(plans), "--index", str(index), "--json"],
                                catch_exceptions=False)
    rows = {row["file"]: row for row in json.loads(result.output)}
    assert (rows["RI-2019-amended.pdf"]["version"], rows["RI-2019-amended.pdf"]["year"]) == ("2019 amended", "2019")
    assert rows["RI-2017.pdf"]["indexed"] and rows["KS.pdf"]["version"] == "2017"  # from the manifest


def test_the_changes_tab_and_version_filter_answer_through_the_app(versions_index, assistant):
    from fastapi.testclient import TestClient

    from assistant.webapp import create_server

    def call(c, endpoint, data):
        # One session throughout: the version pickers get their choices in it when a state is picked.
        event = c.post(f"/gradio_api/call/{endpoint}", json={"data": data, "session_hash": "s1"}).json()["event_id"]
        stream = c.get(f"/gradio_api/call/{endpoint}/{event}").text
        assert "event: complete" in stream, stream
        return json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])

    with TestClient(create_server(assistant, versions_index[0])) as c:
        old, new = call(c, "on_changes_state", ["RI"])
        assert [v for _, v in old["choices"]] == ["", "RI-2017.pdf", "RI-2019-amended.pdf"]
        (page,) = call(c, "on_changes", ["RI", "RI-2017.pdf", "RI-2019-amended.pdf", "reading goal"])
        assert "<del>80</del> <ins>85</ins>" in page
        history = call(c, "on_ask", ["What is Rhode Island's reading goal?", [], [], [], 5, "2017"])[0]
        assert "80 percent" in history[-1]["content"][0]["text"]
