"""The worklist: items, their append-only lifecycle, holdout — in a small SQLite file.

**Where it lives.** A DuckDB store lets one process write at a time, and
``sawubona analyze`` keeps it open for writing for minutes, while the web app
holds it read-only. Work items are written by people (web app, CLI, API) *while*
analyses run, so they live next to the store in their own file,
``<store>.work.sqlite`` (SQLite, write-ahead log): any number of processes read
and write it, and writes are serialised by SQLite's file lock. Every write is one
``BEGIN IMMEDIATE`` transaction that reads the item's current state, checks the
transition and writes the new state and its event together — so two writers and a
running ``analyze`` can never lose or duplicate an update (``busy_timeout`` makes a
writer wait for the lock instead of failing). ``tests/test_work_concurrency.py``
proves it with real processes.

Tables: ``work_items`` (one row per deduplication key, its current state),
``work_events`` (append-only: every change with who, when, note, what was done,
link) and ``work_config`` (the holdout share and seed).

Lifecycle: ``open → assigned → done | dismissed``; ``open | assigned → expired``
(the finding went away); ``expired → open`` (it came back). ``done`` and
``dismissed`` are final and survive every re-analysis. Held-out items are never
shown as to-do and cannot be assigned or done.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import itertools
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sawubona.errors import SawubonaError
from sawubona.work.derive import KINDS, URGENCIES, Item, Items

STATES = ("open", "assigned", "done", "dismissed", "expired")
ACTIVE = ("open", "assigned")
DONE_KINDS = ("gift_given", "contacted", "apologised", "credited", "answered", "fixed", "other")
#: Kinds eligible for the holdout by default: gifts and contacts, never an apology owed.
HOLDOUT_KINDS = ("gift", "drifting_regular")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS work_items (
    item_id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    subkind TEXT,
    customer_id TEXT NOT NULL,
    team TEXT,
    owner TEXT,
    title TEXT,
    why TEXT,
    wording TEXT,
    evidence TEXT,
    value REAL,
    currency TEXT,
    urgency TEXT,
    cause TEXT,
    event_at TEXT,
    state TEXT NOT NULL,
    holdout INTEGER NOT NULL DEFAULT 0,
    first_seen_as_of TEXT,
    last_seen_as_of TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    handled_at TEXT,
    done_kind TEXT,
    note TEXT,
    link TEXT,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS work_items_customer ON work_items (customer_id);
CREATE INDEX IF NOT EXISTS work_items_state ON work_items (state);
CREATE TABLE IF NOT EXISTS work_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    owner TEXT,
    team TEXT,
    note TEXT,
    done_kind TEXT,
    link TEXT
);
CREATE INDEX IF NOT EXISTS work_events_item ON work_events (item_id);
CREATE TABLE IF NOT EXISTS work_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ITEM_COLUMNS = (
    "item_id",
    "dedup_key",
    "kind",
    "subkind",
    "customer_id",
    "team",
    "owner",
    "title",
    "why",
    "wording",
    "evidence",
    "value",
    "currency",
    "urgency",
    "cause",
    "event_at",
    "state",
    "holdout",
    "first_seen_as_of",
    "last_seen_as_of",
    "created_at",
    "updated_at",
    "handled_at",
    "done_kind",
    "note",
    "link",
    "version",
)


class WorkError(SawubonaError):
    """A work item cannot be changed as asked (unknown item, illegal transition)."""


def default_author() -> str:
    """The OS user, for ``--author`` defaults."""
    try:
        return getpass.getuser()
    except Exception:  # no user name on this system
        return "unknown"


def item_id_of(key: str) -> str:
    """A short, stable, URL-safe id for a deduplication key."""
    return "w" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def in_holdout(key: str, share: float, seed: int) -> bool:
    """Deterministic: the key's hash with the seed, as a number in [0, 1), below ``share``."""
    if share <= 0:
        return False
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share


