"""Checking a language model's reply against the passages it was given, sentence by sentence.

A sentence survives only when the passage it cites (or, citing none, one of the passages given)
supports it: enough of its content words occur in one passage sentence (lexical) and that
sentence is close in meaning (embedding cosine); a sentence citing an id that does not exist is
removed. Passage sentences that read as instructions to a model are not
evidence: a reply that obeys an instruction planted in plan text is caught here, whatever the
model did with the system prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .chunking import sentence_spans
from .embedders import MODELS
from .records import Passage

CITE_RE = re.compile(r"\[\s*(P\d+(?:\s*[,;]\s*P\d+)*)\s*\]")
# Share of a claim's content words that one cited passage sentence must hold.
LEXICAL_BAR = 0.5
# Claim-to-passage-sentence cosine per embedder (cosines are not comparable across models).
# mpnet's bar accepts the same share (0.548) as MiniLM's 0.55 of 600 pairs of different plan
# sentences that already pass the lexical bar, and 97% of 600 shortened copies of a sentence
# (MiniLM: 99%); measured on the real plans with bench/calibrate_verifier.py.
COSINE_BAR = {MODELS["minilm"].name: 0.55, MODELS["mpnet"].name: 0.56, "hash-bow-512": 0.35}
DEFAULT_COSINE_BAR = 0.5
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,40}\b(?:instructions?|rules?|prompts?|above|previous)\b|"
    r"\b(?:system prompt|you are (?:now )?(?:an?|the) (?:AI|assistant|language model|chatbot))\b|"
    r"\b(?:assistant|AI|language model|chatbot)s?\b[^.]{0,30}\b(?:must|should)\s+(?:say|answer|reply|respond|state)\b|"
    r"\b(?:respond|reply|answer) (?:only )?with\b",
    re.IGNORECASE)
_LIST_MARKER = re.compile(r"^(?:[-*•]+|\d{1,2}[.)])\s+|^\d{1,2}[.)]$")
_WORD_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have in is it its of on or that the their "
    "them they this to was were will with which who also such these those than not but all any".split())


@dataclass(frozen=True)
class Claim:
    """One sentence of the reply and the passage ids it cites."""

    text: str  # without its [P..] markers
    ids: tuple[str, ...]
    heading: str = ""  # "Delaware" when the sentence opens a "Delaware: ..." paragraph


@dataclass(frozen=True)
class Checked:
    claim: Claim
    supported: bool
    reason: str  # empty when supported
    passage: int | None = None  # 0-based index of the supporting passage
    quote_start: int = 0
    quote_end: int = 0
    lexical: float = 0.0
    cosine: float = 0.0
    attributed: bool = False  # cited no id; the checker found the passage that supports it


def split_claims(reply: str) -> list[Claim]:
    """Sentences of the reply with their cited ids; "State:" paragraph openers become headings."""
    claims: list[Claim] = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\S)", reply.strip()):
        # List markers ("- ", "2. ", "3) ") are layout, not sentences: small models number their
        # sentences, and "2." alone would count as a claim that cites nothing.
        paragraph = _LIST_MARKER.sub("", paragraph.strip())
        heading = ""
        opener = re.match(r"^\**([A-Z][A-Za-z .]{2,30}?)\**\s*:\**\s+", paragraph)
        if opener:
            heading, paragraph = opener.group(1).strip(), paragraph[opener.end():]
        for start, end in _reply_sentences(paragraph):
            sentence = paragraph[start:end]
            ids = tuple(dict.fromkeys(i.strip() for m in CITE_RE.finditer(sentence)
                                      for i in re.split(r"[,;]", m.group(1))))
            text = re.sub(r"\s+([.!?])", r"\1", CITE_RE.sub("", sentence)).strip()
            if text:
                claims.append(Claim(text, ids, heading))
                heading = ""
    return claims


def _reply_sentences(paragraph: str) -> list[tuple[int, int]]:
    # A citation after the full stop ("... grade. [P1]") belongs to the sentence before it.
    cuts = [m.end() for m in re.finditer(r"[.!?](?:\s*\[[^\]]+\])*(?=\s+|$)", paragraph)]
    spans, start = [], 0
    for cut in cuts:
        if paragraph[start:cut].strip():
            spans.append((start, cut))
        start = cut
    if paragraph[start:].strip():
        spans.append((start, len(paragraph)))
    return [(a + len(paragraph[a:b]) - len(paragraph[a:b].lstrip()), b) for a, b in spans]


def content_words(text: str) -> set[str]:
    return {w[:6] for w in _WORD_RE.findall(text.lower()) if w not in _STOP and len(w) > 1}


def looks_like_injection(text: str) -> bool:
    """Text addressed to a model rather than to a reader of the plan."""
    return bool(_INJECTION.search(text))


def verify_reply(reply: str, passages: Sequence[Passage], embedder) -> list[Checked]:
    """Every claim, checked against the passages it cites (ids are P1..Pn for passages[0..n-1])."""
    claims = split_claims(reply)
    if not claims:
        return []
    bar = COSINE_BAR.get(embedder.name, DEFAULT_COSINE_BAR)
    sentences = _evidence_sentences(passages)
    claim_vectors = embedder.embed([c.text for c in claims])
    flat = [(p, a, b) for p, spans in sentences.items() for a, b in spans]
    evidence_vectors = embedder.embed([passages[p].text[a:b] for p, a, b in flat]) if flat else None
    checked = []
    for n, claim in enumerate(claims):
        checked.append(_check(claim, claim_vectors[n], passages, flat, evidence_vectors, bar))
    return checked


def _evidence_sentences(passages: Sequence[Passage]) -> dict[int, list[tuple[int, int]]]:
    """Sentence spans of each passage, leaving out sentences that instruct a model."""
    return {i: [(a, b) for a, b in sentence_spans(p.text) if not looks_like_injection(p.text[a:b])]
            for i, p in enumerate(passages)}


def _check(claim: Claim, vector: np.ndarray, passages: Sequence[Passage], flat, evidence_vectors,
           bar: float) -> Checked:
    numbers = [_number(i) for i in claim.ids]
    unknown = [i for i, n in zip(claim.ids, numbers) if n is None or not 1 <= n <= len(passages)]
    if unknown:
        return Checked(claim, False, f"cites passage id(s) that do not exist: {', '.join(unknown)}")
    if looks_like_injection(claim.text):
        return Checked(claim, False, "repeats an instruction, not plan content")
    # A sentence with no id is held to the same bar against every passage it was given: small
    # models copy plan sentences and drop the ids (SmolLM2-135M cited none of 92 sentences in
    # bench/llm.py; 36 of 91 were supported by a passage). An invented id stays an error: it
    # claims a source that is not there.
    cited = {n - 1 for n in numbers} if claim.ids else set(range(len(passages)))
    words = content_words(claim.text)
    best: Checked | None = None
    for row, (p, a, b) in enumerate(flat):
        if p not in cited:
            continue
        lexical = len(words & content_words(passages[p].text[a:b])) / max(len(words), 1)
        cosine = float(evidence_vectors[row] @ vector)
        candidate = Checked(claim, lexical >= LEXICAL_BAR and cosine >= bar, "", p, a, b,
                            round(lexical, 3), round(cosine, 3))
        if best is None or (candidate.supported, lexical + cosine) > (best.supported, best.lexical + best.cosine):
            best = candidate
    if best is None:
        return Checked(claim, False, "the cited passage holds no usable sentence")
    if not best.supported:
        what = "cites no passage, and no passage supports it" if not claim.ids else \
            "not supported by the cited passage"
        return Checked(claim, False, f"{what} (word overlap {best.lexical:.2f}, similarity {best.cosine:.2f})",
                       best.passage, best.quote_start, best.quote_end, best.lexical, best.cosine)
    return replace(best, attributed=not claim.ids)


def _number(passage_id: str) -> int | None:
    m = re.fullmatch(r"P(\d+)", passage_id.strip())
    return int(m.group(1)) if m else None
