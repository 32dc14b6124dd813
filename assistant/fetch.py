"""Getting plan files into the plans folder: copied from a directory or downloaded, several at once
but politely, resumed where a download broke off, retried with backoff, and checked (the file's
kind, its size, its SHA-256) before it is moved into place. Nothing half-written is ever left in
the plans folder: a download grows in the cache and moves in whole.

A hash the manifest does not know is recorded on the first fetch in the plans folder's
plans.lock.json and checked on every later one (a plan that changes under the same URL is
refused, not silently replaced).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import FetchError
from .ingest import sha256_of
from .plans import load_manifest
from .records import PlanInfo

LOCK_NAME = "plans.lock.json"
# What each kind of plan file starts with; anything else (an HTML error page served with a 200,
# a login page, a JSON error) is not kept.
MAGIC = {".pdf": b"%PDF-", ".docx": b"PK\x03\x04"}
USER_AGENT = "essa-plans-assistant (plans fetch)"


@dataclass(frozen=True)
class FetchPolicy:
    workers: int = 4  # files at once
    per_host: int = 2  # connections to one server at once: the Department's site is one host
    attempts: int = 4  # tries per file; a broken-off download resumes where it stopped
    backoff_s: float = 1.0  # wait before the 2nd try, doubled before each later one
    timeout_s: float = 60.0
    partial_dir: Path | None = None  # where downloads grow; default: the user's cache


@dataclass(frozen=True)
class FetchResult:
    state: str
    filename: str
    ok: bool
    message: str
    sha256: str | None = None
    origin: str = ""


class _Retryable(Exception):
    """A failure worth another try (a dropped connection, a 5xx, a timeout, a short body)."""


Progress = Callable[[str, int, int | None], None]


def fetch_plans(plans_dir: Path, source: str | None = None, states: list[str] | None = None,
                on_progress: Progress | None = None, policy: FetchPolicy = FetchPolicy(),
                on_done: Callable[[FetchResult], None] | None = None, every: bool = False,
                on_start: Callable[[int], None] | None = None) -> list[FetchResult]:
    """Copy or download manifest plans into plans_dir; one failure never stops the others.

    Which plans: those of `states`; all of them with `every`; with neither, the manifest plans
    whose files are in the `source` directory. source: a directory holding the files, or a base
    URL; None downloads each plan's own URL. Results come in manifest order.
    """
    plans_dir = Path(plans_dir)
    plans_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(plans_dir)
    wanted = {s.upper() for s in states} if states else None
    if wanted:
        chosen = [p for p in manifest if p.state in wanted]
    elif every:
        chosen = list(manifest)
    elif source and not _is_url(source):
        chosen = [p for p in manifest if (Path(source) / p.filename).is_file()]
        if not chosen:
            raise FetchError(f"{source}: holds no plan file the manifest names (say --all or --state XX)")
    else:
        raise FetchError("say which plans: --all, or --state XX (or --from a folder holding them)")
    if on_start:
        on_start(len(chosen))
    lock = _load_lock(plans_dir)
    hosts: dict[str, threading.Semaphore] = {}
    guard = threading.Lock()

    def one(plan: PlanInfo) -> FetchResult:
        try:
            result = _fetch_one(plan, plans_dir, source, on_progress, policy, lock, hosts, guard)
        except (FetchError, OSError) as exc:
            result = FetchResult(plan.state, plan.filename, False, str(exc))
        if on_done:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(policy.workers, 1)) as pool:
        results = list(pool.map(one, chosen))
    _record(plans_dir, lock, results)
    for state in sorted((wanted or set()) - {p.state for p in manifest}):
        results.append(FetchResult(state, "", False, f"{state}: no plan for this state in the manifest"))
    return results


def _fetch_one(plan: PlanInfo, plans_dir: Path, source: str | None, on_progress: Progress | None,
               policy: FetchPolicy, lock: dict, hosts: dict, guard: threading.Lock) -> FetchResult:
    target = plans_dir / plan.filename
    expected = plan.sha256 or (lock.get(plan.filename) or {}).get("sha256")
    where = "manifest" if plan.sha256 else LOCK_NAME
    if target.is_file() and expected and sha256_of(target) == expected:
        return FetchResult(plan.state, plan.filename, True, f"{plan.filename}: already present, hash verified",
                           expected)
    origin = _origin(plan, source)
    partial = _partial_path(plans_dir, plan, origin, policy)
    progress = (lambda done, total: on_progress(plan.filename, done, total)) if on_progress else (lambda *_: None)
    if _is_url(origin):
        host = urllib.parse.urlparse(origin).netloc
        with guard:
            gate = hosts.setdefault(host, threading.Semaphore(max(policy.per_host, 1)))
        with gate:
            _download(origin, partial, plan.filename, progress, policy)
    else:
        if not Path(origin).is_file():
            raise FetchError(f"{plan.filename}: not found at {origin}")
        shutil.copyfile(origin, partial)
        progress(partial.stat().st_size, partial.stat().st_size)
    try:
        _check_kind(partial, plan.filename, origin)
        digest = sha256_of(partial)
        if expected and digest != expected:
            raise FetchError(f"{plan.filename}: SHA-256 mismatch (got {digest[:12]}…, {where} says "
                             f"{expected[:12]}…); file not kept")
        _move_into_place(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    verified = "hash verified" if expected else f"no hash known: recorded in {LOCK_NAME}"
    return FetchResult(plan.state, plan.filename, True, f"{plan.filename}: fetched from {origin} ({verified})",
                       digest, origin)


def _download(url: str, partial: Path, name: str, progress: Callable[[int, int | None], None],
              policy: FetchPolicy) -> None:
    """`url` into `partial`, resuming what an earlier try (or an earlier run) left there."""
    last = ""
    for attempt in range(max(policy.attempts, 1)):
        if attempt:
            time.sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            _download_once(url, partial, name, progress, policy.timeout_s)
            return
        except _Retryable as exc:
            last = str(exc)
    raise FetchError(f"{name}: download from {url} failed after {max(policy.attempts, 1)} tries ({last})")


def _download_once(url: str, partial: Path, name: str, progress, timeout_s: float) -> None:
    have = partial.stat().st_size if partial.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the earlier try got it all
            return
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code} {exc.reason}") from exc
        raise FetchError(f"{name}: HTTP {exc.code} {exc.reason} from {url}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise _Retryable(str(getattr(exc, "reason", exc))) from exc
    with response:
        resumed = have and response.status == 206
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = (have + expected if resumed else expected) if expected is not None else None
        done = have if resumed else 0
        got = 0
        try:
            with open(partial, "ab" if resumed else "wb") as out:
                while block := response.read(1 << 16):
                    out.write(block)
                    got += len(block)
                    done += len(block)
                    progress(done, total)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:  # IncompleteRead among them
            raise _Retryable(f"connection lost after {done} bytes ({exc})") from exc
        if expected is not None and got < expected:
            raise _Retryable(f"truncated: {done} of {total} bytes")


def _check_kind(path: Path, name: str, origin: str) -> None:
    magic = MAGIC.get(Path(name).suffix.lower())
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        raise FetchError(f"{name}: {origin} sent an empty file; not kept")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        raise FetchError(f"{name}: {origin} sent an HTML page, not a {Path(name).suffix.lstrip('.').upper()} "
                         "(an error or login page?); not kept")
    if magic and not head.startswith(magic):
        raise FetchError(f"{name}: {origin} sent something that is not a {Path(name).suffix.lstrip('.').upper()} "
                         f"(starts {head[:8]!r}); not kept")


def _move_into_place(partial: Path, target: Path) -> None:
    """Into the plans folder whole: a hidden copy beside the target, then one rename."""
    staging = target.with_name(f".{target.name}.incoming")
    try:
        shutil.copyfile(partial, staging)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def _partial_path(plans_dir: Path, plan: PlanInfo, origin: str, policy: FetchPolicy) -> Path:
    """Where this plan's download grows: one file per (plans folder, origin), so a resumed
    download never appends to bytes of another URL."""
    base = policy.partial_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "essa-qa" / "fetch"
    base.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{plans_dir.resolve()}\n{origin}".encode()).hexdigest()[:16]
    return base / f"{key}-{plan.filename}.part"


def _origin(plan: PlanInfo, source: str | None) -> str:
    if source is None:
        if not plan.url:
            raise FetchError(f"{plan.filename}: no URL in the manifest and no --from given")
        return plan.url
    if _is_url(source):
        return urllib.parse.urljoin(source.rstrip("/") + "/", plan.filename)
    return str(Path(source) / plan.filename)


def _is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in ("http", "https", "file")


def _load_lock(plans_dir: Path) -> dict:
    path = plans_dir / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchError(f"{path}: unreadable lock file ({exc}); fix or remove it") from exc
    return data.get("plans", {}) if isinstance(data, dict) else {}


def _record(plans_dir: Path, lock: dict, results: list[FetchResult]) -> None:
    """Hashes first seen in this run, into the lock file (written whole, then renamed)."""
    new = {r.filename: {"sha256": r.sha256, "origin": r.origin,
                        "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds")}
           for r in results if r.ok and r.sha256 and r.filename not in lock}
    if not new:
        return
    path = plans_dir / LOCK_NAME
    staging = path.with_name(f".{LOCK_NAME}.incoming")
    staging.write_text(json.dumps({"plans": lock | new}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staging, path)
