"""`essa-qa tag` (re-tag an index, or calibrate the tagger) and `essa-qa coverage`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import INDEX_OPTION, JSON_OPTION, PLANS_OPTION, emit, handles_errors

CATEGORIES_OPTION = click.option(
    "--categories", "categories_file", default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Category definitions (default: $ESSA_QA_CATEGORIES or the bundled categories.toml).")


@click.command("tag")
@INDEX_OPTION
@CATEGORIES_OPTION
@click.option("--calibrate", is_flag=True,
              help="Fit the tagger on hand labels and print cross-validated metrics instead.")
@click.option("--labels", "labels_file", default="eval/labels/labels.jsonl", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Hand labels (with --calibrate).")
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds (with --calibrate).")
@click.option("--report", "report_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the calibration report (Markdown) here.")
@click.option("--write", "write_back", is_flag=True,
              help="Write what was fitted on all labels: thresholds into the categories file, the "
                   "learned model into <categories>.model.toml beside it.")
@JSON_OPTION
@handles_errors
def tag_cmd(index_dir: Path, categories_file: Path | None, calibrate: bool, labels_file: Path,
            folds: int, report_file: Path | None, write_back: bool, as_json: bool) -> None:
    """Re-tag every chunk of an index with the current category definitions (no re-embedding)."""
    import os

    from .tagging import CATEGORIES_ENV, DEFAULT_CATEGORIES, CategoryTagger, is_variant

    if calibrate:
        from .calibration import calibrate as run_calibration
        from .calibration import load_labels, report_markdown, write_fits, write_model
        from .embedders import embedder_for_index
        from .config import load_settings
        from .stores import get_store

        stored = get_store(index_dir, load_settings()).load()
        embedder = embedder_for_index(stored.manifest["embedding"])
        tagger = CategoryTagger.load(categories_file)
        report = run_calibration(tagger, stored.chunks, stored.vectors, embedder,
                                 load_labels(labels_file), folds=folds)
        text = report_markdown(report, command="essa-qa " + " ".join(sys.argv[1:]))
        if report_file:
            Path(report_file).write_text(text, encoding="utf-8")
        if as_json:
            emit({"macro_f1": round(report.macro_f1, 4),
                  "fallback_macro_f1": round(report.fallback_macro_f1, 4),
                  "categories": {m.category: {"support": m.support, "precision": round(m.precision, 4),
                                              "recall": round(m.recall, 4), "f1": round(m.f1, 4)}
                                 for m in report.cv_metrics},
                  "fits": {f.category: {"similarity_weight": f.weight, "threshold": f.threshold}
                           for f in report.final_fits}})
        else:
            click.echo(text, nl=False)
        if not write_back:
            return
        target = Path(categories_file or os.environ.get(CATEGORIES_ENV) or DEFAULT_CATEGORIES)
        if not is_variant(report.embedding):
            write_fits(target, report.final_fits)
        model_path = write_model(target, report)
        click.echo(f"wrote {'' if is_variant(report.embedding) else f'thresholds to {target} and '}"
                   f"the learned model to {model_path}; run `essa-qa tag` to re-tag an index", err=True)
        return

    from .tagging import retag_index

    changed = retag_index(index_dir, CategoryTagger.load(categories_file))
    click.echo(f"re-tagged {index_dir}: {changed} chunk(s) changed their carried categories", err=True)


@click.command("coverage")
@INDEX_OPTION
@PLANS_OPTION
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "png"]), default="md", show_default=True)
@click.option("--output", "output", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (required for png; default: stdout).")
@click.option("--indexed-only", is_flag=True, help="Only the indexed states (the png shows only those).")
@handles_errors
def coverage_cmd(index_dir: Path, plans_dir: Path, fmt: str, output: Path | None, indexed_only: bool) -> None:
    """States x approach categories: strong passages per cell and the best one's citation; then
    every state not indexed, with its status (not fetched, or fetched but not indexed)."""
    from .api import Assistant
    from .coverage import coverage_table
    from .errors import ConfigError

    table = coverage_table(Assistant.load(index_dir), plans_dir, every_state=not indexed_only)
    if fmt == "png":
        if output is None:
            raise ConfigError("--format png needs --output FILE")
        table.to_png(output)
        click.echo(f"wrote {output}", err=True)
        return
    text = table.to_markdown() if fmt == "md" else table.to_csv()
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
