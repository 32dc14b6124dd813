"""`essa-qa plans fetch` against an HTTP server on 127.0.0.1 that misbehaves in each way a real
one can: a 404, an HTML error page served with a 200, a body cut short, a connection that drops
and must be resumed with a Range request, a 503 before it answers, a file whose hash is not the
manifest's, and a plan that changes after its hash was locked. Nothing half-written may be left
in the plans folder, and each failure is one line naming the file."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.fetch import LOCK_NAME, FetchPolicy, fetch_plans

BODY = b"%PDF-1.4\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"  # ~100 kB, the right kind of file
FAST = FetchPolicy(backoff_s=0.01, timeout_s=10)


class Misbehaving:
    """Serves /<mode>/<file>; counts requests and remembers the Range headers it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.bodies: dict[str, bytes] = {}
        self.failures_left: dict[str, int] = {}
        self.fixed = False  # "truncated" serves whole files (and ranges) once fixed
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                mode, _, name = self.path.strip("/").partition("/")
                outer.requests.append((self.path, self.headers.get("Range")))
                body = outer.bodies.get(name, BODY)
                if mode == "missing":
                    return self._send(404, b"not here", "text/plain")
                if mode == "html":
                    return self._send(200, b"<!DOCTYPE html><html><body>Page moved</body></html>", "application/pdf")
                if mode == "truncated" and not outer.fixed:  # says 100 kB, sends 10 kB, closes
                    return self._send(200, body[:10_000], "application/pdf", length=len(body))
                if mode == "unavailable" and outer.failures_left.get(self.path, 1) > 0:
                    outer.failures_left[self.path] = outer.failures_left.get(self.path, 1) - 1
                    return self._send(503, b"busy", "text/plain")
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                if mode == "drops" and not start:  # the first try breaks off half-way
                    return self._send(200, body[:len(body) // 2], "application/pdf", length=len(body))
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    self.send_header("Content-Length", str(len(body) - start))
                    self.end_headers()
                    self.wfile.write(body[start:])
                    return
                self._send(200, body, "application/pdf")

            def _send(self, code: int, data: bytes, kind: str, length: int | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(length if length is not None else len(data)))
                if length is not None and length != len(data):
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                if length is not None and length != len(data):
                    self.close_connection = True

        return Handler


@pytest.fixture
def server():
    running = Misbehaving()
    yield running
    running.stop()


def manifest(plans_dir: Path, server: Misbehaving, plans: dict[str, tuple[str, str | None]]) -> Path:
    """A plans folder whose manifest lists `plans`: {state: (mode, sha256 or None)}."""
    plans_dir.mkdir(parents=True, exist_ok=True)
    tables = []
    for state, (mode, sha) in plans.items():
        tables.append(f'[[plan]]\nstate = "{state}"\nurl = "{server.url}/{mode}/{state}.pdf"\n'
                      f'filename = "{state}.pdf"\n' + (f'sha256 = "{sha}"\n' if sha else ""))
    (plans_dir / "manifest.toml").write_text("\n".join(tables))
    return plans_dir


def leftovers(plans_dir: Path) -> list[str]:
    return sorted(p.name for p in plans_dir.iterdir() if p.name.startswith(".") or p.suffix == ".part")


def by_state(results) -> dict:
    return {r.state: r for r in results}


def test_every_failure_is_one_line_and_the_good_plans_still_arrive(server, tmp_path):
    digest = hashlib.sha256(BODY).hexdigest()
    plans_dir = manifest(tmp_path / "plans", server, {
        "RI": ("good", digest), "KS": ("missing", None), "OH": ("html", None),
        "TX": ("truncated", None), "UT": ("good", "0" * 64), "VT": ("drops", digest),
        "WY": ("unavailable", digest)})
    results = by_state(fetch_plans(plans_dir, every=True, policy=FETCH_POLICY(tmp_path)))
    assert results["RI"].ok and "hash verified" in results["RI"].message
    assert not results["KS"].ok and results["KS"].message.startswith("KS.pdf: HTTP 404")
    assert not results["OH"].ok and "sent an HTML page, not a PDF" in results["OH"].message
    assert not results["TX"].ok and "truncated: 10000 of" in results["TX"].message
    assert not results["UT"].ok and "SHA-256 mismatch" in results["UT"].message
    assert results["VT"].ok, results["VT"].message  # resumed where the first try broke off
    assert results["WY"].ok, results["WY"].message  # a 503, then the file
    for result in results.values():
        assert "\n" not in result.message and result.message.startswith(f"{result.state}.pdf")
    assert sorted(p.name for p in plans_dir.glob("*.pdf")) == ["RI.pdf", "VT.pdf", "WY.pdf"]
    for name in ("RI.pdf", "VT.pdf", "WY.pdf"):
        assert (plans_dir / name).read_bytes() == BODY
    assert leftovers(plans_dir) == []


def test_a_dropped_download_resumes_with_a_range_request(server, tmp_path):
    plans_dir = manifest(tmp_path / "plans", server, {"VT": ("drops", None)})
    [result] = fetch_plans(plans_dir, states=["VT"], policy=FETCH_POLICY(tmp_path))
    assert result.ok
    ranges = [r for path, r in server.requests if path == "/drops/VT.pdf"]
    assert ranges == [None, f"bytes={len(BODY) // 2}-"]  # the second try asked only for the rest


def test_a_download_cut_short_resumes_in_a_later_run(server, tmp_path):
    """Retries used up on a body cut short: what arrived waits outside the plans folder, and the
    next run asks only for the rest."""
    plans_dir = manifest(tmp_path / "plans", server, {"TX": ("truncated", None)})
    policy = FETCH_POLICY(tmp_path, attempts=1)
    [first] = fetch_plans(plans_dir, states=["TX"], policy=policy)
    assert not first.ok and leftovers(plans_dir) == [] and not (plans_dir / "TX.pdf").exists()
    server.fixed = True
    server.requests.clear()
    [second] = fetch_plans(plans_dir, states=["TX"], policy=policy)
    assert second.ok and server.requests == [("/truncated/TX.pdf", "bytes=10000-")]
    assert (plans_dir / "TX.pdf").read_bytes() == BODY
    # Another URL for the same file starts afresh: a partial download is never appended to
    # bytes of another origin.
    manifest(plans_dir, server, {"TX": ("good", None)})
    (plans_dir / "TX.pdf").unlink()
    (plans_dir / LOCK_NAME).unlink()
    server.requests.clear()
    [third] = fetch_plans(plans_dir, states=["TX"], policy=policy)
    assert third.ok and server.requests == [("/good/TX.pdf", None)]


def test_an_unknown_hash_is_locked_on_first_fetch_and_checked_after(server, tmp_path):
    plans_dir = manifest(tmp_path / "plans", server, {"RI": ("good", None)})
    [first] = fetch_plans(plans_dir, states=["RI"], policy=FETCH_POLICY(tmp_path))
    assert first.ok and f"recorded in {LOCK_NAME}" in first.message
    lock = json.loads((plans_dir / LOCK_NAME).read_text())["plans"]
    assert lock["RI.pdf"]["sha256"] == hashlib.sha256(BODY).hexdigest()
    [again] = fetch_plans(plans_dir, states=["RI"], policy=FETCH_POLICY(tmp_path))
    assert again.ok and "already present, hash verified" in again.message
    # The plan changes under the same URL: refused, and the file already here stays as it was.
    server.bodies["RI.pdf"] = BODY.replace(b"%%EOF", b"%%EOX")
    (plans_dir / "RI.pdf").unlink()
    [changed] = fetch_plans(plans_dir, states=["RI"], policy=FETCH_POLICY(tmp_path))
    assert not changed.ok and f"{LOCK_NAME} says" in changed.message
    assert not (plans_dir / "RI.pdf").exists() and leftovers(plans_dir) == []


def test_fetch_says_which_plans_when_told_none(tmp_path):
    from assistant.errors import FetchError

    with pytest.raises(FetchError, match="say which plans: --all, or --state XX"):
        fetch_plans(tmp_path / "plans")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FetchError, match="holds no plan file the manifest names"):
        fetch_plans(tmp_path / "plans", source=str(tmp_path / "empty"))


def test_cli_fetch_all_reports_each_plan_and_a_total(server, tmp_path, monkeypatch):
    from assistant.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digest = hashlib.sha256(BODY).hexdigest()
    plans_dir = manifest(tmp_path / "plans", server, {"RI": ("good", digest), "KS": ("missing", None)})
    result = CliRunner().invoke(main, ["plans", "fetch", "--plans", str(plans_dir), "--all"])
    assert result.exit_code == 4
    assert "ok    RI.pdf: fetched from" in result.output and "FAIL  KS.pdf: HTTP 404" in result.output
    assert "1 of 2 plans ok" in result.output


def FETCH_POLICY(tmp_path: Path, **overrides) -> FetchPolicy:
    """Fast retries, and downloads growing under this test's own folder."""
    from dataclasses import replace

    return replace(FAST, partial_dir=tmp_path / "partial", **overrides)
