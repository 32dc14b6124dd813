"""`essa-qa index` killed at many points: each time the index on disk answers, from the old
generation or the new one whole, and a rerun completes.

The kill points are spread over one measured uninterrupted run (parsing in the child process,
embedding, writing the generation, swapping CURRENT), KILL_POINTS of them: 12 in every test run;
more as a bench, e.g. `ESSA_QA_KILL_POINTS=100 pytest -s tests/test_kill.py`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from assistant.api import Assistant
from assistant.config import Settings
from assistant.store import load_index
from conftest import FIXTURE_PAGES, write_pdf

KILL_POINTS = int(os.environ.get("ESSA_QA_KILL_POINTS", "12"))
ENV = {**os.environ, "ESSA_QA_EMBEDDER": "hash", "HF_HUB_OFFLINE": "1"}


def _index_command(plans: Path, index_dir: Path) -> list[str]:
    return [sys.executable, "-m", "assistant", "index", "--plans", str(plans), "--index", str(index_dir)]


def _run(plans: Path, index_dir: Path) -> float:
    started = time.perf_counter()
    subprocess.run(_index_command(plans, index_dir), env=ENV, check=True, capture_output=True)
    return time.perf_counter() - started


def _killed_after(plans: Path, index_dir: Path, seconds: float) -> bool:
    """Start a run and SIGKILL it after `seconds`; True when it was still running then."""
    proc = subprocess.Popen(_index_command(plans, index_dir), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def test_index_killed_at_many_points_keeps_answering_and_the_rerun_completes(tmp_path, fixture_plans):
    plans = tmp_path / "plans"
    shutil.copytree(fixture_plans, plans)
    old_index = tmp_path / "old"
    _run(plans, old_index)
    # A larger new plan, so that a run spends time in each of its stages.
    pages = [[f"Page {n}. {paragraph}" for paragraph in page] for n in range(30) for page in FIXTURE_PAGES]
    write_pdf(plans / "VT.pdf", pages)
    shutil.copytree(old_index, tmp_path / "timing")
    full_run = _run(plans, tmp_path / "timing")  # the same run as each killed one, uninterrupted
    settings = Settings(embedder="hash")
    old_ids = [c.id for c in load_index(old_index).chunks]
    outcomes = {"old": 0, "new": 0, "not killed": 0}
    for point in range(KILL_POINTS):
        index_dir = tmp_path / f"kill-{point}"
        shutil.copytree(old_index, index_dir)
        delay = full_run * (point + 0.5) / KILL_POINTS
        killed = _killed_after(plans, index_dir, delay)
        assistant = Assistant.load(index_dir, settings=settings)  # loads, verified, every time
        if assistant.states == ("KS", "RI"):
            assert [c.id for c in assistant.index.chunks] == old_ids, delay
            outcomes["old"] += 1
        else:
            assert assistant.states == ("KS", "RI", "VT"), (delay, assistant.states)
            outcomes["new" if killed else "not killed"] += 1
        assert assistant.search("mentors for incoming ninth graders", k=3)[0].state in ("RI", "VT")
        _run(plans, index_dir)  # the rerun completes and leaves only whole generations
        assert Assistant.load(index_dir, settings=settings).states == ("KS", "RI", "VT")
        assert not [p.name for p in index_dir.iterdir() if p.name.startswith(".tmp-")]
    print(f"\n{KILL_POINTS} kills over a {full_run:.2f} s run: {outcomes}")
    assert outcomes["old"] >= KILL_POINTS // 2  # most points fall before the swap, as the run does
