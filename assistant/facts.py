"""Plan facts: the numbers and choices people compare across states, read out of each plan with
the sentence that states them (issue 14).

The schema (data/facts.toml, or ESSA_QA_FACTS) says what each fact is and what signals it. For
each state's newest plan and each fact, extraction reads the state's own sentences (template
instructions and tables of contents never count: the template asks, the state answers):

1. candidates: every sentence that matches one of the fact's cues and none of its `avoid`
   patterns, scored by how many cues it matches, how high its passage ranks when the index is
   searched for the fact's `query`, and (for numbers) how close the value sits to a `value_near`
   word;
2. the value: numbers are read with a pattern per type (a percentage, a year, a count of years)
   inside the plausible `range`; a goal table's `row` ("All students") gives its last cell for
   the fact's `subject` (a row shared by subjects split by its header), unless the table's
   titles match `row_avoid` (a five-year rate, one grade span); a value found in several
   sentences gains a little;
   list facts take the choices named in the best passage, choice facts the choice the best
   passages name most, text facts the best sentence itself;
3. "not stated" where no candidate reaches STATED_SCORE: a value is never guessed;
4. confidence: how strong the winning sentence is and how far it leads the runner-up value.

Facts are computed once per index generation and schema (at `essa-qa index`, or on first use)
and kept beside the index (FactCache); `essa-qa facts --refresh` recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .answer.compose import make_citation
from .chunking import sentence_spans
from .errors import ConfigError
from .ingest import text_kind
from .records import RESPONSE, TABLE, Passage, PlanFact
from .tagging import cue_regex

DEFAULT_SCHEMA = Path(__file__).resolve().parent / "data" / "facts.toml"
FACTS_ENV = "ESSA_QA_FACTS"
TYPES = ("number", "percentage", "year", "years", "list", "choice", "text")
NUMERIC = ("number", "percentage", "year", "years")
EXTRACTOR_VERSION = 1  # bump when extraction changes, so cached facts are recomputed

SEARCH_DEPTH = 40  # passages of the fact's query whose rank counts
STATED_SCORE = 0.9  # below this the best candidate is not evidence enough: "not stated"
CUE_WEIGHT, RANK_WEIGHT, NEAR_WEIGHT = 1.5, 1.0, 0.5
AGREE_BONUS, AGREE_CAP = 0.15, 3
PREFER_SHARE = 0.3  # set on the three plans' gold (DE names its levels in 2 of its 5 best passages): in-sample
LIST_BREADTH = 1.0  # list facts: the passage that names more of the choices is the fuller list

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30}
_WORD_RE = "|".join(sorted(_WORDS, key=len, reverse=True))
_PERCENT = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", re.I)
_YEAR = re.compile(r"(?<![\d.])(20[1-4]\d)(?:\s*[-\u2013/]\s*(?:20)?(\d{2}))?(?![\d.])")
_YEARS = re.compile(r"(?<![\d.])(\d{1,2}|\b(?:" + _WORD_RE + r"))(?:\s*\(\d{1,2}\))?[- ]years?\b", re.I)
_NUMBER = re.compile(r"(?<![\d.$])(?<!\d,)(\d{1,3}|\b(?:" + _WORD_RE + r")\b)"
                     r"(?!\d|[,.]\d|\s*(?:%|percent|th\b|st\b|nd\b|rd\b|[-\u2013]\d|years?\b))", re.I)


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class FactSpec:
    id: str
    label: str
    description: str
    type: str
    unit: str
    query: str
    cues: tuple[re.Pattern[str], ...]
    value_near: tuple[re.Pattern[str], ...]
    avoid: tuple[re.Pattern[str], ...]
    range: tuple[float, float]
    window: int
    choices: tuple[Choice, ...]
    row: re.Pattern[str] | None = None  # a table row's label whose last number is the value
    subject: str = ""  # the subject (a [subjects] id) whose columns of a shared row count
    row_avoid: tuple[re.Pattern[str], ...] = ()  # disqualify a row by its header (a per-grade table)
    prefer: tuple[str, ...] = ()  # choice facts: these win when named with PREFER_SHARE of the top votes

    def choice_label(self, choice_id: str) -> str:
        return next((c.label for c in self.choices if c.id == choice_id), choice_id)

    def value_label(self, value) -> str:
        """The value as a reader sees it: "20 students", "92.15%", "Stars, Index score"."""
        if value is None:
            return "not stated"
        if self.type in ("list", "choice"):
            ids = value if isinstance(value, (tuple, list)) else (value,)
            return ", ".join(self.choice_label(v) for v in ids)
        if self.type == "text":
            return str(value)
        number = f"{value:g}" if isinstance(value, float) else str(value)
        if self.type == "percentage":
            return f"{number}%"
        return f"{number} {self.unit}".strip()


@dataclass(frozen=True)
class FactSchema:
    facts: tuple[FactSpec, ...]
    text: str
    subjects: tuple[tuple[str, re.Pattern[str]], ...] = ()  # column groups of goal tables

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.facts)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{EXTRACTOR_VERSION}\n{self.text}".encode()).hexdigest()[:16]

    def get(self, fact_id: str) -> FactSpec:
        for spec in self.facts:
            if spec.id == fact_id:
                return spec
        raise ConfigError(f"unknown fact {fact_id!r}; facts: {', '.join(self.ids)}")

    def select(self, fact_ids: Sequence[str] | None) -> tuple[FactSpec, ...]:
        return tuple(self.get(f) for f in fact_ids) if fact_ids else self.facts

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "FactSchema":
        path = Path(path or os.environ.get(FACTS_ENV) or DEFAULT_SCHEMA)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the fact schema ({exc})") from exc
        facts, seen = [], set()
        subjects = tuple((str(k), _compile(str(v), path, f"subjects.{k}")) for k, v in data.get("subjects", {}).items())
        for i, raw in enumerate(data.get("fact", []), 1):
            name = raw.get("id", f"#{i}") if isinstance(raw, dict) else f"#{i}"
            try:
                spec = _spec(raw, path)
            except KeyError as exc:
                raise ConfigError(f"{path}: fact {name!r} lacks {exc.args[0]!r}") from exc
            except (TypeError, ValueError, AttributeError) as exc:
                raise ConfigError(f"{path}: fact {name!r} is malformed ({exc})") from exc
            if spec.subject and spec.subject not in dict(subjects):
                raise ConfigError(f"{path}: fact {spec.id!r} names subject {spec.subject!r}, not in [subjects]")
            if spec.id in seen:
                raise ConfigError(f"{path}: fact {spec.id!r} is defined twice")
            seen.add(spec.id)
            facts.append(spec)
        if not facts:
            raise ConfigError(f"{path}: no facts defined ([[fact]] tables)")
        return cls(tuple(facts), text, subjects)


def _spec(raw: dict, path: Path) -> FactSpec:
    fid = str(raw["id"])
    kind = str(raw["type"])
    if kind not in TYPES:
        raise ValueError(f"type {kind!r} is not one of {', '.join(TYPES)}")
    choices = tuple(Choice(str(cid), str(c["label"]), _compile(str(c["pattern"]), path, fid))
                    for cid, c in raw.get("choices", {}).items())
    if kind in ("list", "choice") and not choices:
        raise ValueError(f"a {kind} fact needs [fact.choices.<id>] tables")
    cues = tuple(_compile(str(p), path, fid) for p in raw["cues"])
    if not cues:
        raise ValueError("no cues")
    low, high = raw.get("range", [0, 1e9])
    return FactSpec(id=fid, label=str(raw["label"]), description=str(raw.get("description", "")),
                    type=kind, unit=str(raw.get("unit", "")), query=str(raw["query"]), cues=cues,
                    value_near=tuple(_compile(str(p), path, fid) for p in raw.get("value_near", [])) or cues,
                    avoid=tuple(_compile(str(p), path, fid) for p in raw.get("avoid", [])),
                    range=(float(low), float(high)), window=int(raw.get("window", 80)), choices=choices,
                    row=_compile(str(raw["row"]), path, fid) if raw.get("row") else None,
                    subject=str(raw.get("subject", "")),
                    row_avoid=tuple(_compile(str(p), path, fid) for p in raw.get("row_avoid", [])),
                    prefer=tuple(str(p) for p in raw.get("prefer", [])))


def _compile(pattern: str, path: Path, fid: str) -> re.Pattern[str]:
    try:
        return cue_regex(pattern)  # "ACT" the test, not the Act; "ACCESS", not access
    except re.error as exc:
        raise ConfigError(f"{path}: fact {fid!r} has a bad pattern {pattern!r} ({exc})") from exc


# ------------------------------------------------------------ values


def read_values(spec: FactSpec, sentence: str) -> list[tuple[float | int, int, int]]:
    """(value, start, end) of each value of the fact's type in the sentence, in range."""
    found = []
    if spec.type == "percentage":
        found = [(float(m.group(1)), m.start(), m.end()) for m in _PERCENT.finditer(sentence)]
    elif spec.type == "year":
        found = years_in(sentence)
    elif spec.type == "years":
        for m in _YEARS.finditer(sentence):
            word = m.group(1).lower()
            found.append((_WORDS.get(word) or int(word), m.start(), m.end()))
    elif spec.type == "number":
        found = [(float(_WORDS.get(m.group(1).lower()) or m.group(1)), m.start(), m.end())
                 for m in _NUMBER.finditer(sentence) if not _YEAR.fullmatch(m.group(1))]
    low, high = spec.range
    return [(v, s, e) for v, s, e in found if low <= v <= high]


