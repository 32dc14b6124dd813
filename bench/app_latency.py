"""Warm first-answer latency of the browser app on a real index (target: under 1 s).

    python bench/app_latency.py [--index index] [--plans plans] [--repeat 3]

Loads the index and model once, starts the app on a free local port, asks one warm-up question,
then times each question two ways: the chat handler alone in a worker thread (retrieval, answer,
HTML cards), and a full round trip through the app's HTTP queue API (what the browser waits for,
minus drawing).
Prints the numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "How does Delaware support students' transitions from middle school to high school?",
    "What does Massachusetts do for social emotional learning?",
    "How does Nevada support English learners?",
    "What does Delaware do for students moving from high school to college?",
    "How does Massachusetts use technology to personalize learning?",
    "Compare how Delaware and Nevada support career and technical education.",
    "What is Nevada's plan for well-rounded education, such as arts and music?",
    "How does Massachusetts support homeless students?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=str(ROOT / "index"))
    parser.add_argument("--plans", default=str(ROOT / "plans"))
    parser.add_argument("--repeat", type=int, default=3, help="Rounds over the question list.")
    args = parser.parse_args()

    from gradio_client import Client

    from assistant.api import Assistant
    from assistant.webapp import BackgroundServer, chat_reply, create_server

    started = time.perf_counter()
    assistant = Assistant.load(args.index)
    assistant.ask("How do states support transitions?")  # model load and first-call set-up
    print(f"load + warm-up: {time.perf_counter() - started:.2f} s "
          f"({len(assistant.index.chunks)} chunks, states {', '.join(assistant.states)})")

    def time_handler() -> list[float]:
        times = []
        for _ in range(args.repeat):
            for question in QUESTIONS:
                t = time.perf_counter()
                chat_reply(assistant, Path(args.plans), question, [], [])
                times.append(time.perf_counter() - t)
        return times

    # In a worker thread, as Gradio runs handlers: on a busy machine, torch in the main thread
    # was measured several times slower than in a worker, which the app never sees.
    with ThreadPoolExecutor(max_workers=1) as pool:
        handler = pool.submit(time_handler).result()

    with BackgroundServer(create_server(assistant, args.plans)) as server:
        client = Client(server.url, verbose=False)
        endpoint = "/on_ask"  # the question box's submit event: (message, history, states, categories, k, version)
        client.predict("warm up the queue", [], [], [], 5, "", api_name=endpoint)
        http = []
        for _ in range(args.repeat):
            for question in QUESTIONS:
                t = time.perf_counter()
                client.predict(question, [], [], [], 5, "", api_name=endpoint)
                http.append(time.perf_counter() - t)

    for name, times in (("chat handler", handler), (f"HTTP round trip ({endpoint})", http)):
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"{name:36} n={len(times):3}  median {statistics.median(times) * 1000:7.1f} ms  "
              f"p95 {p95 * 1000:7.1f} ms  max {max(times) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
