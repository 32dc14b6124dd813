"""Answering: retrieved passages in, a short extractive answer with sentence-level citations out.

Every answer sentence is copied verbatim from a cited passage, so each claim can be checked
against the plan at the cited page (or paragraph). No language model is needed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .chunking import sentence_spans
from .ingest import LEADING_BULLET, heading_level, text_kind
from .records import RESPONSE, TABLE, Answer, CategoryEvidence, Citation, Passage
from .states import state_name
from .tagging import CategoryTagger

MAX_SENTENCES = 5
MIN_SENTENCES = 3
PER_STATE_SENTENCES = 3
MMR_LAMBDA = 0.7
NEAR_DUPLICATE = 0.92
# Sentence relevance = cosine + these nudges; tuned by reading answers to the eval questions.
LEXICAL_WEIGHT = 0.25
PASSAGE_WEIGHT = 0.3
RANK_PENALTY = 0.02
# A sentence is kept when its cosine reaches SENTENCE_BAR x the passage abstention bar and its
# relevance is within RELEVANCE_MARGIN of the best sentence's: off-topic neighbours drop out.
SENTENCE_BAR = 0.6
RELEVANCE_MARGIN = 0.2


@dataclass(frozen=True)
class Candidate:
    passage_rank: int  # 0-based position in the retrieved list
    start: int  # offset in the passage text
    end: int
    text: str


def compose_answer(question: str, states: Sequence[str], passages_by_state: dict[str, list[Passage]],
                   embedder, tagger: CategoryTagger, *, per_state: bool,
                   abstain_below: float) -> Answer:
    """An extractive answer; one section per state when `per_state`, else one paragraph."""
    citations: list[Citation] = []
    sections: list[tuple[str, str]] = []
    query_vector = embedder.embed_query(question)
    budget = PER_STATE_SENTENCES if per_state else MAX_SENTENCES
    for state, passages in passages_by_state.items():
        relevant = relevant_passages(passages, abstain_below, question)
        chosen = select_sentences(query_vector, relevant, embedder, budget, question=question,
                                  abstain_below=abstain_below)
        body = _cite(chosen, relevant, citations)
        if per_state:
            sections.append((state, body or f"The {state_name(state)} plan does not appear to address this."))
        elif body:
            sections.append(("", body))
    if not citations:
        related = closest_passages(passages_by_state)
        return abstain(question, states, "No passage in the indexed plans is relevant enough to answer this.",
                       related)
    text = "\n\n".join(f"**{state_name(s)}:** {b}" if s else b for s, b in sections)
    evidence = category_evidence(citations, tagger, question)
    return Answer(question=question, states=tuple(states), abstained=False, reason=None, answer=text,
                  categories=tuple(dict.fromkeys(e.category for e in evidence)),
                  citations=tuple(citations), evidence=tuple(evidence), sections=tuple(sections))


# A passage a little under the bar still counts when it holds a phrase of the question word for
# word ("early college"): embeddings of short questions undervalue exact topical matches.
PHRASE_RESCUE_RATIO = 0.85


def relevant_passages(passages: Sequence[Passage], abstain_below: float,
                      question: str = "") -> list[Passage]:
    """Passages close enough to the question to count as evidence (the calibrated bar)."""
    phrases = question_phrases(question)
    return [p for p in passages if p.similarity >= abstain_below or (
        phrases and p.similarity >= PHRASE_RESCUE_RATIO * abstain_below and holds_phrase(p.text, phrases))]


def question_phrases(question: str) -> list[tuple[str, ...]]:
    """Pairs of adjacent topical words of the question ("early college"), as stems."""
    terms = topical_terms(question)
    return [(a.stem, b.stem) for a, b in zip(terms, terms[1:]) if b.position == a.position + 1]


def holds_phrase(text: str, phrases: Sequence[tuple[str, ...]]) -> bool:
    words = _TOKEN_RE.findall(text.lower())
    stemmed = " " + " ".join(_stemmer().stemWords(words)) + " " if words else ""
    return any(f" {' '.join(phrase)} " in stemmed for phrase in phrases)


def closest_passages(passages_by_state: dict[str, list[Passage]], n: int = 3) -> list[Passage]:
    """The most similar passages over all states: what an abstained answer shows as "possibly related"."""
    pooled = [p for ps in passages_by_state.values() for p in ps]
    return sorted(pooled, key=lambda p: -p.similarity)[:n]


def abstain(question: str, states: Sequence[str], reason: str, related: Sequence[Passage]) -> Answer:
    """A plain "the plans do not say" answer that still shows the closest passages."""
    shown = tuple(_citation(i + 1, p, _lead_sentence(p)) for i, p in enumerate(related))
    text = f"The indexed plans do not address this. {reason}"
    if shown:
        text += " Possibly related passages are listed below."
    return Answer(question=question, states=tuple(states), abstained=True, reason=reason, answer=text,
                  categories=(), citations=(), related=shown)


def select_sentences(query_vector: np.ndarray, passages: Sequence[Passage], embedder,
                     budget: int, *, question: str = "", abstain_below: float = 0.0) -> list[Candidate]:
    """Relevant, diverse, readable sentences (MMR over sentence embeddings).

    A sentence must clear a relevance bar of its own: a relevant passage often holds sentences on
    another topic, and those would read as off-topic padding.
    """
    candidates = [c for rank, p in enumerate(passages) for c in readable_sentences(p, rank)]
    if not candidates:
        return []
    vectors = embedder.embed([c.text for c in candidates])
    cosine = vectors @ query_vector
    terms = question_terms(question)
    overlap = np.array([term_overlap(terms, c.text) for c in candidates])
    # Sentence cosine alone is noisy for short sentences: the passage's own similarity and the
    # question's words in the sentence steady it; earlier passages were ranked higher by retrieval.
    relevance = (cosine + LEXICAL_WEIGHT * overlap
                 + PASSAGE_WEIGHT * np.array([passages[c.passage_rank].similarity for c in candidates])
                 - RANK_PENALTY * np.array([c.passage_rank for c in candidates]))
    best = float(relevance.max())
    clears_bar = cosine >= SENTENCE_BAR * abstain_below
    close_to_best = relevance >= best - RELEVANCE_MARGIN
    chosen: list[int] = []
    while len(chosen) < budget:
        best_i, best_score = -1, -np.inf
        for i in range(len(candidates)):
            # The first MIN_SENTENCES only need the bar; later ones must also be near the best.
            if i in chosen or not clears_bar[i] or (len(chosen) >= MIN_SENTENCES and not close_to_best[i]):
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            if redundancy >= NEAR_DUPLICATE:
                continue
            score = MMR_LAMBDA * relevance[i] - (1 - MMR_LAMBDA) * redundancy
            if score > best_score:
                best_i, best_score = i, score
        if best_i < 0:
            break
        chosen.append(best_i)
    picked = [candidates[i] for i in chosen]
    return sorted(picked, key=lambda c: (c.passage_rank, c.start))


_TERM_RE = re.compile(r"[a-z0-9]+")
_QUESTION_WORDS = frozenset(
    "a an and are as at be by can could do does did for from has have how in is it its of on or "
    "that the their them they this to was what when where which who whom why will with would "
    "should about into than then there these those plan plans state states state's school's "
    "say says said any each much many more most".split())


def question_terms(question: str) -> set[str]:
    """Content-word stems of a question, leaving out state names (retrieval already filters by state)."""
    from .states import STATE_NAMES

    names = {w for n in STATE_NAMES.values() for w in n.lower().split()}
    return {w[:6] for w in _TERM_RE.findall(question.lower())
            if w not in _QUESTION_WORDS and w not in names and len(w) > 2}


def term_overlap(terms: set[str], sentence: str) -> float:
    """Share of the question's content stems that occur in the sentence."""
    if not terms:
        return 0.0
    words = {w[:6] for w in _TERM_RE.findall(sentence.lower())}
    return len(terms & words) / len(terms)