def years_in(text: str) -> list[tuple[int, int, int]]:
    """(year, start, end) of each year; a school year "2029-30" is reached at its end: 2030."""
    found = []
    for m in _YEAR.finditer(text):
        year = int(m.group(1)) if not m.group(2) else int(m.group(1)[:2] + m.group(2))
        if m.group(2) and year != int(m.group(1)) + 1:
            year = int(m.group(1))  # a span of years ("2017-2022"), not a school year
        found.append((year, m.start(), m.end()))
    return found


def _nearness(spec: FactSpec, sentence: str, start: int, end: int) -> float:
    """1 where a value_near word touches the value, falling to 0 at `window` characters."""
    best = None
    for pattern in spec.value_near:
        for m in pattern.finditer(sentence):
            gap = max(0, m.start() - end, start - m.end())
            best = gap if best is None else min(best, gap)
    if best is None or best > spec.window:
        return -1.0
    return 1.0 - best / max(spec.window, 1)


# ------------------------------------------------------------ extraction


# A table row as PDF and Word text flatten it: "All students 52.09% 76.05% 40.49% 70.25%",
# "All students | 73.6% (2016) | 84% (2022)", "All students / ELA / 71.7 73.3 ... 81.0".
_ROW_TOKEN = re.compile(r"[\s|/:*]*(?:(?P<num>\d{1,3}(?:\.\d+)?)(?:\s*%)?"
                        r"(?:\s*\((?P<year>(?:19|20)\d\d)(?:[-\u2013](?P<to>\d{2,4}))?\))?(?![\d.,])"
                        r"|(?P<word>[A-Za-z][A-Za-z'\u2019&-]*\*?))")
