"""`essa-qa`: a thin click CLI over the library; data goes out as JSON with --json."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click

from .config import load_settings
from .errors import EssaError
from .records import MAX_K

INDEX_OPTION = click.option("--index", "index_dir", default="index", show_default=True,
                            type=click.Path(file_okay=False, path_type=Path), help="Index directory.")
PLANS_OPTION = click.option("--plans", "plans_dir", default="plans", show_default=True,
                            type=click.Path(file_okay=False, path_type=Path), help="Plans directory.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print data as JSON.")


class StateType(click.ParamType):
    """A postal code or a state's name ("DE", "delaware"), as its postal code."""

    name = "state"

    def convert(self, value, param, ctx):
        from .states import normalize_state

        code = normalize_state(str(value))
        if code is None:
            self.fail(f"{value!r} is not a state's postal code or name (e.g. DE, Delaware)", param, ctx)
        return code


class CategoryType(click.ParamType):
    """One of the approach categories in assistant/data/categories.toml (read only when used)."""

    name = "category"

    def convert(self, value, param, ctx):
        from .tagging import CategoryTagger

        ids = CategoryTagger.load().ids
        if value not in ids:
            self.fail(f"{value!r} is not a category; one of: {', '.join(ids)}", param, ctx)
        return value


def k_option(default: int, help: str):
    return click.option("--k", default=default, show_default=True, help=help,
                        type=click.IntRange(1, MAX_K))


STATE_OPTION = click.option("--state", "states", multiple=True, type=StateType(),
                            help="Only this state, by code or name (repeatable).")
VERSION_OPTION = click.option("--version", "version", default=None, metavar="VERSION",
                              help="Plan version to read: a year or label (2017, \"2019 amended\"), or "
                                   "'all'. Default: each state's newest plan.")
CATEGORY_OPTION = click.option("--category", "categories", multiple=True, type=CategoryType(),
                               help="Only passages tagged with this category (repeatable).")


def handles_errors(func):
    """Our own errors become one line on stderr and their exit code; no stack traces."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except EssaError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def emit(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group()
@click.version_option(package_name="essa-plans-assistant")
def main() -> None:
    """Ask grounded, cited questions about US states' ESSA plans."""


# ------------------------------------------------------------------ plans


@main.group()
def plans() -> None:
    """Fetch and list plan documents."""


@plans.command("fetch")
@PLANS_OPTION
@click.option("--from", "source", help="Directory or base URL holding the plan files "
              "(default: each plan's URL in plans/manifest.toml).")
@STATE_OPTION
@click.option("--all", "every", is_flag=True, help="Every plan in the manifest (53).")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 16),
              help="Files fetched at once (at most 2 at once from one server).")
@handles_errors
def plans_fetch(plans_dir: Path, source: str | None, states: tuple[str, ...], every: bool, workers: int) -> None:
    """Copy or download plans (--all, --state XX ..., or those in a --from folder): resumed where a
    download broke off, retried, checked (file kind, size, SHA-256) before it moves in whole."""
    import threading

    from tqdm import tqdm

    from .fetch import FetchPolicy, fetch_plans

    bars: dict[str, tqdm] = {}
    overall = tqdm(unit="plan", desc="plans", file=sys.stderr, position=0)
    drawing = threading.Lock()  # downloads report from several threads

    def on_progress(name: str, done: int, total: int | None) -> None:
        with drawing:
            bar = bars.get(name) or bars.setdefault(name, tqdm(
                total=total, unit="B", unit_scale=True, desc=name, leave=False, file=sys.stderr,
                position=len(bars) + 1))
            bar.update(done - bar.n)

    def on_done(result) -> None:
        with drawing:
            if result.filename in bars:
                bars.pop(result.filename).close()
            overall.update(1)

    try:
        results = fetch_plans(plans_dir, source, list(states) or None, on_progress,
                              FetchPolicy(workers=workers), on_done, every=every,
                              on_start=lambda n: overall.reset(total=n))
    finally:
        for bar in bars.values():
            bar.close()
        overall.close()
    for result in results:
        click.echo(("ok    " if result.ok else "FAIL  ") + result.message, err=not result.ok)
    failed = sum(not r.ok for r in results)
    click.echo(f"{len(results) - failed} of {len(results)} plans ok", err=bool(failed))
    if failed:
        sys.exit(4)