# ------------------------------------------------------------------ absent topics
# A question about a topic the plans never mention (vaping, vouchers) can still sit close in
# embedding space to a passage on school health or choice, so the cosine bar alone lets it through.
# The lexical check: the question's most specific words occur nowhere in what was retrieved.
# Paraphrased questions often use words the plan does not (they avoid its rare words), so the
# check only decides below a second, higher cosine bar. Calibrated by bench/calibrate_abstention.py.
TOPIC_BAR_RATIO = 1.15  # x the embedder's abstention bar (0.552 for MiniLM)
TOPIC_COVERAGE_BAR = 0.34  # idf-weighted share of the topical terms found in the retrieved passages
MAX_TOPIC_WORDS = 3

_TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")  # the BM25 index's own tokenizer
# Question scaffolding and the words every ESSA plan is full of: they name no topic.
_GENERIC_WORDS = frozenset("""
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
""".split())


@dataclass(frozen=True)
class TopicalTerm:
    stem: str  # Snowball English stem, as the BM25 index spells it
    start: int  # where the word is in the question
    end: int
    position: int  # index among all the question's tokens (to join neighbours into phrases)


@dataclass(frozen=True)
class TopicCheck:
    """How much of the question's topic the retrieved passages hold."""

    terms: tuple[TopicalTerm, ...]
    missing: tuple[TopicalTerm, ...]  # terms found in no retrieved passage, rarest first
    coverage: float  # idf-weighted share of the terms found; 1.0 when the question has none
    rarest_missing: bool  # the rarest term (by document frequency in scope) is among the missing