_ROW_FILLER = {"students", "student", "group", "subgroup", "all"}
ROW_HEADER_CHARS = 400  # the header a row's columns are read from: text before it
ROW_BONUS = 0.5  # a goal table's all-students row states the goal as plainly as a sentence
MAX_ROW_NUMBERS = 24
# The template's own asking, inside a state's text ("A.4.iii.a.1. Describe the long-term goals
# ..."): never the state's answer, whatever it names.
_ASKING = re.compile(
    r"^(?:[A-I](?:\.\d{1,2})?(?:\.[ivx]{1,5})?(?:\.[a-f])?(?:\.\d)?\.?\s+|[ivx]{1,5}\.\s+|[a-f1-9]\.\s+)?"
    r"(?:Describe|Provide|Identify|Explain|List|Indicate|If (?:the|an|applicable)|Each SEA|An SEA)\b"
    r"|\bestablished by the State, including\b|\bincluding:? \(i\)|\b(?:each|an|the) SEA (?:must|should)\b")


@dataclass(frozen=True)
class _Row:
    start: int  # the label's start in the chunk text
    end: int  # after its last number
    numbers: tuple[tuple[float, int | None], ...]  # each cell's number and the year beside it
    subject: str  # a subject named in the row itself ("All students / ELA / ..."), or ""
    header: str  # text before the row: column headings


