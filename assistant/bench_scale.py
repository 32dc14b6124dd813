"""`essa-qa bench --scale N`: the query side at N plans on both stores, beside 3 plans.

The N-plan corpus is the built index's plans copied under other states' postal codes (a scratch
index, deleted afterwards): every copy is the same chunks with the same vectors, so nothing is
embedded (25,000 chunks would take hours on 2 cores; the build's speed is `essa-qa bench`'s
index_build numbers, measured on the real plans). For each store and size it prints: the time to
write the index, its size, the cold start to a first answer and that process's peak RSS (a fresh
process each: imports, model and index load), and warm `ask` p50/p95 with their ratio to one bare
query embedding. The eval questions name DE, MA and NV, which every corpus holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .states import STATE_NAMES

# Measured in a fresh process: `python -m assistant.bench_scale INDEX N_QUESTIONS` prints JSON.
_PROBE = "assistant.bench_scale"


def scale_copies(stored, n_plans: int):
    """(manifest, chunks, vectors, sentence_vectors) of `stored` grown to n_plans plans: the
    originals, then copies under the postal codes no indexed plan has, in order."""
    import numpy as np

    plans = stored.manifest.get("plans", {})
    spare = [code for code in STATE_NAMES if code not in {p["state"] for p in plans.values()}]
    chunks, vectors, sentences = list(stored.chunks), [stored.vectors], [stored.sentence_vectors]
    meta = dict(plans)
    copies = max(0, n_plans - len(plans))
    if copies > len(spare):
        from .errors import ConfigError

        raise ConfigError(f"--scale {n_plans}: at most {len(plans) + len(spare)} plans (one per postal code)")
    originals = list(plans.items())
    for n in range(copies):
        source, info = originals[n % len(originals)]
        code = spare[n]
        name = f"{code}-copy-of-{source}"
        meta[name] = {**info, "state": code}
        rows = [i for i, c in enumerate(stored.chunks) if c.source == source]
        for i in rows:
            c = stored.chunks[i]
            chunks.append(replace(c, id=hashlib.sha1(f"{code}:{c.id}".encode()).hexdigest()[:16],
                                  state=code, source=name))
        vectors.append(stored.vectors[rows])
        sentences += [stored.sentence_rows(i) for i in rows]
    manifest = {**stored.manifest, "plans": meta}
    manifest.pop("files", None)
    return manifest, chunks, np.vstack(vectors), np.vstack(sentences).astype(np.float32)


def run_scale_benchmark(index_dir: Path, n_plans: int, n_questions: int = 50, stores: tuple[str, ...] = ("files", "postgres"),
                        log: Callable[[str], None] = print) -> dict:
    from .config import load_settings
    from .stores import get_store

    settings = load_settings()
    stored = get_store(index_dir, replace(settings, store="files")).load()
    base = len(stored.manifest.get("plans", {}))
    results: dict = {}
    work = Path(tempfile.mkdtemp(prefix="essa-qa-scale-"))
    server = None
    try:
        for kind in stores:
            env_settings = {"ESSA_QA_STORE": kind}
            store_settings = replace(settings, store=kind)
            if kind == "postgres":
                import pgserver

                server = server or pgserver.get_server(work / "pg", cleanup_mode="delete")
                env_settings["ESSA_QA_DATABASE_URL"] = server.get_uri()
                store_settings = replace(store_settings, database_url=server.get_uri())
            for size in sorted({base, n_plans}):
                log(f"{kind}: {size} plans")
                manifest, chunks, vectors, sentences = scale_copies(stored, size)
                target = work / f"{kind}-{size}"
                store = get_store(target, store_settings)
                started = time.perf_counter()
                with store.writing():
                    store.save(manifest, chunks, vectors, sentences)
                key = f"{kind}_{size}_plans"
                results[f"{key}_chunks"] = len(chunks)
                results[f"{key}_write_s"] = round(time.perf_counter() - started, 2)
                results[f"{key}_size_mb"] = round(_size_mb(store, target), 1)
                # The first start after a build stems every chunk for BM25 and keeps the result beside
                # the index (as `essa-qa index` does); a restarted replica reads it: both are shown.
                first = _probe(target, 1, env_settings)
                results[f"{key}_cold_start_building_bm25_s"] = first["cold_start_to_first_answer_s"]
                results.update({f"{key}_{k}": v for k, v in _probe(target, n_questions, env_settings).items()})
        for kind in stores:
            small, large = results.get(f"{kind}_{base}_plans_ask_p50_ms"), results.get(f"{kind}_{n_plans}_plans_ask_p50_ms")
            if small and large:
                results[f"{kind}_ask_p50_{n_plans}_over_{base}"] = round(large / small, 2)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return results


def _size_mb(store, target: Path) -> float:
    if store.name == "files":
        return sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / 2**20
    with store._connect() as conn:  # the rows of this index in every table, with their indexes and TOAST
        total = 0
        for table in ("essa_generation", "essa_chunk", "essa_sentence"):
            rows, = conn.execute(f"SELECT count(*) FROM {table} WHERE index_name = %s", (store.index_name,)).fetchone()
            everything, = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            size, = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
            total += size * rows / max(everything, 1)
        return total / 2**20


def _probe(index_dir: Path, n_questions: int, env: dict) -> dict:
    """Cold start and warm asks in a fresh process (its own peak RSS)."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", _PROBE, str(index_dir), str(n_questions), str(started)],
                         env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"scale probe failed: {out.stderr.strip().splitlines()[-1:] or out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(index_dir: str, n_questions: int, parent_started: float) -> dict:
    import resource

    from .api import Assistant
    from .bench import _ask_side, _questions

    assistant = Assistant.load(index_dir)
    questions = _questions(n_questions)
    assistant.ask(questions[0])
    # perf_counter is system-wide (CLOCK_MONOTONIC) on Linux, so the parent's start time holds here.
    cold = time.perf_counter() - parent_started
    results = {"cold_start_to_first_answer_s": round(cold, 2)}
    results.update(_ask_side(assistant, assistant.embedder, questions))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))), flush=True)
