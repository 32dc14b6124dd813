"""Hostile plan files: each costs one FAIL line naming it, the good plans still index, what was
indexed before survives, and a hang or a memory blow-up in a parser is cut off by its limits.

The files are made here (hostile_corpus); none comes from the real plans.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.config import Settings
from assistant.embedders import HashEmbedder
from assistant.errors import PlanError
from assistant.guarded import ParseLimits, parse_guarded
from assistant.indexing import build_index
from assistant.store import load_index
from conftest import FIXTURE_DOCX, write_docx

# Tight limits so the slow and the greedy files fail fast; the real plans parse well inside them
# (5-25 s, under 700 MB), but these tests only parse the small fixture plans besides.
LIMITS = dict(parse_timeout_s=8.0, parse_memory_mb=1024)

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '</Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>')
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx_with_body(path: Path, document_xml: str | bytes, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A minimal Word package whose main part is `document_xml`, as given (well-formed or not)."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document_xml)
    return path


def _paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def _long_page_pdf(path: Path, characters: int) -> Path:
    """One page whose text is one paragraph of `characters` characters (no blank lines)."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    line = "students receive support services in every school district across the state "
    for i in range(characters // len(line) + 1):
        c.drawString(20, 800 - (i % 60) * 12, line)  # lines overprint; the text stream keeps them all
    c.showPage()
    c.save()
    return path


def hostile_corpus(directory: Path, outside: Path) -> dict[str, str]:
    """Makes the hostile files in `directory`; returns file name -> a word its FAIL line must hold."""
    directory.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}

    def add(name: str, word: str) -> Path:
        expect[name] = word
        return directory / name

    _docx_with_body(add("AL.docx", "cannot be parsed"),
                    f'<w:document {_W}><w:body>{_paragraph("unclosed")}<w:p><w:r>')  # malformed XML
    laughs = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    _docx_with_body(add("AK.docx", ""), f'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY l0 "lol">'
                    f'{laughs}]><w:document {_W}><w:body>{_paragraph("&l9;")}</w:body></w:document>')
    nested = "<w:tbl><w:tr><w:tc>" * 400 + _paragraph("deep") + "</w:tc></w:tr></w:tbl>" * 400
    _docx_with_body(add("AZ.docx", ""), f"<w:document {_W}><w:body>{nested}</w:body></w:document>")
    # A zip bomb: 400 MB of paragraph text that deflates to about a megabyte.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(f"<w:document {_W}><w:body>".encode())
            block = _paragraph("a" * 8000).encode() * 1000
            for _ in range(50):
                part.write(block)
            part.write(b"</w:body></w:document>")
    add("AR.docx", "").write_bytes(bomb.getvalue())
    add("CA.docx", "not a Word").write_bytes(b"PK\x03\x04 this is no zip archive")
    add("CO.pdf", "not a PDF").write_bytes(os.urandom(4096))
    add("CT.pdf", "").write_bytes(b"%PDF-1.7\n" + os.urandom(20000) + b"\n%%EOF\n")
    _long_page_pdf(add("FL.pdf", "longer than"), 400_000)  # parse time grows with the paragraph
    add("GA.pdf", "folder").mkdir()
    os.symlink(directory / "missing.pdf", add("HI.pdf", "dangling"))
    os.mkfifo(add("ID.pdf", "FIFO"))
    outside_file = outside / "IL.pdf"
    shutil.copy(directory.parent / "good" / "RI.pdf", outside_file)
    os.symlink(outside_file, add("IL.pdf", "outside the plans folder"))
    add("no\nstate.pdf", "cannot tell which state").write_bytes(b"%PDF-1.4\n")  # a newline in the name
    add("IA.pdf", "empty").write_bytes(b"")
    return expect


@pytest.fixture(scope="module")
def hostile_plans(tmp_path_factory, fixture_plans) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(fixture_plans, root / "good")
    (root / "outside").mkdir()
    plans = root / "plans"
    shutil.copytree(fixture_plans, plans)
    return plans, hostile_corpus(plans, root / "outside")


