"""What plans are present and whether each is indexed (for `essa-qa plans list` and the app)."""

from __future__ import annotations

from pathlib import Path

from .errors import EssaError, PlanError, UnknownStateError
from .guarded import parse_guarded
from .ingest import sha256_of
from .plans import discover_plans
from .store import live_generation, load_index


def list_plans(plans_dir: Path, index_dir: Path) -> list[dict]:
    """One row per document: state, file, format, pages or paragraphs, hash, indexed, problem."""
    indexed: dict[str, dict] = {}
    if live_generation(Path(index_dir)):
        try:
            indexed = load_index(Path(index_dir)).manifest.get("plans", {})
        except EssaError:
            indexed = {}
    found, unknown = discover_plans(plans_dir)
    rows = []
    for plan in found:
        digest = sha256_of(plan.path)
        known = indexed.get(plan.path.name)
        row = {"state": plan.state, "file": plan.path.name, "format": plan.path.suffix.lower().lstrip("."),
               "pages": None, "paragraphs": None, "sha256": digest,
               "indexed": bool(known and known["sha256"] == digest), "problem": None}
        if row["indexed"]:
            row["pages"], row["paragraphs"] = known.get("pages"), known.get("paragraphs")
        else:
            try:
                document = parse_guarded(plan.path, plan.state)
                row["pages"], row["paragraphs"] = document.n_pages, document.n_paragraphs
            except PlanError as exc:
                row["problem"] = exc.problem
        rows.append(row)
    for err in unknown:
        rows.append({"state": "?", "file": Path(err.path).name, "format": Path(err.path).suffix.lstrip("."),
                     "pages": None, "paragraphs": None,
                     # Only a regular file is read: a FIFO named X.pdf would block forever.
                     "sha256": sha256_of(Path(err.path)) if isinstance(err, UnknownStateError) else None,
                     "indexed": False, "problem": err.problem})
    return rows
