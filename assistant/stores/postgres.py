"""The shared store: index generations in one PostgreSQL database (with pgvector), for many app
replicas on many machines and one indexer job.

Tables (created on first use; `index_name` is the --index folder's last component, so several
indexes can share a database):
    essa_generation  (index_name, name) -> manifest (jsonb), created_at
    essa_current     index_name -> the live generation's name
    essa_chunk       (index_name, generation, row) -> chunk record (jsonb), embedding (vector)
    essa_sentence    (index_name, generation, row) -> embedding (vector): one row per quotable
                     sentence, chunk by chunk, in the order of each chunk's `sentences`

Generations map to transactions: `save` writes a whole generation and moves essa_current to it
in one transaction, so every reader sees the old generation or the new one, never a part; a
writer that dies midway rolls back and the previous generation keeps answering. The generation
before the live one is kept (a replica may be loading it); older ones are deleted. One writer at
a time: `writing()` holds a session advisory lock on the index's name for the whole build, and a
second `essa-qa index` is refused at once with IndexBusyError (the lock dies with its session,
so a killed indexer leaves none behind).

Replicas load the live generation into memory and search it there with the same fusion and second
stage as the files store (identical results: tests/test_stores.py); `generation()` is one
primary-key read, which the app polls (index_check_s) to pick up a new generation without a restart.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ConfigError, IndexBusyError, IndexCorruptError, IndexMismatchError, IndexMissingError
from ..records import Chunk
from ..store import FORMAT_VERSION, StoredIndex, _check_consistent, _counts
from .base import IndexStore
from .pg_search import TEXT_SEARCH, DatabaseCandidates

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS essa_generation (
    index_name text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    manifest jsonb NOT NULL,
    PRIMARY KEY (index_name, name));
CREATE TABLE IF NOT EXISTS essa_current (
    index_name text PRIMARY KEY,
    generation text NOT NULL,
    FOREIGN KEY (index_name, generation) REFERENCES essa_generation (index_name, name));
CREATE TABLE IF NOT EXISTS essa_chunk (
    index_name text NOT NULL,
    generation text NOT NULL,
    row integer NOT NULL,
    chunk jsonb NOT NULL,
    embedding vector NOT NULL,
    PRIMARY KEY (index_name, generation, row),
    FOREIGN KEY (index_name, generation) REFERENCES essa_generation (index_name, name) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS essa_sentence (
    index_name text NOT NULL,
    generation text NOT NULL,
    row integer NOT NULL,
    embedding vector NOT NULL,
    PRIMARY KEY (index_name, generation, row),
    FOREIGN KEY (index_name, generation) REFERENCES essa_generation (index_name, name) ON DELETE CASCADE);
""" + TEXT_SEARCH
_SCHEMA_LOCK = 0x455353  # "ESS": creating the tables is serialised across processes too


