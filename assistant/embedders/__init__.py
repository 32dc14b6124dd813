"""Embedding backends: `base.Embedder`, one file per backend, and this small factory.

    get_embedder("mpnet", settings)       # the backend a setting names
    embedder_for_index(manifest, settings)  # the backend (and precision) an index was built with
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..errors import ConfigError
from .base import Embedder
from .cache import EmbeddingCache
from .hashing import HashEmbedder
from .models import MODELS, ModelSpec
from .onnx import OnnxEmbedder
from .transformer import TransformerEmbedder

__all__ = ["Embedder", "EmbeddingCache", "HashEmbedder", "TransformerEmbedder", "OnnxEmbedder", "MODELS",
           "ModelSpec", "BACKENDS", "RUNTIMES", "get_embedder", "embedder_for_index"]

RUNTIMES = {"torch": TransformerEmbedder, "onnx": OnnxEmbedder}


def _transformer(key: str) -> Callable[[Settings], Embedder]:
    def make(settings: Settings) -> Embedder:
        # The user's own model folder applies to the backend the settings name.
        directory = settings.embedder_model_dir if settings.embedder == key else ""
        runtime = settings.embedder_runtime
        if runtime not in RUNTIMES:
            raise ConfigError(f"unknown embedder runtime {runtime!r}; choose one of {sorted(RUNTIMES)}")
        return RUNTIMES[runtime](MODELS[key], directory or None, settings.embedder_precision,
                                 settings.embedder_batch_size, settings.model_cache or None,
                                 settings.embedder_threads)
    return make


BACKENDS: dict[str, Callable[[Settings], Embedder]] = {
    "mpnet": _transformer("mpnet"),
    "minilm": _transformer("minilm"),
    "hash": lambda settings: HashEmbedder(),
}


def get_embedder(name: str | None = None, settings: Settings | None = None) -> Embedder:
    settings = settings or Settings()
    name = name or settings.embedder
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown embedder {name!r}; choose one of {sorted(BACKENDS)}") from None
    return factory(settings)


def embedder_for_index(embedding: dict, settings: Settings | None = None) -> Embedder:
    """The backend that built an index (its manifest's "embedding" entry): loading needs no setting."""
    from dataclasses import replace

    settings = settings or Settings()
    backend = embedding.get("backend")
    if backend not in BACKENDS:
        raise ConfigError(f"index was built with an unknown embedder {embedding.get('fingerprint')!r}; "
                          "rebuild it with `essa-qa index --rebuild`")
    if backend == "hash":
        return get_embedder(backend, settings)
    precision = embedding.get("precision", "fp32")
    # int8 vectors depend on the runtime that quantized them (indexes from before the runtime
    # was recorded were torch's); fp32 vectors are the same on either, so the setting decides.
    runtime = embedding.get("runtime", "torch") if precision != "fp32" else settings.embedder_runtime
    return get_embedder(backend, replace(settings, embedder_precision=precision, embedder_runtime=runtime))
