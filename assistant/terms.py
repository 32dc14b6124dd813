"""What a question is about, in words: its topical terms (no scaffolding, no state names, no words
every ESSA plan is full of), their phrases, and how much of them a text holds.

Shared by retrieval (header and coverage features), the answer decision (which topic is missing)
and composition (sentence relevance), so all three read a question the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")  # bm25s's own default token pattern: the index's words


@lru_cache(maxsize=1)
def stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def stem_words(words: Sequence[str]) -> list[str]:
    return stemmer().stemWords(list(words)) if words else []


def stems(text: str) -> set[str]:
    """The BM25 index's stems of a text (lower-cased; callers filter stop words)."""
    return set(stem_words(TOKEN_RE.findall(text.lower())))

# Question scaffolding and the words every ESSA plan is full of: they name no topic.
GENERIC_WORDS = frozenset("""
a about above after again against all also am an and any are as at be been before being below between
both but by can could did do does doing done down during each either every few for from further get
gets getting go goes going had has have having he her here hers him his how i if in into is it its
itself just let lets like make makes making may me might more most much must my no nor not now of off
on once one only or other our out over own same say says said she should so some such tell than that
the their them then there these they this those through to too under until up upon us very was way
ways we were what when where whether which while who whom whose why will with within would you your
kind kinds lot lots many thing things anything something
handle handles handled handling deal deals dealt approach approaches address addresses addressed
describe describes mention mentions mentioned talk talks include includes included including
use uses used using help helps helped helping provide provides provided providing
plan plans planned planning state states statewide school schools student students education
educational support supports supported supporting program programs district districts essa
kid kids people
happen happens happened keep keeps kept put puts putting take takes taking took give gives giving
gave look looks looking think want wants need needs figure find finds make made come comes coming
bring brings become becomes get gotten got try trying tries sure still rather instead besides
alongside around across back ahead toward towards enough currently fully automatically really
actually exactly basically letting part parts real good best different specific
doesn don aren isn hasn haven wasn won didn
""".split())


@dataclass(frozen=True)
class TopicalTerm:
    stem: str  # Snowball English stem, as the BM25 index spells it
    start: int  # where the word is in the question
    end: int
    position: int  # index among all the question's tokens (to join neighbours into phrases)


def _state_words() -> frozenset[str]:
    from .states import STATE_NAMES

    # Words of the states' names; not of the Bureau of Indian Education's, whose "Indian" is a
    # topic in questions about American Indian students.
    return frozenset(w for code, n in STATE_NAMES.items() if code != "BIE" for w in n.lower().split())


_STATE_WORDS = _state_words()


def topical_terms(question: str) -> tuple[TopicalTerm, ...]:
    """The words that say what a question is about, one per stem, in question order."""
    tokens = list(TOKEN_RE.finditer(question))
    words = [m.group().lower() for m in tokens]
    out: dict[str, TopicalTerm] = {}
    for position, (m, word, stem) in enumerate(zip(tokens, words, stem_words(words))):
        base = word[:-2] if word.endswith("'s") else word
        if base in GENERIC_WORDS or base in _STATE_WORDS or word in GENERIC_WORDS or stem in out:
            continue
        if base.isdigit() and len(base) != 4:
            continue  # "19" in COVID-19, "9th": a number is a topic only as a year
        out[stem] = TopicalTerm(stem, m.start(), m.end(), position)
    return tuple(out.values())


def question_phrases(terms: Sequence[TopicalTerm]) -> list[tuple[str, str]]:
    """Pairs of adjacent topical words ("early college"), as stems."""
    return [(a.stem, b.stem) for a, b in zip(terms, terms[1:]) if b.position == a.position + 1]


def stemmed_text(text: str) -> str:
    """A text's words as stems, space-separated and padded, so a phrase matches as " a b "."""
    return " " + " ".join(stem_words(TOKEN_RE.findall(text.lower()))) + " "


def holds_phrase(text: str, phrases: Sequence[tuple[str, str]], stemmed: str | None = None) -> bool:
    """`stemmed` is `stemmed_text(text)` when the caller already has it."""
    stemmed = stemmed if stemmed is not None else stemmed_text(text)
    return any(f" {' '.join(phrase)} " in stemmed for phrase in phrases)


def idf_weights(terms: Sequence[TopicalTerm], document_frequency: Callable[[str], int],
                n_documents: int) -> np.ndarray:
    """Inverse document frequency of each term within the documents searched."""
    return np.array([np.log((n_documents + 1) / (document_frequency(t.stem) + 0.5)) for t in terms])


def coverage(term_stems: Sequence[str], idf: np.ndarray, text_stems: set[str]) -> float:
    """idf-weighted share of the terms a text holds; 1.0 when the question has none."""
    total = float(idf.sum())
    if not term_stems or total <= 0:
        return 1.0
    return float(sum(w for s, w in zip(term_stems, idf) if s in text_stems) / total)


