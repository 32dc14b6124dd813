"""The browser app under load: throughput and latency at 1, 5 and 20 concurrent users, then a
re-index while users ask (target on two cores: 20 users at least 1.8x the throughput of 1, no
errors, no lost request).

    python bench/load.py [--index index] [--plans plans] [--seconds 20] [--users 1,5,20]
                         [--concurrency N] [--threads N]

Serves a private copy of the index's live generation (the index itself is never written) with
`create_server` over a LiveAssistant, in this process, as `essa-qa serve` does. The users run
in a child process, so their HTTP work does not share the server's GIL; each asks a stream of
distinct questions (no answer comes from the question cache) through the Gradio HTTP API
(/gradio_api/call/on_ask), one at a time, in a Gradio session of its own, until the time is up.

The last phase writes a new generation with store.save_index while users ask: the same chunks
and vectors, every plan title marked, so an answer's cards show which generation it came from.
No request may fail, and every answer after the swap must come from the new generation.
Prints the numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STATES = ("Delaware", "Massachusetts", "Nevada")
TOPICS = ("English learners", "students moving from middle school to high school",
          "social emotional learning", "arts and music education", "career and technical education",
          "homeless students", "dual enrollment and early college", "school climate and safety",
          "teacher preparation and retention", "students in foster care", "computer science courses",
          "chronic absenteeism")
TEMPLATES = ("How does {state} support {topic}?", "What does {state} do about {topic}?",
             "Describe {state}'s plan for {topic}.")
MARK = " (bench generation 2)"  # on every plan title of the re-indexed generation


def question(n: int) -> str:
    """The n-th question: states, topics and phrasings in turn, numbered so none repeats."""
    state, topic, template = STATES[n % 3], TOPICS[(n // 3) % len(TOPICS)], TEMPLATES[(n // 36) % 3]
    return f"{template.format(state=state, topic=topic)} ({n})"


@dataclass(frozen=True)
class Result:
    started: float  # seconds since the phase began
    seconds: float
    ok: bool
    new_generation: bool
    error: str = ""


# ------------------------------------------------------------------ the users (child process)


def run_users(url: str, users: int, seconds: float, first: int) -> tuple[list[Result], float]:
    """`users` users asking for `seconds`; (one Result per request, wall seconds until the last
    answer). Runs in the child process."""
    return asyncio.run(_users(url, users, seconds, first))


async def _users(url: str, users: int, seconds: float, first: int) -> tuple[list[Result], float]:
    import httpx

    numbers = itertools.count(first)
    start = time.perf_counter()
    deadline = start + seconds
    results: list[Result] = []
    limits = httpx.Limits(max_connections=2 * users + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def user(session: str) -> None:
            while time.perf_counter() < deadline:
                results.append(await _ask(client, question(next(numbers)), start, session))

        # One Gradio session per user, as a reporter's open page keeps one (a fresh session per
        # request would time Gradio building its per-session state, ~10 ms each, not answers).
        await asyncio.gather(*(user(f"bench-{first}-{n}") for n in range(users)))
    return results, time.perf_counter() - start


async def _ask(client, text: str, start: float, session: str) -> Result:
    began = time.perf_counter()
    try:
        posted = await client.post("/gradio_api/call/on_ask",
                                   json={"data": [text, [], [], [], 5, ""], "session_hash": session})
        posted.raise_for_status()
        stream = await client.get(f"/gradio_api/call/on_ask/{posted.json()['event_id']}")
        stream.raise_for_status()
        reply = _reply(stream.text)
        ok = 'class="essa-answer' in reply and "essa-error" not in reply
        error = "" if ok else reply[:200]
    except Exception as exc:  # a failed request is counted and shown, not fatal to the bench
        reply, ok, error = "", False, f"{type(exc).__name__}: {exc}"[:200]
    return Result(began - start, time.perf_counter() - began, ok, MARK.strip() in reply, error)


def _reply(stream: str) -> str:
    """The assistant's reply HTML from the event stream, or the stream when it did not complete."""
    if "event: complete\ndata: " not in stream:
        return stream
    history = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])[0]
    return history[-1]["content"][0]["text"]


# ------------------------------------------------------------------ the server (this process)


def private_copy(index_dir: Path, target: Path) -> Path:
    """CURRENT and the live generation of `index_dir`, copied to `target` (no cache, no old ones)."""
    from assistant.store import live_generation

    live = live_generation(index_dir)
    if live is None:
        sys.exit(f"{index_dir}: no index here; build one with `essa-qa index`")
    target.mkdir(parents=True)
    shutil.copytree(live, target / live.name)
    (target / "CURRENT").write_text(live.name, encoding="utf-8")
    return target


def write_marked_generation(index_dir: Path) -> float:
    """A new generation through the index writer, plan titles marked; returns when CURRENT moved."""
    from assistant.store import load_index, save_index

    stored = load_index(index_dir)
    plans = {source: {**plan, "title": (plan.get("title") or source) + MARK}
             for source, plan in stored.manifest.get("plans", {}).items()}
    save_index(index_dir, {**stored.manifest, "plans": plans}, list(stored.chunks), stored.vectors,
               stored.sentence_vectors)
    return time.perf_counter()


