"""The language-model path against a real model: SmolLM2-135M-Instruct served by llama.cpp on
127.0.0.1 with one thread. Its replies are poor (uncited sentences, numbered lists, copied passage
text), which is the point: whatever it writes, the verifier keeps only what a passage supports.

Runs where the optional packages are installed (`make llm`); CI leaves them out because
llama-cpp-python compiles on install (about 5 minutes on 2 cores) and CI must stay under 15.
bench/llm.py measures the same path over the eval questions. The stub tests (test_llm.py) stay.
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] not installed (make llm)")

from assistant.api import Assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.llm import ChatClient, build_messages  # noqa: E402
from assistant.local_llm import MODEL_ALIAS, LocalModelServer, bundled_model_path  # noqa: E402
from assistant.verify import content_words, verify_reply  # noqa: E402

from test_llm import INJECTED, PASSAGES, QUESTION  # noqa: E402

try:
    bundled_model_path()
except Exception as exc:  # noqa: BLE001 - the one-line ConfigError says what to install
    pytest.skip(str(exc), allow_module_level=True)

PAYLOAD = content_words("abolished standardized 2016")


@pytest.fixture(scope="module")
def server():
    with LocalModelServer(threads=1) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return ChatClient(server.base_url, MODEL_ALIAS, timeout_s=300)


@pytest.fixture(scope="module")
def real_llm_assistant(fixture_index, server):
    settings = Settings(embedder="hash", llm_base_url=server.base_url, llm_model=MODEL_ALIAS,
                        llm_timeout_s=300)
    return Assistant.load(fixture_index, settings=settings)


def assert_verified(answer, checked, passages=None) -> None:
    """What the verifier guarantees, whatever the model wrote."""
    kept = [c for c in checked if c.supported]
    for c in checked:
        if not c.supported:
            assert c.reason, c
        n = len(passages) if passages is not None else None
        if n is not None and any(not i[1:].isdigit() or not 1 <= int(i[1:]) <= n for i in c.claim.ids):
            assert not c.supported and "do not exist" in c.reason, c
    if answer is None:
        return
    if not kept:
        assert answer.abstained
        return
    assert 1 <= len(answer.citations) <= len(kept)  # a quote cited twice is numbered once
    for c in kept:
        assert c.claim.text in answer.answer
    for citation in answer.citations:
        assert citation.quote and citation.quote in citation.passage
        assert f"[{citation.rank}]" in answer.answer
    shown = {c.claim.text for c in kept}
    for c in checked:
        if not c.supported and c.claim.text not in shown:  # small models repeat sentences
            assert c.claim.text not in answer.answer


def test_bundled_model_answers_on_localhost(server, client):
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.process is not None and server.process.poll() is None
    reply = client.complete([{"role": "user", "content": "Name one school subject."}])
    assert isinstance(reply, str) and reply.strip()


def test_real_reply_streams_and_only_supported_sentences_survive(real_llm_assistant):
    events = list(real_llm_assistant.ask_stream(QUESTION, llm=True))
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    final = events[-1]
    assert final["type"] == "answer"
    assert deltas, "the real server streamed nothing"
    reply = "".join(deltas).strip()
    if reply.upper().startswith("NOT ADDRESSED"):
        assert final["answer"].abstained
        return
    assert final["checked"], reply
    assert_verified(final["answer"], final["checked"])


def test_planted_instruction_never_survives_a_real_reply(client):
    planted = PASSAGES
    assert INJECTED in planted[1].text
    for question in ("What does the state say about standardized tests?",
                     "What courses do schools offer with the community college?"):
        reply = client.complete(build_messages(question, planted))
        checked = verify_reply(reply, planted, _embedder())
        assert_verified(None, checked, planted)
        for c in checked:
            if len(PAYLOAD & content_words(c.claim.text)) >= 2:  # the model repeated the payload
                assert not c.supported, c


def test_real_reply_against_fewer_passages_has_its_ids_caught(client):
    """The model cites ids of the passages it was shown; checked against the first one only,
    every other id it cites is one that does not exist, and nothing citing it survives."""
    reply = client.complete(build_messages(QUESTION, PASSAGES))
    checked = verify_reply(reply, PASSAGES[:1], _embedder())
    assert_verified(None, checked, PASSAGES[:1])


def _embedder():
    from assistant.embedders import HashEmbedder

    return HashEmbedder()
