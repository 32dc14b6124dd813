"""The Python API: `Assistant.load(index_dir)`, then `.search()` and `.ask()`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .answering import abstain, compose_answer
from .config import Settings, load_settings
from .embedding import Embedder, embedder_for_fingerprint
from .indexing import chunker_settings
from .records import Answer, Passage
from .retrieval import Retriever
from .states import asks_across_states, detect_states, normalize_state, state_name
from .store import StoredIndex, check_compatible, load_index
from .tagging import CategoryTagger


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
            categories: Sequence[str] | None = None, mode: str = "hybrid") -> Answer:
        named = [normalize_state(s) or s.upper() for s in states] if states else detect_states(question)
        missing = [s for s in named if s not in self.states]
        present = [s for s in named if s in self.states]
        if missing and not present:
            reason = (f"The indexed plans do not include {_names(missing)}; indexed: "
                      f"{_names(self.states)}.")
            return abstain(question, named, reason, [])
        per_state = len(named) > 1 or (not named and asks_across_states(question))
        scope = present or list(self.states)
        intent = self.tagger.question_categories(question)
        if per_state:
            by_state = {s: self.retriever.search(question, k=k, states=[s], categories=categories,
                                                 mode=mode, boost=intent) for s in scope}
        else:
            by_state = {"": self.retriever.search(question, k=k, states=present or None,
                                                  categories=categories, mode=mode, boost=intent)}
        answer = compose_answer(question, named or (scope if per_state else []), by_state,
                                self.embedder, self.tagger, per_state=per_state,
                                abstain_below=self.abstain_below)
        if missing and not answer.abstained:
            note = f"\n\nThe indexed plans do not include {_names(missing)}."
            answer = _with_text(answer, answer.answer + note)
        return answer

    def _states_for(self, question: str, states: Sequence[str] | None) -> list[str] | None:
        named = [normalize_state(s) or s.upper() for s in states] if states else detect_states(question)
        if not named:
            return None
        return [s for s in named if s in self.states]


def _names(codes: Sequence[str]) -> str:
    names = [f"{state_name(c)} ({c})" for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _with_text(answer: Answer, text: str) -> Answer:
    from dataclasses import replace

    return replace(answer, answer=text)