def _stemmer():
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER


_STEMMER = None


def stems(text: str) -> set[str]:
    """The BM25 index's stems of a text."""
    words = _TOKEN_RE.findall(text.lower())
    return set(_stemmer().stemWords(words)) if words else set()


def topical_terms(question: str) -> tuple[TopicalTerm, ...]:
    """The words that say what a question is about: no scaffolding, no state names, no words
    every ESSA plan uses (plan, state, school, students, support ...), one per stem."""
    from .states import STATE_NAMES

    names = {w for n in STATE_NAMES.values() for w in n.lower().split()}
    tokens = list(_TOKEN_RE.finditer(question))
    words = [m.group().lower() for m in tokens]
    stemmed = _stemmer().stemWords(words) if words else []
    out: dict[str, TopicalTerm] = {}
    for position, (m, word, stem) in enumerate(zip(tokens, words, stemmed)):
        base = word[:-2] if word.endswith("'s") else word
        if base in _GENERIC_WORDS or base in names or word in _GENERIC_WORDS or stem in out:
            continue
        if base.isdigit() and len(base) != 4:
            continue  # "19" in COVID-19, "9th": a number is a topic only as a year
        out[stem] = TopicalTerm(stem, m.start(), m.end(), position)
    return tuple(out.values())


def check_topic(question: str, passages: Sequence[Passage], document_frequency, n_documents: int) -> TopicCheck:
    """Which of the question's topical terms the retrieved passages hold; `document_frequency(stem)`
    counts the chunks in scope that hold a stem (idf weights and "rarest" come from it)."""
    terms = topical_terms(question)
    if not terms:
        return TopicCheck((), (), 1.0, False)
    found = set().union(*(stems(p.text) for p in passages)) if passages else set()
    frequency = {t.stem: document_frequency(t.stem) for t in terms}
    idf = {s: float(np.log((n_documents + 1) / (f + 0.5))) for s, f in frequency.items()}
    missing = tuple(sorted((t for t in terms if t.stem not in found), key=lambda t: frequency[t.stem]))
    total = sum(idf.values())
    coverage = sum(idf[t.stem] for t in terms if t.stem in found) / total if total > 0 else 1.0
    rarest = min(terms, key=lambda t: frequency[t.stem])
    return TopicCheck(terms, missing, round(coverage, 4), rarest.stem not in found)


def absent_topic(check: TopicCheck, best_similarity: float, abstain_below: float, *,
                 ratio: float = TOPIC_BAR_RATIO, coverage_bar: float = TOPIC_COVERAGE_BAR) -> bool:
    """True when the question's topic is missing from the retrieved passages and the closest
    passage is not close enough to outweigh that."""
    if not check.missing or best_similarity >= ratio * abstain_below:
        return False
    return check.rarest_missing and check.coverage < coverage_bar


def topic_words(question: str, check: TopicCheck, n: int = MAX_TOPIC_WORDS) -> str:
    """The rarest missing terms as the question wrote them; neighbours join into one phrase
    ("school bus routes", "COVID-19")."""
    chosen = sorted(check.missing[:n], key=lambda t: t.position)
    phrases: list[list[TopicalTerm]] = []
    for term in chosen:
        if phrases and term.position == phrases[-1][-1].position + 1:
            phrases[-1].append(term)
        else:
            phrases.append([term])
    spans = []
    for group in phrases:
        end = group[-1].end
        tail = re.match(r"-\w+", question[end:])  # "COVID" + "-19"
        spans.append(question[group[0].start:end + (tail.end() if tail else 0)])
    if len(spans) <= 1:
        return "".join(spans)
    return ", ".join(spans[:-1]) + " or " + spans[-1]


