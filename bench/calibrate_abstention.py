"""Calibrate abstention on the eval set: the cosine bar alone against cosine + absent-topic check.

    python bench/calibrate_abstention.py --index index [--questions eval/questions.jsonl] [--k 5]

Each question is retrieved and composed once, exactly as `Assistant.ask` does; the settings of the
absent-topic check (answering.absent_topic) are then swept over the stored features. Prints, per
setting, abstention precision and recall over the unanswerable questions (all, and the absent-topic
ones), the false-abstention rate over answerable ones, and which questions change.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.answering import (TOPIC_BAR_RATIO, TOPIC_COVERAGE_BAR, TopicCheck,  # noqa: E402
                                 absent_topic, compose_answer, relevant_passages)
from assistant.api import Assistant  # noqa: E402

RATIOS = (1.15, 1.2, 1.25, 1.3, 1.35)
COVERAGE_BARS = (0.34, 0.5, 0.67, 1.01)  # 1.01: the rarest term missing is enough


@dataclass(frozen=True)
class Features:
    qid: str
    unanswerable: bool
    absent_topic_question: bool
    old_abstained: bool  # the cosine bar (and states not indexed) alone
    has_evidence: bool
    best: float
    check: TopicCheck | None


def features(assistant: Assistant, question: dict, k: int) -> Features:
    retrieved = assistant.retrieve_for_answer(question["question"], k=k)
    unanswerable = question["kind"] == "unanswerable"
    topic_q = question["id"].startswith("un-top-")
    if retrieved.by_state is None:
        return Features(question["id"], unanswerable, topic_q, True, False, 0.0, None)
    bar = assistant.abstain_below
    evidence = any(relevant_passages(ps, bar) for ps in retrieved.by_state.values())
    states = retrieved.named or (retrieved.scope if retrieved.per_state else [])
    old = compose_answer(question["question"], states, retrieved.by_state, assistant.embedder,
                         assistant.tagger, per_state=retrieved.per_state, abstain_below=bar).abstained
    return Features(question["id"], unanswerable, topic_q, old, evidence, retrieved.best_similarity,
                    assistant.topic_check(question["question"], retrieved))


def decide(f: Features, bar: float, ratio: float | None, coverage_bar: float) -> bool:
    if f.old_abstained or ratio is None or not f.has_evidence:
        return f.old_abstained
    return absent_topic(f.check, f.best, bar, ratio=ratio, coverage_bar=coverage_bar)


def rates(rows: list[Features], decisions: list[bool]) -> dict:
    declined = [f for f, d in zip(rows, decisions) if d]
    unanswerable = [f for f in rows if f.unanswerable]
    topics = [f for f in rows if f.absent_topic_question]
    answerable = [f for f in rows if not f.unanswerable]
    return {
        "precision": sum(f.unanswerable for f in declined) / len(declined) if declined else 1.0,
        "recall": sum(d for f, d in zip(rows, decisions) if f.unanswerable) / max(len(unanswerable), 1),
        "topic_recall": sum(d for f, d in zip(rows, decisions) if f.absent_topic_question) / max(len(topics), 1),
        "false": sum(d for f, d in zip(rows, decisions) if not f.unanswerable),
        "false_rate": sum(d for f, d in zip(rows, decisions) if not f.unanswerable) / max(len(answerable), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="index")
    parser.add_argument("--questions", default=str(ROOT / "eval" / "questions.jsonl"))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="Print every question's features.")
    args = parser.parse_args()
    assistant = Assistant.load(args.index)
    questions = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    rows = [features(assistant, q, args.k) for q in questions]
    bar = assistant.abstain_below
    if args.verbose:
        for f in rows:
            if f.check is not None:
                print(f"{f.qid:10} best {f.best:.3f} coverage {f.check.coverage:.2f} "
                      f"rarest_missing {f.check.rarest_missing!s:5} "
                      f"missing {[t.stem for t in f.check.missing]}")
    print(f"{len(rows)} questions ({sum(f.unanswerable for f in rows)} unanswerable, "
          f"{sum(f.absent_topic_question for f in rows)} absent-topic); cosine bar {bar:.2f}")
    print(f"{'rule':44} {'precision':>9} {'recall':>7} {'topics':>7} {'false abst.':>12}")
    settings = [(None, 0.0)] + [(r, c) for r in RATIOS for c in COVERAGE_BARS]
    for ratio, coverage_bar in settings:
        decisions = [decide(f, bar, ratio, coverage_bar) for f in rows]
        m = rates(rows, decisions)
        if ratio is None:
            name = f"cosine < {bar:.2f} only (old)"
        else:
            chosen = " *" if (ratio, coverage_bar) == (TOPIC_BAR_RATIO, TOPIC_COVERAGE_BAR) else ""
            name = f"+ topic: cos < {ratio * bar:.3f} (x{ratio}), cov < {coverage_bar}{chosen}"
        print(f"{name:44} {m['precision']:9.2f} {m['recall']:7.2f} {m['topic_recall']:7.2f} "
              f"{m['false']:4d} ({m['false_rate']:.1%})")
    decisions = [decide(f, bar, TOPIC_BAR_RATIO, TOPIC_COVERAGE_BAR) for f in rows]
    changed = [f for f, d in zip(rows, decisions) if d != f.old_abstained]
    print(f"chosen setting (*) newly abstains on: {', '.join(f.qid for f in changed) or 'none'}")
    still = [f.qid for f, d in zip(rows, decisions) if f.unanswerable and not d]
    print(f"unanswerable still answered: {', '.join(still) or 'none'}")


if __name__ == "__main__":
    main()
