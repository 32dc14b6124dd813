"""The Python API: `Assistant.load(index_dir)`, then `.search()` and `.ask()`.

`ask` runs the answer stages once each, in order (assistant/answer/):
question -> scope -> retrieve -> evidence -> decision -> compose (or generate with a model).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from .answer.compose import abstain, closest_passages, compose
from .answer.decision import decide
from .answer.evidence import gather
from .answer.generate import generate
from .answer.retrieve import retrieve
from .answer.scope import check_request, scope_question, scope_version
from .config import Settings, load_settings
from .embedders import Embedder, embedder_for_index
from .errors import ConfigError, EssaError
from .fitted import Fitted, load_fitted
from .indexing import chunker_settings
from .llm import ChatClient
from .records import Answer, Passage, PlanFact
from .retrieval import Retriever
from .states import normalize_state, state_name
from .store import StoredIndex, check_compatible
from .stores import get_store
from .tagging import CategoryTagger
from .versions import PlanVersion, plan_versions

log = logging.getLogger(__name__)


class Assistant:
    """Question answering over one saved index; load once, ask many times."""

    def __init__(self, stored: StoredIndex, embedder: Embedder, tagger: CategoryTagger,
                 settings: Settings, fitted: Fitted | None = None):
        check_compatible(stored.manifest, embedder.fingerprint,
                         chunker_settings(settings, embedder).fingerprint(), stored.directory)
        self.index = stored
        self.embedder = embedder
        self.tagger = tagger
        self.settings = settings
        self.fitted = fitted if fitted is not None else load_fitted(embedder, settings.pipeline_model or None)
        self.retriever = Retriever(stored.chunks, stored.vectors, stored.sentence_vectors, embedder, tagger,
                                   self.fitted.retrieval, lexical_cache=stored.directory / "cache" / "bm25")

    @classmethod
    def load(cls, index_dir: str | Path = "index", settings: Settings | None = None,
             embedder: Embedder | None = None, tagger: CategoryTagger | None = None) -> "Assistant":
        settings = settings or load_settings()
        if settings.pg_search not in ("memory", "database"):
            raise ConfigError(f"pg_search must be \"memory\" or \"database\", not {settings.pg_search!r}")
        if settings.pg_search == "database" and settings.store != "postgres":
            raise ConfigError('pg_search = "database" needs store = "postgres"')
        store = get_store(Path(index_dir), settings)
        stored = store.load()
        embedder = embedder or embedder_for_index(stored.manifest["embedding"], settings)
        assistant = cls(stored, embedder, tagger or CategoryTagger.load(), settings)
        if settings.pg_search == "database":
            assistant.retriever.candidate_source = store.candidates(settings.pg_search_candidates)
        return assistant

    def with_fitted(self, fitted: Fitted) -> "Assistant":
        """The same index and model under other fitted parts (cross-validation swaps them per fold)."""
        clone = object.__new__(Assistant)
        clone.__dict__.update(self.__dict__)
        clone.fitted = fitted
        clone.retriever = self.retriever.with_models(fitted.retrieval)
        return clone

    @property
    def states(self) -> tuple[str, ...]:
        """Postal codes of the indexed states."""
        return self.retriever.states

    @property
    def plans(self) -> dict[str, dict]:
        return self.index.manifest.get("plans", {})

    @property
    def versions(self) -> dict[str, list[PlanVersion]]:
        """Each indexed state's plan versions, oldest first (answers read the last)."""
        return plan_versions(self.retriever.plans)

    @property
    def fact_schema(self):
        from .facts import FactSchema

        if getattr(self, "_fact_schema", None) is None:
            self._fact_schema = FactSchema.load(self.settings.facts or None)
        return self._fact_schema

    def facts(self, states: Sequence[str] | None = None, fact_ids: Sequence[str] | None = None,
              refresh: bool = False) -> list[PlanFact]:
        """Every indexed state's plan facts (its newest version), each with its citation or "not
        stated". Extracted once per index generation and schema, kept beside the index; `refresh`
        extracts again. `states`/`fact_ids` select (in the schema's order)."""
        from .facts import FactCache, FactExtractor

        schema = self.fact_schema
        check_request(1, states, None, self.tagger)
        wanted_states = [normalize_state(str(s)) for s in states or ()]
        specs = schema.select(fact_ids)
        memo = getattr(self, "_facts", None)
        facts = memo[1] if memo and memo[0] == schema.fingerprint and not refresh else None
        if facts is None:
            cache = FactCache(self.index.directory, self.index.manifest, schema)
            facts = None if refresh else cache.read()
            if facts is None:
                facts = FactExtractor(self.retriever, schema).extract()
                cache.write(facts)
            self._facts = (schema.fingerprint, facts)
        wanted = {s.id for s in specs}
        chosen = [f for f in facts if f.fact in wanted and (not wanted_states or f.state in wanted_states)]
        if wanted_states:
            missing = [s for s in wanted_states if s not in self.states]
            if missing:
                raise ConfigError(f"no plan indexed for {_names(missing)}; indexed: {_names(self.states)}")
        return chosen

    @property
    def abstain_below(self) -> float:
        """The fallback evidence bar (used where no decision model was fitted for this embedder)."""
        s = self.settings.abstain_similarity
        return s if s >= 0 else self.embedder.abstain_similarity

    def search(self, question: str, k: int = 10, states: Sequence[str] | None = None,
               categories: Sequence[str] | None = None, mode: str = "hybrid",
               boost: bool = True, rerank: bool = True, version: str | None = None) -> list[Passage]:
        """Ranked passages. With no `states`, the states the question names (if indexed) filter.
        `version`: None searches each state's newest plan, "all" every version, else that one."""
        check_request(k, states, categories, self.tagger)
        scope = scope_question(question, self.states, self.tagger, states, categories)
        if scope.nothing_to_search:
            return []
        scope = scope_version(scope, self.retriever.plans, version)
        return self.retriever.search(scope.text, k=k, states=scope.group_states("") or list(scope.searched),
                                     categories=categories, mode=mode,
                                     boost=scope.intent if boost else (), rerank=rerank, version=scope.version)

    def ask(self, question: str, k: int = 5, states: Sequence[str] | None = None,
            categories: Sequence[str] | None = None, mode: str = "hybrid",
            llm: bool | None = None, version: str | None = None) -> Answer:
        """A cited answer. Extractive by default; through the configured language model when
        `llm` is True (or None and an endpoint is configured), verified sentence by sentence.
        `version` as in `search`: each state's newest plan unless asked."""
        answer = None
        for event in self.ask_stream(question, k=k, states=states, categories=categories, mode=mode,
                                     llm=llm, version=version):
            if event["type"] == "answer":
                answer = event["answer"]
        return answer

    def ask_stream(self, question: str, k: int = 5, states: Sequence[str] | None = None,
                   categories: Sequence[str] | None = None, mode: str = "hybrid",
                   llm: bool | None = None, version: str | None = None) -> Iterator[dict]:
        """Events for a live display: {"type": "delta", "text"} as the model writes, then
        {"type": "answer", "answer", "checked"} with the verified Answer (always last)."""
        client = ChatClient.from_settings(self.settings) if llm is not False else None
        if llm and client is None:
            raise ConfigError("no language model configured: set llm_base_url (ESSA_QA_LLM_BASE_URL)")
        check_request(k, states, categories, self.tagger)
        scope = scope_question(question, self.states, self.tagger, states, categories)
        if scope.nothing_to_search:
            reason = f"The indexed plans do not include {_names(scope.missing)}; indexed: {_names(self.states)}."
            yield {"type": "answer", "answer": abstain(question, scope.named, reason, []), "checked": []}
            return
        scope = scope_version(scope, self.retriever.plans, version)
        hits = retrieve(self.retriever, scope, k=k, mode=mode)
        evidence = gather(self.retriever, scope, hits, k=k)
        decisions = [decide(e, scope.text, self.fitted.decision, self.abstain_below) for e in evidence]
        checked: list = []
        if not any(d.answer for d in decisions):
            # Whatever the backend: a model handed off-topic passages would only paraphrase them.
            topic = next((d for d in decisions if d.topic), decisions[0])
            answer = abstain(question, scope.answer_states, topic.reason(), closest_passages(evidence))
        elif client is not None:
            answer, checked = yield from generate(scope, evidence, decisions, client, self.embedder, self.tagger)
        else:
            answer = compose(scope, evidence, decisions, self.tagger, self.fitted.sentence, self.abstain_below)
        if scope.missing and not answer.abstained:
            answer = replace(answer, answer=answer.answer + f"\n\nThe indexed plans do not include {_names(scope.missing)}.")
        yield {"type": "answer", "answer": answer, "checked": checked}


