"""`essa-qa check`: a draft's claims, each judged supported, contradicted or not found, with citations."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import INDEX_OPTION, JSON_OPTION, STATE_OPTION, emit, handles_errors
from .export import version_note


@click.command("check")
@click.argument("text", required=False)
@click.option("--file", "text_file", default=None, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read the draft from this file (UTF-8 text) instead of the argument.")
@INDEX_OPTION
@STATE_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True)
@JSON_OPTION
@handles_errors
def check_cmd(text: str | None, text_file: Path | None, index_dir: Path, states, fmt: str, as_json: bool) -> None:
    """Check each claim of TEXT (or --file) against the plans: supported, contradicted or not found."""
    from .api import Assistant
    from .checking import check_text
    from .errors import ConfigError

    if (text is None) == (text_file is None):
        raise ConfigError("give the draft as TEXT or --file FILE (one of them)")
    if text_file is not None:
        try:
            text = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{text_file}: cannot be read as UTF-8 text ({exc})") from exc
    report = check_text(Assistant.load(index_dir), text or "", list(states) or None)
    if as_json or fmt == "json":
        emit(report.to_dict())
    elif fmt == "md":
        click.echo(report.to_markdown())
    else:
        for n, claim in enumerate(report.claims, 1):
            click.echo(f"[{n}] {claim.verdict.upper().replace('_', ' ')}: {claim.claim}")
            click.echo(f"    {claim.reason}")
            for c in claim.citations:
                click.echo(f"    {c.state} · {c.source}{version_note(c)} · {c.page_label or c.page or ''}"
                           f"{'¶' + str(c.paragraph) if c.paragraph else ''}: “{c.quote}”")
        if not report.claims:
            click.echo("No claim found in the text (a claim is a sentence of three words or more).")
