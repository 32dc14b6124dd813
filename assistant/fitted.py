"""The fitted parts of the pipeline, stored as plain numbers in one TOML file per embedder:
fusion weights, the second-stage reranker, sentence relevance and the answer decision.

`essa-qa fit` fits them with cross-validation on the eval set and writes the file; an index built
with another embedder (or the test's hashing one) gets the defaults: equal-weight RRF, no
reranker, the fixed sentence mix and the fixed abstention rule.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .answer.compose import SentenceModel
from .answer.decision import DecisionModel
from .errors import ConfigError
from .learning import LinearModel
from .retrieval import Fusion, RetrievalModels

DATA_DIR = Path(__file__).resolve().parent / "data"


def default_model_path(backend: str, precision: str = "fp32") -> Path:
    """One file per embedder and precision: int8 scores differ a little from fp32's."""
    return DATA_DIR / (f"pipeline.{backend}.toml" if precision == "fp32" else f"pipeline.{backend}.{precision}.toml")


@dataclass(frozen=True)
class Fitted:
    retrieval: RetrievalModels = RetrievalModels()
    sentence: SentenceModel | None = None
    decision: DecisionModel | None = None
    embedding: str = ""  # the fingerprint of the embedder whose scores these were fitted on
    notes: dict = field(default_factory=dict)  # how and when it was fitted, its held-out numbers

    def to_toml(self) -> str:
        tables: dict = {"embedding": self.embedding, "notes": self.notes,
                        "fusion": self.retrieval.fusion.to_table()}
        if self.retrieval.rerank is not None:
            tables["rerank"] = self.retrieval.rerank.to_table()
        if self.sentence is not None:
            tables["sentence"] = self.sentence.to_table()
        if self.decision is not None:
            tables["decision"] = self.decision.to_table()
        return dump_toml(tables)

    @classmethod
    def from_toml(cls, text: str, source: str = "") -> "Fitted":
        try:
            data = tomllib.loads(text)
            rerank = LinearModel.from_table(data["rerank"]) if "rerank" in data else None
            return cls(retrieval=RetrievalModels(Fusion.from_table(data.get("fusion", {})), rerank),
                       sentence=SentenceModel.from_table(data["sentence"]) if "sentence" in data else None,
                       decision=DecisionModel.from_table(data["decision"]) if "decision" in data else None,
                       embedding=str(data.get("embedding", "")), notes=dict(data.get("notes", {})))
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source or 'fitted model'}: cannot read it ({exc})") from exc


def load_fitted(embedder, path: str | os.PathLike | None = None) -> Fitted:
    """The fitted models for this embedder, or the defaults when none were fitted on its scores."""
    path = Path(path or default_model_path(embedder.backend, embedder.precision))
    if not path.is_file():
        return Fitted()
    fitted = Fitted.from_toml(path.read_text(encoding="utf-8"), str(path))
    return fitted if fitted.embedding == embedder.fingerprint else Fitted()


def dump_toml(tables: dict) -> str:
    """TOML for scalars, lists of scalars and one level of tables (all the fitted file needs)."""
    lines = [f"{k} = {_value(v)}" for k, v in tables.items() if not isinstance(v, dict)]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(_value(v) for v in value) + "]"
