"""Index stores behind one interface (base.IndexStore), chosen by the `store` setting:
"files" (files.py, the embedded default) or "postgres" (postgres.py, shared by many replicas)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import IndexStore
from .files import FileStore

STORES = ("files", "postgres")


def get_store(index_dir: str | Path = "index", settings=None) -> IndexStore:
    """The store the settings name, for the index `index_dir` (its local folder, and for a
    database store the index's name there: its last path component)."""
    kind = getattr(settings, "store", "files") or "files"
    if kind == "files":
        return FileStore(Path(index_dir))
    if kind == "postgres":
        from .postgres import PostgresStore

        url = getattr(settings, "database_url", "")
        if not url:
            raise ConfigError("store = \"postgres\" needs database_url (ESSA_QA_DATABASE_URL), "
                              "e.g. postgresql://user:password@host:5432/essa")
        return PostgresStore(Path(index_dir), url)
    raise ConfigError(f"unknown store {kind!r}; choose one of {', '.join(STORES)}")


__all__ = ["IndexStore", "FileStore", "get_store", "STORES"]
