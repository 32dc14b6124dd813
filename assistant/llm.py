"""An OpenAI-compatible chat client (llama.cpp server, Ollama, vLLM, hosted APIs) on the standard
library only, with streaming over server-sent events, and the prompt that hands it the passages.

Plan text goes to the model as quoted data inside <passage> tags with ids [P1], [P2] ...; the
model cites those ids, and assistant.verify checks every sentence afterwards.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LLMError
from .records import Passage
from .states import state_name
from .tokens import count_tokens

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
CONTEXT_BUDGET_TOKENS = 3000  # passages only; small local models have 4k-8k windows
NOT_ADDRESSED = "NOT ADDRESSED"


@dataclass(frozen=True)
class ChatClient:
    base_url: str
    model: str
    api_key: str = ""
    timeout_s: float = 60.0
    max_tokens: int = 512

    @classmethod
    def from_settings(cls, settings) -> "ChatClient | None":
        """The configured client, or None when no endpoint is set (extractive answers only)."""
        if not settings.llm_base_url:
            return None
        return cls(settings.llm_base_url.rstrip("/"), settings.llm_model, settings.llm_api_key,
                   settings.llm_timeout_s, settings.llm_max_tokens)

    def complete(self, messages: Sequence[dict]) -> str:
        """The whole reply at once."""
        with self._post(messages, stream=False) as response:
            data = _json(response.read(), self.base_url)
        try:
            return data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.base_url}: reply has no choices[0].message.content") from exc

    def stream(self, messages: Sequence[dict]) -> Iterator[str]:
        """Text deltas as the server sends them (SSE `data:` lines, ended by `data: [DONE]`)."""
        with self._post(messages, stream=True) as response:
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank keep-alives, comments, event names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = _json(payload.encode(), self.base_url)
                for choice in event.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        yield delta

    def _post(self, messages: Sequence[dict], *, stream: bool):
        body = json.dumps({"model": self.model, "messages": list(messages), "temperature": 0,
                           "max_tokens": self.max_tokens, "stream": stream}).encode()
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body,
                                         headers=headers, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise LLMError(f"{self.base_url}: HTTP {exc.code} from the language model ({detail})") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise LLMError(f"{self.base_url}: language model unreachable ({exc})") from exc


def _json(data: bytes, where: str) -> dict:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise LLMError(f"{where}: reply is not JSON ({exc})") from exc


def passage_id(number: int) -> str:
    return f"P{number}"


def load_prompt(name: str, directory: Path | None = None) -> str:
    path = (directory or PROMPTS_DIR) / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LLMError(f"{path}: prompt template missing ({exc.strerror})") from exc


def budget_passages(passages: Sequence[Passage], budget: int = CONTEXT_BUDGET_TOKENS) -> list[Passage]:
    """Passages in rank order while their cl100k tokens fit the budget (the first always goes in)."""
    kept, used = [], 0
    for passage in passages:
        size = count_tokens(passage.text)
        if kept and used + size > budget:
            break
        kept.append(passage)
        used += size
    return kept


def quoted_passage(number: int, passage: Passage) -> str:
    """One passage as tagged data; a closing tag inside plan text cannot end the quote early."""
    text = passage.text.replace("</passage", "&lt;/passage").replace("<passage", "&lt;passage")
    where = f"{state_name(passage.state)}, {passage.source}, {passage.locator}"
    return f'<passage id="{passage_id(number)}" source="{where}">\n{text}\n</passage>'


def build_messages(question: str, passages: Sequence[Passage],
                   prompts_dir: Path | None = None) -> list[dict]:
    quoted = "\n\n".join(quoted_passage(i + 1, p) for i, p in enumerate(passages))
    values = {"question": question.strip(), "passages": quoted}
    # One pass, so a "{passages}" typed into the question is not expanded.
    user = re.sub(r"\{(question|passages)\}", lambda m: values[m.group(1)], load_prompt("user", prompts_dir))
    return [{"role": "system", "content": load_prompt("system", prompts_dir).strip()},
            {"role": "user", "content": user.strip()}]
