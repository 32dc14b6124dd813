"""Scoring claim checking on a claim set (eval/claims.jsonl): accuracy overall and per expected
verdict, per kind of alteration, and how often an altered claim is judged "supported"."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .checking import CONTRADICTED, NOT_FOUND, SUPPORTED, check_claim
from .errors import ConfigError

VERDICTS = (SUPPORTED, CONTRADICTED, NOT_FOUND)


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    state: str
    verdict: str
    kind: str  # "faithful" or how it was altered
    locator: dict | None


def load_claims(path: str | Path) -> list[Claim]:
    path = Path(path)
    claims = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            claim = Claim(str(data["id"]), str(data["claim"]), str(data["state"]), str(data["verdict"]),
                          str(data["kind"]), data.get("locator"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: not a claim record ({exc})") from exc
        if claim.verdict not in VERDICTS:
            raise ConfigError(f"{path}:{number}: verdict must be one of {', '.join(VERDICTS)}")
        claims.append(claim)
    return claims


def evaluate_claims(assistant, claims: Sequence[Claim]) -> dict:
    """Each claim checked (the state it names is found by the checker itself, as for a user)."""
    rows, seconds = [], []
    for claim in claims:
        started = time.perf_counter()
        result = check_claim(assistant, claim.claim)
        seconds.append(time.perf_counter() - started)
        cited = [{"state": c.state, "page": c.page, "paragraph": c.paragraph} for c in result.citations]
        rows.append({"id": claim.id, "kind": claim.kind, "expected": claim.verdict, "verdict": result.verdict,
                     "correct": result.verdict == claim.verdict, "reason": result.reason,
                     "located": _located(claim.locator, result.citations), "citations": cited})
    altered = [r for r in rows if r["kind"] != "faithful"]
    summary = {
        "n_claims": len(rows),
        "accuracy": share(r["correct"] for r in rows),
        **{f"accuracy_{v}": share(r["correct"] for r in rows if r["expected"] == v) for v in VERDICTS},
        "altered_judged_supported": share(r["verdict"] == SUPPORTED for r in altered),
        "supported_at_the_located_passage": share(
            r["located"] for r in rows if r["expected"] == SUPPORTED and r["verdict"] == SUPPORTED),
        "check_latency_p50_s": round(statistics.median(seconds), 4) if seconds else None,
    }
    kinds = sorted({r["kind"] for r in rows})
    by_kind = {k: {"n": sum(r["kind"] == k for r in rows), "accuracy": share(r["correct"] for r in rows if r["kind"] == k)}
               for k in kinds}
    return {"summary": summary, "by_kind": by_kind, "claims": rows}


def claims_markdown(result: dict, name: str = "claims") -> str:
    s = result["summary"]
    out = [f"## Claim checking: {name}", "", f"{s['n_claims']} claims; each checked as a user's draft sentence.", "",
           *summary_rows(s, skip=("n_claims",))]
    out += ["", "| kind | claims | accuracy |", "|---|---:|---:|"]
    out += [f"| {k} | {v['n']} | {v['accuracy']} |" for k, v in result["by_kind"].items()]
    wrong = [r for r in result["claims"] if not r["correct"]]
    if wrong:
        out += ["", "Wrong verdicts:", ""]
        out += [f"- {r['id']} ({r['kind']}): expected {r['expected']}, got {r['verdict']}: {r['reason']}"
                for r in wrong]
    return "\n".join(out) + "\n"


def _located(locator: dict | None, citations) -> bool:
    """A citation is at the claim's recorded place (same state and page, or paragraph within 2)."""
    if not locator:
        return False
    for c in citations:
        if c.state != locator.get("state"):
            continue
        if locator.get("page") is not None and c.page == locator["page"]:
            return True
        if locator.get("paragraph") is not None and c.paragraph is not None \
                and abs(c.paragraph - locator["paragraph"]) <= 2:
            return True
    return False


def summary_rows(summary: dict, skip=()) -> list[str]:
    """A summary as a Markdown table of metric and value ("–" where not measured)."""
    return ["| metric | value |", "|---|---:|",
            *(f"| {k.replace('_', ' ')} | {'–' if v is None else v} |" for k, v in summary.items() if k not in skip)]


def share(values) -> float | None:
    """The share of true values, None skipped (not measured); None when there are none."""
    values = [v for v in values if v is not None]
    return round(sum(map(bool, values)) / len(values), 3) if values else None