def table_rows(spec: FactSpec, subjects, text: str, before: str = "") -> list[_Row]:
    """The rows of `text` labelled by the fact's `row` pattern, with the numbers that follow."""
    rows = []
    for m in spec.row.finditer(text):
        pos, end, numbers, subject = m.end(), m.end(), [], ""
        while len(numbers) < MAX_ROW_NUMBERS:
            t = _ROW_TOKEN.match(text, pos)
            if not t or t.end() == pos:
                break
            if t.group("num"):
                year = None
                if t.group("year"):
                    year = int(t.group("year"))
                    if t.group("to"):
                        year = int(t.group("to")) if len(t.group("to")) == 4 else year + 1
                numbers.append((float(t.group("num")), year))
                pos = end = t.end()
                continue
            at = t.start("word")
            named = next(((sid, sm) for sid, pattern in subjects if (sm := pattern.match(text, at))), None)
            if named:
                subject = subject or named[0]
                pos = named[1].end()
            elif t.group("word").rstrip("*").lower() in _ROW_FILLER:
                pos = t.end()
            else:
                break
        if numbers:
            header = (before + "\n\n" + text[:m.start()])[-ROW_HEADER_CHARS:]
            rows.append(_Row(m.start(), end, tuple(numbers), subject, header))
    return rows


def _titles(header: str) -> list[str]:
    """Paragraphs of a header that read as titles: short and not ending a sentence."""
    return [p.strip() for p in re.split(r"\n\s*\n", header)
            if p.strip() and len(p.strip()) <= 120 and not p.strip().endswith((".", ":"))]


def row_goal(spec: FactSpec, subjects, row: _Row) -> tuple[float, int | None] | None:
    """The row's last cell for the fact's subject: tables run from the baseline to the goal."""
    numbers = row.numbers
    if row.subject:
        if spec.subject and row.subject != spec.subject:
            return None
    elif spec.subject:
        order: list[str] = []
        for _, sid in sorted((m.start(), sid) for sid, p in subjects for m in p.finditer(row.header)):
            if sid not in order:
                order.append(sid)
        if spec.subject not in order or len(numbers) % len(order):
            return None
        size = len(numbers) // len(order)
        k = order.index(spec.subject)
        numbers = numbers[k * size:(k + 1) * size]
    return numbers[-1]


@dataclass(frozen=True)
class _Candidate:
    row: int  # chunk row in the index
    start: int  # sentence span in the chunk's text
    end: int
    score: float
    value: object  # the value it states (None for text facts)