def absent_topic_reason(question: str, check: TopicCheck) -> str:
    return f"The indexed plans do not appear to address {topic_words(question, check)}."


_STARTS_WELL = re.compile(r"^[\"“(]?\s*[A-Z0-9]")
_ENDS_WELL = re.compile(r"[.!?][\"”’)]*$")
# Openings that lean on a sentence the reader will not see.
_LEANS_ON_CONTEXT = re.compile(
    r"^(?:This|These|Those|That|It|Its|They|Their|Such|He|She|Also|Furthermore|Moreover|Additionally|"
    r"However|Therefore|Thus|Hence|Conversely|Similarly|Likewise|Finally|Second|Third|Then|In response|"
    r"In addition|As a result|As such|For example|For instance|In this way|To that end|Here|"
    r"A similar|The same|Another|(?:Many|Some|All|Each|Most|One|Both) of (?:these|those|them|the above))\b")
# The Department's template asks, and plan cross-references, are not the state's policy.
_TEMPLATE_LIKE = re.compile(
    r"^(?:Does the State|Is the State|Will the State|The State[’']s strategies|The description|"
    r"Describe|Provide|Identify|Explain|Indicate|List)\b|\bin the text box\b|\bESEA section \d+\([a-z]\)\([0-9]\)\([A-Z]\)",
    re.IGNORECASE)
_CROSS_REFERENCE = re.compile(r"\b(?:please see|see (?:Appendix|Table|Figure|page|section|the link|this link)|"
                              r"this link|click here|https?://)", re.IGNORECASE)
# "A. Title ..." / "4.1 Title ..." / "2) ..." item labels glued to a sentence; "Scale: 194.5 ..." stat lines.
_ITEM_LABEL = re.compile(r"^(?:[A-Z]\.|[a-z]\)|\d+(?:\.\d+)+\.?|\d+[.)]|\(\w{1,4}\))\s")
_BARE_STAT = re.compile(r"^[A-Z][\w ]{0,30}:\s*[\d$]")


def readable_sentences(passage: Passage, rank: int) -> list[Candidate]:
    """Whole sentences of the state's own words: no fragments, template text, or bare table rows.

    A table row of the form "term | a whole sentence defining it" keeps its sentence cell; any
    other table row is left out, since a row of numbers does not read as an answer.
    """
    if passage.kind not in (RESPONSE, TABLE):
        return []
    out = []
    for start, end in sentence_spans(passage.text):
        for a, b in _sentence_cells(passage.text, start, end):
            bullet = LEADING_BULLET.match(passage.text[a:b])
            if bullet:
                a += bullet.end()
            sentence = passage.text[a:b]
            if is_readable_sentence(sentence):
                out.append(Candidate(rank, a, b, sentence))
    return out


