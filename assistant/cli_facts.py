"""`essa-qa facts`: the plan facts table (minimum n-size, goals, ratings ...), each value cited."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import INDEX_OPTION, JSON_OPTION, STATE_OPTION, emit, handles_errors


@click.command("facts")
@STATE_OPTION
@click.option("--fact", "fact_ids", multiple=True, metavar="ID",
              help="Only this fact (repeatable), e.g. n_size, graduation_rate_goal (assistant/data/facts.toml).")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "csv", "json"]), default="text", show_default=True)
@click.option("--refresh", is_flag=True, help="Extract again (after editing the fact schema), not from the stored facts.")
@INDEX_OPTION
@JSON_OPTION
@handles_errors
def facts_cmd(states: tuple[str, ...], fact_ids: tuple[str, ...], fmt: str, refresh: bool, index_dir: Path,
              as_json: bool) -> None:
    """Each indexed state's plan facts with the sentence that states them ("not stated" where the plan is silent)."""
    from .api import Assistant
    from .export import facts_to_csv, facts_to_markdown, facts_to_text

    facts = Assistant.load(index_dir).facts(states=states or None, fact_ids=fact_ids or None, refresh=refresh)
    if as_json or fmt == "json":
        emit({"facts": [f.to_dict() for f in facts]})
    elif fmt == "csv":
        click.echo(facts_to_csv(facts), nl=False)
    elif fmt == "md":
        click.echo(facts_to_markdown(facts), nl=False)
    else:
        click.echo(facts_to_text(facts))