class FactExtractor:
    """Extraction over one loaded index (an Assistant's retriever)."""

    def __init__(self, retriever, schema: FactSchema):
        self.retriever = retriever
        self.schema = schema
        self._sentences: dict[int, list[tuple[int, int]]] = {}

    def extract(self, states: Sequence[str] | None = None,
                fact_ids: Sequence[str] | None = None) -> list[PlanFact]:
        states = [s.upper() for s in states] if states else list(self.retriever.states)
        specs = self.schema.select(fact_ids)
        return [self.extract_one(state, spec) for state in states for spec in specs]

    def extract_one(self, state: str, spec: FactSpec) -> PlanFact:
        rows = np.flatnonzero(self.retriever.mask([state]))
        rows = [int(i) for i in rows if self.retriever.chunks[int(i)].kind in (RESPONSE, TABLE)]
        ranks = self._ranks(state, spec)
        if spec.type in ("list", "choice"):
            return self._choices(state, spec, rows, ranks)
        candidates = [c for i in rows for c in self._sentence_candidates(spec, i, ranks.get(i))]
        if spec.row is not None and spec.type in ("percentage", "number", "year"):
            candidates += [c for i in rows for c in self._row_candidates(spec, i, ranks.get(i))]
        return self._decide(state, spec, candidates)

    def _row_candidates(self, spec: FactSpec, row: int, rank: int | None) -> list[_Candidate]:
        chunks = self.retriever.chunks
        chunk = chunks[row]
        if not spec.row.search(chunk.text):
            return []
        previous = chunks[row - 1] if row > 0 else None
        before = previous.text if previous is not None and (previous.source, previous.unit) == (chunk.source, chunk.unit) else ""
        out = []
        subjects = self.schema.subjects
        low, high = spec.range
        for r in table_rows(spec, subjects, chunk.text, before):
            # Headings say "Baseline", "Subgroup" and "interim" around every goal: a row is scored
            # by its section, its header and itself; only `row_avoid` disqualifies it, read in
            # the table's titles (prose nearby may mention the five-year rate in passing).
            context = f"{chunk.section}\n{r.header}\n{chunk.text[r.start:r.end]}"
            titles = [chunk.section, *_titles(r.header), chunk.text[r.start:r.end]]
            if any(p.search(t) for p in spec.row_avoid for t in titles):
                continue
            goal = row_goal(spec, subjects, r)
            if goal is None:
                continue
            if spec.type == "year":
                years = [y for y, _, _ in years_in(r.header) if low <= y <= high]
                value = goal[1] or max(years, default=None)
            else:
                value = goal[0]
            if value is None or not low <= value <= high:
                continue
            score = self._base_score(spec, context, rank) + ROW_BONUS
            out.append(_Candidate(row, r.start, r.end, score, value))
        return out

    def _ranks(self, state: str, spec: FactSpec) -> dict[int, int]:
        passages = self.retriever.search(spec.query, k=SEARCH_DEPTH, states=[state])
        return {self.retriever.row(p.chunk_id): r for r, p in enumerate(passages)}

    def _spans(self, row: int) -> list[tuple[int, int]]:
        if row not in self._sentences:
            chunk = self.retriever.chunks[row]
            self._sentences[row] = list(chunk.sentences) or sentence_spans(chunk.text)
        return self._sentences[row]

    def _base_score(self, spec: FactSpec, text: str, rank: int | None) -> float:
        cue_share = sum(1 for p in spec.cues if p.search(text)) / len(spec.cues)
        return CUE_WEIGHT * cue_share + (RANK_WEIGHT / (1 + rank / 5) if rank is not None else 0.0)

    def _sentence_candidates(self, spec: FactSpec, row: int, rank: int | None) -> list[_Candidate]:
        text = self.retriever.chunks[row].text
        if not any(p.search(text) for p in spec.cues):
            return []
        out = []
        for start, end in self._spans(row):
            sentence = text[start:end]
            if not any(p.search(sentence) for p in spec.cues) or any(p.search(sentence) for p in spec.avoid):
                continue
            if _ASKING.search(sentence) or text_kind(sentence) != RESPONSE:
                continue
            base = self._base_score(spec, sentence, rank)
            if spec.type == "text":
                out.append(_Candidate(row, start, end, base, None))
                continue
            best = None
            for value, vs, ve in read_values(spec, sentence):
                near = _nearness(spec, sentence, vs, ve)
                # Ties go to the later value: goal tables run from the baseline to the goal.
                if near >= 0 and (best is None or near >= best[1]):
                    best = (value, near)
            if best is not None:
                out.append(_Candidate(row, start, end, base + NEAR_WEIGHT * best[1], best[0]))
        return out

    def _decide(self, state: str, spec: FactSpec, candidates: list[_Candidate]) -> PlanFact:
        if spec.type == "text":
            ranked = sorted(candidates, key=lambda c: -c.score)
            if not ranked or ranked[0].score < STATED_SCORE:
                return self._not_stated(state, spec)
            best = ranked[0]
            quote = self._quote(best)
            runner = ranked[1].score if len(ranked) > 1 else 0.0
            return self._fact(state, spec, quote, best, _confidence(best.score, runner))
        by_value: dict[object, list[_Candidate]] = {}
        for c in candidates:
            by_value.setdefault(c.value, []).append(c)
        totals = {}
        for value, group in by_value.items():
            group.sort(key=lambda c: -c.score)
            totals[value] = group[0].score + AGREE_BONUS * min(len(group) - 1, AGREE_CAP)
        if not totals:
            return self._not_stated(state, spec)
        ordered = sorted(totals, key=lambda v: -totals[v])
        best = by_value[ordered[0]][0]
        if best.score < STATED_SCORE:
            return self._not_stated(state, spec)
        runner = totals[ordered[1]] if len(ordered) > 1 else 0.0
        value = int(best.value) if spec.type in ("year", "years") or (spec.type == "number" and float(best.value).is_integer()) else float(best.value)
        return self._fact(state, spec, value, best, _confidence(totals[ordered[0]], runner))

    def _choices(self, state: str, spec: FactSpec, rows: list[int], ranks: dict[int, int]) -> PlanFact:
        """List facts: the choices the best passage names; choice facts: the one most named."""
        scored = []
        for i in rows:
            text = self._own_words(i)
            if not any(p.search(text) for p in spec.cues) or any(p.search(text) for p in spec.avoid):
                continue
            named = [c.id for c in spec.choices if c.pattern.search(text)]
            if not named:
                continue
            breadth = len(named) / len(spec.choices) if spec.type == "list" else 0.0
            scored.append((self._base_score(spec, text, ranks.get(i)) + LIST_BREADTH * breadth, i, named))
        scored.sort(key=lambda s: -s[0])
        if not scored or scored[0][0] < STATED_SCORE:
            return self._not_stated(state, spec)
        if spec.type == "list":
            # The best passage's choices alone: adding those of passages scoring within 80% of it
            # (a list split over chunks) measured worse, 0.854 -> 0.812 exact match on the gold.
            score, row, named = scored[0]
            value = tuple(named)
            runner = scored[1][0] if len(scored) > 1 and set(scored[1][2]) != set(named) else 0.0
            confidence = _confidence(score, runner)
        else:
            votes: dict[str, float] = {}
            for score, _, named in scored[:5]:
                for cid in named:
                    votes[cid] = votes.get(cid, 0.0) + score
            ordered = sorted(votes, key=lambda c: (-votes[c], [x.id for x in spec.choices].index(c)))
            # A plan computes an index or percentile and reports a star or a level: the form
            # readers see is the preferred one, when the best passages name it almost as often.
            preferred = [c for c in ordered if c in spec.prefer and votes[c] >= PREFER_SHARE * votes[ordered[0]]]
            if preferred:
                ordered = [preferred[0]] + [c for c in ordered if c != preferred[0]]
            value = ordered[0]
            score, row, named = next(s for s in scored if value in s[2])
            confidence = _confidence(votes[value], votes[ordered[1]] if len(ordered) > 1 else 0.0)
        start, end = self._naming_sentence(spec, row, value if isinstance(value, tuple) else (value,))
        candidate = _Candidate(row, start, end, score, value)
        return self._fact(state, spec, value, candidate, confidence)

    def _own_words(self, row: int) -> str:
        """The chunk's text without the template's questions inside it ("Describe the measure(s)
        included in each of the Academic Achievement, ... indicators" names every indicator)."""
        text = self.retriever.chunks[row].text
        return " ".join(text[a:b] for a, b in self._spans(row)
                        if not _ASKING.search(text[a:b]) and text_kind(text[a:b]) == RESPONSE)

    def _naming_sentence(self, spec: FactSpec, row: int, ids: tuple[str, ...]) -> tuple[int, int]:
        """The sentence of the passage that names the most of the chosen values."""
        text = self.retriever.chunks[row].text
        patterns = [c.pattern for c in spec.choices if c.id in ids]
        return max(self._spans(row), key=lambda s: sum(1 for p in patterns if p.search(text[s[0]:s[1]])))

    def _quote(self, c: _Candidate) -> str:
        return self.retriever.chunks[c.row].text[c.start:c.end]

    def _fact(self, state: str, spec: FactSpec, value, c: _Candidate, confidence: float) -> PlanFact:
        passage: Passage = self.retriever.passage(c.row, c.score)
        citation = make_citation(1, passage, self._quote(c), c.start)
        return PlanFact(state=state, fact=spec.id, label=spec.label, type=spec.type, value=value,
                        unit=spec.unit, stated=True, confidence=round(confidence, 3), citation=citation,
                        value_label=spec.value_label(value), version=passage.version)

    def _not_stated(self, state: str, spec: FactSpec) -> PlanFact:
        return PlanFact(state=state, fact=spec.id, label=spec.label, type=spec.type, value=None,
                        unit=spec.unit, stated=False, confidence=0.0, citation=None,
                        value_label="not stated", version="")


