"""The Python API: `Assistant.load(index_dir)`, then `.search()` and `.ask()`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .answering import (TopicCheck, abstain, absent_topic, absent_topic_reason, answer_from_checked,
                        check_topic, closest_passages, compose_answer, relevant_passages)
from .config import Settings, load_settings
from .embedding import Embedder, embedder_for_fingerprint
from .errors import ConfigError
from .llm import NOT_ADDRESSED, ChatClient, budget_passages, build_messages
from .indexing import chunker_settings
from .records import Answer, Passage
from .retrieval import Retriever
from .states import asks_across_states, detect_states, normalize_state, state_name
from .store import StoredIndex, check_compatible, load_index
from .tagging import CategoryTagger
from .verify import verify_reply


# Passages (per state in per-state answers) whose words the absent-topic check looks through.
TOPIC_CHECK_K = 10


class Assistant:
    """Question answering over one saved index; load once, ask many times."""

    def __init__(self, stored: StoredIndex, embedder: Embedder, tagger: CategoryTagger,
                 settings: Settings):
        check_compatible(stored.manifest, embedder.fingerprint,
                         chunker_settings(settings, embedder).fingerprint(), stored.directory)
        self.index = stored
        self.embedder = embedder
        self.tagger = tagger
        self.settings = settings
        self.retriever = Retriever(stored.chunks, stored.vectors, embedder, tagger, rrf_k=settings.rrf_k)

    @classmethod
    def load(cls, index_dir: str | Path = "index", settings: Settings | None = None,
             embedder: Embedder | None = None, tagger: CategoryTagger | None = None) -> "Assistant":
        stored = load_index(Path(index_dir))
        embedder = embedder or embedder_for_fingerprint(stored.manifest["embedding"]["fingerprint"])
        return cls(stored, embedder, tagger or CategoryTagger.load(), settings or load_settings())

    @property
    def states(self) -> tuple[str, ...]:
        """Postal codes of the indexed states."""
        return self.retriever.states

    @property
    def plans(self) -> dict[str, dict]:
        return self.index.manifest.get("plans", {})

    @property
    def abstain_below(self) -> float:
        s = self.settings.abstain_similarity
        return s if s >= 0 else self.embedder.abstain_similarity

    def search(self, question: str, k: int = 10, states: Sequence[str] | None = None,
               categories: Sequence[str] | None = None, mode: str = "hybrid",
               boost: bool = True) -> list[Passage]:
        """Ranked passages. With no `states`, the states the question names (if indexed) filter."""
        wanted = self._states_for(question, states)
        if wanted == []:
            return []
        intent = self.tagger.question_categories(question) if boost else ()
        return self.retriever.search(question, k=k, states=wanted, categories=categories, mode=mode,
                                     boost=intent)

    def ask(self, question: str, k: int = 5, states: Sequence[str] | None = None,
            categories: Sequence[str] | None = None, mode: str = "hybrid",
            llm: bool | None = None) -> Answer:
        """A cited answer. Extractive by default; through the configured language model when
        `llm` is True (or None and an endpoint is configured), verified sentence by sentence."""
        answer = None
        for event in self.ask_stream(question, k=k, states=states, categories=categories, mode=mode,
                                     llm=llm):
            if event["type"] == "answer":
                answer = event["answer"]
        return answer

    def ask_stream(self, question: str, k: int = 5, states: Sequence[str] | None = None,
                   categories: Sequence[str] | None = None, mode: str = "hybrid",
                   llm: bool | None = None) -> Iterator[dict]:
        """Events for a live display: {"type": "delta", "text"} as the model writes, then
        {"type": "answer", "answer", "checked"} with the verified Answer (always last)."""
        retrieved = self.retrieve_for_answer(question, k=k, states=states, categories=categories, mode=mode)
        named, missing, by_state = retrieved.named, retrieved.missing, retrieved.by_state
        if by_state is None:
            reason = (f"The indexed plans do not include {_names(missing)}; indexed: "
                      f"{_names(self.states)}.")
            yield {"type": "answer", "answer": abstain(question, named, reason, []), "checked": []}
            return
        answer_states = named or (retrieved.scope if retrieved.per_state else [])
        client = ChatClient.from_settings(self.settings) if llm is not False else None
        if llm and client is None:
            raise ConfigError("no language model configured: set llm_base_url (ESSA_QA_LLM_BASE_URL)")
        checked: list = []
        evidence = [p for ps in by_state.values() for p in relevant_passages(ps, self.abstain_below, question)]
        topic = self.topic_check(question, retrieved)
        nothing_close = not evidence and topic.rarest_missing
        if nothing_close or evidence and absent_topic(topic, retrieved.best_similarity, self.abstain_below):
            # Whatever the backend: a model handed off-topic passages would only paraphrase them.
            # With nothing close at all, the reason still names the topic the plans lack.
            answer = abstain(question, answer_states, absent_topic_reason(question, topic),
                             closest_passages(by_state))
        elif client is not None and evidence:
            answer, checked = yield from self._generated(question, answer_states, evidence, client)
        else:
            answer = compose_answer(question, answer_states, by_state, self.embedder, self.tagger,
                                    per_state=retrieved.per_state, abstain_below=self.abstain_below)
        if missing and not answer.abstained:
            note = f"\n\nThe indexed plans do not include {_names(missing)}."
            answer = _with_text(answer, answer.answer + note)
        yield {"type": "answer", "answer": answer, "checked": checked}

    def retrieve_for_answer(self, question: str, k: int = 5, states: Sequence[str] | None = None,
                            categories: Sequence[str] | None = None, mode: str = "hybrid") -> "AnswerRetrieval":
        """The passages `ask` answers from: per state when the question names several states or
        asks "which states"; `by_state` is None when every named state is missing from the index."""
        named = [normalize_state(s) or s.upper() for s in states] if states else detect_states(question)
        missing = [s for s in named if s not in self.states]
        present = [s for s in named if s in self.states]
        per_state = len(named) > 1 or (not named and asks_across_states(question))
        scope = present or list(self.states)
        if missing and not present:
            return AnswerRetrieval(named, missing, scope, per_state, None)
        intent = self.tagger.question_categories(question)
        if per_state:
            by_state = {s: self.retriever.search(question, k=k, states=[s], categories=categories,
                                                 mode=mode, boost=intent) for s in scope}
        else:
            by_state = {"": self.retriever.search(question, k=k, states=present or None,
                                                  categories=categories, mode=mode, boost=intent)}
        return AnswerRetrieval(named, missing, scope, per_state, by_state)

    def topic_check(self, question: str, retrieved: "AnswerRetrieval") -> TopicCheck:
        """Which of the question's topical terms the top passages hold (see answering.absent_topic).

        Looks wider than the passages answered from: a term found only at rank 6-10 still shows
        the plan covers the topic (on the eval set: 3 false abstentions at 5, 1 at 10, same recall)."""
        k = TOPIC_CHECK_K * len(retrieved.scope) if retrieved.per_state else TOPIC_CHECK_K
        passages = self.retriever.search(question, k=k, states=list(retrieved.scope),
                                         boost=self.tagger.question_categories(question))
        n_documents = sum(1 for c in self.retriever.chunks if c.state in retrieved.scope)
        return check_topic(question, passages,
                           lambda stem: self.retriever.term_document_frequency(stem, retrieved.scope),
                           n_documents)

    def _generated(self, question: str, states: Sequence[str], evidence: list[Passage],
                   client: ChatClient):
        """Stream the model's reply as deltas, then verify it; returns (Answer, checked claims)."""
        passages = budget_passages(evidence)
        parts: list[str] = []
        for delta in client.stream(build_messages(question, passages)):
            parts.append(delta)
            yield {"type": "delta", "text": delta}
        reply = "".join(parts).strip()
        if reply.upper().startswith(NOT_ADDRESSED):
            return abstain(question, states, "The language model found no answer in the passages.",
                           passages[:3]), []
        checked = verify_reply(reply, passages, self.embedder)
        return answer_from_checked(question, states, checked, passages, self.tagger), checked

    def _states_for(self, question: str, states: Sequence[str] | None) -> list[str] | None:
        named = [normalize_state(s) or s.upper() for s in states] if states else detect_states(question)
        if not named:
            return None
        return [s for s in named if s in self.states]


@dataclass(frozen=True)
class AnswerRetrieval:
    named: list[str]  # states the question (or the caller) names
    missing: list[str]  # of those, the ones not indexed
    scope: list[str]  # indexed states searched
    per_state: bool
    by_state: dict[str, list[Passage]] | None  # "" key when not per state; None: nothing to search

    @property
    def best_similarity(self) -> float:
        return max((p.similarity for ps in (self.by_state or {}).values() for p in ps), default=0.0)


def _names(codes: Sequence[str]) -> str:
    names = [f"{state_name(c)} ({c})" for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _with_text(answer: Answer, text: str) -> Answer:
    from dataclasses import replace

    return replace(answer, answer=text)