def memory_mb(pids: Sequence[int] = ()) -> tuple[float, float]:
    """(resident, peak resident) MB of this process, which is the server, plus its answer workers
    (`pids`; the peak is the sum of each process's own peak)."""
    rss = peak = 0.0
    for pid in ["self", *map(str, pids)]:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # a worker that has exited
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        rss += int(fields["VmRSS"].split()[0]) / 1024
        peak += int(fields["VmHWM"].split()[0]) / 1024
    return rss, peak


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def row(label: str, results: list[Result], wall: float, pids: Sequence[int] = ()) -> tuple[str, float]:
    times = [r.seconds for r in results if r.ok]
    errors = sum(not r.ok for r in results)
    throughput = len(times) / wall if wall else 0.0
    rss, peak = memory_mb(pids)
    return (f"{label:>10} {len(results):9d} {errors:7d} {throughput:9.2f} "
            f"{statistics.median(times) * 1000 if times else float('nan'):9.0f} "
            f"{percentile(times, 0.95) * 1000:9.0f} {rss:8.0f} {peak:8.0f}"), throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=str(ROOT / "index"))
    parser.add_argument("--plans", default=str(ROOT / "plans"))
    parser.add_argument("--seconds", type=float, default=20.0, help="Per load level.")
    parser.add_argument("--users", default="1,5,20", help="Concurrent users per level.")
    parser.add_argument("--reindex-users", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=0,
                        help="Answers computed at once (default: the web_concurrency setting).")
    parser.add_argument("--threads", type=int, default=None,
                        help="Threads per forward pass (default: as the app chooses, web_settings).")
    args = parser.parse_args()

    from assistant.api import LiveAssistant
    from assistant.config import load_settings
    from assistant.webapp import BackgroundServer, create_server, web_settings

    settings = load_settings()
    if args.concurrency:
        settings = replace(settings, web_concurrency=args.concurrency)
    if args.threads is not None:
        settings = replace(settings, embedder_threads=args.threads)
    settings = web_settings(settings)  # as `essa-qa serve` runs
    with tempfile.TemporaryDirectory() as scratch, \
            ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as users:
        index_dir = private_copy(Path(args.index), Path(scratch) / "index")
        live = LiveAssistant(index_dir, settings=settings, check_every_s=settings.index_check_s)
        live.current().ask("How do states support transitions?")  # model load and first-call set-up
        app = create_server(live, args.plans, settings=settings)
        pids = app.state.answer_pool.pids() if app.state.answer_pool else []
        with BackgroundServer(app) as server:
            users.submit(run_users, server.url, 1, 2.0, 10**6).result()  # warm the queue and the child
            print(f"index {args.index} (generation {live.generation}, {len(live.current().index.chunks)} "
                  f"chunks); web_concurrency {settings.web_concurrency}; model threads per answer "
                  f"{settings.embedder_threads or 'all cores'}; answer processes "
                  f"{settings.web_workers or 'none (threads of the server)'}; {args.seconds:g} s per level\n")
            print(f"{'users':>10} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>9} {'p95 ms':>9} "
                  f"{'RSS MB':>8} {'peak MB':>8}")
            rates, first = {}, 0
            for n in (int(u) for u in args.users.split(",")):
                results, wall = users.submit(run_users, server.url, n, args.seconds, first).result()
                first += len(results) + 1000
                line, rates[n] = row(str(n), results, wall, pids)
                print(line, flush=True)
                _show_errors(results)
            reindex(users, server.url, live, index_dir, args.reindex_users, args.seconds, first, pids)
            if len(rates) > 1:
                low, high = min(rates), max(rates)
                print(f"\nthroughput at {high} users / at {low}: {rates[high] / rates[low]:.2f}x")


def reindex(users, url: str, live, index_dir: Path, n: int, seconds: float, first: int,
            pids: Sequence[int] = ()) -> None:
    """Users ask while a new generation is written a third of the way in; then one more question."""
    old = live.generation
    pending = users.submit(run_users, url, n, seconds, first)
    began = time.perf_counter()  # the child's clock starts within milliseconds of this one
    time.sleep(seconds / 3)
    swapped_at = write_marked_generation(index_dir) - began
    results, wall = pending.result()
    line, _ = row("re-index", results, wall, pids)
    print(line)
    _show_errors(results)
    after_swap = [r for r in results if r.started > swapped_at + live.check_every_s + 5.0]
    new = [r for r in results if r.new_generation]
    first_new = min((r.started for r in new), default=float("nan")) - swapped_at
    late_old = sum(not r.new_generation for r in after_swap)
    final, _ = users.submit(run_users, url, 1, 0.1, first + 10**5).result()
    print(f"  generation {old} -> {live.generation}: written {swapped_at:.1f} s in; first new answer "
          f"started {first_new:+.1f} s after it; {len(new)} of {len(results)} from the new one; old "
          f"answers started more than 5 s after the swap: {late_old}; a later question answered "
          f"from the new generation: {'yes' if final and all(r.new_generation for r in final) else 'NO'}")


def _show_errors(results: list[Result]) -> None:
    for error in sorted({r.error for r in results if not r.ok})[:3]:
        print(f"  error: {error}")


if __name__ == "__main__":
    main()