def _confidence(best: float, runner: float) -> float:
    """How strong the winner is (saturating) times how far it leads the runner-up."""
    strength = 1.0 - math.exp(-best / 1.5)
    lead = best / (best + runner) if best + runner > 0 else 0.0
    return strength * lead


# ------------------------------------------------------------ cache beside the index


class FactCache:
    """Facts of one index generation under one schema, kept as JSON in the index's folder
    (`<index>/facts/<key>.json`): a new generation or an edited schema has a new key."""

    def __init__(self, directory: Path, manifest: dict, schema: FactSchema):
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()
        self.folder = Path(directory) / "facts"
        self.path = self.folder / f"{digest[:16]}-{schema.fingerprint}.json"

    def read(self) -> list[PlanFact] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [fact_from_dict(d) for d in data["facts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: recomputed, never trusted half-written

    def write(self, facts: list[PlanFact]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"facts": [f.to_dict() for f in facts]}), encoding="utf-8")
            os.replace(tmp, self.path)
            for old in self.folder.glob("*.json"):
                if old != self.path:
                    old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only index folder: facts are recomputed on each load instead


def fact_from_dict(data: dict) -> PlanFact:
    from .permalinks import citation_from_record

    value = data["value"]
    if isinstance(value, list):
        value = tuple(value)
    citation = citation_from_record(data["citation"]) if data.get("citation") else None
    return PlanFact(state=data["state"], fact=data["fact"], label=data["label"], type=data["type"],
                    value=value, unit=data["unit"], stated=data["stated"], confidence=data["confidence"],
                    citation=citation, value_label=data.get("value_label", ""), version=data.get("version", ""))


