"""Plans on disk: the manifest and finding each file's state (fetching them: fetch.py)."""

from __future__ import annotations

import errno
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import PlanError, UnknownStateError
from .ingest import SUPPORTED_SUFFIXES
from .records import PlanInfo
from .states import STATE_NAMES, normalize_state

MANIFEST_NAME = "manifest.toml"
DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "plans" / MANIFEST_NAME


@dataclass(frozen=True)
class PlanFile:
    """A document found in the plans directory, with the state it belongs to."""

    path: Path
    state: str
    info: PlanInfo | None = None


def load_manifest(plans_dir: Path | None = None) -> list[PlanInfo]:
    """The plans directory's own manifest when it has one, else the project's."""
    path = Path(plans_dir) / MANIFEST_NAME if plans_dir else DEFAULT_MANIFEST
    if not path.is_file():
        path = DEFAULT_MANIFEST
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        PlanInfo(state=p["state"].upper(), state_name=p.get("name", STATE_NAMES.get(p["state"].upper(), "")),
                 title=p.get("title", ""), year=str(p.get("year", "")), url=p.get("url", ""),
                 filename=p["filename"], sha256=p.get("sha256"),
                 format=p.get("format", Path(p["filename"]).suffix.lstrip(".").lower()),
                 url_checked=bool(p.get("url_checked", False)), version=str(p.get("version", "")))
        for p in data.get("plan", [])
    ]


def state_from_filename(name: str) -> str | None:
    """"DE.pdf", "delaware-2019-amended.pdf", "new_york_plan.docx" -> postal code, else None."""
    stem = Path(name).stem
    words = [w for w in re.split(r"[-_.\s]+", stem) if w]
    if words and len(words[0]) == 2 and words[0].upper() in STATE_NAMES:
        return words[0].upper()
    spaced = " ".join(words).lower()
    for code, state in sorted(STATE_NAMES.items(), key=lambda kv: -len(kv[1])):
        if re.search(rf"(?<![a-z]){re.escape(state.lower())}(?![a-z])", spaced):
            return code
    return normalize_state(spaced)


def discover_plans(plans_dir: Path) -> tuple[list[PlanFile], list[PlanError]]:
    """Every PDF/DOCX in the directory with its state. Reported instead of read: files whose state
    is unknown, and anything that is not a regular file inside the folder."""
    manifest = {p.filename: p for p in load_manifest(plans_dir)}
    found: list[PlanFile] = []
    unknown: list[PlanError] = []
    for path in sorted(Path(plans_dir).iterdir()) if Path(plans_dir).is_dir() else []:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES or path.name.startswith("."):
            continue
        problem = _not_a_plan_file(path, Path(plans_dir))
        if problem:
            unknown.append(PlanError(path, problem))
            continue
        info = manifest.get(path.name)
        state = info.state if info else state_from_filename(path.name)
        if state is None:
            unknown.append(UnknownStateError(
                path, "cannot tell which state this plan is for; name it like 'DE.pdf' or "
                      "'delaware-plan.pdf', or add it to plans/manifest.toml"))
            continue
        found.append(PlanFile(path=path, state=state, info=info))
    return found, unknown


def _not_a_plan_file(path: Path, plans_dir: Path) -> str:
    """Why `path` is not read ("" when it is a regular file inside the plans folder). A link out of
    the folder is refused here as the web viewer refuses to serve it; a FIFO would block a read."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 raises it for a loop; 3.13 an OSError (ELOOP)
            return "a link that loops back on itself; not read"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a link that loops back on itself; not read"
            return "a link to nothing (dangling symlink); not read"
        # The web viewer's rule (webapp.resolve_plan_file): the file itself lies in the folder.
        if target.parent != plans_dir.resolve():
            return "a link to a file outside the plans folder; not read"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode):
        return ""
    kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
    return f"not a regular file ({kind}); not read"