def _names(codes: Sequence[str]) -> str:
    names = [f"{state_name(c)} ({c})" for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class LiveAssistant:
    """The assistant over an index directory's live generation, swapped when CURRENT moves on.

    A caller takes `current()` once and keeps that Assistant for its whole request, so a request
    sees one generation whole. The new generation is loaded aside (same model and tagger) and only
    then swapped in with one assignment; requests that arrive meanwhile keep the old one.
    """

    def __init__(self, index_dir: str | Path = "index", settings: Settings | None = None,
                 embedder: Embedder | None = None, tagger: CategoryTagger | None = None,
                 check_every_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.index_dir = Path(index_dir)
        self.check_every_s = check_every_s
        self._clock = clock
        self.store = get_store(self.index_dir, settings or load_settings())
        self._generation = self.store.generation()  # read before loading: never misses a swap
        self._assistant = Assistant.load(self.index_dir, settings=settings, embedder=embedder, tagger=tagger)
        self._failed = ""  # a generation that would not load: not retried until CURRENT moves again
        self._checked = clock()
        self._loading = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self._assistant.settings

    @property
    def generation(self) -> str:
        """Name of the generation `current()` answers from."""
        return self._generation

    def current(self) -> Assistant:
        """The live Assistant; at most every `check_every_s`, a look at CURRENT first."""
        now = self._clock()
        if now - self._checked >= self.check_every_s:
            self._checked = now
            self._maybe_swap()
        return self._assistant

    def _maybe_swap(self) -> None:
        try:
            name = self.store.generation()
        except EssaError as exc:  # the database unreachable for a moment: keep answering
            log.warning("index %s: cannot read the live generation: %s", self.store.describe(), exc)
            return
        if not name or name in (self._generation, self._failed):
            return
        if not self._loading.acquire(blocking=False):
            return  # another request is loading it; this one answers from the old generation
        try:
            if name != self._generation:
                self._swap(name)
        finally:
            self._loading.release()

    def _swap(self, name: str) -> None:
        old = self._assistant
        try:
            fresh = Assistant.load(self.index_dir, settings=old.settings, embedder=old.embedder,
                                   tagger=old.tagger)
        except Exception as exc:  # whatever broke the new generation, the old one keeps answering
            self._failed = name
            log.warning("index %s: generation %s not loaded, still answering from %s: %s",
                        self.index_dir, name, self._generation, exc)
            return
        self._assistant, self._generation = fresh, name
        log.info("index %s: now answering from generation %s", self.index_dir, name)
