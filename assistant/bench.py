"""`essa-qa bench`: index build speed next to bare encode, warm ask latency, peak RSS."""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .config import load_settings
from .embedding import MiniLMEmbedder

QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


def run_benchmark(plans_dir: Path, n_questions: int = 50, work_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> dict:
    from .api import Assistant
    from .indexing import build_index

    settings = load_settings()
    embedder = MiniLMEmbedder()
    results: dict = {}
    started = time.perf_counter()
    embedder.model  # loaded apart, so chunks/s below compare encoding with encoding
    results["model_load_s"] = round(time.perf_counter() - started, 1)
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(work_dir or scratch) / "bench-index"
        log(f"building a fresh index of {plans_dir} in {index_dir}")
        started = time.perf_counter()
        report = build_index(plans_dir, index_dir, embedder, settings, rebuild=True)
        results["index_build_total_s"] = round(time.perf_counter() - started, 1)
        results["index_chunks"] = report.total_chunks
        results["index_embed_s"] = round(report.embed_seconds, 1)
        results["index_chunks_per_s"] = round(report.chunks_per_second, 1)

        assistant = Assistant.load(index_dir, settings=settings, embedder=embedder)
        texts = [c.text for c in assistant.index.chunks]
        log(f"plain SentenceTransformer.encode on the same {len(texts)} chunks")
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        bare = time.perf_counter() - started
        results["bare_encode_s"] = round(bare, 1)
        results["bare_encode_chunks_per_s"] = round(len(texts) / bare, 1)

        questions = _questions(n_questions)
        assistant.ask(questions[0])  # warm-up: first call pays lazy imports
        latencies = []
        for question in questions:
            started = time.perf_counter()
            assistant.ask(question)
            latencies.append((time.perf_counter() - started) * 1000)
        query_ms = []
        for question in questions:
            started = time.perf_counter()
            embedder.embed([question])  # not embed_query: its cache would time a lookup
            query_ms.append((time.perf_counter() - started) * 1000)
        results["ask_questions"] = len(latencies)
        results["ask_p50_ms"] = round(statistics.median(latencies), 1)
        results["ask_p95_ms"] = round(_percentile(latencies, 95), 1)
        results["query_embedding_p50_ms"] = round(statistics.median(query_ms), 1)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def _questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [r["question"] for r in rows]
    return (questions * (n // max(len(questions), 1) + 1))[:n]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
