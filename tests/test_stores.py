"""One suite over every index store: the files in --index and PostgreSQL with pgvector (a real
server this session starts). A generation goes live whole or not at all, one writer at a time,
and the same plans answer the same from either store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from assistant.api import Assistant, LiveAssistant
from assistant.config import Settings
from assistant.embedders import HashEmbedder
from assistant.errors import IndexBusyError, IndexMissingError
from assistant.indexing import build_index
from assistant.stores import get_store

from conftest import ROOT, write_docx

STORES = ["files", "postgres"]
VERMONT = [("h1", "Section 6: Supporting All Students"), ("h2", "6.1 Transitions"),
           ("p", "The Green Mountain agency pairs every ninth grader with a mentor and runs a summer "
                 "bridge week before high school starts.")]


@pytest.fixture(params=STORES)
def settings(request, hash_settings) -> Settings:
    if request.param == "files":
        return hash_settings
    return replace(hash_settings, store="postgres", database_url=request.getfixturevalue("postgres_url"))


@pytest.fixture
def index_dir(tmp_path, request) -> Path:
    # A name of its own per test: the database keeps indexes by name, and the server is shared.
    return tmp_path / f"idx-{request.node.name.replace('[', '-').replace(']', '')}"[:60]


def test_an_empty_store_says_so(settings, index_dir):
    store = get_store(index_dir, settings)
    assert store.generation() == "" and not store.exists()
    with pytest.raises(IndexMissingError):
        store.load()


def test_a_built_index_loads_whole_and_answers_the_same_from_every_store(settings, index_dir, fixture_plans,
                                                                       fixture_index, hash_settings):
    report = build_index(fixture_plans, index_dir, HashEmbedder(), settings)
    assert not report.failed and report.changed
    store = get_store(index_dir, settings)
    stored = store.load()
    reference = get_store(fixture_index, hash_settings).load()
    assert [c.id for c in stored.chunks] == [c.id for c in reference.chunks]
    assert stored.chunks == reference.chunks
    assert np.array_equal(stored.vectors, reference.vectors)
    assert np.array_equal(stored.sentence_vectors, reference.sentence_vectors)
    assert stored.manifest["plans"] == reference.manifest["plans"]
    question = "How does Kansas fund music and visual arts?"
    ours = Assistant.load(index_dir, settings=settings).ask(question)
    theirs = Assistant.load(fixture_index, settings=hash_settings).ask(question)
    assert ours.to_dict() == theirs.to_dict() and not ours.abstained


def test_an_unchanged_run_writes_nothing_and_a_new_plan_goes_live_in_one_step(settings, index_dir, fixture_plans,
                                                                            tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    for f in fixture_plans.iterdir():
        (plans / f.name).write_bytes(f.read_bytes())
    build_index(plans, index_dir, HashEmbedder(), settings)
    store = get_store(index_dir, settings)
    first = store.generation()
    again = build_index(plans, index_dir, HashEmbedder(), settings)
    assert not again.changed and store.generation() == first
    live = LiveAssistant(index_dir, settings=settings, check_every_s=0)
    assert "VT" not in live.current().states
    write_docx(plans / "VT.docx", VERMONT)
    report = build_index(plans, index_dir, HashEmbedder(), settings)
    assert report.embedded == ("VT.docx",) and report.chunks_embedded > 0
    assert store.generation() != first
    assert "VT" in live.current().states  # picked up without a restart
    answer = live.current().ask("How does Vermont help students moving into high school?")
    assert not answer.abstained and answer.citations[0].state == "VT"


def test_a_second_writer_is_refused_in_one_line(settings, index_dir, fixture_plans):
    store = get_store(index_dir, settings)
    with store.writing():
        with pytest.raises(IndexBusyError, match="another `essa-qa index` is writing this index"):
            build_index(fixture_plans, index_dir, HashEmbedder(), settings)
    build_index(fixture_plans, index_dir, HashEmbedder(), settings)  # free again afterwards
    assert store.exists()


def test_a_writer_that_dies_midway_leaves_the_last_complete_generation(settings, index_dir, fixture_plans,
                                                                     monkeypatch):
    build_index(fixture_plans, index_dir, HashEmbedder(), settings)
    store = get_store(index_dir, settings)
    before, chunks = store.generation(), store.load().chunks

    class Died(Exception):
        pass

    def dies(*args, **kwargs):  # the vectors are half written when the process goes
        raise Died()

    if settings.store == "postgres":
        from pgvector.psycopg import vector

        monkeypatch.setattr(vector.VectorBinaryDumper, "dump", lambda self, obj: dies())
    else:
        monkeypatch.setattr("assistant.store.os.replace", dies)
    with pytest.raises(Died):
        build_index(fixture_plans, index_dir, HashEmbedder(), settings, rebuild=True)
    assert store.generation() == before and store.load().chunks == chunks


def test_two_app_processes_answer_from_one_database(postgres_url, hash_settings, fixture_plans, tmp_path):
    """Two separate processes, each with its own LiveAssistant on the same database: a plan indexed
    through a third is answered by both without a restart."""
    settings = replace(hash_settings, store="postgres", database_url=postgres_url)
    index_dir = tmp_path / "shared-index"
    plans = tmp_path / "plans"
    plans.mkdir()
    for f in fixture_plans.iterdir():
        (plans / f.name).write_bytes(f.read_bytes())
    build_index(plans, index_dir, HashEmbedder(), settings)
    script = (
        "import json, sys, time\n"
        "from assistant.api import LiveAssistant\n"
        "live = LiveAssistant(sys.argv[1], check_every_s=0)\n"
        "print(json.dumps(sorted(live.current().states)), flush=True)\n"
        "sys.stdin.readline()\n"  # the parent indexes Vermont meanwhile
        "a = live.current().ask('How does Vermont help students moving into high school?')\n"
        "print(json.dumps([sorted(live.current().states), a.citations[0].state if a.citations else None]), flush=True)\n")
    env = {**os.environ, "ESSA_QA_STORE": "postgres", "ESSA_QA_DATABASE_URL": postgres_url,
           "ESSA_QA_EMBEDDER": "hash", "PYTHONPATH": str(ROOT)}
    apps = [subprocess.Popen([sys.executable, "-c", script, str(index_dir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path) for _ in range(2)]
    try:
        assert [json.loads(app.stdout.readline()) for app in apps] == [["KS", "RI"], ["KS", "RI"]]
        write_docx(plans / "VT.docx", VERMONT)
        build_index(plans, index_dir, HashEmbedder(), settings)
        for app in apps:
            app.stdin.write("\n")
            app.stdin.flush()
        answers = [json.loads(app.stdout.readline()) for app in apps]
        assert answers == [[["KS", "RI", "VT"], "VT"]] * 2
    finally:
        for app in apps:
            app.kill()
            app.wait(timeout=10)


def test_the_store_setting_is_checked(hash_settings, tmp_path):
    from assistant.errors import ConfigError

    with pytest.raises(ConfigError, match="needs database_url"):
        get_store(tmp_path, replace(hash_settings, store="postgres"))
    with pytest.raises(ConfigError, match="unknown store 'redis'"):
        get_store(tmp_path, replace(hash_settings, store="redis"))
    with pytest.raises(ConfigError, match="database_url: cannot connect"):
        get_store(tmp_path, replace(hash_settings, store="postgres",
                                    database_url="postgresql://nobody@127.0.0.1:1/none")).generation()


def test_the_scale_benchmark_copies_plans_under_other_codes(settings, index_dir, fixture_index, hash_settings):
    from assistant.bench_scale import scale_copies

    stored = get_store(fixture_index, hash_settings).load()
    manifest, chunks, vectors, sentences = scale_copies(stored, 5)
    assert len(manifest["plans"]) == 5 and len(chunks) == len(vectors)
    assert len({c.id for c in chunks}) == len(chunks)  # every copy has ids of its own
    assert len(sentences) == sum(len(c.sentences) for c in chunks)
    copies = {c.state for c in chunks} - {c.state for c in stored.chunks}
    assert len(copies) == 3 and not copies & {"KS", "RI"}
    store = get_store(index_dir, settings)
    with store.writing():
        store.save(manifest, chunks, vectors, sentences)
    assistant = Assistant.load(index_dir, settings=settings)
    assert len(assistant.states) == 5
    answer = assistant.ask("How does Kansas fund music and visual arts?")
    assert {c.state for c in answer.citations} == {"KS"}


def test_candidates_from_the_database_s_text_search_rank_like_the_memory_search(postgres_url, hash_settings,
                                                                             fixture_plans, tmp_path):
    from assistant.errors import ConfigError

    settings = replace(hash_settings, store="postgres", database_url=postgres_url)
    index_dir = tmp_path / "idx-db-candidates"
    build_index(fixture_plans, index_dir, HashEmbedder(), settings)
    memory = Assistant.load(index_dir, settings=settings)
    database = Assistant.load(index_dir, settings=replace(settings, pg_search="database", pg_search_candidates=2))
    source = database.retriever.candidate_source
    assert source is not None and memory.retriever.candidate_source is None
    chunks = database.index.chunks
    question = "How does Kansas fund music and visual arts?"
    rows = source.rows(question, ["KS"])
    assert 0 < len(rows) <= 2 and all(chunks[r].state == "KS" for r in rows)
    assert "music" in chunks[rows[0]].text  # ranked by the words, not by chance
    assert len(source.rows("How does Kansas fund music?", ["RI"])) == 0  # the state filter holds
    assert len(source.rows("the of and", [])) == 0  # nothing but stop words: no candidates
    top = database.search(question, k=1)[0]
    assert top.chunk_id == memory.search(question, k=1)[0].chunk_id
    # Only the proposed chunks (text search's 2 and the 2 nearest by vector) are ever ranked.
    vector = database.embedder.embed_query(question)
    cosine = database.index.vectors @ vector
    ks = [i for i, c in enumerate(chunks) if c.state == "KS"]
    allowed = {chunks[i].id for i in [*rows.tolist(), *sorted(ks, key=lambda i: -cosine[i])[:2]]}
    ranked = database.search(question, k=10, states=["KS"])
    assert ranked and {p.chunk_id for p in ranked} <= allowed
    with pytest.raises(ConfigError, match='needs store = "postgres"'):
        Assistant.load(index_dir, settings=replace(hash_settings, pg_search="database"))
    with pytest.raises(ConfigError, match="pg_search must be"):
        Assistant.load(index_dir, settings=replace(settings, pg_search="both"))
