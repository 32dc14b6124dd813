"""`essa-qa eval`: run the question set, write the report, optionally enforce the floors."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from .cli import INDEX_OPTION, JSON_OPTION, PLANS_OPTION, emit, handles_errors, k_option


@click.command("eval")
@click.option("--questions", "questions_file", default="eval/questions.jsonl", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Question set (JSONL, eval/README.md).")
@k_option(5, "Passages retrieved per state for ask.")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Report directory (default: eval/reports/<timestamp>).")
@INDEX_OPTION
@PLANS_OPTION
@click.option("--subset", type=click.Choice(["full", "fast"]), default="full", show_default=True,
              help="fast: a fixed third of the questions (every 3rd of each kind).")
@click.option("--floors", "floors_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Eval config with regression floors (e.g. eval/config.toml): exit 1 when a metric "
                   "falls below its floor (or above its ceiling). Its [before] table is shown beside.")
@click.option("--claims", "claims_files", multiple=True, show_default=True,
              default=("eval/claims.jsonl", "eval/claims_holdout.jsonl", "eval/claims_holdout2.jsonl"),
              type=click.Path(dir_okay=False, path_type=Path),
              help="Claim sets for claim checking, each scored on its own (repeatable; a file that "
                   "is absent is skipped). Limits: the eval config's [<file stem>.floors] and "
                   "[<file stem>.ceilings].")
@click.option("--facts", "facts_file", default="eval/facts.jsonl", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Gold plan facts scored by exact match (skipped when absent). Limits: the eval "
                   "config's [facts.floors] and [facts.ceilings].")
@click.option("--cv", "folds", default=0, type=click.IntRange(0, 20), show_default=True,
              help="Fit the learned parts N times, each without one fold of the questions, and answer "
                   "each question with the models that never saw it (held-out numbers). 0: as shipped.")
@JSON_OPTION
@handles_errors
def eval_cmd(questions_file: Path, k: int, report_dir: Path | None, index_dir: Path, plans_dir: Path,
             subset: str, floors_file: Path | None, claims_files: tuple[Path, ...], facts_file: Path,
             folds: int, as_json: bool) -> None:
    """Score retrieval, citations, abstention and categories on a question set; write a report."""
    from tqdm import tqdm

    from .api import Assistant
    from .evaluation import (fast_subset, floor_violations, load_floors, load_questions, load_reference,
                             run_evaluation, write_report)

    questions = load_questions(questions_file)
    if subset == "fast":
        questions = fast_subset(questions)
    floors = load_floors(floors_file, subset) if floors_file else None
    before = load_reference(floors_file) if floors_file and subset == "full" else None
    assistant = Assistant.load(index_dir)
    bar = tqdm(total=len(questions), unit="q", desc="evaluating", file=sys.stderr)

    def on_question(_: int, __: int, question) -> None:
        bar.set_postfix_str(question.id, refresh=False)
        bar.update(1)

    report = run_evaluation(assistant, questions, k=k, plans_dir=plans_dir,
                            questions_file=str(questions_file), subset=subset, cv=folds,
                            on_question=on_question)
    bar.close()
    report_dir = report_dir or Path("eval/reports") / datetime.now().strftime("%Y%m%d-%H%M%S")
    paths = write_report(report, report_dir, floors, before)
    violations = floor_violations(report, floors) if floors else []
    claims = {f.stem: result for f in claims_files
              if (result := _claims(assistant, f, report_dir, paths, floors_file, violations))}
    facts = _facts(assistant, facts_file, plans_dir, report_dir, paths, floors_file, violations)
    if as_json:
        emit(report.to_dict() | {"report_files": {name: str(p) for name, p in paths.items()},
                                 "floor_violations": violations, "claims": claims, "facts": facts})
    else:
        click.echo(paths["markdown"].read_text(encoding="utf-8").split("## By kind")[0].rstrip())
        from .claims_eval import claims_markdown
        from .facts_eval import facts_markdown

        for name, result in claims.items():
            click.echo("\n" + claims_markdown(result, name).split("\nWrong verdicts:")[0].rstrip())
        if facts:
            click.echo("\n" + facts_markdown(facts).split("\n| fact |")[0].rstrip())
        click.echo(f"\nreport written to {report_dir}")
    for line in violations:
        click.echo(f"below floor: {line}", err=True)
    if violations:
        sys.exit(1)


def _claims(assistant, claims_file: Path, report_dir: Path, paths: dict, floors_file: Path | None,
            violations: list[str]) -> dict | None:
    """Claim checking scored on one claim set, written beside the report (<stem>.json, and a
    section of report.md); the eval config's [<stem>.floors] and [<stem>.ceilings] are checked
    into `violations`."""
    import json

    from .claims_eval import claims_markdown, evaluate_claims, load_claims
    from .evaluation import load_claim_limits

    if not claims_file.is_file():
        return None
    result = evaluate_claims(assistant, load_claims(claims_file))
    stem = claims_file.stem
    (report_dir / f"{stem}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    with paths["markdown"].open("a", encoding="utf-8") as handle:
        handle.write("\n" + claims_markdown(result, stem))
    if floors_file is not None:
        floors, ceilings = load_claim_limits(floors_file, stem)
        _check_limits(stem, result["summary"], floors, ceilings, violations)
    return result


def _facts(assistant, facts_file: Path, plans_dir: Path, report_dir: Path, paths: dict,
           floors_file: Path | None, violations: list[str]) -> dict | None:
    """Plan facts scored on the gold values (facts.json and a section of report.md beside the
    report); the eval config's [facts.floors] and [facts.ceilings] are checked into `violations`."""
    import json

    from .evaluation import load_claim_limits, load_plan_texts, plan_files
    from .facts_eval import evaluate_facts, facts_markdown, load_gold

    if not facts_file.is_file():
        return None
    plans = load_plan_texts(plans_dir, plan_files(assistant)) if plans_dir.is_dir() else None
    result = evaluate_facts(assistant, load_gold(facts_file), plans)
    (report_dir / "facts.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    with paths["markdown"].open("a", encoding="utf-8") as handle:
        handle.write("\n" + facts_markdown(result))
    if floors_file is not None:
        floors, ceilings = load_claim_limits(floors_file, "facts")
        _check_limits("facts", result["summary"], floors, ceilings, violations)
    return result


def _check_limits(name: str, summary: dict, floors: dict, ceilings: dict, violations: list[str]) -> None:
    for metric, floor in floors.items():
        if summary.get(metric) is not None and summary[metric] < floor:
            violations.append(f"{name} {metric} {summary[metric]} < {floor}")
    for metric, ceiling in ceilings.items():
        if summary.get(metric) is not None and summary[metric] > ceiling:
            violations.append(f"{name} {metric} {summary[metric]} > {ceiling}")


@click.command("fit")
@click.option("--questions", "questions_file", default="eval/questions.jsonl", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Question set (JSONL, eval/README.md).")
@k_option(5, "Passages per state for ask.")
@INDEX_OPTION
@click.option("--write", "write_file", is_flag=True,
              help="Write the models fitted on every question to assistant/data/pipeline.<backend>.toml "
                   "(or the file pipeline_model names).")
@JSON_OPTION
@handles_errors
def fit_cmd(questions_file: Path, k: int, index_dir: Path, write_file: bool, as_json: bool) -> None:
    """Fit fusion weights, the second stage, sentence relevance and the answer decision on a question set."""
    from datetime import date

    from .api import Assistant
    from .fit import fit_pipeline, prepare
    from .fitted import default_model_path
    from .evaluation import load_questions

    assistant = Assistant.load(index_dir)
    questions = load_questions(questions_file)
    notes = {"fitted_on": f"{questions_file} ({len(questions)} questions)", "date": date.today().isoformat(),
             "command": "essa-qa fit --write", "held_out": "essa-qa eval --cv 5 (eval/config.toml notes)"}
    fitted = fit_pipeline(assistant, prepare(assistant, questions), k, notes)
    text = fitted.to_toml()
    if write_file:
        path = Path(assistant.settings.pipeline_model or default_model_path(assistant.embedder.backend,
                                                                                 assistant.embedder.precision))
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}", err=True)
    if as_json:
        import tomllib

        emit(tomllib.loads(text))
    else:
        click.echo(text)