def _sentence_cells(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentence itself, or for a "cell | cell" table row the last cell when it is prose."""
    if " | " not in text[start:end]:
        return [(start, end)]
    cut = text.rfind(" | ", start, end) + 3
    return [(cut, end)] if end - cut >= 60 else []


_LEGAL_REFERENCE = re.compile(r"C\.F\.R\.|§")
_GERUND_OPENING = re.compile(r"^[A-Z][a-z]+ing\b")
_FINITE_VERB = re.compile(r"\b(?:is|are|was|were|will|has|have|had|can|may|must|should|would|could|"
                          r"does|did|provides?|includes?|helps?|allows?|ensures?|supports?)\b")


def is_readable_sentence(sentence: str) -> bool:
    """A sentence that stands on its own as the state's words."""
    if "\n" in sentence or "|" in sentence or not (40 <= len(sentence) <= 500):
        return False
    if not _STARTS_WELL.match(sentence) or not _ENDS_WELL.search(sentence) or sentence.endswith("?"):
        return False
    if text_kind(sentence) != RESPONSE or _TEMPLATE_LIKE.search(sentence):
        return False
    if _LEANS_ON_CONTEXT.match(sentence) or _CROSS_REFERENCE.search(sentence):
        return False
    if _ITEM_LABEL.match(sentence) or _BARE_STAT.match(sentence) or heading_level(sentence):
        return False
    if _LEGAL_REFERENCE.search(sentence) or (_GERUND_OPENING.match(sentence) and not _FINITE_VERB.search(sentence)):
        return False  # "Promoting social and emotional learning (SEL)." is a heading, not a claim
    if not _balanced(sentence):
        return False  # "225, 78%) met ..." starts inside a parenthesis: a fragment
    words = re.findall(r"[A-Za-z]{2,}", sentence)
    numbers = re.findall(r"\d+(?:[.,]\d+)*%?", sentence)
    return len(words) >= 6 and len(numbers) <= 6 and len(numbers) <= len(words) / 3


def _balanced(sentence: str) -> bool:
    depth = 0
    for ch in sentence:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0 and sentence.count("“") == sentence.count("”")


def _cite(chosen: list[Candidate], passages: Sequence[Passage], citations: list[Citation]) -> str:
    """Answer text with [n] markers; one citation per quoted sentence."""
    parts = []
    for candidate in chosen:
        passage = passages[candidate.passage_rank]
        number = len(citations) + 1
        citations.append(_citation(number, passage, candidate.text, candidate.start))
        parts.append(f"{candidate.text} [{number}]")
    return " ".join(parts)


def _citation(rank: int, passage: Passage, quote: str, offset: int | None = None) -> Citation:
    return Citation(rank=rank, chunk_id=passage.chunk_id, state=passage.state, source=passage.source,
                    page=passage.page, page_label=passage.page_label, section=passage.section,
                    paragraph=quote_paragraph(passage, quote, offset), quote=quote,
                    passage=passage.text, score=passage.score, categories=passage.categories)


def quote_paragraph(passage: Passage, quote: str, offset: int | None = None) -> int | None:
    """The DOCX paragraph that holds the quote: paragraphs are joined by blank lines in a chunk."""
    if passage.paragraph is None:
        return None
    at = passage.text.find(quote) if offset is None else offset
    return passage.paragraph + passage.text[:max(at, 0)].count("\n\n")


def _lead_sentence(passage: Passage) -> str:
    spans = sentence_spans(passage.text)
    return passage.text[spans[0][0]:spans[0][1]] if spans else passage.text


def category_evidence(citations: Sequence[Citation], tagger: CategoryTagger,
                      question: str = "") -> list[CategoryEvidence]:
    """The categories an answer is about, each with the first citation tagged with it.

    A category counts when at least half of the citations carry it, or when the question asks
    about it and any citation carries it: one stray tagged passage does not make an answer about
    an approach (on the eval set, answer-level category F1 0.60 with every tag, 0.68 with this).
    """
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for citation in citations:
        for category in citation.categories:
            counts[category] = counts.get(category, 0) + 1
            first.setdefault(category, citation.rank)
    asked = set(tagger.question_categories(question)) if question else set()
    kept = [c for c in counts if 2 * counts[c] >= len(citations) or c in asked]
    return [CategoryEvidence(c, tagger.label(c), first[c], counts[c] / len(citations))
            for c in sorted(kept, key=lambda c: (-counts[c], first[c]))]


def answer_from_checked(question: str, states: Sequence[str], checked: Sequence, passages: Sequence[Passage],
                        tagger: CategoryTagger) -> Answer:
    """An answer from a verified model reply: only supported sentences, each citing its best quote.

    Removed sentences are counted in the text, so a reader knows the model said more than is shown.
    """
    citations: list[Citation] = []
    paragraphs: list[str] = []
    for item in checked:
        if not item.supported:
            continue
        passage = passages[item.passage]
        start, end = item.quote_start, item.quote_end
        bullet = LEADING_BULLET.match(passage.text[start:end])
        start += bullet.end() if bullet else 0
        citations.append(_citation(len(citations) + 1, passage, passage.text[start:end], start))
        sentence = f"{item.claim.text} [{len(citations)}]"
        if item.claim.heading or not paragraphs:
            paragraphs.append(f"**{item.claim.heading}:** {sentence}" if item.claim.heading else sentence)
        else:
            paragraphs[-1] += " " + sentence
    removed = [c for c in checked if not c.supported]
    if not citations:
        reason = ("The language model's answer could not be verified against the plan passages."
                  if removed else "No passage in the indexed plans is relevant enough to answer this.")
        return abstain(question, states, reason, list(passages)[:3])
    text = "\n\n".join(paragraphs)
    if removed:
        text += (f"\n\n_{len(removed)} sentence(s) of the generated answer were removed because the "
                 "cited plan passages do not support them._")
    evidence = category_evidence(citations, tagger, question)
    return Answer(question=question, states=tuple(states), abstained=False, reason=None, answer=text,
                  categories=tuple(dict.fromkeys(e.category for e in evidence)),
                  citations=tuple(citations), evidence=tuple(evidence))
