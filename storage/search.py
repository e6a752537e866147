"""Full-text search over incident titles, timelines and postmortems: `search_incidents`, an FTS5
table on SQLite and a tsvector table (GIN index) on PostgreSQL, both created and kept in sync by
triggers in migration 0002_reports. Results are incident ids, newest first."""
from __future__ import annotations

import re
from typing import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import card_messages as cm
from storage.schema import conversations as c

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words that say nothing about which incident is meant.
_STOP = frozenset("""a an and are as at be by for from has have in is it of on or that the this to
was were will with not no down up high low above below""".split())
MAX_TERMS = 12


def terms(query: str) -> list[str]:
    """The words of a query, lower-case, deduplicated; punctuation and operators dropped (so a
    query can never be FTS5 or tsquery syntax)."""
    words = [w.lower() for w in _WORD.findall(query or "")]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def _fts5_any(words: Sequence[str]) -> str:
    return " OR ".join(f'"{w}"' for w in words)


def _splits(word: str) -> list[tuple[str, str]]:
    """A run-together word read as two ("rollback" -> "roll back"): each part 3+ letters."""
    if len(word) < 6 or word.isdigit():
        return []
    return [(word[:k], word[k:]) for k in range(3, len(word) - 2)]


def _fts5_word(word: str) -> str:
    """One query word in FTS5 (porter stemming): the word as a prefix, or its two halves
    as a phrase; so "rollback" finds "rollbacks", "Rolled back" and "roll back"."""
    return "(" + " OR ".join([f'"{word}" *'] + [f'"{a} {b}"' for a, b in _splits(word)]) + ")"


def _tsquery_word(word: str) -> str:
    """The same in a PostgreSQL tsquery ('english' stems each lexeme). Words are letters and
    digits only (terms()), so nothing here is tsquery syntax from the user."""
    return "(" + " | ".join([f"{word}:*"] + [f"{a} <-> {b}" for a, b in _splits(word)]) + ")"


MATCH_ALL, MATCH_ANY = "all", "any"


async def search(conn: AsyncConnection, query: str, *, limit: int = 10,
                 match: str = MATCH_ALL) -> list[int]:
    """Incidents whose title, timeline or postmortem has every word (MATCH_ANY: any word) of
    the query, by prefix or stem, newest first."""
    words = terms(query)
    if not words:
        return []
    if conn.dialect.name == "sqlite":
        joined = (" AND " if match == MATCH_ALL else " OR ").join(map(_fts5_word, words))
        q = text("SELECT rowid FROM search_incidents WHERE search_incidents MATCH :q "
                 "ORDER BY rowid DESC LIMIT :n")
        return [r[0] for r in (await conn.execute(q, {"q": joined, "n": limit})).all()]
    joined = (" & " if match == MATCH_ALL else " | ").join(map(_tsquery_word, words))
    return await _search_postgresql(conn, joined, limit)


# Newest incidents first. First the newest 2,000 ids (where common words end), then ever
# larger runs of older id buckets: every document carries the lexeme "zb<id / 10000>"
# (migration 0002), so a run of buckets is narrowed inside the GIN index and only the rows that
# match there are read. The last step has no bucket filter. Each step collects its matches
# before sorting (MATERIALIZED), so common words that never occur together cannot send the
# planner down the primary key through the whole table.
BUCKET = 10_000
_PG_BUCKET_RUNS = (2, 16, None)
_PG_NEWEST = text("""
    WITH matches AS MATERIALIZED (
        SELECT incident_id FROM search_incidents
        WHERE doc @@ to_tsquery('english', :q) AND incident_id > :lo)
    SELECT incident_id FROM matches ORDER BY incident_id DESC LIMIT :n""")
_PG_BUCKETS = text("""
    WITH matches AS MATERIALIZED (
        SELECT incident_id FROM search_incidents
        WHERE doc @@ (to_tsquery('english', :q) && CAST(:buckets AS tsquery))
          AND incident_id <= :hi)
    SELECT incident_id FROM matches ORDER BY incident_id DESC LIMIT :n""")
