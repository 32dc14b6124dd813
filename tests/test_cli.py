"""The CLI contract: JSON shapes, fetch/list, clear one-line errors with exit codes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from assistant.cli import main

ANSWER_KEYS = {"question", "states", "abstained", "reason", "answer", "categories", "citations"}
CITATION_KEYS = {"rank", "chunk_id", "state", "source", "page", "page_label", "section", "paragraph",
                 "quote", "passage", "score", "categories", "ocr", "version", "year"}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_ask_json_shape(fixture_index):
    result = run("ask", "How does Kansas fund music and visual arts?", "--index", str(fixture_index), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == ANSWER_KEYS
    assert data["states"] == ["KS"] and data["abstained"] is False
    assert data["citations"], data
    for citation in data["citations"]:
        assert set(citation) == CITATION_KEYS
        assert citation["quote"] in citation["passage"]
        assert citation["state"] == "KS" and isinstance(citation["categories"], list)


def test_search_json(fixture_index):
    result = run("search", "dual enrollment", "--index", str(fixture_index), "--json", "--k", "2")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 2 and rows[0]["state"] == "RI" and "text" in rows[0]


def test_missing_index_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["ask", "anything", "--index", str(tmp_path / "none")])
    assert result.exit_code == 5
    assert result.output.strip().count("\n") == 0 and "no index here" in result.output


def test_plans_fetch_verifies_hashes_and_reports_each_failure(tmp_path, shared_plans):
    source = tmp_path / "source"
    source.mkdir()
    (source / "DE.pdf").write_bytes((shared_plans / "DE.pdf").read_bytes())
    (source / "MA.pdf").write_bytes(b"%PDF-1.7 tampered")
    result = CliRunner().invoke(main, ["plans", "fetch", "--plans", str(tmp_path / "plans"),
                                       "--from", str(source), "--state", "DE", "--state", "MA",
                                       "--state", "NV"])
    assert result.exit_code == 4
    assert "ok    DE.pdf: fetched" in result.output
    assert "MA.pdf: SHA-256 mismatch" in result.output
    assert "NV.docx: not found" in result.output
    assert (tmp_path / "plans" / "DE.pdf").is_file() and not (tmp_path / "plans" / "MA.pdf").exists()


def test_plans_list_json(fixture_plans, fixture_index):
    result = run("plans", "list", "--plans", str(fixture_plans), "--index", str(fixture_index), "--json")
    rows = {r["file"]: r for r in json.loads(result.output)}
    assert rows["RI.pdf"]["pages"] == 2 and rows["RI.pdf"]["indexed"] is True
    assert rows["kansas-plan.docx"]["state"] == "KS" and rows["kansas-plan.docx"]["paragraphs"] >= 5


def test_plans_list_shows_every_plan_of_the_manifest_with_its_status(fixture_plans, fixture_index):
    from assistant.plans import load_manifest
    from assistant.states import STATE_NAMES

    manifest = load_manifest()
    assert len(manifest) == 53 and {p.state for p in manifest} == set(STATE_NAMES)  # 50, DC, PR, BIE
    assert all(p.url.startswith("https://www2.ed.gov/") and not p.url_checked for p in manifest)
    result = run("plans", "list", "--plans", str(fixture_plans), "--index", str(fixture_index), "--json")
    rows = json.loads(result.output)
    by_file = {r["file"]: r for r in rows}
    assert by_file["RI.pdf"]["status"] == "indexed" and by_file["RI.pdf"]["fetched"]
    assert by_file["TX.pdf"]["status"] == "not fetched" and by_file["TX.pdf"]["name"] == "Texas"
    assert by_file["BIE.pdf"]["name"] == "Bureau of Indian Education"
    assert {r["state"] for r in rows} >= set(STATE_NAMES)
    text = run("plans", "list", "--plans", str(fixture_plans), "--index", str(fixture_index))
    assert "not fetched" in text.output and "Wyoming" in text.output


def test_options_are_checked_by_click_in_one_line(fixture_index):
    cases = [(["--k", "0"], "0 is not in the range 1<=x<=100"), (["--k", "-3"], "-3 is not in the range"),
             (["--category", "bogus"], "'bogus' is not a category; one of: multiple_pathways"),
             (["--state", "Atlantis"], "'Atlantis' is not a state")]
    for command in ("ask", "search"):
        for options, message in cases:
            result = CliRunner().invoke(main, [command, "How does Kansas fund the arts?", "--index",
                                               str(fixture_index), *options])
            assert result.exit_code == 2, (command, options, result.output)
            errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and message in errors[0], result.output
    # A state by name is taken as its code.
    result = run("ask", "How is the arts funded?", "--index", str(fixture_index), "--state", "kansas", "--json")
    assert json.loads(result.output)["states"] == ["KS"]
