"""A sentence-transformers model folder (mean pooling) run through `transformers` directly.

Running the model ourselves gives the token vectors and their character offsets, so one forward
pass over a chunk yields the chunk's vector (mean of all tokens: the same vector
SentenceTransformer.encode gives) and a vector per sentence (mean of that sentence's tokens, read
in the context of its chunk: "late chunking"). Sentence vectors then cost no model time at all.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .base import Embedder, Spans
from .models import ModelSpec, model_dir, verify

PRECISIONS = ("fp32", "int8")


class TransformerEmbedder(Embedder):
    runtime = "torch"
    # Texts per forward pass, measured fastest on 2 CPU cores for both models (96 chunks, mpnet
    # 3.10 chunks/s at 4, 2.96 at 2; MiniLM 21.5 at 4, 16.6 at 32): bigger batches pad more and
    # spill the caches.
    default_batch_size = 4

    def __init__(self, spec: ModelSpec, directory: str | os.PathLike | None = None,
                 precision: str = "fp32", batch_size: int = 0,
                 cache_dir: str | os.PathLike | None = None, threads: int = 0):
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown embedder precision {precision!r}; choose one of {PRECISIONS}")
        self.spec = spec
        self.backend = spec.key
        self.name = spec.name
        self.dim = spec.dim
        self.precision = precision
        self.batch_size = batch_size or self.default_batch_size
        self.abstain_similarity = spec.abstain_similarity
        self._directory = directory
        self._cache_dir = cache_dir
        self.threads = max(0, threads)  # threads one forward pass uses; 0: one per core

    @cached_property
    def model_dir(self) -> str:  # type: ignore[override]
        return str(model_dir(self.spec, self._directory, self._cache_dir))

    @cached_property
    def fingerprint(self) -> str:  # type: ignore[override]
        digest = verify(self.spec, Path(self.model_dir))
        return f"{self.name}@sha256:{digest}{self._variant}"

    @property
    def _variant(self) -> str:
        """What sets these vectors apart from the fp32 model's (fp32 agrees across runtimes)."""
        return "" if self.precision == "fp32" else "+int8"

    @cached_property
    def max_tokens(self) -> int:  # type: ignore[override]
        config = Path(self.model_dir) / "sentence_bert_config.json"
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))

    @cached_property
    def _model(self):
        # The model ships inside packages; never reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar between question and answer
        tokenizer = self._tokenizer
        model = AutoModel.from_pretrained(self.model_dir).eval()
        if self.threads:
            torch.set_num_threads(self.threads)  # process-wide in torch: the server's choice
        if self.precision == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's deprecation notices
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return tokenizer, model

    def load(self) -> None:
        self._model

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([rows[0] for rows in self._pooled(texts, [()] * len(texts))])

    def embed_spans_batch(self, texts: Sequence[str], spans: Sequence[Spans]) -> list[np.ndarray]:
        return self._pooled(texts, spans)

    @cached_property
    def _tokenizer(self):
        """The model's fast tokenizer from its tokenizer.json, padded and truncated as the model
        reads text. The `tokenizers` library itself, not transformers' AutoTokenizer: the same
        Rust tokenizer (ids, masks and offsets identical on the index's chunks), without
        importing transformers, which took 8 s of a 51-plan replica's first answer."""
        from tokenizers import Tokenizer

        directory = Path(self.model_dir)
        _require_mean_pooling(directory)  # span pooling assumes mean pooling
        try:
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            special = json.loads((directory / "special_tokens_map.json").read_text(encoding="utf-8"))
        except Exception as exc:  # tokenizers raises plain Exception for a damaged file
            raise ConfigError(f"{directory}: cannot read the model's tokenizer ({exc})") from exc
        pad = special.get("pad_token", "[PAD]")
        pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
        pad_id = tokenizer.token_to_id(pad)
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)
        return tokenizer

    def _token_vectors(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(batch, tokens, dim) contextual token vectors: the one step a runtime does differently."""
        import torch

        _, model = self._model
        with torch.inference_mode():
            out = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.last_hidden_state.float().numpy()

    def _pooled(self, texts: Sequence[str], spans: Sequence[Spans]) -> list[np.ndarray]:
        encodings = self._tokenizer.encode_batch(list(texts))
        offsets = np.array([e.offsets for e in encodings], dtype=np.int64).reshape(len(texts), -1, 2)
        special = np.array([e.special_tokens_mask for e in encodings], dtype=bool)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        tokens = self._token_vectors(input_ids, attention)
        mask = attention.astype(bool)
        out, orphans = [], []
        for row, text_spans in enumerate(spans):
            vectors = np.zeros((1 + len(text_spans), self.dim), dtype=np.float32)
            vectors[0] = tokens[row][mask[row]].mean(axis=0)
            words = mask[row] & ~special[row]
            starts, ends = offsets[row, :, 0], offsets[row, :, 1]
            for j, (a, b) in enumerate(text_spans, 1):
                inside = words & (ends > a) & (starts < b)
                if inside.any():
                    vectors[j] = tokens[row][inside].mean(axis=0)
                else:
                    orphans.append((row, j, texts[row][a:b]))  # cut off by truncation
            out.append(vectors)
        if orphans:  # rare: embed them on their own rather than give them no vector
            alone = self.embed_batch([text for _, _, text in orphans])
            for (row, j, _), vector in zip(orphans, alone):
                out[row][j] = vector
        return out


def _require_mean_pooling(directory: Path) -> None:
    config = directory / "1_Pooling" / "config.json"
    try:
        pooling = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{config}: cannot read the pooling configuration ({exc})") from exc
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ConfigError(f"{directory}: only mean-pooling sentence-transformers models are supported")