_PG_OLDER = text("""
    WITH matches AS MATERIALIZED (
        SELECT incident_id FROM search_incidents
        WHERE doc @@ to_tsquery('english', :q) AND incident_id <= :hi)
    SELECT incident_id FROM matches ORDER BY incident_id DESC LIMIT :n""")


async def _search_postgresql(conn: AsyncConnection, query: str, limit: int) -> list[int]:
    newest = (await conn.execute(text("SELECT max(incident_id) FROM search_incidents"))).scalar()
    if newest is None:
        return []

    found: list[int] = []

    async def step(sql, **params) -> list[int]:
        rows = await conn.execute(sql, {"q": query, "n": limit - len(found), **params})
        return [r[0] for r in rows.all()]

    lo = max(0, newest - 2_000)
    found += await step(_PG_NEWEST, lo=lo)
    hi, top = lo, lo // BUCKET
    for run in _PG_BUCKET_RUNS:
        if len(found) >= limit or hi <= 0:
            break
        if run is None or top - run < 0:
            found += await step(_PG_OLDER, hi=hi)
            break
        buckets = " | ".join(f"zb{b}" for b in range(top, top - run, -1))
        found += await step(_PG_BUCKETS, buckets=buckets, hi=hi)
        top -= run
        hi = (top + 1) * BUCKET - 1
    return found[:limit]


def similarity_words(title: str, service: str | None) -> list[str]:
    """What makes a title distinctive: its words, minus stop words, bare numbers and the
    service's own name (every candidate shares that)."""
    own = set(terms(service or ""))
    return [w for w in terms(title) if w not in _STOP and w not in own and not w.isdigit()
            and len(w) > 1][:8]


async def similar(conn: AsyncConnection, *, incident_id: int, service: str | None, title: str,
                  limit: int = 3) -> list[int]:
    """Past root incidents on the same service whose title and postmortem read most like this
    title (BM25 on SQLite, ts_rank on PostgreSQL), best first. Never a private one: the card
    showing them is read by a whole channel."""
    words = similarity_words(title, service)
    if not service or not words:
        return []
    if conn.dialect.name == "sqlite":
        service_words = terms(service)
        if not service_words:
            return []
        match = (f'service : "{" ".join(service_words)}" AND '
                 f'{{title postmortem}} : ({_fts5_any(words)})')
        q = text("SELECT search_incidents.rowid FROM search_incidents "
                 "JOIN incidents i ON i.id = search_incidents.rowid "
                 "WHERE search_incidents MATCH :q AND search_incidents.rowid != :id "
                 "AND i.service = :service AND i.parent_id IS NULL AND i.status != 'open' "
                 "AND i.private = :public "
                 "ORDER BY bm25(search_incidents, 0.0, 10.0, 1.0, 4.0), "
                 "search_incidents.rowid DESC LIMIT :n")
        params = {"q": match, "id": incident_id, "service": service, "n": limit,
                  "public": False}
    else:
        q = text("SELECT s.incident_id FROM search_incidents s "
                 "JOIN incidents i ON i.id = s.incident_id "
                 "WHERE s.service = :service AND s.doc @@ to_tsquery('english', :q) "
                 "AND s.incident_id != :id AND i.parent_id IS NULL AND i.status != 'open' "
                 "AND i.private = :public "
                 "ORDER BY ts_rank(s.doc, to_tsquery('english', :q)) DESC, s.incident_id DESC "
                 "LIMIT :n")
        params = {"q": " | ".join(words), "id": incident_id, "service": service, "n": limit,
                  "public": False}
    return [r[0] for r in (await conn.execute(q, params)).all()]


async def card_links(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(channel id, message id) of each incident's card in a channel, where it was posted."""
    if not ids:
        return {}
    q = (select(cm.c.incident_id, cm.c.conversation_id, cm.c.activity_id)
         .join(c, c.c.id == cm.c.conversation_id)
         .where(cm.c.incident_id.in_(list(ids)), cm.c.activity_id.is_not(None),
                c.c.kind == "channel").order_by(cm.c.id))
    out: dict[int, tuple[str, str]] = {}
    for incident_id, conversation_id, activity_id in (await conn.execute(q)).all():
        out.setdefault(incident_id, (conversation_id, activity_id))
    return out