# ------------------------------------------------------------ filters ("n-size below 20")

_OPERATORS = (  # longest first: "at least" before "at", "<=" before "<"
    ("not stated", "unstated"), ("is not stated", "unstated"), ("is stated", "stated"), ("stated", "stated"),
    ("less than", "<"), ("fewer than", "<"), ("at most", "<="), ("no more than", "<="), ("below", "<"),
    ("under", "<"), ("more than", ">"), ("greater than", ">"), ("at least", ">="), ("above", ">"),
    ("over", ">"), ("<=", "<="), (">=", ">="), ("<", "<"), (">", ">"), ("!=", "!="), ("is not", "!="),
    ("includes", "has"), ("contains", "has"), ("has", "has"), ("equals", "="), ("==", "="), ("=", "="),
    ("is", "="),
)
_OPERATOR_RE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(w) for w, _ in _OPERATORS if w[0].isalpha()) + r")(?!\w)"
    r"|(" + "|".join(re.escape(w) for w, _ in _OPERATORS if not w[0].isalpha()) + r")", re.I)


@dataclass(frozen=True)
class Condition:
    fact: str
    op: str  # < <= > >= = != has stated unstated
    value: object = None  # a number, or a choice id / text for = != has

    def holds(self, fact: PlanFact | None) -> bool:
        if self.op == "unstated":
            return fact is None or not fact.stated
        if fact is None or not fact.stated:
            return False
        if self.op == "stated":
            return True
        value = fact.value
        if isinstance(self.value, float):
            if isinstance(value, (int, float)):
                return {"<": value < self.value, "<=": value <= self.value, ">": value > self.value,
                        ">=": value >= self.value, "=": value == self.value, "!=": value != self.value}.get(self.op, False)
            return False
        found = self.value in (value if isinstance(value, tuple) else (value,)) or \
            (isinstance(value, str) and str(self.value).lower() in value.lower())
        return not found if self.op == "!=" else found and self.op in ("=", "has")


