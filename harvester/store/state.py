"""Harvest state: one entry per harvest, identified by (source, set, metadata prefix).

The state holds the watermark (where the next incremental run starts), the checkpoint of a run
in progress (resumption token, cursor, pages) and the counts and last error that `ernte status`
shows. It lives in a local SQLite file in embedded mode and in Redis in cluster mode, behind the
small `StateStore` interface.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from harvester.errors import DamagedData
from harvester.store import files as storage


@dataclass(slots=True, frozen=True)
class HarvestKey:
    """Identity of one harvest."""

    source: str
    set_spec: str
    prefix: str

    def __str__(self) -> str:
        return f"{self.source}|{self.set_spec or '*'}|{self.prefix}"


def harvest_run_id(source: str, set_spec: str) -> str:
    """Who may run at once: one harvest per (source, set), whatever the prefix. The prefix is
    left out because a source's fallback prefix is only known after ListMetadataFormats, and
    `harvest orlis` and `harvest orlis --prefix oai_dc` may both end up writing one state."""
    return f"{source}|{set_spec or '*'}"


@dataclass(slots=True)
class RunCounts:
    """Counts of one run (or of all runs, for the totals)."""

    pages: int = 0
    records: int = 0
    added: int = 0
    unchanged: int = 0
    deleted: int = 0
    normalized: int = 0
    quarantined: int = 0
    indexed: int = 0
    repaired_chars: int = 0
    warnings: int = 0
    retries: int = 0
    list_restarts: int = 0  # the list asked for again after an expired resumption token

    def add(self, other: RunCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(slots=True)
class HarvestState:
    """Everything ernte knows about one harvest between and during runs.

    state: idle | running | failed | interrupted (stopped by Ctrl-C or SIGTERM, checkpoint saved).
    watermark: the datestamp the next incremental run asks `from` (minus the overlap).
    window_from / window_until: the current (or last) run's request window.
    pending_watermark: what the watermark becomes when the current run completes (the window's
    `until`, else the server's responseDate of the run's first page, never later than that).
    moves_watermark: False for a window that starts after the watermark (`--from` a later
    date): completing it proves nothing about the records before its start.
    token / cursor / complete_list_size / next_page: the checkpoint after the last stored page.
    deleted_record: what Identify declares (no, transient, persistent): with `no` or `transient`
    incremental runs cannot see every deletion.
    list_complete: the last page is stored; only completing the run is left (a crash right
    after it must not restart the window).
    reconcile: a full run that, once complete, archives as deleted the records the server no
    longer lists (for repositories that do not keep deletions, `deletedRecord` no/transient).
    recent_tokens / token_anchor / empty_streak / token_restarts: loop guards, kept with the
    checkpoint so they hold across processes (Celery tasks) too (`token_anchor`: see
    `harvester.run.harvest._moved_anchor`).
    archived_records / archive_seq: what the archive of (source, prefix) held after this harvest's
    last stored page (identifiers, highest sequence number); the archive never forgets a record,
    so an archive holding less was lost, emptied or replaced, and the run refuses to go on.
    base_url: the repository's base URL at the last run (a password in it masked), so that a
    harvest of a bare URL can be named again by its key (`ernte harvest 127.0.0.1_8000_oai`).
    counted_run: the cluster run whose index counts were added to `run` (its ledger instance),
    so that a finalize or dead letter delivered twice adds them once.
    run_started / run_ended: UTC ISO 8601.  rate: records per second of the last/current run.
    run: counts of the current or last run.  totals: counts over all runs.
    """

    source: str
    set_spec: str
    prefix: str
    state: str = "idle"
    watermark: str | None = None
    window_from: str | None = None
    window_until: str | None = None
    pending_watermark: str | None = None
    moves_watermark: bool = True
    token: str | None = None
    cursor: int | None = None
    complete_list_size: int | None = None
    next_page: int = 0
    list_complete: bool = False
    reconcile: bool = False
    deleted_record: str = ""
    recent_tokens: list[str] = field(default_factory=list)
    token_anchor: str | None = None
    empty_streak: int = 0
    token_restarts: int = 0
    archived_records: int = 0
    archive_seq: int = 0
    base_url: str = ""
    counted_run: str = ""
    run_started: str | None = None
    run_ended: str | None = None
    rate: float = 0.0
    last_error: str | None = None
    run: RunCounts = field(default_factory=RunCounts)
    totals: RunCounts = field(default_factory=RunCounts)

    @property
    def key(self) -> HarvestKey:
        return HarvestKey(self.source, self.set_spec, self.prefix)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HarvestState:
        values = dict(data)
        counts = {f.name for f in fields(RunCounts)}  # a count a later version adds is left out
        values["run"] = RunCounts(**{k: v for k, v in values.get("run", {}).items() if k in counts})
        values["totals"] = RunCounts(
            **{k: v for k, v in values.get("totals", {}).items() if k in counts}
        )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def new(cls, key: HarvestKey) -> HarvestState:
        return cls(source=key.source, set_spec=key.set_spec, prefix=key.prefix)


def archived_by(states: Iterable[HarvestState]) -> dict[tuple[str, str], tuple[int, int]]:
    """(source, prefix) -> (identifiers, archive sequence number) its harvests recorded as
    archived, the largest over its sets: what that archive must hold at least (less means it
    was emptied, replaced or deleted; `ernte check` and `ernte index rebuild` compare)."""
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for state in states:
        records, seq = expected.get((state.source, state.prefix), (0, 0))
        expected[(state.source, state.prefix)] = (
            max(records, state.archived_records),
            max(seq, state.archive_seq),
        )
    return expected


class StateStore(Protocol):
    """Where harvest states are kept (SQLite file or Redis)."""

    def load(self, key: HarvestKey) -> HarvestState:
        """The stored state, or a fresh idle one."""
        ...

    def save(self, state: HarvestState) -> None:
        """Store durably (the checkpoint after each page)."""
        ...

    def all(self) -> list[HarvestState]:
        """Every known harvest, sorted by key."""
        ...


STATE_REMEDY = (
    "move it aside and run `ernte harvest SOURCE` again (a configured source by its name, any "
    "other by its base URL: the key of a URL is known only to the state): the archive keeps "
    "every record, and a harvest without its state starts a full run that archives nothing twice"
)


class SQLiteStateStore:
    """Harvest states in a local SQLite file (embedded mode). `readonly` opens it for reading
    only (for `ernte status`, also on a read-only data directory); a missing file is empty."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._db: storage.GuardedConnection | None
        if readonly:
            self._db = self._open_readonly(path)
            return
        self._db = storage.connect(path, what="harvest state", remedy=STATE_REMEDY)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS harvests (key TEXT PRIMARY KEY, state TEXT NOT NULL)"
        )

    @staticmethod
    def _open_readonly(path: Path) -> storage.GuardedConnection | None:
        if not path.exists():
            return None
        db = storage.connect_readonly(path, what="harvest state", remedy=STATE_REMEDY)
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'harvests'"
        # A file without the table (created empty, or emptied): no harvests yet.
        return db if db.execute(table).fetchone() else None

    def check(self) -> list[str]:
        """SQLite's own integrity check; an empty list when the file is sound."""
        if self._db is None:
            return []
        rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return [] if [r[0] for r in rows] == ["ok"] else [str(r[0]) for r in rows]

    def load(self, key: HarvestKey) -> HarvestState:
        if self._db is None:
            return HarvestState.new(key)
        row = self._db.execute("SELECT state FROM harvests WHERE key = ?", (str(key),)).fetchone()
        return self._decoded(str(key), row[0]) if row else HarvestState.new(key)

    def save(self, state: HarvestState) -> None:
        if self._db is None:
            raise storage.StorageUnwritable(f"{self.path} is opened read-only", self.path)
        self._db.execute(
            "INSERT INTO harvests (key, state) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET state = excluded.state",
            (str(state.key), json.dumps(state.to_dict())),
        )

    def all(self) -> list[HarvestState]:
        if self._db is None:
            return []
        rows = self._db.execute("SELECT key, state FROM harvests ORDER BY key").fetchall()
        return [self._decoded(key, text) for key, text in rows]

    def _decoded(self, key: str, text: str) -> HarvestState:
        """The stored state of `key`, or DamagedData naming the file and the harvest."""
        try:
            return HarvestState.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DamagedData(
                f"harvest state {self.path}: the state of {key} is damaged ({exc}); {STATE_REMEDY}"
            ) from None
