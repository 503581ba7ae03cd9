"""The raw archive: every harvested record, stored before anything else can fail on it.

One SQLite file per (source, metadata prefix) under `<data_dir>/archive/<source>/<prefix>.sqlite`:
an append-only `records` table of versions (zstd-compressed `<record>` XML, header fields, when
and from which page it came), a `latest` table pointing at each identifier's newest version, and
the `quarantine` of records that could not be normalized or indexed, with the reason.

A version identical to the identifier's latest one (same bytes) is not appended again, so a page
fetched twice after a crash leaves the archive as it was. Later steps (normalize, index, rebuild)
read from here, so re-indexing never needs a re-harvest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import zstandard

from harvester.model import RawRecord
from harvester.redact import redact_url
from harvester.sources import SourceError, check_prefix, harvest_command
from harvester.store import files as storage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL,
    datestamp TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    sets TEXT NOT NULL,
    digest BLOB NOT NULL,
    xml BLOB NOT NULL,
    harvested_at TEXT NOT NULL,
    page_url TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS latest (
    identifier TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (
    run TEXT NOT NULL,
    identifier TEXT NOT NULL,
    PRIMARY KEY (run, identifier)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    identifier TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    xml BLOB,
    PRIMARY KEY (identifier, stage)
) WITHOUT ROWID;
"""


@dataclass(slots=True)
class AppendResult:
    """How many records of a page were new versions, and how many were already archived;
    `new_identifiers`: how many were not in the archive at all before."""

    appended: int = 0
    unchanged: int = 0
    new_identifiers: int = 0


@dataclass(slots=True)
class QuarantineEntry:
    identifier: str
    stage: str
    reason: str
    at: str