def worklist_path(store: Any) -> Path:
    """The worklist file of a store (a Store, or the store's path or address).

    Beside a DuckDB file (``<store>.work.sqlite``); inside a local Spark warehouse
    (``<warehouse>/sawubona.work.sqlite``); for a server (PostgreSQL) or a remote
    warehouse, in ``$SAWUBONA_WORK_DIR`` (default ``~/.local/share/sawubona``) under a
    name derived from the address, so that it is never a path made from a URL.
    """
    from sawubona import backends

    location = getattr(store, "path", store)
    address = backends.parse(location)
    if address.kind == "duckdb":
        path = Path(address.target)
        return path.with_name(path.name + ".work.sqlite")
    warehouse = address.warehouse or ""
    if address.kind == "spark" and warehouse and "://" not in warehouse:
        return Path(warehouse) / "sawubona.work.sqlite"
    home = Path(os.environ.get("SAWUBONA_WORK_DIR") or Path.home() / ".local/share/sawubona")
    digest = hashlib.sha256(address.display().encode()).hexdigest()[:16]
    return home / f"{address.kind}-{digest}.work.sqlite"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _iso(v: dt.datetime | None) -> str | None:
    return None if v is None else v.isoformat()


class Worklist:
    """The worklist file of one store. Cheap to open; every write is its own transaction."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(
            str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._con.row_factory = sqlite3.Row
        self._con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        with contextlib.suppress(sqlite3.OperationalError):
            self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = NORMAL")
        # for the set-based refresh (new items only: ids and holdout are hashes)
        self._con.create_function("_work_item_id", 1, item_id_of, deterministic=True)
        self._con.create_function(
            "_work_in_holdout",
            3,
            lambda key, share, seed: int(in_holdout(key, share, seed)),
            deterministic=True,
        )
        self._con.executescript(_SCHEMA)  # idempotent DDL, each statement its own commit

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first statement."""
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        else:
            self._con.execute("COMMIT")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Worklist:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- configuration -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        rows = dict(self._con.execute("SELECT key, value FROM work_config").fetchall())
        return {
            "holdout_share": float(rows.get("holdout_share", 0.0)),
            "holdout_seed": int(rows.get("holdout_seed", 0)),
            "holdout_kinds": tuple(
                k for k in rows.get("holdout_kinds", ",".join(HOLDOUT_KINDS)).split(",") if k
            ),
        }

    def set_holdout(
        self, share: float, *, seed: int = 0, kinds: Sequence[str] = HOLDOUT_KINDS
    ) -> None:
        """Hold back ``share`` of new eligible items (0 switches the holdout off)."""
        if not 0 <= share < 1:
            raise WorkError(f"holdout share {share} is not between 0 and 1; use e.g. 0.1")
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise WorkError(f"unknown item kind {bad[0]!r}; use one of {', '.join(KINDS)}")
        with self._write() as con:
            con.executemany(
                "INSERT OR REPLACE INTO work_config (key, value) VALUES (?, ?)",
                [
                    ("holdout_share", str(share)),
                    ("holdout_seed", str(seed)),
                    ("holdout_kinds", ",".join(kinds)),
                ],
            )

    # -- refresh from an analysis -------------------------------------------------------------

    def refresh(
        self, items: Items | Iterable[Item], as_of: dt.datetime, *, who: str = "analyze"
    ) -> dict[str, int]:
        """Upsert the items an analysis found; expire active items it no longer finds.

        New items open (or are held out); items found again get their evidence, value
        and urgency updated and keep their state; an expired item found again reopens.
        Done and dismissed items are never touched. Returns counts per outcome.

        Set-based: the items are loaded into a temporary table first (private to this
        connection, so without SQLite's write lock), then one write transaction
        classifies every item against the worklist by a join and applies each outcome
        with one statement — events are appended in the order of ``items`` (expiries
        after them, in the worklist's order), as one item at a time would.
        """
        cols = items if isinstance(items, Items) else Items.from_items(items)
        cfg = self.config()
        now, stamp = _now(), _iso(as_of)
        with self._scratch():
            self._load_incoming(cols)
            with self._write() as con:
                return _merge(con, cfg, now, stamp, who)

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[None]:
        """A private scratch database in memory for the refresh's tables, and a bigger cache.

        In memory, because on disk (a TEMP table) loading the items and dropping them
        again cost a system call per page (about 1 KB an item: 0.8 GB for the large
        world's 750,000 items). A big refresh touches every page of the worklist's
        indexes; with SQLite's default 2 MB cache, those pages would be read and written
        again and again.
        """
        con = self._con
        if any(r[1] == "work_scratch" for r in con.execute("PRAGMA database_list")):
            con.execute("DETACH DATABASE work_scratch")  # left by an interrupted refresh
        con.execute("ATTACH DATABASE ':memory:' AS work_scratch")
        cache = con.execute("PRAGMA main.cache_size").fetchone()[0]
        try:
            con.execute("PRAGMA work_scratch.journal_mode = OFF")
            con.execute(f"PRAGMA main.cache_size = {-_MAIN_CACHE_KB}")
            yield
        finally:
            con.execute("DETACH DATABASE work_scratch")
            con.execute(f"PRAGMA main.cache_size = {int(cache)}")

    def _load_incoming(self, cols: Items) -> None:
        """The items into ``work_scratch.work_incoming`` (``seq``: their order), many rows
        a statement (fewer calls into SQLite than one ``executemany`` row at a time)."""
        if len(set(cols.key)) < len(cols.key):  # refused, as inserting it twice would be
            raise sqlite3.IntegrityError("UNIQUE constraint failed: work_items.dedup_key")
        con = self._con
        con.execute(_INCOMING)
        names = ", ".join(_INCOMING_COLUMNS)
        one = "(" + ", ".join("?" for _ in _INCOMING_COLUMNS) + ")"
        limit = con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(500, limit // len(_INCOMING_COLUMNS)))
        rows = zip(
            cols.key,
            cols.kind,
            cols.subkind,
            cols.customer_id,
            cols.team,
            cols.title,
            cols.why,
            cols.wording,
            cols.evidence,
            cols.value,
            cols.currency,
            cols.urgency,
            cols.cause,
            [None if at is None else at.isoformat() for at in cols.at],
            strict=True,
        )
        head = f"INSERT INTO work_scratch.work_incoming ({names}) VALUES "
        full = head + ", ".join([one] * per)
        con.execute("BEGIN")  # touches the scratch database only: no lock on the worklist
        try:
            while chunk := list(itertools.islice(rows, per)):
                sql = full if len(chunk) == per else head + ", ".join([one] * len(chunk))
                con.execute(sql, list(itertools.chain.from_iterable(chunk)))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    # -- reading ------------------------------------------------------------------------------

    def get(self, item_id: str) -> dict[str, Any]:
        row = self._con.execute(
            "SELECT * FROM work_items WHERE item_id = ? OR dedup_key = ?", (item_id, item_id)
        ).fetchone()
        if row is None:
            raise WorkError(
                f"there is no work item {item_id!r}; list them with `sawubona work list`"
            )
        return _item_dict(row)

    def items(
        self,
        *,
        state: Sequence[str] | None = ACTIVE,
        kind: str | None = None,
        team: str | None = None,
        owner: str | None = None,
        urgency: str | None = None,
        customer_id: str | None = None,
        include_holdout: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Items, most urgent first (then most valuable); filters are exact matches."""
        sql, params = self._where(state, kind, team, owner, urgency, customer_id, include_holdout)
        sql = (
            "SELECT * FROM work_items" + sql + " ORDER BY CASE urgency WHEN 'high' THEN 0 "
            "WHEN 'medium' THEN 1 ELSE 2 END, COALESCE(value, 0) DESC, item_id"
        )
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [_item_dict(r) for r in self._con.execute(sql, params).fetchall()]

    def count(
        self,
        *,
        state: Sequence[str] | None = ACTIVE,
        kind: str | None = None,
        team: str | None = None,
        owner: str | None = None,
        urgency: str | None = None,
        customer_id: str | None = None,
        include_holdout: bool = False,
    ) -> int:
        sql, params = self._where(state, kind, team, owner, urgency, customer_id, include_holdout)
        return int(self._con.execute("SELECT count(*) FROM work_items" + sql, params).fetchone()[0])

    @staticmethod
    def _where(
        state: Sequence[str] | None,
        kind: str | None,
        team: str | None,
        owner: str | None,
        urgency: str | None,
        customer_id: str | None,
        include_holdout: bool,
    ) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if state:
            bad = [s for s in state if s not in STATES]
            if bad:
                raise WorkError(f"unknown state {bad[0]!r}; use one of {', '.join(STATES)}")
            clauses.append(f"state IN ({', '.join('?' for _ in state)})")
            params += list(state)
        if kind and kind not in KINDS:
            raise WorkError(f"unknown item kind {kind!r}; use one of {', '.join(KINDS)}")
        if urgency and urgency not in URGENCIES:
            raise WorkError(f"unknown urgency {urgency!r}; use one of {', '.join(URGENCIES)}")
        for col, value in (
            ("kind", kind),
            ("team", team),
            ("owner", owner),
            ("urgency", urgency),
            ("customer_id", customer_id),
        ):
            if value:
                clauses.append(f"{col} = ?")
                params.append(value)
        if not include_holdout:
            clauses.append("holdout = 0")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def events(self, item_id: str | None = None) -> list[dict[str, Any]]:
        if item_id is None:
            rows = self._con.execute("SELECT * FROM work_events ORDER BY event_id").fetchall()
        else:
            iid = self.get(item_id)["item_id"]
            rows = self._con.execute(
                "SELECT * FROM work_events WHERE item_id = ? ORDER BY event_id", (iid,)
            ).fetchall()
        return [dict(r) for r in rows]

    def facets(self) -> dict[str, list[str]]:
        """Distinct teams, owners, kinds and urgencies among the to-do items (for filters)."""
        out: dict[str, list[str]] = {}
        for col in ("team", "owner", "kind", "urgency"):
            out[col] = [
                r[0]
                for r in self._con.execute(
                    f"SELECT DISTINCT {col} FROM work_items WHERE {col} IS NOT NULL "
                    "AND holdout = 0 ORDER BY 1"
                ).fetchall()
            ]
        return out

    # -- lifecycle ------------------------------------------------------------------------------

    def _transition(
        self,
        item_id: str,
        event: str,
        allowed_from: tuple[str, ...],
        to_state: str,
        who: str,
        *,
        expect_version: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        if not who or not who.strip():
            raise WorkError("every change needs an author; pass --author NAME")
        now = _now()
        with self._write() as con:
            row = con.execute(
                "SELECT * FROM work_items WHERE item_id = ? OR dedup_key = ?", (item_id, item_id)
            ).fetchone()
            if row is None:
                raise WorkError(
                    f"there is no work item {item_id!r}; list them with `sawubona work list`"
                )
            state = row["state"]
            if row["holdout"]:
                raise WorkError(
                    f"item {row['item_id']} is held out to measure whether handling helps; "
                    "it is not to be handled (switch the holdout off for new items with "
                    "`--set work.holdout_share=0`)"
                )
            if expect_version is not None and row["version"] != expect_version:
                raise WorkError(
                    f"item {row['item_id']} changed since you opened it (now {state}); "
                    "reload it and try again"
                )
            if state not in allowed_from:
                raise WorkError(
                    f"item {row['item_id']} is {state} and cannot be {_past(event)}; "
                    + _hint(state)
                )
            sets = {"state": to_state, "updated_at": now, **fields}
            if to_state in ("done", "dismissed"):
                sets["handled_at"] = now
            assign = ", ".join(f"{k} = ?" for k in sets)
            con.execute(
                f"UPDATE work_items SET {assign}, version = version + 1 WHERE item_id = ?",
                (*sets.values(), row["item_id"]),
            )
            con.execute(
                "INSERT INTO work_events (item_id, event, from_state, to_state, who, at, owner, "
                "team, note, done_kind, link) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row["item_id"],
                    event,
                    state,
                    to_state,
                    who.strip(),
                    now,
                    fields.get("owner"),
                    fields.get("team"),
                    fields.get("note"),
                    fields.get("done_kind"),
                    fields.get("link"),
                ),
            )
            out = con.execute(
                "SELECT * FROM work_items WHERE item_id = ?", (row["item_id"],)
            ).fetchone()
        return _item_dict(out)

    def assign(
        self,
        item_id: str,
        owner: str,
        *,
        who: str,
        team: str | None = None,
        expect_version: int | None = None,
    ) -> dict[str, Any]:
        """Give an open (or assigned) item to ``owner`` (and ``team``)."""
        if not owner or not owner.strip():
            raise WorkError("assigning needs an owner; pass --owner NAME")
        fields: dict[str, Any] = {"owner": owner.strip()}
        if team:
            fields["team"] = team.strip()
        return self._transition(
            item_id, "assigned", ACTIVE, "assigned", who, expect_version=expect_version, **fields
        )

    def done(
        self,
        item_id: str,
        note: str,
        *,
        who: str,
        done_kind: str = "other",
        link: str | None = None,
        expect_version: int | None = None,
    ) -> dict[str, Any]:
        """Record what was actually done (free text + a kind), with a link to its evidence."""
        if not note or not note.strip():
            raise WorkError("say what was done: pass --note 'what you did'")
        if done_kind not in DONE_KINDS:
            raise WorkError(
                f"unknown kind of handling {done_kind!r}; use one of {', '.join(DONE_KINDS)}"
            )
        if link is not None and link.strip():
            table, sep, ident = link.partition(":")
            if not sep or table not in ("touchpoint", "action", "promise", "journey") or not ident:
                raise WorkError(
                    f"link {link!r} is not TABLE:ID; use touchpoint:ID or action:ID "
                    "(the contact or action that shows what was done)"
                )
        return self._transition(
            item_id,
            "done",
            ACTIVE,
            "done",
            who,
            expect_version=expect_version,
            note=note.strip(),
            done_kind=done_kind,
            link=(link or "").strip() or None,
        )

    def dismiss(
        self, item_id: str, reason: str, *, who: str, expect_version: int | None = None
    ) -> dict[str, Any]:
        """Close an item without doing it, with the reason."""
        if not reason or not reason.strip():
            raise WorkError("dismissing needs a reason; pass --reason 'why'")
        return self._transition(
            item_id,
            "dismissed",
            ACTIVE,
            "dismissed",
            who,
            expect_version=expect_version,
            note=reason.strip(),
        )

    def forget(self, customer_id: str) -> int:
        """Erase a customer's items and their events (``forget ID``); returns items removed.

        With SQLite's secure delete on, the freed pages are overwritten, and the write-ahead
        log is checkpointed and truncated afterwards: no copy of the rows stays in the files.
        """
        self._con.execute("PRAGMA secure_delete = ON")
        with self._write() as con:
            ids = [
                r[0]
                for r in con.execute(
                    "SELECT item_id FROM work_items WHERE customer_id = ?", (customer_id,)
                ).fetchall()
            ]
            con.executemany("DELETE FROM work_events WHERE item_id = ?", [(i,) for i in ids])
            con.execute("DELETE FROM work_items WHERE customer_id = ?", (customer_id,))
        with contextlib.suppress(sqlite3.OperationalError):  # a reader may hold the log
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(ids)


#: The worklist's page cache during a refresh (KiB), for its indexes.
_MAIN_CACHE_KB = 256 * 1024
_INCOMING_COLUMNS = (
    "dedup_key",
    "kind",
    "subkind",
    "customer_id",
    "team",
    "title",
    "why",
    "wording",
    "evidence",
    "value",
    "currency",
    "urgency",
    "cause",
    "event_at",
)
_INCOMING = """
CREATE TABLE work_scratch.work_incoming (
    seq INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    kind TEXT,
    subkind TEXT,
    customer_id TEXT,
    team TEXT,
    title TEXT,
    why TEXT,
    wording TEXT,
    evidence TEXT,
    value REAL,
    currency TEXT,
    urgency TEXT,
    cause TEXT,
    event_at TEXT
)"""
#: What an analysis may change on an item it finds again; any difference is an update.
_COMPARED = ("why", "wording", "evidence", "value", "urgency", "team", "cause", "event_at")


def _merge(
    con: sqlite3.Connection, cfg: dict[str, Any], now: str, stamp: str | None, who: str
) -> dict[str, int]:
    """Apply ``work_scratch.work_incoming`` to the worklist, in the caller's write transaction."""
    share, seed, kinds = cfg["holdout_share"], cfg["holdout_seed"], list(cfg["holdout_kinds"])
    held = (
        f"w.rowid IS NULL AND i.kind IN ({', '.join('?' for _ in kinds)}) "
        "AND _work_in_holdout(i.dedup_key, ?, ?)"
        if share > 0 and kinds
        else "0"
    )
    differs = " OR ".join(f"w.{c} IS NOT i.{c}" for c in _COMPARED)
    # 1. every item's outcome, against the worklist as it is now
    con.execute(
        "CREATE TABLE work_scratch.work_outcome (seq INTEGER PRIMARY KEY, wrow INTEGER, "
        "item_id TEXT, state TEXT, outcome TEXT, held INTEGER)"
    )
    con.execute(
        "INSERT INTO work_scratch.work_outcome SELECT i.seq, w.rowid, "
        "CASE WHEN w.rowid IS NULL THEN _work_item_id(i.dedup_key) ELSE w.item_id END "
        "AS item_id, w.state AS state, "
        "CASE WHEN w.rowid IS NULL THEN 'new' WHEN w.state IN ('done', 'dismissed') "
        "THEN 'final' WHEN w.state = 'expired' THEN 'reopened' "
        f"WHEN {differs} THEN 'updated' ELSE 'unchanged' END AS outcome, "
        f"CASE WHEN {held} THEN 1 ELSE 0 END AS held "
        "FROM work_scratch.work_incoming i LEFT JOIN work_items w ON w.dedup_key = i.dedup_key "
        "ORDER BY i.seq",
        [*kinds, share, seed] if held != "0" else [],
    )
    counts = dict.fromkeys(("new", "updated", "unchanged", "reopened", "expired", "held_out"), 0)
    for outcome, n, n_held in con.execute(
        "SELECT outcome, count(*), sum(held) FROM work_scratch.work_outcome GROUP BY outcome"
    ):
        counts["unchanged" if outcome == "final" else outcome] += n
        if outcome == "new":
            counts["held_out"] = n_held
    # 2. their events, in the items' order; then the expiries', in the worklist's order
    con.execute(
        "INSERT INTO work_events (item_id, event, from_state, to_state, who, at, note) "
        "SELECT item_id, CASE outcome WHEN 'new' THEN 'created' ELSE outcome END, "
        "CASE WHEN outcome = 'new' THEN NULL ELSE state END, "
        "CASE WHEN outcome = 'updated' THEN state ELSE 'open' END, ?, ?, "
        "CASE WHEN held THEN 'held out' END FROM work_scratch.work_outcome "
        "WHERE outcome IN ('new', 'reopened', 'updated') ORDER BY seq",
        (who, now),
    )
    con.execute(
        "CREATE TABLE work_scratch.work_gone (wrow INTEGER PRIMARY KEY, item_id TEXT, state TEXT)"
    )
    con.execute(
        "INSERT INTO work_scratch.work_gone SELECT rowid, item_id, state FROM work_items "
        "WHERE state IN ('open', 'assigned') AND rowid NOT IN "
        "(SELECT wrow FROM work_scratch.work_outcome WHERE wrow IS NOT NULL)"
    )
    con.execute(
        "INSERT INTO work_events (item_id, event, from_state, to_state, who, at, note) "
        "SELECT item_id, 'expired', state, 'expired', ?, ?, NULL FROM work_scratch.work_gone "
        "ORDER BY wrow",
        (who, now),
    )
    # 3. the items: expire the missing, update the changed and reopened, stamp the rest
    counts["expired"] = con.execute(
        "UPDATE work_items SET state = 'expired', updated_at = ?, version = version + 1 "
        "WHERE rowid IN (SELECT wrow FROM work_scratch.work_gone)",
        (now,),
    ).rowcount
    fields = ", ".join(c for c in _COMPARED)
    con.execute(
        "CREATE TABLE work_scratch.work_changed AS SELECT o.wrow AS wrow, "
        + ", ".join(f"i.{c} AS {c}" for c in _COMPARED)
        + " FROM work_scratch.work_outcome o JOIN work_scratch.work_incoming i "
        "ON i.seq = o.seq WHERE o.outcome IN ('updated', 'reopened')"
    )
    con.execute("CREATE UNIQUE INDEX work_scratch.work_changed_row ON work_changed (wrow)")
    picked = ", ".join(
        "COALESCE(c.team, work_items.team)" if c == "team" else f"c.{c}" for c in _COMPARED
    )
    con.execute(
        f"UPDATE work_items SET ({fields}) = (SELECT {picked} FROM work_scratch.work_changed c "
        "WHERE c.wrow = work_items.rowid), "
        "state = CASE WHEN state = 'expired' THEN 'open' ELSE state END, "
        "last_seen_as_of = ?, updated_at = ?, version = version + 1 "
        "WHERE rowid IN (SELECT wrow FROM work_scratch.work_changed)",
        (stamp, now),
    )
    con.execute(
        "UPDATE work_items SET last_seen_as_of = ? WHERE rowid IN (SELECT wrow FROM "
        "work_scratch.work_outcome WHERE outcome IN ('unchanged', 'final')) "
        "AND last_seen_as_of IS NOT ?",
        (stamp, stamp),
    )
    con.execute(
        "INSERT INTO work_items (item_id, dedup_key, kind, subkind, customer_id, team, title, "
        "why, wording, evidence, value, currency, urgency, cause, event_at, state, holdout, "
        "first_seen_as_of, last_seen_as_of, created_at, updated_at) "
        "SELECT o.item_id, i.dedup_key, i.kind, i.subkind, i.customer_id, i.team, i.title, "
        "i.why, i.wording, i.evidence, i.value, i.currency, i.urgency, i.cause, i.event_at, "
        "'open', o.held, ?, ?, ?, ? FROM work_scratch.work_outcome o "
        "JOIN work_scratch.work_incoming i ON i.seq = o.seq WHERE o.outcome = 'new' ORDER BY o.seq",
        (stamp, stamp, now, now),
    )
    return counts


def _past(event: str) -> str:
    return {"assigned": "assigned", "done": "marked done", "dismissed": "dismissed"}.get(
        event, event
    )


def _hint(state: str) -> str:
    return {
        "done": "it was already handled, and a handled item stays handled",
        "dismissed": "it was dismissed, and a dismissed item stays closed",
        "expired": "its finding went away at the last analysis; it reopens if it comes back",
    }.get(state, "list open items with `sawubona work list`")


def _item_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["holdout"] = bool(d["holdout"])
    try:
        d["evidence"] = json.loads(d["evidence"] or "{}")
    except ValueError:
        d["evidence"] = {}
    return d
