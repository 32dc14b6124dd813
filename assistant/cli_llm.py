"""`essa-qa llm serve`: the bundled SmolLM2 model behind llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .cli import handles_errors
from .errors import LLMError


@click.group("llm")
def llm_cmd() -> None:
    """The optional language model on this machine (needs `make llm`)."""


@llm_cmd.command("serve")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="CPU threads for the model; the app's own work needs the others.")
@click.option("--model", "model_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="A GGUF file of your own instead of the bundled SmolLM2-135M-Instruct.")
@handles_errors
def llm_serve(port: int, threads: int, model_path: Path | None) -> None:
    """Serve the model on 127.0.0.1 until interrupted, and print the settings that use it."""
    from .local_llm import MODEL_ALIAS, LocalModelServer

    with LocalModelServer(model_path=model_path, threads=threads, port=port) as server:
        click.echo(f"ok    {server.model_path.name} on {server.base_url} ({threads} thread(s))")
        click.echo(f"      export ESSA_QA_LLM_BASE_URL={server.base_url} ESSA_QA_LLM_MODEL={MODEL_ALIAS}")
        try:
            while server.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            return
        raise LLMError(f"{server.model_path}: the model server exited with code {server.process.returncode}")
