"""What plans are present and whether each is indexed (for `essa-qa plans list` and the app)."""

from __future__ import annotations

from pathlib import Path

from .errors import EssaError, PlanError, UnknownStateError
from .guarded import parse_guarded
from .ingest import sha256_of
from .plans import discover_plans, load_manifest
from .states import state_name
from .stores import get_store
from .versions import version_of


def list_plans(plans_dir: Path, index_dir: Path, settings=None) -> list[dict]:
    """One row per plan: every document in the folder, then every manifest plan not fetched yet;
    each with state, name, file, version, year, format, pages or paragraphs, template ("ccsso",
    "revised", "" for a plan in its own structure; None where not read), hash, indexed, problem,
    status."""
    from .config import load_settings

    indexed: dict[str, dict] = {}
    store = get_store(Path(index_dir), settings or load_settings())
    if store.exists():
        try:
            indexed = store.load().manifest.get("plans", {})
        except EssaError:
            indexed = {}
    found, unknown = discover_plans(plans_dir)
    rows = []
    for plan in found:
        digest = sha256_of(plan.path)
        known = indexed.get(plan.path.name)
        row = {"state": plan.state, "file": plan.path.name, "format": plan.path.suffix.lower().lstrip("."),
               "pages": None, "paragraphs": None, "sha256": digest,
               "indexed": bool(known and known["sha256"] == digest), "problem": None, "template": None}
        if row["indexed"]:
            row["pages"], row["paragraphs"] = known.get("pages"), known.get("paragraphs")
            row["template"] = known.get("template")
        else:
            try:
                document = parse_guarded(plan.path, plan.state)
                row["pages"], row["paragraphs"] = document.n_pages, document.n_paragraphs
                row["template"] = document.template
            except PlanError as exc:
                row["problem"] = exc.problem
        rows.append(row)
    for err in unknown:
        rows.append({"state": "?", "file": Path(err.path).name, "format": Path(err.path).suffix.lstrip("."),
                     "pages": None, "paragraphs": None,
                     # Only a regular file is read: a FIFO named X.pdf would block forever.
                     "sha256": sha256_of(Path(err.path)) if isinstance(err, UnknownStateError) else None,
                     "indexed": False, "problem": err.problem, "template": None})
    for row in rows:
        row["fetched"] = True
    manifest = {info.filename: info for info in load_manifest(plans_dir)}
    present = {row["file"] for row in rows}
    rows += [{"state": info.state, "file": info.filename, "format": info.format, "pages": None,
              "paragraphs": None, "sha256": info.sha256, "indexed": False, "problem": None, "fetched": False,
              "template": None}
             for name, info in manifest.items() if name not in present]
    for row in rows:
        info = manifest.get(row["file"])
        row["name"] = state_name(row["state"]) if row["state"] != "?" else ""
        version, year = version_of(info, row["file"])
        row["version"], row["year"] = version, year or None
        row["url"] = info.url if info else None
        row["url_checked"] = info.url_checked if info else None
        row["status"] = (row["problem"] or ("indexed" if row["indexed"] else
                         "not indexed" if row["fetched"] else "not fetched"))
    return rows
