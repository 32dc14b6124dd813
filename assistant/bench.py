"""`essa-qa bench`: the speed and memory numbers, printed (never asserted in tests).

- index build time next to a bare encode of the same texts with the same model and batch size
  (SentenceTransformer.encode; the build's extra is parsing, chunking, tagging and writing);
- torch fp32, ONNX Runtime fp32, ONNX Runtime int8 (models.quantize_onnx) and torch int8
  (dynamic quantization of every Linear layer) throughput side by side on a sample of the
  chunks, with how far each moves the vectors and the eval questions' top 5; with
  --int8-quality, a whole int8 index and its hit@5 beside fp32's;
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
from .embedders.models import cpu_has_vnni

QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"
SAMPLE_CHUNKS = 96  # chunks in the torch/ONNX/int8 throughput sample


def run_benchmark(plans_dir: Path, n_questions: int = 50, work_dir: Path | None = None,
                  int8_quality: bool = False, index_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> dict:
    """With `index_dir` (an existing index) only the query side is measured."""
    from .api import Assistant

    settings = replace(load_settings(), embedding_cache="off")  # a cache would time lookups
    embedder = get_embedder(settings=settings)
    results: dict = {"embedder": embedder.fingerprint, "runtime": getattr(embedder, "runtime", ""),
                     "batch_size": embedder.batch_size}
    started = time.perf_counter()
    embedder.load()  # loaded apart, so chunks/s below compare encoding with encoding
    results["model_load_s"] = round(time.perf_counter() - started, 1)
    questions = _questions(n_questions)
    with tempfile.TemporaryDirectory() as scratch:
        if index_dir is None:
            index_dir = Path(work_dir or scratch) / "bench-index"
            results.update(_build_side(plans_dir, index_dir, embedder, settings, questions, log))
        started = time.perf_counter()
        assistant = Assistant.load(index_dir, settings=settings, embedder=embedder)
        results["assistant_load_s"] = round(time.perf_counter() - started, 2)
        results.update(_ask_side(assistant, embedder, questions))
        if int8_quality:
            results.update(_int8_index_quality(plans_dir, Path(work_dir or scratch), settings, assistant, log))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def _build_side(plans_dir: Path, index_dir: Path, embedder, settings, questions: list[str], log) -> dict:
    """A fresh index next to a bare encode of the same texts, and the runtimes side by side."""
    from sentence_transformers import SentenceTransformer

    from .chunking import embedding_text
    from .indexing import build_index
    from .stores import get_store

    results: dict = {}
    log(f"building a fresh index of {plans_dir} in {index_dir}")
    started = time.perf_counter()
    report = build_index(plans_dir, index_dir, embedder, settings, rebuild=True)
    results["index_build_total_s"] = round(time.perf_counter() - started, 1)
    results["index_chunks"] = report.total_chunks
    results["index_embed_s"] = round(report.embed_seconds, 1)
    results["index_chunks_per_s"] = round(report.chunks_per_second, 2)
    texts = [embedding_text(c)[0] for c in get_store(index_dir, settings).load().chunks]
    # The bare reference is sentence-transformers itself, at the batch size torch runs fastest.
    bare_batch = get_embedder(embedder.backend, replace(settings, embedder_runtime="torch")).batch_size
    log(f"bare SentenceTransformer.encode of the same {len(texts)} texts (batch {bare_batch})")
    bare_model = SentenceTransformer(embedder.model_dir, device="cpu")
    started = time.perf_counter()
    bare_model.encode(texts, batch_size=bare_batch, normalize_embeddings=True, show_progress_bar=False)
    bare = time.perf_counter() - started
    del bare_model
    results["bare_encode_s"] = round(bare, 1)
    results["bare_encode_chunks_per_s"] = round(len(texts) / bare, 2)
    results["build_over_bare_encode"] = round(results["index_build_total_s"] / bare, 3)
    results.update(_precision_comparison(embedder, settings, texts, questions, log))
    return results


def _ask_side(assistant, embedder, questions: list[str]) -> dict:
    """Warm `ask` against one bare query embedding of the same model, in the same process."""
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
    results = {"ask_questions": len(latencies), "ask_p50_ms": round(statistics.median(latencies), 1),
               "ask_p95_ms": round(_percentile(latencies, 95), 1),
               "query_embedding_p50_ms": round(statistics.median(query_ms), 1)}
    results["ask_p50_over_query_embedding"] = round(results["ask_p50_ms"] / results["query_embedding_p50_ms"], 2)
    return results


def _precision_comparison(embedder, settings, texts: list[str], questions: list[str], log) -> dict:
    """torch fp32, ONNX Runtime fp32 and int8, and torch int8 on the same sample, in this run: throughput,
    and how far each moves the vectors and the eval questions' top-5 against torch fp32."""
    variants = {
        "torch_fp32": get_embedder(embedder.backend, replace(settings, embedder_runtime="torch",
                                                             embedder_precision="fp32")),
        "onnx_fp32": get_embedder(embedder.backend, replace(settings, embedder_runtime="onnx",
                                                            embedder_precision="fp32")),
        "onnx_int8": get_embedder(embedder.backend, replace(settings, embedder_runtime="onnx",
                                                            embedder_precision="int8")),
        "torch_int8": get_embedder(embedder.backend, replace(settings, embedder_runtime="torch",
                                                             embedder_precision="int8")),
    }
    if not cpu_has_vnni():  # ONNX int8 is refused there (models.require_int8_cpu): say so, skip it
        del variants["onnx_int8"]
        out_note = {"onnx_int8": "refused on this CPU (no VNNI)"}
    else:
        out_note = {}
    sample = texts[::max(1, len(texts) // SAMPLE_CHUNKS)][:SAMPLE_CHUNKS]
    out, vectors, query_vectors = dict(out_note), {}, {}
    for name, backend in variants.items():
        log(f"{name}: encoding {len(sample)} chunks (batch {backend.batch_size})")
        backend.load()
        started = time.perf_counter()
        vectors[name] = backend.embed(sample)
        out[f"{name}_chunks_per_s"] = round(len(sample) / (time.perf_counter() - started), 2)
        query_vectors[name] = backend.embed(questions)
    reference = "torch_fp32"
    top = lambda q, d: np.argsort(-(q @ d.T), axis=1)[:, :5]  # noqa: E731
    reference_top = top(query_vectors[reference], vectors[reference])
    for name in [n for n in variants if n != reference]:
        out[f"{name}_speed_vs_torch_fp32"] = round(out[f"{name}_chunks_per_s"] / out[f"{reference}_chunks_per_s"], 2)
        cosine = (vectors[reference] * vectors[name]).sum(axis=1)
        out[f"{name}_vector_cosine_min"] = round(float(cosine.min()), 4)
        own_top = top(query_vectors[name], vectors[name])
        out[f"{name}_top5_overlap"] = round(float(np.mean([len(set(a) & set(b)) / 5
                                                           for a, b in zip(reference_top, own_top)])), 3)
    return out


def _int8_index_quality(plans_dir: Path, work: Path, settings, fp32_assistant, log) -> dict:
    """A whole int8 index beside the fp32 one, scored on the eval set's answerable questions with
    the lists that need nothing fitted, so both sides are scored alike (`essa-qa eval --cv 5` on
    each index compares the whole pipelines, each with its own fitted file)."""
    from .api import Assistant
    from .evaluation import RetrievalConfig, load_questions, run_evaluation
    from .indexing import build_index

    int8_settings = replace(settings, embedder_precision="int8")
    int8 = get_embedder(settings=int8_settings)
    log("int8: building a whole index and scoring retrieval on the eval set")
    build_index(plans_dir, work / "bench-index-int8", int8, int8_settings, rebuild=True)
    int8_assistant = Assistant.load(work / "bench-index-int8", settings=int8_settings, embedder=int8)
    questions = [q for q in load_questions(QUESTIONS_FILE) if q.answerable]
    configs = tuple(RetrievalConfig(mode, mode) for mode in ("dense", "sentence", "rrf"))
    out = {}
    for name, assistant in (("fp32", fp32_assistant), ("int8", int8_assistant)):
        report = run_evaluation(assistant, questions, plans_dir=None, configs=configs)
        for config in configs:
            out[f"{name}_{config.name}_hit@5"] = round(report.ablations[config.name]["hit@5"], 3)
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
