"""Stage 5, the language-model alternative to composition: the model writes from the passages
the decision answers from, streams, and every sentence of its reply is verified (verify.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..llm import NOT_ADDRESSED, ChatClient, budget_passages, build_messages
from ..records import Answer
from ..tagging import CategoryTagger
from ..verify import verify_reply
from .compose import abstain, answer_from_checked
from .decision import Decision
from .evidence import Evidence
from .scope import Scope


def generate(scope: Scope, evidence: Sequence[Evidence], decisions: Sequence[Decision],
             client: ChatClient, embedder, tagger: CategoryTagger) -> Iterator[dict]:
    """Yields {"type": "delta", "text"} as the model writes; returns (Answer, checked claims)."""
    answered = [p for group, d in zip(evidence, decisions) if d.answer for p in group.passages]
    passages = budget_passages(answered)
    parts: list[str] = []
    for delta in client.stream(build_messages(scope.question, passages)):
        parts.append(delta)
        yield {"type": "delta", "text": delta}
    reply = "".join(parts).strip()
    if reply.upper().startswith(NOT_ADDRESSED):
        return abstain(scope.question, scope.answer_states,
                       "The language model found no answer in the passages.", passages[:3]), []
    checked = verify_reply(reply, passages, embedder)
    answer: Answer = answer_from_checked(scope.question, scope.answer_states, checked, passages, tagger)
    return answer, checked