@plans.command("list")
@PLANS_OPTION
@INDEX_OPTION
@JSON_OPTION
@handles_errors
def plans_list(plans_dir: Path, index_dir: Path, as_json: bool) -> None:
    """Every plan of the manifest and every file in the folder: state, version, status (indexed,
    not indexed, not fetched, or what is wrong), format, pages or paragraphs, hash."""
    from .catalog import list_plans

    rows = list_plans(plans_dir, index_dir)
    if as_json:
        emit(rows)
        return
    for row in rows:
        size = (f"{row['pages']} pages" if row["pages"] else
                f"{row['paragraphs']} paragraphs" if row["paragraphs"] else "")
        click.echo(f"{row['state']:4} {row['name'][:26]:26} {row['file']:22} {row['version'][:14]:14} "
                   f"{row['format']:5} {row['status'][:40]:40} {size:16} {(row['sha256'] or '')[:12]}")
    counts: dict[str, int] = {}
    for row in rows:
        key = row["status"] if row["status"] in ("indexed", "not indexed", "not fetched") else "problem"
        counts[key] = counts.get(key, 0) + 1
    click.echo(f"{len(rows)} plans: " + ", ".join(f"{n} {k}" for k, n in counts.items()), err=True)


# ------------------------------------------------------------------ index


@main.command("index")
@PLANS_OPTION
@INDEX_OPTION
@click.option("--rebuild", is_flag=True, help="Re-embed every plan (needed after a model change).")
@click.option("--embedder", default=None, help="Embedding backend: mpnet (default), minilm or hash.")
@handles_errors
def index_cmd(plans_dir: Path, index_dir: Path, rebuild: bool, embedder: str | None) -> None:
    """Embed new or changed plans, drop removed ones; the old index stays live until the new is written."""
    from tqdm import tqdm

    from .embedders import get_embedder
    from .indexing import _Progress, build_index

    settings = load_settings()
    backend = get_embedder(embedder, settings)
    state: dict[str, tqdm] = {}

    def on_embed_start(_: str, total: int) -> None:
        if total:
            state["bar"] = tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr)

    def on_embedded(n: int) -> None:
        if "bar" in state:
            state["bar"].update(n)

    progress = _Progress(on_plan=lambda name: click.echo(f"parsing {name}", err=True),
                         on_embed_start=on_embed_start, on_embedded=on_embedded)
    report = build_index(plans_dir, index_dir, backend, settings, rebuild=rebuild, progress=progress)
    if "bar" in state:
        state["bar"].close()
    for line in report.failed:
        click.echo(f"FAIL  {line}", err=True)
    for line in report.warnings:
        click.echo(f"warn  {line}", err=True)
    modelled = report.chunks_embedded - report.chunks_cached
    click.echo(f"embedded {len(report.embedded)} plan(s) ({report.chunks_embedded} chunks: "
               f"{report.chunks_cached} from the cache, {modelled} by the model"
               + (f" at {report.chunks_per_second:.1f} chunks/s" if modelled else "")
               + f"); unchanged {len(report.unchanged)}; "
               + (f"version relabelled {len(report.relabelled)}; " if report.relabelled else "")
               + f"removed {len(report.removed)}; {report.total_chunks} chunks in {index_dir}"
               + ("" if report.changed else " (index unchanged)"))
    if report.changed and report.total_chunks:
        # Plan facts are part of what an index answers: extracted now, not on a user's first look.
        from .api import Assistant

        facts = Assistant.load(index_dir, settings=settings, embedder=backend).facts(refresh=True)
        click.echo(f"plan facts: {sum(f.stated for f in facts)} of {len(facts)} stated "
                   f"({len({f.state for f in facts})} state(s); `essa-qa facts`)", err=True)
    if report.failed:
        sys.exit(3)


# ------------------------------------------------------------------ questions


@main.command("search")
@click.argument("question")
@INDEX_OPTION
@k_option(10, "Passages to list.")
@STATE_OPTION
@CATEGORY_OPTION
@VERSION_OPTION
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True)
@JSON_OPTION
@handles_errors
def search_cmd(question, index_dir, k, states, categories, version, mode, as_json) -> None:
    """Ranked passages for a question."""
    from dataclasses import asdict

    from .api import Assistant

    assistant = Assistant.load(index_dir)
    passages = assistant.search(question, k=k, states=list(states) or None,
                                categories=list(categories) or None, mode=mode, version=version)
    if as_json:
        emit([asdict(p) | {"categories": list(p.categories)} for p in passages])
        return
    for i, p in enumerate(passages, 1):
        label = f" ({p.version or p.year})" if p.version or p.year else ""
        click.echo(f"[{i}] {p.state} {p.source}{label} {p.locator} · {p.section or '-'} · score {p.score:.4f}")
        click.echo("    " + p.text[:300].replace("\n", " ") + ("…" if len(p.text) > 300 else ""))