def archive_path(archive_dir: Path, source: str, prefix: str) -> Path:
    """Where the archive of one (source, prefix) lives: always a file directly under
    `archive_dir/<source>` (a prefix such as `../x` is refused, see `sources.check_prefix`)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source)
    return archive_dir / safe / f"{check_prefix(prefix)}.sqlite"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def damaged_remedy(source: str, prefix: str) -> str:
    """The way out of a damaged or lost archive (of every set of `source` in `prefix`)."""
    again = harvest_command(source, "", prefix, "--full")
    return (
        f"restore it from a backup, or run `{again}` to harvest everything again (a damaged "
        "file is moved aside first)"
    )


@dataclass(frozen=True, slots=True)
class LostArchive:
    """An archive that holds less than its harvests archived: deleted, emptied or replaced
    (by an older copy). The one comparison of `ernte harvest`, `check`, `index SOURCE` and
    `index rebuild`: identifiers and highest sequence number ("version") held against those
    the harvest state recorded as archived (`state.archived_by`)."""

    source: str
    prefix: str
    path: Path
    held: tuple[int, int] | None  # (identifiers, highest sequence number); None: no file
    archived: tuple[int, int]  # what its harvests archived, the same two numbers

    @classmethod
    def compared(
        cls,
        source: str,
        prefix: str,
        path: Path,
        held: tuple[int, int] | None,
        archived: tuple[int, int],
    ) -> LostArchive | None:
        """The lost archive, when `held` falls short of `archived` (a missing file into which
        no harvest archived anything is not lost)."""
        records, seq = held or (0, 0)
        if records < archived[0] or seq < archived[1]:
            return cls(source, prefix, path, held, archived)
        return None

    def problem(self, consequence: str) -> str:
        """One line: what is lost, `consequence` (what the command did not do), the way out."""
        return f"{self.finding}; {consequence}: {damaged_remedy(self.source, self.prefix)}"

    @property
    def finding(self) -> str:
        """What is lost: `archive PATH holds ..., but ...`."""
        if self.held is None:
            what = f"is missing, but {self.archived[0]} were archived by harvests of {self.source}"
        elif self.held[0] < self.archived[0]:
            what = (
                f"holds {self.held[0]} records, but {self.archived[0]} were archived by "
                f"harvests of {self.source}"
            )
        else:  # as many records, older versions: a copy from before the last harvests
            what = (
                f"holds {self.held[0]} records up to version {self.held[1]}, but harvests of "
                f"{self.source} archived up to version {self.archived[1]} (an older copy)"
            )
        return f"archive {self.path} {what}"


class RawArchive:
    """Append-only store of raw records for one (source, prefix)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """`readonly`: open an existing archive for reading only (`ernte show`, `quarantine`,
        `check`, the record pages of `ernte serve`), also in a read-only data directory."""
        self.path = path
        remedy = damaged_remedy(path.parent.name, path.stem)
        self._compress = zstandard.ZstdCompressor(level=3).compress
        self._decompress = zstandard.ZstdDecompressor().decompress
        if readonly:
            self._db = storage.connect_readonly(path, what="archive", remedy=remedy)
            tables = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'latest'"
            if self._db.execute(tables).fetchone():
                return
            # A file without the tables (emptied, say) holds no records: read it as empty.
            self._db.close()
            self._db = storage.empty_stand_in(path, what="archive", remedy=remedy)
            self._db.executescript(_SCHEMA)
            return
        self._db = storage.connect(path, what="archive", remedy=remedy)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a page's records are on disk before its checkpoint (saved after) can be, even
        # across a power loss; one fsync per page costs nothing next to the network.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, archive_dir: Path, source: str, prefix: str) -> RawArchive:
        return cls(archive_path(archive_dir, source, prefix))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RawArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(
        self, records: Sequence[RawRecord], page_url: str = "", *, fresh_after: int | None = None
    ) -> AppendResult:
        """Store a page's records durably, in one transaction (one lookup of the page's known
        digests, one insert per new version).

        With `fresh_after` (the archive's `last_seq` at the harvest's last checkpoint), a
        version already archived after that point counts as appended: it is this page's own,
        stored by an attempt that was stopped before its checkpoint. The page URL is kept with
        a password in it masked (`ernte show` prints it; a backup of the archive travels)."""
        page_url = redact_url(page_url)
        result = AppendResult()
        now = _now()
        db = self._db
        counted: set[str] = set()
        digests = [hashlib.blake2b(rec.xml, digest_size=16).digest() for rec in records]
        db.execute("BEGIN IMMEDIATE")
        try:
            known = self._latest_digests([rec.identifier for rec in records])
            for rec, digest in zip(records, digests, strict=True):
                row = known.get(rec.identifier)
                if row is not None and row[0] == digest:
                    if (
                        fresh_after is not None
                        and row[1] > fresh_after
                        and rec.identifier not in counted
                    ):
                        result.appended += 1
                    else:
                        result.unchanged += 1
                    counted.add(rec.identifier)
                    continue
                if row is None:
                    result.new_identifiers += 1
                cur = db.execute(
                    "INSERT INTO records (identifier, datestamp, deleted, sets, digest, xml,"
                    " harvested_at, page_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rec.identifier,
                        rec.datestamp,
                        int(rec.deleted),
                        json.dumps(rec.sets),
                        digest,
                        self._compress(rec.xml),
                        now,
                        page_url,
                    ),
                )
                db.execute(
                    "INSERT INTO latest (identifier, seq, digest) VALUES (?, ?, ?)"
                    " ON CONFLICT(identifier) DO UPDATE SET seq = excluded.seq,"
                    " digest = excluded.digest",
                    (rec.identifier, cur.lastrowid, digest),
                )
                known[rec.identifier] = (digest, -1)  # a record twice on one page: stored once
                result.appended += 1
                counted.add(rec.identifier)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT (a full disk) may have ended it already
                db.execute("ROLLBACK")
            raise
        return result

    def _latest_digests(self, identifiers: Sequence[str]) -> dict[str, tuple[bytes, int]]:
        """identifier -> (digest, seq) of its latest archived version, for those archived."""
        found: dict[str, tuple[bytes, int]] = {}
        unique = list(dict.fromkeys(identifiers))
        for start in range(0, len(unique), 500):  # under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT identifier, digest, seq FROM latest WHERE identifier IN ({marks})", chunk
            ).fetchall()
            found.update({str(i): (bytes(d), int(q)) for i, d, q in rows})
        return found

    def _row_to_raw(self, row: tuple[object, ...], prefix: str) -> RawRecord:
        identifier, datestamp, deleted, sets, xml = row
        return RawRecord(
            identifier=str(identifier),
            datestamp=str(datestamp),
            deleted=bool(deleted),
            sets=json.loads(str(sets)),
            xml=self._decompress(cast(bytes, xml)),
            metadata_prefix=prefix,
        )

    @property
    def prefix(self) -> str:
        return self.path.stem

    def get(self, identifier: str) -> RawRecord | None:
        """The latest archived version of one record."""
        row = self._db.execute(
            "SELECT r.identifier, r.datestamp, r.deleted, r.sets, r.xml FROM latest l"
            " JOIN records r ON r.seq = l.seq WHERE l.identifier = ?",
            (identifier,),
        ).fetchone()
        return self._row_to_raw(row, self.prefix) if row else None

    def iter_latest(
        self, batch_size: int = 1000, after_seq: int = 0, until_seq: int | None = None
    ) -> Iterator[RawRecord]:
        """Every identifier's latest version, in archive order, streaming; `after_seq` and
        `until_seq` bound it to what was archived between two points (see `last_seq`)."""
        last_seq = after_seq
        bound = until_seq if until_seq is not None else 2**62
        while True:
            # Walk `records` by its primary key and keep the rows `latest` points at: each
            # batch is a range read (a walk of `latest` by seq would scan and sort all of it).
            rows = self._db.execute(
                "SELECT r.seq, r.identifier, r.datestamp, r.deleted, r.sets, r.xml FROM records r"
                " JOIN latest l ON l.identifier = r.identifier AND l.seq = r.seq"
                " WHERE r.seq > ? AND r.seq <= ? ORDER BY r.seq LIMIT ?",
                (last_seq, bound, batch_size),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._row_to_raw(row[1:], self.prefix)
            last_seq = rows[-1][0]

    def batches(
        self,
        size: int = 500,
        *,
        after_seq: int = 0,
        until_seq: int | None = None,
        live_only: bool = False,
    ) -> Iterator[list[RawRecord]]:
        """`iter_latest` in lists of `size` (the unit normalize and index work on)."""
        batch: list[RawRecord] = []
        for raw in self.iter_latest(after_seq=after_seq, until_seq=until_seq):
            if live_only and raw.deleted:
                continue
            batch.append(raw)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def last_seq(self) -> int:
        """A point in the archive's history: what is archived later has a higher number."""
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
        return int(row[0])

    def count_latest(self) -> tuple[int, int]:
        """(live, deleted) counts over the latest versions."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(1 - r.deleted), 0), COALESCE(SUM(r.deleted), 0)"
            " FROM latest l JOIN records r ON r.seq = l.seq"
        ).fetchone()
        return int(row[0]), int(row[1])

    def count_identifiers(self) -> int:
        """How many identifiers the archive holds (live or deleted)."""
        return int(self._db.execute("SELECT COUNT(*) FROM latest").fetchone()[0])

    def integrity_problems(self) -> list[str]:
        """SQLite's own integrity check; an empty list when the file is sound."""
        rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return [] if [r[0] for r in rows] == ["ok"] else [str(r[0]) for r in rows]

    def versions(self, identifier: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM records WHERE identifier = ?", (identifier,)
        ).fetchone()
        return int(row[0])

    # -- what a full harvest listed (for reconciling deletions) -------------------------------

    def mark_seen(self, run: str, identifiers: Sequence[str]) -> None:
        """Remember that the server listed these identifiers in `run` (kept across resumes)."""
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (run, identifier) VALUES (?, ?)",
            [(run, i) for i in identifiers],
        )

    def forget_seen(self, run: str) -> None:
        self._db.execute("DELETE FROM seen WHERE run = ?", (run,))

    def unseen_live(self, run: str, set_spec: str = "") -> list[RawRecord]:
        """Latest live records (of `set_spec`, if given) that `run` did not see listed."""
        rows = self._db.execute(
            "SELECT r.identifier, r.datestamp, r.deleted, r.sets, r.xml FROM latest l"
            " JOIN records r ON r.seq = l.seq WHERE r.deleted = 0 AND NOT EXISTS"
            " (SELECT 1 FROM seen s WHERE s.run = ? AND s.identifier = l.identifier)"
            " ORDER BY l.seq",
            (run,),
        ).fetchall()
        records = [self._row_to_raw(row, self.prefix) for row in rows]
        return [r for r in records if not set_spec or set_spec in r.sets]

    # -- quarantine ---------------------------------------------------------------------------

    def quarantine(self, identifier: str, stage: str, reason: str, xml: bytes | None) -> None:
        """Put a record aside with the reason; replaces an earlier entry of the same stage."""
        self._db.execute(
            "INSERT INTO quarantine (identifier, stage, reason, at, xml) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(identifier, stage) DO UPDATE SET reason = excluded.reason,"
            " at = excluded.at, xml = excluded.xml",
            (identifier, stage, reason, _now(), self._compress(xml) if xml else None),
        )

    def release(self, identifiers: Sequence[str], stage: str) -> None:
        """Remove quarantine entries of records that now passed this stage."""
        if not identifiers:
            return
        held = self._db.execute(
            "SELECT 1 FROM quarantine WHERE stage = ? LIMIT 1", (stage,)
        ).fetchone()
        if held is None:  # the usual case: nothing of this stage is quarantined
            return
        self._db.executemany(
            "DELETE FROM quarantine WHERE identifier = ? AND stage = ?",
            [(i, stage) for i in identifiers],
        )

    def quarantined(self) -> list[QuarantineEntry]:
        rows = self._db.execute(
            "SELECT identifier, stage, reason, at FROM quarantine ORDER BY at, identifier"
        ).fetchall()
        return [QuarantineEntry(*row) for row in rows]


def archives_of(archive_dir: Path, source: str | None = None) -> list[tuple[str, str, Path]]:
    """(source, prefix, path) of every archive on disk, optionally of one source."""
    if not archive_dir.exists():
        return []
    found = []
    for path in sorted(archive_dir.glob("*/*.sqlite")):
        if source is None or path.parent.name == source:
            found.append((path.parent.name, path.stem, path))
    return found


def archives_for(archive_dir: Path, source: str) -> list[tuple[str, str, Path]]:
    """A source's archives, or a clear error when it was never harvested."""
    found = archives_of(archive_dir, source)
    if not found:
        raise SourceError(f"no archive for source {source!r}: harvest it first")
    return found
