"""Shareable answers and claim checks: each is kept under an id, and /answer/<id> (/check/<id>)
reopens it read-only for a colleague with the same text and citations, whatever the index holds
by then.

Answers are stored as JSON files in `<index>/shared/` (beside the generations, which indexing
replaces: a shared answer outlives them). The id is the first 20 hex digits of the SHA-256 of
the stored answer, so asking the same thing of the same generation gives the same link, and a
file cannot be named from outside: an id is checked to be 20 hex digits before any path is made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .records import Answer, CategoryEvidence, Citation

SHARED_DIR = "shared"
_ID = re.compile(r"^[0-9a-f]{20}$")


@dataclass(frozen=True)
class SharedAnswer:
    id: str
    answer: Answer
    index_built: str  # when the index it was answered from was built (its manifest's created_at)
    created: str  # ISO time, UTC


def answer_record(answer: Answer) -> dict:
    """Everything an Answer holds, as JSON types (Answer.to_dict is the CLI's shorter form)."""
    return asdict(answer)


def citation_from_record(data: dict) -> Citation:
    return Citation(**{**data, "categories": tuple(data.get("categories", ()))})


def answer_from_record(data: dict) -> Answer:
    citation = citation_from_record
    return Answer(question=data["question"], states=tuple(data["states"]), abstained=bool(data["abstained"]),
                  reason=data.get("reason"), answer=data["answer"], categories=tuple(data["categories"]),
                  citations=tuple(citation(c) for c in data["citations"]),
                  related=tuple(citation(c) for c in data.get("related", ())),
                  evidence=tuple(CategoryEvidence(**e) for e in data.get("evidence", ())),
                  sections=tuple(tuple(s) for s in data.get("sections", ())))


@dataclass(frozen=True)
class SharedCheck:
    id: str
    report: object  # checking.CheckReport
    index_built: str
    created: str


def check_from_record(data: dict):
    from .checking import CheckReport, ClaimCheck

    return CheckReport(data["text"], tuple(
        ClaimCheck(c["claim"], c["verdict"], c["reason"],
                   tuple(citation_from_record(x) for x in c["citations"]))
        for c in data["claims"]))


class AnswerStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def beside(cls, index_dir: str | Path) -> "AnswerStore":
        return cls(Path(index_dir) / SHARED_DIR)

    def save(self, answer: Answer, index_built: str = "") -> str:
        return self._save({"answer": answer_record(answer), "index_built": index_built})

    def save_check(self, report, index_built: str = "") -> str:
        """A claim check (checking.CheckReport), kept like an answer."""
        return self._save({"check": asdict(report), "index_built": index_built})

    def _save(self, body: dict) -> str:
        answer_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
        path = self.root / f"{answer_id}.json"
        if path.is_file():
            return answer_id
        self.root.mkdir(parents=True, exist_ok=True)
        record = {**body, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        # Written aside and renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False)
        os.replace(tmp, path)
        return answer_id

    def load(self, answer_id: str) -> SharedAnswer | None:
        """The shared answer, or None for an id that is malformed, unknown, unreadable or a check."""
        return self._load(answer_id, "answer", answer_from_record, SharedAnswer)

    def load_check(self, check_id: str) -> SharedCheck | None:
        return self._load(check_id, "check", check_from_record, SharedCheck)

    def _load(self, record_id: str, kind: str, build, shared):
        record = self._record(record_id)
        try:
            return shared(record_id, build(record[kind]), str(record.get("index_built", "")),
                          str(record.get("created", "")))
        except (KeyError, TypeError, ValueError):
            return None

    def _record(self, record_id: str) -> dict:
        if not _ID.match(record_id or ""):
            return {}
        try:
            data = json.loads((self.root / f"{record_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class ShareLinks:
    """How the web app shares: where answers are kept, and the app's address for links pasted
    elsewhere (the Markdown export); "" leaves them relative to the page."""

    store: AnswerStore
    base_url: str = ""

    def share(self, answer: Answer, assistant) -> tuple[str, str]:
        """(link relative to the app's root, link for pasting) to `answer`, saved."""
        return self._links("answer", self.store.save(answer, _built(assistant)))

    def share_check(self, report, assistant) -> tuple[str, str]:
        return self._links("check", self.store.save_check(report, _built(assistant)))

    def _links(self, kind: str, record_id: str) -> tuple[str, str]:
        path = f"{kind}/{record_id}"
        return path, (self.base_url.rstrip("/") + "/" + path if self.base_url else path)


def _built(assistant) -> str:
    return str(assistant.index.manifest.get("created_at", ""))
