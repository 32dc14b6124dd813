"""The saved index: round trip, refusal of foreign settings, incremental and atomic updates."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.api import Assistant
from assistant.config import Settings
from assistant.embedders import HashEmbedder, get_embedder
from assistant.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from assistant.indexing import build_index
from assistant.store import load_index
from conftest import FIXTURE_DOCX, write_docx


def test_round_trip_keeps_chunks_vectors_and_manifest(fixture_index):
    stored = load_index(fixture_index)
    manifest = stored.manifest
    assert manifest["embedding"]["name"] == HashEmbedder.name
    assert set(manifest["plans"]) == {"RI.pdf", "kansas-plan.docx"}
    assert manifest["plans"]["RI.pdf"]["pages"] == 2
    assert manifest["counts"]["chunks"] == len(stored.chunks) == len(stored.vectors)
    assert {"created_at", "chunker", "tool_version", "categories"} <= set(manifest)
    assert len(manifest["plans"]["RI.pdf"]["sha256"]) == 64


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissingError, match="no index here"):
        Assistant.load(tmp_path / "nowhere")


def test_index_built_with_another_model_is_refused(fixture_index):
    class OtherModel(HashEmbedder):
        name = "other-model"

    with pytest.raises(IndexMismatchError, match="built with embedding model"):
        Assistant.load(fixture_index, settings=Settings(embedder="hash"), embedder=OtherModel())


def test_index_built_with_other_chunker_settings_is_refused(fixture_index):
    with pytest.raises(IndexMismatchError, match="chunker settings"):
        Assistant.load(fixture_index, settings=Settings(embedder="hash", chunk_max_tokens=123))


def test_incremental_reindex_embeds_only_the_changed_plan(tmp_path, fixture_plans, index_copy):
    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    before = {c.id: c for c in load_index(index_copy).chunks}
    write_docx(plans / "kansas-plan.docx", FIXTURE_DOCX + [("p", "Kansas added a rural broadband grant.")])

    report = build_index(plans, index_copy, HashEmbedder(), Settings(embedder="hash"))

    assert report.embedded == ("kansas-plan.docx",)
    assert report.unchanged == ("RI.pdf",)
    after = load_index(index_copy).chunks
    ri_before = sorted(i for i, c in before.items() if c.source == "RI.pdf")
    assert sorted(c.id for c in after if c.source == "RI.pdf") == ri_before
    assert any("broadband" in c.text for c in after)


def test_unchanged_plans_do_not_rewrite_the_index(tmp_path, fixture_plans, index_copy):
    live = (index_copy / "CURRENT").read_text()
    report = build_index(fixture_plans, index_copy, HashEmbedder(), Settings(embedder="hash"))
    assert not report.changed and report.chunks_embedded == 0
    assert (index_copy / "CURRENT").read_text() == live


def test_removed_plan_is_dropped(tmp_path, fixture_plans, index_copy):
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(fixture_plans / "RI.pdf", plans)
    report = build_index(plans, index_copy, HashEmbedder(), Settings(embedder="hash"))
    assert report.removed == ("kansas-plan.docx",)
    assert {c.state for c in load_index(index_copy).chunks} == {"RI"}


def test_bad_files_reported_others_indexed_nothing_lost(tmp_path, fixture_plans, index_copy):
    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    (plans / "DE.pdf").write_bytes(b"")  # zero bytes
    (plans / "MA.pdf").write_text("<html>not a pdf</html>")
    (plans / "RI.pdf").write_bytes((fixture_plans / "RI.pdf").read_bytes()[:200])  # now truncated
    (plans / "mystery.pdf").write_bytes((fixture_plans / "RI.pdf").read_bytes())
    ri_before = [c.id for c in load_index(index_copy).chunks if c.source == "RI.pdf"]

    report = build_index(plans, index_copy, HashEmbedder(), Settings(embedder="hash"))

    failures = "\n".join(report.failed)
    assert len(report.failed) == 4, failures
    assert "DE.pdf: empty file" in failures and "MA.pdf: not a PDF" in failures
    assert "RI.pdf: damaged or truncated PDF" in failures
    assert "mystery.pdf: cannot tell which state" in failures
    chunks = load_index(index_copy).chunks
    # The good plan is still indexed and the broken copy did not wipe RI's indexed version.
    assert [c.id for c in chunks if c.source == "RI.pdf"] == ri_before
    assert any(c.source == "kansas-plan.docx" for c in chunks)


def test_failed_swap_leaves_previous_index_loadable(tmp_path, fixture_plans, index_copy, monkeypatch):
    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    write_docx(plans / "kansas-plan.docx", FIXTURE_DOCX + [("p", "A new paragraph about vaping.")])
    real_replace = os.replace

    def crash_on_swap(src, dst):
        if Path(dst).name == "CURRENT":
            raise KeyboardInterrupt("killed just before the swap")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_swap)
    with pytest.raises(KeyboardInterrupt):
        build_index(plans, index_copy, HashEmbedder(), Settings(embedder="hash"))
    monkeypatch.undo()
    assistant = Assistant.load(index_copy, settings=Settings(embedder="hash"))
    assert not any("vaping" in c.text for c in assistant.index.chunks)
    assert assistant.search("ninth grade mentor")


def test_index_run_killed_midway_leaves_old_index_answering(tmp_path, fixture_plans, shared_plans):
    """A real `essa-qa index` with the real model, SIGKILLed while embedding a big new plan."""
    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    index_dir = tmp_path / "index"
    build_index(plans, index_dir, get_embedder(settings=Settings()), Settings())
    shutil.copy(shared_plans / "DE.pdf", plans / "DE.pdf")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "index", "--plans", str(plans),
                             "--index", str(index_dir)], stderr=subprocess.PIPE, text=True, env=env)
    seen = ""
    deadline = time.monotonic() + 120
    while "embedding:" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.read(1) or ""
        if proc.poll() is not None:
            break
    assert "embedding:" in seen, seen
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assistant = Assistant.load(index_dir, settings=Settings())
    assert assistant.states == ("KS", "RI")
    assert assistant.search("mentors for incoming ninth graders", k=3)[0].state == "RI"


def test_sentence_vectors_must_match_the_chunks_sentences(index_copy):
    import numpy as np

    from assistant.store import live_generation

    stored = load_index(index_copy)
    assert len(stored.sentence_vectors) == sum(len(c.sentences) for c in stored.chunks) > 0
    first = stored.chunks[0]
    assert stored.sentence_rows(0).shape == (len(first.sentences), stored.vectors.shape[1])
    np.save(live_generation(index_copy) / "sentences.npy", stored.sentence_vectors[:-1])
    with pytest.raises(IndexCorruptError, match="sentences.npy"):
        load_index(index_copy)
