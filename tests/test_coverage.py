"""Coverage: states x categories with counts and best citations, as md, csv and a PNG heatmap."""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner

from assistant.cli import main
from assistant.coverage import coverage_cell_passages, coverage_table


def test_one_row_per_state_one_column_per_category(fixture_assistant):
    table = coverage_table(fixture_assistant)
    assert table.states == fixture_assistant.states == ("KS", "RI")
    assert table.categories == fixture_assistant.tagger.ids
    assert len(table.cells) == 2 and all(len(row) == len(table.categories) for row in table.cells)
    markdown = table.to_markdown().splitlines()
    assert len(markdown) == 2 + len(table.states)
    assert all(line.count("|") == len(table.categories) + 2 for line in markdown)
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert len(rows) == len(table.states) * len(table.categories)


def test_cells_count_strong_passages_and_cite_the_best(fixture_assistant):
    table = coverage_table(fixture_assistant)
    # Which fixture passages clear a category's threshold depends on the calibration (thresholds are
    # fitted for the real model); the invariants hold for any cell.
    cell = max((c for row in table.cells for c in row), key=lambda c: c.count)
    assert cell.count >= 1 and cell.best.state == cell.state
    passages = coverage_cell_passages(fixture_assistant, cell.state, cell.category, limit=10)
    assert len(passages) == cell.count
    assert passages[0].chunk_id == cell.best.chunk_id
    assert all(cell.category in p.categories and p.state == cell.state for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for row in table.cells:
        for c in row:
            assert (c.best is None) == (c.count == 0)


def test_png_heatmap_renders(fixture_assistant, tmp_path):
    from PIL import Image

    path = coverage_table(fixture_assistant).to_png(tmp_path / "coverage.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        width, height = image.size
    assert 600 <= width <= 3000 and 200 <= height <= 2000 and width > height


def test_coverage_cli_formats(fixture_index, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["coverage", "--index", str(fixture_index), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("state,category,label,strong_passages")
    # Every state is listed: the indexed ones by approach, the others with their status.
    lines = result.output.splitlines()
    assert "TX,,,,,,,,,,,not fetched" in lines and "BIE,,,,,,,,,,,not fetched" in lines
    assert any(line.startswith("RI,") and line.endswith(",indexed") for line in lines)
    result = runner.invoke(main, ["coverage", "--index", str(fixture_index), "--indexed-only"])
    assert result.exit_code == 0 and "not fetched" not in result.output and "Rhode Island (RI)" in result.output
    markdown = runner.invoke(main, ["coverage", "--index", str(fixture_index)]).output
    assert "| Texas (TX) | not fetched |" in markdown
    out = tmp_path / "c.png"
    result = runner.invoke(main, ["coverage", "--index", str(fixture_index), "--format", "png",
                                  "--output", str(out)])
    assert result.exit_code == 0 and out.stat().st_size > 1000
    result = runner.invoke(main, ["coverage", "--index", str(fixture_index), "--format", "png"])
    assert result.exit_code == 2 and "needs --output" in result.output


def test_real_coverage_has_every_state(real_assistant):
    table = coverage_table(real_assistant)
    assert table.states == ("DE", "MA", "NV")
    assert table.cell("DE", "transitions").count > 0
    assert table.cell("NV", "special_populations").count > 0
