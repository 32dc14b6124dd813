"""`essa-qa bench`: the speed and memory numbers, printed (never asserted in tests).

- index build time next to a bare encode of the same texts with the same model and batch size
  (SentenceTransformer.encode; the build's extra is parsing, chunking, tagging and writing);
- fp32 and int8 (dynamic quantization of the Linear layers) throughput side by side on a sample
  of the chunks, with how far int8 moves the vectors and the rankings of the eval questions;
  with --int8-quality, a whole int8 index and its hit@5 beside fp32's;
- warm `ask` p50/p95 and their ratio to one bare query embedding, measured in the same process;
- peak RSS.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import load_settings
from .embedders import get_embedder

QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"
INT8_SAMPLE = 96  # chunks in the fp32/int8 throughput sample


def run_benchmark(plans_dir: Path, n_questions: int = 50, work_dir: Path | None = None,
                  int8_quality: bool = False, log: Callable[[str], None] = print) -> dict:
    from sentence_transformers import SentenceTransformer

    from .api import Assistant
    from .chunking import embedding_text
    from .indexing import build_index

    settings = replace(load_settings(), embedding_cache="off")  # a cache would time lookups
    embedder = get_embedder(settings=settings)
    results: dict = {"embedder": embedder.fingerprint, "batch_size": embedder.batch_size}
    started = time.perf_counter()
    embedder._model  # loaded apart, so chunks/s below compare encoding with encoding
    results["model_load_s"] = round(time.perf_counter() - started, 1)
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(work_dir or scratch) / "bench-index"
        log(f"building a fresh index of {plans_dir} in {index_dir}")
        started = time.perf_counter()
        report = build_index(plans_dir, index_dir, embedder, settings, rebuild=True)
        results["index_build_total_s"] = round(time.perf_counter() - started, 1)
        results["index_chunks"] = report.total_chunks
        results["index_embed_s"] = round(report.embed_seconds, 1)
        results["index_chunks_per_s"] = round(report.chunks_per_second, 2)

        assistant = Assistant.load(index_dir, settings=settings, embedder=embedder)
        texts = [embedding_text(c)[0] for c in assistant.index.chunks]
        log(f"bare SentenceTransformer.encode of the same {len(texts)} texts (batch {embedder.batch_size})")
        bare_model = SentenceTransformer(embedder.model_dir, device="cpu")
        started = time.perf_counter()
        bare_model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                          show_progress_bar=False)
        bare = time.perf_counter() - started
        results["bare_encode_s"] = round(bare, 1)
        results["bare_encode_chunks_per_s"] = round(len(texts) / bare, 2)
        results["build_over_bare_encode"] = round(results["index_build_total_s"] / bare, 3)
        del bare_model

        questions = _questions(n_questions)
        results.update(_precision_comparison(embedder, settings, texts, questions, log))

        assistant.ask(questions[0])  # warm-up: the first call pays lazy imports
        latencies, query_ms = [], []
        for question in questions:
            started = time.perf_counter()
            assistant.ask(question)
            latencies.append((time.perf_counter() - started) * 1000)
        for question in questions:
            started = time.perf_counter()
            embedder.embed([question])  # not embed_query: its cache would time a lookup
            query_ms.append((time.perf_counter() - started) * 1000)
        results["ask_questions"] = len(latencies)
        results["ask_p50_ms"] = round(statistics.median(latencies), 1)
        results["ask_p95_ms"] = round(_percentile(latencies, 95), 1)
        results["query_embedding_p50_ms"] = round(statistics.median(query_ms), 1)
        results["ask_p50_over_query_embedding"] = round(results["ask_p50_ms"] / results["query_embedding_p50_ms"], 2)
        if int8_quality:
            results.update(_int8_index_quality(plans_dir, Path(work_dir or scratch), settings, assistant, log))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def _precision_comparison(embedder, settings, texts: list[str], questions: list[str], log) -> dict:
    """fp32 and int8 on the same sample, in this run: throughput, vector cosine, top-5 agreement."""
    int8 = get_embedder(embedder.backend, replace(settings, embedder_precision="int8"))
    sample = texts[::max(1, len(texts) // INT8_SAMPLE)][:INT8_SAMPLE]
    out = {}
    vectors = {}
    for name, backend in (("fp32", embedder), ("int8", int8)):
        log(f"{name}: encoding {len(sample)} chunks")
        backend._model
        started = time.perf_counter()
        vectors[name] = backend.embed(sample)
        out[f"{name}_chunks_per_s"] = round(len(sample) / (time.perf_counter() - started), 2)
        vectors[name + "_q"] = backend.embed(questions)
    out["int8_over_fp32_speed"] = round(out["int8_chunks_per_s"] / out["fp32_chunks_per_s"], 2)
    cosine = (vectors["fp32"] * vectors["int8"]).sum(axis=1)
    out["int8_vector_cosine_mean"] = round(float(cosine.mean()), 4)
    out["int8_vector_cosine_min"] = round(float(cosine.min()), 4)
    top = lambda q, d: np.argsort(-(q @ d.T), axis=1)[:, :5]  # noqa: E731
    fp32_top, int8_top = top(vectors["fp32_q"], vectors["fp32"]), top(vectors["int8_q"], vectors["int8"])
    out["int8_top5_overlap"] = round(float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(fp32_top, int8_top)])), 3)
    return out


def _int8_index_quality(plans_dir: Path, work: Path, settings, fp32_assistant, log) -> dict:
    from .api import Assistant
    from .evaluation import MAIN_CONFIG, RetrievalConfig, load_questions, run_evaluation
    from .indexing import build_index

    int8_settings = replace(settings, embedder_precision="int8")
    int8 = get_embedder(settings=int8_settings)
    log("int8: building a whole index and scoring retrieval on the eval set")
    build_index(plans_dir, work / "bench-index-int8", int8, int8_settings, rebuild=True)
    int8_assistant = Assistant.load(work / "bench-index-int8", settings=int8_settings, embedder=int8)
    questions = [q for q in load_questions(QUESTIONS_FILE) if q.answerable]
    config = (RetrievalConfig(MAIN_CONFIG, "hybrid", rerank=True),)
    out = {}
    for name, assistant in (("fp32", fp32_assistant), ("int8", int8_assistant)):
        report = run_evaluation(assistant, questions, plans_dir=None, configs=config)
        out[f"{name}_hit@5"] = round(report.ablations[MAIN_CONFIG]["hit@5"], 3)
        out[f"{name}_mrr"] = round(report.ablations[MAIN_CONFIG]["mrr"], 3)
    return out


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
