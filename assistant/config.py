"""Settings: defaults, then a TOML file, then ESSA_QA_* environment variables (last one wins)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .errors import ConfigError

ENV_PREFIX = "ESSA_QA_"
CONFIG_FILE_ENV = "ESSA_QA_CONFIG"
DEFAULT_CONFIG_FILE = "essa-qa.toml"


@dataclass(frozen=True)
class Settings:
    # Embedding backend (assistant/embedders): "mpnet" (all-mpnet-base-v2, assembled at set-up),
    # "minilm" (all-MiniLM-L6-v2, shipped in a package) or "hash" (no model; tests).
    embedder: str = "mpnet"
    embedder_model_dir: str = ""  # your own copy of that model's folder (checked against its SHA-256)
    # "fp32": the model as it ships. "int8": on ONNX Runtime, the copy quantized at set-up (1.7x
    # fp32's index build, retrieval as good held out; more false abstentions as shipped, so not the
    # default: eval/config.toml); on torch, dynamic quantization of every Linear layer (moves
    # mpnet's vectors far; `essa-qa bench`).
    embedder_precision: str = "fp32"
    embedder_runtime: str = "onnx"  # "onnx" (ONNX Runtime) or "torch"
    embedder_batch_size: int = 0  # 0 = the backend's measured best
    # Threads one forward pass of the model uses; 0: one per core (fastest for indexing and for
    # one question at a time). The web app answering several questions at once uses 1 unless
    # this is set (see webapp.web_settings).
    embedder_threads: int = 0
    model_cache: str = ""  # where assembled models live; "" = $XDG_CACHE_HOME/essa-qa/models
    embedding_cache: str = ""  # "" = <index>/cache/embeddings.sqlite; "off" = no cache
    # Each plan parses in a child process under these limits (assistant/guarded.py); a plan over
    # any of them is one FAIL line and the other plans still index. The three real plans: at most
    # 12 s and 70 MB resident each, 144 pages, 0.4 MB of text, 3.6 MB unzipped, tables 1 deep.
    parse_timeout_s: float = 600.0
    parse_memory_mb: int = 4096
    parse_max_pages: int = 5000
    parse_max_text_mb: float = 64.0  # text extracted from one plan
    parse_max_unzipped_mb: float = 256.0  # a Word file's parts, unpacked
    parse_max_table_depth: int = 16  # deeper nested tables are kept as plain text, with a warning
    chunk_max_tokens: int = 260  # cl100k tokens; issue asks for about 200-300
    chunk_min_tokens: int = 40
    chunk_overlap_tokens: int = 60  # carry the previous sentence when it is this short or shorter
    model_max_wordpieces: int = 256  # a chunk's own words; with its header it fits the model's window
    chunk_header: int = 1  # 1: plan title and section path go before each chunk in what models read
    # The fitted fusion, reranker, sentence and decision models; "" = the file shipped for the
    # index's embedder (assistant/data/pipeline.<backend>.toml, written by `essa-qa fit --write`).
    pipeline_model: str = ""
    facts: str = ""  # the plan-fact schema; "" = assistant/data/facts.toml (essa-qa facts)
    # Below this question-passage cosine a passage is not evidence; negative = the embedder's own
    # calibrated default (see eval/README.md for how it was set).
    abstain_similarity: float = -1.0
    # "auto": pages with no text layer are read by tesseract where it is installed; "off": never.
    ocr: str = "auto"
    llm_base_url: str = ""  # OpenAI-compatible endpoint; empty = extractive answers only
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout_s: float = 60.0
    # The reply's length cap: 3 to 6 short sentences fit in ~250 tokens; without a cap a small
    # model that loops writes until its context is full (minutes on a CPU).
    llm_max_tokens: int = 512
    auth_user: str = ""
    auth_password: str = ""
    # With a password: after this many failed logins from one client within the window, the
    # login answers 429 until the oldest failure is older than the window; a success clears it.
    login_max_failures: int = 5
    login_window_s: float = 60.0
    # Answers the web app computes at once (one worker thread each). The model and numpy release
    # the GIL, so a few workers use both cores; more only queue inside (bench/load.py: 8 measured
    # within noise of 4 at 20 users).
    web_concurrency: int = 4
    # Processes the web app's chat answers run in (assistant/workers.py): -1 = one per core where
    # there are several (webapp.web_settings), 0 = in the server process's threads.
    web_workers: int = -1
    # The app's address as its users reach it (behind a proxy, say): share links in the Markdown
    # export start with it; "" = the address each request came to.
    public_url: str = ""
    # How often, at most, the web app looks at the index's CURRENT file for a new generation.
    index_check_s: float = 1.0
    # Where index generations live (assistant/stores): "files" (the --index folder, one machine)
    # or "postgres" (one PostgreSQL database with pgvector shared by every app replica and the
    # indexer; `database_url` = "postgresql://user:password@host:5432/db").
    store: str = "files"
    database_url: str = ""
    # With store = "postgres": "memory" scores every chunk of the loaded generation in the replica
    # (what the files store does); "database" ranks only PostgreSQL full-text search's
    # pg_search_candidates best chunks for the question's words and as many nearest by its vector
    # (stores/pg_search.py), with the same fusion and second stage.
    pg_search: str = "memory"
    pg_search_candidates: int = 100


def load_settings(config_file: str | os.PathLike | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    settings = Settings()
    path = Path(config_file or environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE)
    if path.is_file():
        settings = _apply(settings, _read_toml(path), source=str(path))
    elif config_file or environ.get(CONFIG_FILE_ENV):
        raise ConfigError(f"{path}: config file not found")
    overrides = {
        f.name: environ[ENV_PREFIX + f.name.upper()]
        for f in fields(Settings)
        if ENV_PREFIX + f.name.upper() in environ
    }
    return _apply(settings, overrides, source="environment")


def _read_toml(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return data.get("essa-qa", data)


def _apply(settings: Settings, values: dict, source: str) -> Settings:
    types = {f.name: f.type for f in fields(Settings)}
    converted = {}
    for name, value in values.items():
        if name not in types:
            raise ConfigError(f"{source}: unknown setting {name!r}")
        kind = {"int": int, "float": float, "str": str}[str(types[name])]
        try:
            converted[name] = kind(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: setting {name!r} must be {types[name]}, got {value!r}") from exc
    return replace(settings, **converted)
