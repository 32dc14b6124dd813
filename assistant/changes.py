"""What changed between two versions of a state's plan, on a topic or throughout.

Sentences are the unit of comparison: a sentence of the newer version that the older one does
not hold (case, spacing and punctuation aside) was added, and the reverse was removed. Chunk
boundaries move when a plan is edited, so passages are only used to show where a sentence sits:
each changed passage is paired with its most similar passage on the other side (word stems in
common), and a pair with sentences on either side is one "changed" entry. What has no similar
passage on the other side is "added" or "removed" whole.

With a topic, the changes kept are those whose passages rank in the top `depth` of a search for
the topic within either version (the same retrieval as `ask`), ordered by that rank; without one,
every change in the newer version's reading order, then what was removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .answer.compose import make_citation
from .errors import ConfigError
from .records import TOC, Change, Chunk, VersionChanges
from .states import state_name
from .versions import PlanVersion, describe

# Passages that share fewer word stems than this (Jaccard) are not shown as one edited passage.
PAIR_SIMILARITY = 0.3
TOPIC_DEPTH = 10  # per version: the topic's passages are its top 10 there


def compare_versions(assistant, state: str, old: str | None = None, new: str | None = None,
                     topic: str = "", depth: int = TOPIC_DEPTH, limit: int | None = None) -> VersionChanges:
    """The differences between two of `state`'s indexed plan versions (default: the newest and
    the one before it). ConfigError in one line when the state or a version is not indexed."""
    older, newer = _pick(assistant.versions.get(state.upper(), []), state.upper(), old, new)
    retriever = assistant.retriever
    rows_old = _rows(retriever.chunks, older.source)
    rows_new = _rows(retriever.chunks, newer.source)
    sentences = {i: _sentences(retriever.chunks[i]) for i in rows_old + rows_new}
    held_old = {key for i in rows_old for key, _ in sentences[i]}
    held_new = {key for i in rows_new for key, _ in sentences[i]}

    entries: dict[tuple[int | None, int | None], dict[str, list[str]]] = {}
    seen: set[tuple[str, str]] = set()  # chunks overlap: a sentence in two of them is reported once
    for side, rows, other_rows, other_held in (("added", rows_new, rows_old, held_old),
                                               ("removed", rows_old, rows_new, held_new)):
        for i in rows:
            found = []
            for key, text in sentences[i]:
                if key not in other_held and (side, key) not in seen:
                    seen.add((side, key))
                    found.append(text)
            if found:
                partner = _partner(retriever, i, other_rows)
                pair = (partner, i) if side == "added" else (i, partner)
                entries.setdefault(pair, {"added": [], "removed": []})[side] += found

    ranks: dict[int, int] = {}
    compared = len(rows_old) + len(rows_new)
    if topic.strip():
        for version in (older, newer):
            for rank, passage in enumerate(retriever.search(topic, k=depth, states=[state.upper()],
                                                            version=version.source), 1):
                ranks.setdefault(retriever.row(passage.chunk_id), rank)
        compared = len(ranks)
    changes = []
    for (i_old, i_new), sides in entries.items():
        rank = min((ranks[i] for i in (i_old, i_new) if i in ranks), default=None)
        if topic.strip() and rank is None:
            continue
        changes.append(_change(retriever, i_old, i_new, sides["added"], sides["removed"], rank))
    changes.sort(key=lambda c: _order(c, topic))
    total = len(changes)
    return VersionChanges(state=state.upper(), old_version=older.label, new_version=newer.label,
                          old_source=older.source, new_source=newer.source, topic=topic.strip(),
                          changes=tuple(changes[:limit] if limit else changes), compared=compared, total=total)


def _pick(found: Sequence[PlanVersion], state: str, old: str | None, new: str | None) -> tuple[PlanVersion, PlanVersion]:
    if not found:
        raise ConfigError(f"{state_name(state)} ({state}) is not in the index")
    if len(found) < 2:
        raise ConfigError(f"{state_name(state)} ({state}) has one plan version in the index "
                          f"({describe(found)}); nothing to compare")

    def named(wanted: str) -> PlanVersion:
        matching = [v for v in found if v.matches(wanted)]
        if not matching:
            raise ConfigError(f"{state_name(state)} ({state}) has no plan version {wanted!r} in the "
                              f"index (indexed versions: {describe(found)})")
        if len(matching) > 1:
            raise ConfigError(f"{wanted!r} names more than one {state} plan ({describe(matching)}); "
                              "name the file instead")
        return matching[0]

    newer = named(new) if new else found[-1]
    older = named(old) if old else next((v for v in reversed(found) if v < newer), None)
    if older is None:
        raise ConfigError(f"{state} has no plan version older than {newer.label}; say --from")
    if older == newer:
        raise ConfigError(f"--from and --to both name {older.label} ({older.source})")
    return older, newer


def _rows(chunks: Sequence[Chunk], source: str) -> list[int]:
    # The contents pages list section titles, which every edit of a heading would repeat.
    return [i for i, c in enumerate(chunks) if c.source == source and c.kind != TOC]


def _sentences(chunk: Chunk) -> list[tuple[str, str]]:
    """(comparison key, verbatim text) for each quotable sentence of the chunk."""
    spans = chunk.sentences or ((0, len(chunk.text)),)
    out = []
    for start, end in spans:
        text = chunk.text[start:end].strip()
        key = " ".join(re.findall(r"\w+", text.lower()))
        if key:
            out.append((key, text))
    return out


def _partner(retriever, i: int, candidates: Sequence[int]) -> int | None:
    """The passage among `candidates` sharing the most word stems with chunk i, if similar enough."""
    own = retriever.text_stems(i)
    best, best_score = None, PAIR_SIMILARITY
    for j in candidates:
        other = retriever.text_stems(j)
        union = len(own | other)
        score = len(own & other) / union if union else 0.0
        if score >= best_score:
            best, best_score = j, score
    return best


def _change(retriever, i_old: int | None, i_new: int | None, added: list[str], removed: list[str],
            rank: int | None) -> Change:
    def cited(i: int | None, quotes: list[str]):
        if i is None:
            return None
        passage = retriever.passage(i)
        quote = quotes[0] if quotes else _sentences(retriever.chunks[i])[0][1]
        return make_citation(1, passage, quote)

    kind = "changed" if i_old is not None and i_new is not None else "added" if i_new is not None else "removed"
    return Change(kind=kind, old=cited(i_old, removed), new=cited(i_new, added), added=tuple(added),
                  removed=tuple(removed), topic_rank=rank)


def _order(change: Change, topic: str) -> tuple:
    side = change.new or change.old
    place = (change.new is None, side.page or 0, side.paragraph or 0, side.chunk_id)
    return ((change.topic_rank or 0,) if topic.strip() else ()) + place