def test_every_hostile_file_costs_one_line_and_the_good_plans_index(hostile_plans, index_copy):
    plans, expect = hostile_plans
    before = [c.id for c in load_index(index_copy).chunks]
    started = time.perf_counter()
    report = build_index(plans, index_copy, HashEmbedder(), replace(Settings(embedder="hash"), **LIMITS))
    elapsed = time.perf_counter() - started
    for line in report.failed:
        assert "\n" not in line and "Traceback" not in line, line
    for name, word in expect.items():
        shown = name.replace("\n", "\\n")
        lines = [line for line in report.failed if line.startswith(f"{plans / shown}:")]
        assert len(lines) == 1, (name, report.failed)
        assert word in lines[0], lines[0]
    assert len(report.failed) == len(expect)
    # The good plans are indexed and unchanged; nothing from the hostile files got in.
    chunks = load_index(index_copy).chunks
    assert [c.id for c in chunks] == before
    assert {c.source for c in chunks} == {"RI.pdf", "kansas-plan.docx"}
    # Bound: the two slow files are cut at their 8 s limit; everything else takes seconds.
    assert elapsed < 60, elapsed


def test_a_parser_that_hangs_is_stopped_at_its_time_limit(tmp_path):
    path = _long_page_pdf(tmp_path / "FL.pdf", 400_000)
    started = time.perf_counter()
    with pytest.raises(PlanError, match=r"FL.pdf: parsing took longer than 2 s"):
        parse_guarded(path, "FL", ParseLimits(seconds=2, memory_mb=1024))
    assert time.perf_counter() - started < 10


def test_a_parser_that_wants_too_much_memory_is_stopped(tmp_path):
    text = _paragraph("b" * 8000) * 20000  # 160 MB of XML text, stored uncompressed
    path = _docx_with_body(tmp_path / "AR.docx", f"<w:document {_W}><w:body>{text}</w:body></w:document>",
                           zipfile.ZIP_STORED)
    with pytest.raises(PlanError, match=r"AR.docx: .*400 MB memory limit"):
        parse_guarded(path, "AR", ParseLimits(seconds=60, memory_mb=400))
    # The size is what stopped it: a tenth of the text parses under the same limit.
    small = _docx_with_body(tmp_path / "AS.docx", f"<w:document {_W}><w:body>{text[:len(text) // 10]}"
                            "</w:body></w:document>", zipfile.ZIP_STORED)
    assert parse_guarded(small, "AS", ParseLimits(seconds=60, memory_mb=400)).n_paragraphs == 2000


def test_good_plans_parse_the_same_guarded_or_not(fixture_plans):
    from assistant.ingest import parse_plan

    for name, state in (("RI.pdf", "RI"), ("kansas-plan.docx", "KS")):
        assert parse_guarded(fixture_plans / name, state) == parse_plan(fixture_plans / name, state)


def test_cli_index_reports_each_bad_file_in_one_line_and_exits_3(tmp_path, fixture_plans):
    from assistant.cli import main

    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    (plans / "GA.pdf").mkdir()
    os.mkfifo(plans / "ID.pdf")
    _docx_with_body(plans / "AL.docx", f"<w:document {_W}><w:body><w:p>")
    write_docx(plans / "KS-copy.docx", FIXTURE_DOCX)  # a second good plan, for Kansas too
    env = {"ESSA_QA_EMBEDDER": "hash", "ESSA_QA_PARSE_TIMEOUT_S": "20"}
    result = CliRunner().invoke(main, ["index", "--plans", str(plans), "--index", str(tmp_path / "index")],
                                env=env)
    assert result.exit_code == 3, result.output
    fails = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 3 and "Traceback" not in result.output, result.output
    assert any("GA.pdf: not a regular file (a folder)" in line for line in fails)
    assert any("ID.pdf: not a regular file (a FIFO)" in line for line in fails)
    assert any("AL.docx: cannot be parsed" in line for line in fails)
    # What could be indexed was written before the non-zero exit.
    assert {c.source for c in load_index(tmp_path / "index").chunks} >= {"RI.pdf", "kansas-plan.docx"}


def test_the_viewer_shows_not_found_for_a_broken_word_file(tmp_path):
    from assistant.webapp import docx_section, viewer_page_html

    _docx_with_body(tmp_path / "AL.docx", f"<w:document {_W}><w:body><w:p>")
    assert docx_section(tmp_path, "AL.docx", 1) is None
    assert "not available" in viewer_page_html(None, "AL.docx", 1)


def test_a_link_into_a_subfolder_is_refused_as_the_viewer_refuses_it(tmp_path, fixture_plans):
    from assistant.plans import discover_plans
    from assistant.webapp import resolve_plan_file

    (tmp_path / "drafts").mkdir()
    shutil.copy(fixture_plans / "RI.pdf", tmp_path / "drafts" / "RI.pdf")
    os.symlink(tmp_path / "drafts" / "RI.pdf", tmp_path / "RI.pdf")
    found, problems = discover_plans(tmp_path)
    assert not found and resolve_plan_file(tmp_path, "RI.pdf") is None
    assert [p.problem for p in problems] == ["a link to a file outside the plans folder; not read"]