class PostgresStore(IndexStore):
    name = "postgres"

    def __init__(self, directory: Path, url: str):
        super().__init__(directory)
        self.url = url
        self.index_name = Path(directory).name or "index"
        self._ready = False
        self._poll = None  # one connection kept for generation(), which the app polls
        self.loaded_generation = ""  # the generation load() last read (pg_search = "database")

    def describe(self) -> str:
        return f"postgres index {self.index_name!r}"

    # ------------------------------------------------------------ connections

    def _connect(self):
        try:
            import psycopg
            from pgvector.psycopg import register_vector
        except ImportError as exc:
            raise ConfigError("store = \"postgres\" needs the psycopg and pgvector packages "
                              "(pip install 'essa-plans-assistant[postgres]')") from exc
        try:
            conn = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as exc:
            raise ConfigError(f"database_url: cannot connect ({_first_line(exc)})") from exc
        if not self._ready:
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    conn.execute(SCHEMA)
            except psycopg.Error as exc:
                conn.close()
                raise ConfigError(f"database_url: cannot create the index tables ({_first_line(exc)}); "
                                  "the role needs CREATE on the database, and the vector extension "
                                  "installed or the right to install it") from exc
            self._ready = True
        register_vector(conn)
        conn.commit()  # register_vector read the type's OID: end that transaction before the caller's
        return conn

    def _lock_key(self) -> int:
        """The advisory lock of this index's writer: a signed 64-bit hash of its name."""
        digest = hashlib.sha256(f"essa-qa index {self.index_name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    # ------------------------------------------------------------ reading

    def generation(self) -> str:
        import psycopg

        for attempt in (1, 2):  # a connection the server closed meanwhile is opened once more
            if self._poll is None or self._poll.closed:
                self._poll = self._connect()
                self._poll.autocommit = True  # no snapshot held between polls
            try:
                row = self._poll.execute("SELECT generation FROM essa_current WHERE index_name = %s",
                                         (self.index_name,)).fetchone()
                return row[0] if row else ""
            except psycopg.OperationalError as exc:
                self._poll.close()
                if attempt == 2:
                    raise ConfigError(f"database_url: lost the connection ({_first_line(exc)})") from exc
        return ""

    def load(self) -> StoredIndex:
        with _one_line(self), self._connect() as conn, conn.transaction():
            # One snapshot for the whole read: a generation that goes live meanwhile is not mixed in.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = conn.execute("SELECT g.name, g.manifest FROM essa_current c JOIN essa_generation g "
                               "ON g.index_name = c.index_name AND g.name = c.generation "
                               "WHERE c.index_name = %s", (self.index_name,)).fetchone()
            if row is None:
                raise IndexMissingError(f"{self.describe()}: no index in the database; build one with "
                                        "`essa-qa index`")
            name, manifest = row
            if manifest.get("format_version") != FORMAT_VERSION:
                raise IndexMismatchError(f"{self.describe()}: index format {manifest.get('format_version')} "
                                         f"is not {FORMAT_VERSION}; rebuild it with `essa-qa index --rebuild`")
            where = (self.index_name, name)
            at = Path(f"{self.describe()} generation {name}")
            dim = int(manifest.get("embedding", {}).get("dim") or 0)
            records = conn.execute("SELECT chunk FROM essa_chunk WHERE index_name = %s AND "
                                   "generation = %s ORDER BY row", where).fetchall()
            vectors = _copy_vectors(conn, "essa_chunk", where, dim, at)
            sentence_vectors = _copy_vectors(conn, "essa_sentence", where, dim, at)
        try:
            chunks = tuple(Chunk.from_json(chunk) for (chunk,) in records)
        except (TypeError, KeyError, ValueError) as exc:
            raise IndexCorruptError(at, f"a chunk record is damaged ({exc})") from exc
        counts = manifest.get("counts", {})
        if counts.get("chunks") is not None and counts["chunks"] != len(chunks):
            raise IndexCorruptError(at, f"has {len(chunks)} chunks, its manifest recorded {counts['chunks']}")
        _check_consistent(at, manifest, chunks, vectors, sentence_vectors)
        self.loaded_generation = name
        return StoredIndex(self.directory, manifest, chunks, vectors, sentence_vectors)

    def candidates(self, per_list: int) -> DatabaseCandidates:
        """Lexical candidates of the generation `load()` read, from the database's text search."""
        return DatabaseCandidates(self, self.loaded_generation, per_list)

    # ------------------------------------------------------------ writing

    @contextmanager
    def writing(self):
        conn = self._connect()
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key(),)).fetchone()[0]
            conn.commit()
            if not got:
                raise IndexBusyError(f"{self.describe()}: another `essa-qa index` is writing this index "
                                     "(it holds the database's advisory lock); try again when it has finished")
            yield self
        finally:
            conn.close()  # ends the session, and with it the advisory lock

    def save(self, manifest: dict, chunks: list[Chunk], vectors: np.ndarray,
             sentence_vectors: np.ndarray) -> str:
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        manifest = {**manifest, "format_version": FORMAT_VERSION, "counts": _counts(list(chunks))}
        manifest.pop("files", None)  # the file store's integrity records: the database keeps its own
        vectors = np.asarray(vectors, dtype=np.float32)
        sentence_vectors = np.asarray(sentence_vectors, dtype=np.float32)
        from psycopg.types.json import Jsonb

        with _one_line(self), self._connect() as conn, conn.transaction():
            conn.execute("INSERT INTO essa_generation (index_name, name, manifest) VALUES (%s, %s, %s)",
                         (self.index_name, name, Jsonb(manifest)))
            with conn.cursor().copy("COPY essa_chunk (index_name, generation, row, chunk, embedding) "
                                    "FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "jsonb", "vector"])
                for row, (chunk, vector) in enumerate(zip(chunks, vectors)):
                    copy.write_row((self.index_name, name, row, Jsonb(chunk.to_json()), vector))
            with conn.cursor().copy("COPY essa_sentence (index_name, generation, row, embedding) "
                                    "FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "vector"])
                for row, vector in enumerate(sentence_vectors):
                    copy.write_row((self.index_name, name, row, vector))
            previous = conn.execute("SELECT generation FROM essa_current WHERE index_name = %s",
                                    (self.index_name,)).fetchone()
            conn.execute("INSERT INTO essa_current (index_name, generation) VALUES (%s, %s) "
                         "ON CONFLICT (index_name) DO UPDATE SET generation = EXCLUDED.generation",
                         (self.index_name, name))
            keep = [name] + ([previous[0]] if previous else [])
            conn.execute("DELETE FROM essa_generation WHERE index_name = %s AND NOT (name = ANY(%s))",
                         (self.index_name, keep))
        return name


@contextmanager
def _one_line(store: "PostgresStore"):
    """A database error midway (connection lost, disk full, permissions) as one line, no traceback;
    the transaction it broke is rolled back by the server."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise ConfigError(f"{store.describe()}: the database failed ({_first_line(exc)})") from exc


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"


def _copy_vectors(conn, table: str, where: tuple, dim: int, at: Path) -> np.ndarray:
    """A generation's vectors in row order, read as one binary COPY and parsed as a whole: every
    row is the same bytes (field count, length, pgvector's dim and flags, dim big-endian float4),
    so numpy reads them in place of 25,000 Python objects (4.2 s -> well under a second here)."""
    query = (f"COPY (SELECT embedding FROM {table} WHERE index_name = %s AND generation = %s "
             "ORDER BY row) TO STDOUT (FORMAT BINARY)")
    with conn.cursor().copy(query, where) as copy:
        data = b"".join(bytes(block) for block in copy)
    if not data.startswith(_COPY_HEADER):
        raise IndexCorruptError(at, f"{table}: the database sent no binary COPY data")
    start = len(_COPY_HEADER) + 8 + int.from_bytes(data[len(_COPY_HEADER) + 4:len(_COPY_HEADER) + 8], "big")
    body = data[start:-2]  # the last two bytes end the stream (-1)
    row = np.dtype([("fields", ">i2"), ("length", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
                    ("values", ">f4", (dim,))])
    if len(body) % row.itemsize:
        raise IndexCorruptError(at, f"{table}: a vector is not {dim} wide")
    rows = np.frombuffer(body, dtype=row)
    if len(rows) and ((rows["dim"] != dim).any() or (rows["length"] != 4 + 4 * dim).any()):
        raise IndexCorruptError(at, f"{table}: a vector is not {dim} wide")
    return rows["values"].astype(np.float32).reshape(len(rows), dim)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
