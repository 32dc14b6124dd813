"""`essa-qa serve`: the browser app."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import INDEX_OPTION, PLANS_OPTION, handles_errors


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; the default keeps the app on this machine.")
@click.option("--port", default=7860, show_default=True, type=int)
@INDEX_OPTION
@PLANS_OPTION
@handles_errors
def serve_cmd(host: str, port: int, index_dir: Path, plans_dir: Path) -> None:
    """Start the browser app (index and model loaded once). Login: ESSA_QA_AUTH_USER/_PASSWORD."""
    from .webapp import serve

    serve(index_dir, plans_dir, host=host, port=port)
