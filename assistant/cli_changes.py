"""`essa-qa changes STATE`: what changed between two versions of a state's plan."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .cli import INDEX_OPTION, JSON_OPTION, StateType, emit, handles_errors


@click.command("changes")
@click.argument("state", type=StateType())
@click.option("--topic", default="", help="Only changes in passages about this (e.g. 'chronic absenteeism').")
@click.option("--from", "old", default=None, metavar="VERSION",
              help="The older version (year, label or file name). Default: the one before --to.")
@click.option("--to", "new", default=None, metavar="VERSION", help="The newer version. Default: the newest.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="Most changes to show.")
@INDEX_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True)
@JSON_OPTION
@handles_errors
def changes_cmd(state: str, topic: str, old: str | None, new: str | None, limit: int, index_dir: Path,
                fmt: str, as_json: bool) -> None:
    """Passages that differ between two versions of STATE's plan, sentence by sentence."""
    from .api import Assistant
    from .changes import compare_versions
    from .export import changes_to_markdown

    report = compare_versions(Assistant.load(index_dir), state, old=old, new=new, topic=topic, limit=limit)
    if as_json or fmt == "json":
        emit(report.to_dict())
    else:
        text = changes_to_markdown(report)
        if fmt == "text":  # the word-level edit as wdiff writes it: [-removed-] {+added+}
            text = re.sub(r"\*\*(.+?)\*\*", r"{+\1+}", re.sub(r"~~(.+?)~~", r"[-\1-]", text))
            text = re.sub(r"^#+ ", "", text, flags=re.MULTILINE).replace("\\*", "*").replace("\\~", "~")
        click.echo(text)