@main.command("ask")
@click.argument("question")
@INDEX_OPTION
@k_option(5, "Passages retrieved per state.")
@STATE_OPTION
@CATEGORY_OPTION
@VERSION_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True)
@click.option("--llm/--no-llm", "use_llm", default=None,
              help="Answer through the configured OpenAI-compatible endpoint (verified sentence by "
                   "sentence), or force the extractive answer. Default: the endpoint when one is configured.")
@JSON_OPTION
@handles_errors
def ask_cmd(question, index_dir, k, states, categories, version, fmt, use_llm, as_json) -> None:
    """Answer a question with cited passages."""
    from .api import Assistant
    from .errors import ConfigError
    from .export import answer_to_markdown, answer_to_text

    settings = load_settings()
    if use_llm and not settings.llm_base_url:
        raise ConfigError("--llm: no language model configured; set ESSA_QA_LLM_BASE_URL (and "
                          "ESSA_QA_LLM_MODEL) or llm_base_url in essa-qa.toml")
    assistant = Assistant.load(index_dir, settings=settings)
    answer = assistant.ask(question, k=k, states=list(states) or None, categories=list(categories) or None,
                           llm=use_llm, version=version)
    if as_json or fmt == "json":
        emit(answer.to_dict())
    elif fmt == "md":
        click.echo(answer_to_markdown(answer, assistant.plans))
    else:
        click.echo(answer_to_text(answer))


@main.command("bench")
@PLANS_OPTION
@click.option("--questions", "n_questions", default=50, show_default=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Scratch directory for the benchmark's index (default: a temporary one).")
@click.option("--int8-quality", is_flag=True,
              help="Also build a whole int8 index and score its retrieval beside fp32's (minutes).")
@click.option("--index", "index_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Measure only the query side on this existing index (no build).")
@click.option("--scale", type=click.IntRange(1, 53), default=None, metavar="N",
              help="The query side at N plans (copies of --index's plans, default index/) on the files "
                   "and postgres stores, beside the plans as they are.")
@click.option("--stores", default="files,postgres", show_default=True, help="With --scale: the stores measured.")
@JSON_OPTION
@handles_errors
def bench_cmd(plans_dir: Path, n_questions: int, work: Path | None, int8_quality: bool,
              index_dir: Path | None, scale: int | None, stores: str, as_json: bool) -> None:
    """Index build next to bare encode, runtimes and int8 side by side, warm ask vs one query
    embedding, peak RSS; with --scale N, the same query side at N plans on both stores."""
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    if scale:
        from .bench_scale import run_scale_benchmark

        results = run_scale_benchmark(index_dir or Path("index"), scale, n_questions,
                                      tuple(s.strip() for s in stores.split(",") if s.strip()), log=log)
    else:
        from .bench import run_benchmark

        results = run_benchmark(plans_dir, n_questions=n_questions, work_dir=work, int8_quality=int8_quality,
                                index_dir=index_dir, log=log)
    if as_json:
        emit(results)
    else:
        for key, value in results.items():
            click.echo(f"{key:40} {value}")


# Commands that live in their own modules; imported lazily by click only when named.
def _register(module: str, attribute: str) -> None:
    import importlib

    main.add_command(getattr(importlib.import_module(f"{__package__}.{module}"), attribute))


# One line per command module (each module imports its heavy dependencies inside the command).
_COMMAND_MODULES: list[tuple[str, str]] = [
    ("cli_categories", "tag_cmd"),
    ("cli_categories", "coverage_cmd"),
    ("cli_serve", "serve_cmd"),
    ("cli_eval", "eval_cmd"),
    ("cli_eval", "fit_cmd"),
    ("cli_models", "models_cmd"),
    ("cli_check", "check_cmd"),
    ("cli_changes", "changes_cmd"),
    ("cli_facts", "facts_cmd"),
    ("cli_llm", "llm_cmd"),
]
for _module, _attribute in _COMMAND_MODULES:
    _register(_module, _attribute)