def parse_filter(schema: FactSchema, text: str) -> list[Condition]:
    """Conditions from plain words: "n-size below 20", "rating is stars and graduation goal >= 90",
    "science goal not stated". ConfigError (one line) for words it cannot read."""
    conditions = []
    for part in re.split(r"\s*(?:,|;|\band\b)\s*", text.strip(), flags=re.I):
        if not part:
            continue
        m = _OPERATOR_RE.search(part)
        if not m or not part[:m.start()].strip():
            raise ConfigError(f"cannot read the filter {part!r}: write a fact, a comparison and a value, "
                              f"e.g. 'n-size below 20' or 'rating is stars'")
        word = m.group(1) or m.group(2)
        op = dict(_OPERATORS)[word.lower()]
        spec = _fact_named(schema, part[:m.start()])
        rest = part[m.end():].strip()
        if op in ("stated", "unstated"):
            conditions.append(Condition(spec.id, op))
            continue
        if not rest:
            raise ConfigError(f"cannot read the filter {part!r}: no value after {word!r}")
        if spec.type in NUMERIC:
            number = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:%|percent|students|years?)?", rest, re.I)
            if not number:
                raise ConfigError(f"cannot read the filter {part!r}: {spec.label} is a number, not {rest!r}")
            conditions.append(Condition(spec.id, op, float(number.group(1))))
        elif op in ("=", "!=", "has"):
            choice = next((c.id for c in spec.choices if rest.lower() in (c.id.lower(), c.label.lower())
                           or c.pattern.search(rest)), None)
            if spec.choices and choice is None:
                raise ConfigError(f"cannot read the filter {part!r}: {spec.label} is one of "
                                  + ", ".join(c.label for c in spec.choices))
            conditions.append(Condition(spec.id, op, choice or rest))
        else:
            raise ConfigError(f"cannot read the filter {part!r}: {spec.label} is not a number")
    return conditions


def _fact_named(schema: FactSchema, words: str) -> FactSpec:
    """The fact whose id or label shares the most words with `words` ("n-size" -> n_size)."""
    def stems(text: str) -> set[str]:
        return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")) if w not in ("the", "of")}

    wanted = stems(words)
    scored = sorted(((len(wanted & stems(f"{s.id} {s.label}")), -len(stems(s.label)), i)
                     for i, s in enumerate(schema.facts)), reverse=True)
    if not wanted or scored[0][0] == 0:
        raise ConfigError(f"cannot read the filter: {words.strip()!r} names no fact; facts: "
                          + ", ".join(s.label for s in schema.facts))
    return schema.facts[scored[0][2]]


def filter_states(facts: Sequence[PlanFact], conditions: Sequence[Condition]) -> list[str]:
    """The states whose facts meet every condition, in the order the facts list them."""
    by = {(f.state, f.fact): f for f in facts}
    states = list(dict.fromkeys(f.state for f in facts))
    return [s for s in states if all(c.holds(by.get((s, c.fact))) for c in conditions)]
