"""Harvest state in Redis (cluster mode): the `StateStore`, the lease on a harvest, the run ledger.

Three things live here, all keyed under one namespace (default `ernte`):

- `RedisStateStore`: the same `HarvestState` the SQLite store keeps, one JSON value per harvest
  (`ernte:state:<source|set|prefix>`), so `ernte status` reads the same data in both modes.
  Every save is also mirrored to `<data_dir>/checkpoints/` (`CheckpointMirror`): a Redis that
  restarted without persistence loses the state, and the mirror is how `ernte status` reports
  such a run and the next harvest resumes it instead of starting over.
- `HarvestLease`: at most one active run per (source, set, prefix) in the whole cluster. A lease
  is a key with an expiry (`SET NX PX`), renewed by a heartbeat while a task works on the run;
  every acquisition draws a new *fencing number* (INCR). A worker that was paused or killed and
  comes back finds its fence outdated, and its writes are refused (Kleppmann's fencing tokens):
  the lease alone cannot stop a zombie, because a lease can lapse while its holder is paused.
- `RunLedger`: what a running harvest has handed to the index queue: the identifiers of each
  page, the pages already indexed (a set) and per-page stats (a hash written with HSET per page
  number, so a page indexed twice is counted once). The sweeper re-enqueues from it after a
  worker died, and the run is finalized when every handed-off page is done.

Checkpoint writes made by tasks go through `FencedStateStore`, a compare-and-set in Lua on
(fence, next_page): a duplicate delivery of the same page task, or a task from a superseded
fence, cannot overwrite the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

import redis

from harvester.store.state import HarvestKey, HarvestState, RunCounts

log = logging.getLogger(__name__)

NAMESPACE = "ernte"


class StaleRun(RuntimeError):
    """A write refused because the run's fence moved on or the page was already checkpointed."""


def redis_client(url: str) -> redis.Redis:
    """A client returning str, with keepalive and a health check (Redis blips, idle LBs)."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_keepalive=True, health_check_interval=25
    )


@dataclass(frozen=True, slots=True)
class _Keys:
    namespace: str = NAMESPACE

    def state(self, key: str) -> str:
        return f"{self.namespace}:state:{key}"

    @property
    def states(self) -> str:
        return f"{self.namespace}:states"

    def lease(self, run_id: str) -> str:
        return f"{self.namespace}:lease:{run_id}"

    def fence(self, run_id: str) -> str:
        return f"{self.namespace}:fence:{run_id}"

    def run(self, run_id: str) -> str:
        return f"{self.namespace}:run:{run_id}"

    def pages(self, run_id: str) -> str:
        return f"{self.namespace}:run:{run_id}:pages"

    def done(self, run_id: str) -> str:
        return f"{self.namespace}:run:{run_id}:done"

    def stats(self, run_id: str) -> str:
        return f"{self.namespace}:run:{run_id}:stats"

    def sent(self, run_id: str) -> str:
        return f"{self.namespace}:run:{run_id}:sent"

    @property
    def runs(self) -> str:
        return f"{self.namespace}:runs"


# KEYS: run hash, state key, states set. ARGV: fence, expected next_page ('' = any), json, id.
_FENCED_SAVE = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  local current = redis.call('GET', KEYS[2])
  local page = '0'
  if current then page = tostring(cjson.decode(current)['next_page']) end
  if page ~= ARGV[2] then return -1 end
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""


class CheckpointMirror:
    """The last saved state of each harvest, also as a JSON file under the data directory
    (`<data_dir>/checkpoints/`, read from the settings at each use). Best effort: a failed
    mirror write is logged, never fatal."""

    @staticmethod
    def directory() -> Path:
        from harvester.settings import get_settings

        return get_settings().data_dir / "checkpoints"

    @classmethod
    def _path(cls, key: str) -> Path:
        readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:60]
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
        return cls.directory() / f"{readable}.{digest}.json"

    @classmethod
    def save(cls, state: HarvestState) -> None:
        path = cls._path(str(state.key))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            staged.write_text(json.dumps(state.to_dict()), encoding="utf-8")
            staged.replace(path)
        except OSError as exc:
            log.warning("could not mirror the checkpoint to %s: %s", path, exc)

    @classmethod
    def load(cls, key: str) -> HarvestState | None:
        path = cls._path(key)
        try:
            return HarvestState.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def all(cls) -> list[tuple[HarvestState, Path]]:
        found = []
        for path in sorted(cls.directory().glob("*.json")):
            try:
                found.append((HarvestState.from_dict(json.loads(path.read_text("utf-8"))), path))
            except (OSError, ValueError, TypeError):
                continue
        return found


ONCE_KEPT = 30 * 86400
"""Seconds a set of `RedisStateStore.update(once=...)` is kept (a replay delivered twice within
them changes the state once)."""


class RedisStateStore:
    """Harvest states in Redis; the `StateStore` of cluster mode. With `mirror`, each save is
    also kept in the data directory and a state Redis lost is loaded from there."""

    def __init__(
        self, client: redis.Redis, namespace: str = NAMESPACE, *, mirror: bool = False
    ) -> None:
        self.client = client
        self.keys = _Keys(namespace)
        self.mirror = mirror
        self._fenced_save = client.register_script(_FENCED_SAVE)

    @classmethod
    def from_url(cls, url: str, *, mirror: bool = False) -> RedisStateStore:
        return cls(redis_client(url), mirror=mirror)

    def load(self, key: HarvestKey) -> HarvestState:
        raw = self.client.get(self.keys.state(str(key)))
        if raw:
            return HarvestState.from_dict(json.loads(cast(str, raw)))
        kept = CheckpointMirror.load(str(key)) if self.mirror else None
        if kept is not None:
            log.warning(
                "harvest state missing in Redis (restarted without persistence?); continuing "
                "from the checkpoint kept in the data directory",
                extra={"harvest": str(key), "page": kept.next_page},
            )
            return kept
        return HarvestState.new(key)

    def save(self, state: HarvestState) -> None:
        pipe = self.client.pipeline()
        pipe.set(self.keys.state(str(state.key)), json.dumps(state.to_dict()))
        pipe.sadd(self.keys.states, str(state.key))
        pipe.execute()
        if self.mirror:
            CheckpointMirror.save(state)

    def update(
        self,
        key: HarvestKey,
        change: Callable[[HarvestState], bool],
        *,
        once: tuple[str, str] | None = None,
    ) -> None:
        """Load the state of `key`, let `change` modify it, and save it unless `change` says
        False; again from the start if another writer saved it meanwhile (WATCH: two pages
        replayed at once each add their counts). `once`: (a set's key, a member): nothing
        happens if the member is in the set already, else it is added in the same
        transaction (kept ONCE_KEPT seconds), whether the state changed or not."""
        name = self.keys.state(str(key))
        while True:
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(name, *([once[0]] if once else []))
                    if once and pipe.sismember(*once):
                        return
                    raw = pipe.get(name)
                    state = HarvestState.from_dict(json.loads(cast(str, raw))) if raw else None
                    changed = state is not None and change(state)
                    pipe.multi()
                    if changed and state is not None:
                        pipe.set(name, json.dumps(state.to_dict()))
                    if once:
                        pipe.sadd(*once)
                        pipe.expire(once[0], ONCE_KEPT)
                    pipe.execute()
                except redis.WatchError:
                    continue
            if changed and state is not None and self.mirror:
                CheckpointMirror.save(state)
            return

    def vanished(self) -> list[tuple[HarvestState, Path]]:
        """Harvests whose state Redis no longer has but the data directory kept."""
        if not self.mirror:
            return []
        known = cast(set[str], self.client.smembers(self.keys.states))
        return [(s, p) for s, p in CheckpointMirror.all() if str(s.key) not in known]

    def all(self) -> list[HarvestState]:
        ids = sorted(cast(set[str], self.client.smembers(self.keys.states)))
        values = (
            cast(list[str | None], self.client.mget([self.keys.state(i) for i in ids]))
            if ids
            else []
        )
        return [HarvestState.from_dict(json.loads(v)) for v in values if v]

    def save_fenced(
        self, state: HarvestState, run_id: str, fence: int, expect_next_page: int | None
    ) -> None:
        """Save only if `fence` is the run's current fence and (if given) the stored checkpoint
        is still at `expect_next_page`; raises StaleRun otherwise."""
        outcome = self._fenced_save(
            keys=[self.keys.run(run_id), self.keys.state(str(state.key)), self.keys.states],
            args=[
                str(fence),
                "" if expect_next_page is None else str(expect_next_page),
                json.dumps(state.to_dict()),
                str(state.key),
            ],
        )
        if outcome == 0:
            raise StaleRun(f"{state.key}: fence {fence} of run {run_id} is no longer current")
        if outcome == -1:
            raise StaleRun(
                f"{state.key}: page {expect_next_page} was already checkpointed by another task"
            )
        if self.mirror:
            CheckpointMirror.save(state)


class FencedStateStore:
    """A `StateStore` view for one task: every save is a compare-and-set on (fence, next_page)."""

    def __init__(
        self, inner: RedisStateStore, run_id: str, fence: int, expect_next_page: int | None
    ) -> None:
        self.inner = inner
        self.run_id = run_id
        self.fence = fence
        self.expect_next_page = expect_next_page

    def load(self, key: HarvestKey) -> HarvestState:
        return self.inner.load(key)

    def save(self, state: HarvestState) -> None:
        self.inner.save_fenced(state, self.run_id, self.fence, self.expect_next_page)

    def all(self) -> list[HarvestState]:
        return self.inner.all()


# -- the lease ----------------------------------------------------------------------------------

# KEYS: lease, fence counter, run hash. ARGV: ttl ms. Returns the new fence or nil.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'fence', fence)
  redis.call('HDEL', KEYS[3], 'finalizing')
end
return fence
"""

# KEYS: lease, run hash. ARGV: fence, ttl ms. A lapsed lease nobody took is re-established with
# the same fence (still the run's current one), so a slow but legitimate holder keeps its run.
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not held and redis.call('HGET', KEYS[2], 'fence') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: fence.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class HarvestLease:
    """The cluster-wide lease on one harvest (run id = `source|set|prefix`), with fencing."""

    def __init__(self, client: redis.Redis, ttl_seconds: float, namespace: str = NAMESPACE) -> None:
        self.client = client
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.keys = _Keys(namespace)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, run_id: str) -> int | None:
        """A new fencing number if nobody holds the lease, else None ("already running")."""
        fence = self._acquire(
            keys=[self.keys.lease(run_id), self.keys.fence(run_id), self.keys.run(run_id)],
            args=[self.ttl_ms],
        )
        return int(fence) if fence is not None else None

    def renew(self, run_id: str, fence: int, waiting: float = 0.0) -> bool:
        """Extend the lease (by `waiting` seconds more, for a run that hands its next step to
        a countdown: no task works on it meanwhile, so no heartbeat renews it); False if
        another fence holds it now."""
        ttl_ms = self.ttl_ms + max(0, int(waiting * 1000))
        return bool(
            self._renew(keys=[self.keys.lease(run_id), self.keys.run(run_id)], args=[fence, ttl_ms])
        )

    def release(self, run_id: str, fence: int) -> bool:
        return bool(self._release(keys=[self.keys.lease(run_id)], args=[fence]))

    def holder(self, run_id: str) -> int | None:
        """The fence holding the lease now, if any."""
        held = self.client.get(self.keys.lease(run_id))
        return int(cast(str, held)) if held else None

    @contextmanager
    def heartbeat(self, run_id: str, fence: int) -> Iterator[threading.Event]:
        """Renew the lease every third of its lifetime while the block runs.

        Yields an event that is set if the lease was lost to another fence; the block's own
        fenced writes will then be refused, so nothing else has to be interrupted."""
        if not self.renew(run_id, fence):
            raise StaleRun(f"run {run_id}: lease is held by another fence than {fence}")
        lost = threading.Event()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.ttl_ms / 3000):
                try:
                    if not self.renew(run_id, fence):
                        lost.set()
                        log.warning("lease lost", extra={"run": run_id, "fence": fence})
                        return
                except redis.RedisError as exc:  # a blip: the next beat tries again
                    log.warning("lease renewal failed: %s", exc, extra={"run": run_id})

        thread = threading.Thread(target=beat, name=f"lease-{run_id}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join()


# -- the run ledger -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What was asked for: the source as the user named it (configured key or base URL), the set,
    the requested prefix ('' = the source's choice), and the window options."""

    source_ref: str
    set_spec: str = ""
    requested_prefix: str = ""
    from_: str | None = None
    until: str | None = None
    full: bool = False
    resume: bool = False
    """A replayed dead letter: resume the stored checkpoint if it is a run of this very
    window, even with `full` or a window set (`HarvestRequest.resume_checkpoint`)."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run in progress. status: queued | fetching | fetched | failed (given up while pages it
    fetched were still queued for indexing: it ends when they are done). state_prefix: the
    prefix actually harvested (may be the source's fallback), known once the run has started."""

    run_id: str
    spec: RunSpec
    fence: int
    status: str
    state_prefix: str
    started: float
    pages: int
    done: int
    instance: str = ""

    @property
    def done_fetching(self) -> bool:
        """No more pages will be fetched (all fetched, or given up): the run ends once the
        pages it queued are indexed (finalize_run)."""
        return self.status in ("fetched", "failed")

    @property
    def backlog(self) -> int:
        """Pages handed to the index queue and not yet indexed."""
        return self.pages - self.done

    def state_key(self, source_key: str) -> HarvestKey:
        return HarvestKey(source_key, self.spec.set_spec, self.state_prefix)


# KEYS: run hash, ARGV: fence, field, value.
_FENCED_HSET = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
"""

# KEYS: run hash, done set, stats hash. ARGV: page number, stats json, run instance.
_PAGE_DONE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'instance') or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: run hash. ARGV: fence. One finalizer per fence.
_CLAIM_FINALIZE = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'finalizing', ARGV[1])
"""

# KEYS: run, pages, done, stats, runs set, lease, sent. ARGV: fence, run id.
_CLOSE = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7])
redis.call('SREM', KEYS[5], ARGV[2])
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
return 1
"""


class RunLedger:
    """Bookkeeping of runs in progress: spec, fence, handed-off pages, indexed pages, stats."""

    def __init__(self, client: redis.Redis, namespace: str = NAMESPACE) -> None:
        self.client = client
        self.keys = _Keys(namespace)
        self._fenced_hset = client.register_script(_FENCED_HSET)
        self._page_done = client.register_script(_PAGE_DONE)
        self._claim_finalize = client.register_script(_CLAIM_FINALIZE)
        self._close = client.register_script(_CLOSE)

    def open(self, run_id: str, fence: int, spec: RunSpec, started: float) -> None:
        """Record a new run (its lease was just acquired with `fence`)."""
        pipe = self.client.pipeline()
        pipe.delete(
            self.keys.run(run_id),
            self.keys.pages(run_id),
            self.keys.done(run_id),
            self.keys.stats(run_id),
            self.keys.sent(run_id),
        )
        pipe.hset(
            self.keys.run(run_id),
            mapping={
                "spec": json.dumps(asdict(spec)),
                "fence": fence,
                "status": "queued",
                "state_prefix": "",
                "started": started,
                # One run instance: index pages of an earlier run under the same run id (a late
                # duplicate delivery) must never count as pages of this one.
                "instance": uuid.uuid4().hex,
            },
        )
        pipe.sadd(self.keys.runs, run_id)
        pipe.execute()

    def get(self, run_id: str) -> RunInfo | None:
        pipe = self.client.pipeline()
        pipe.hgetall(self.keys.run(run_id))
        pipe.hlen(self.keys.pages(run_id))
        pipe.scard(self.keys.done(run_id))
        fields, pages, done = pipe.execute()
        if not fields:
            return None
        return RunInfo(
            run_id=run_id,
            spec=RunSpec(**json.loads(fields["spec"])),
            fence=int(fields["fence"]),
            status=fields.get("status", "queued"),
            state_prefix=fields.get("state_prefix", ""),
            started=float(fields.get("started", 0)),
            pages=int(pages),
            done=int(done),
            instance=fields.get("instance", ""),
        )

    def run_ids(self) -> list[str]:
        return sorted(cast(set[str], self.client.smembers(self.keys.runs)))

    def set_status(self, run_id: str, fence: int, status: str, state_prefix: str = "") -> bool:
        """Fenced status change; a state_prefix, if given, is stored first."""
        run = self.keys.run(run_id)
        if state_prefix and not self._fenced_hset(
            keys=[run], args=[fence, "state_prefix", state_prefix]
        ):
            return False
        return bool(self._fenced_hset(keys=[run], args=[fence, "status", status]))

    def add_page(self, run_id: str, page_no: int, identifiers: list[str]) -> None:
        """Remember a page handed to the index queue (overwrites a re-fetch of the same page)."""
        self.client.hset(self.keys.pages(run_id), str(page_no), json.dumps(identifiers))

    def page_done(self, run_id: str, instance: str, page_no: int, stats: dict[str, Any]) -> bool:
        """Mark a page of this run instance indexed with its stats (idempotent); False if the
        run is gone or is another instance (a late page of an earlier run)."""
        keys = [self.keys.run(run_id), self.keys.done(run_id), self.keys.stats(run_id)]
        return bool(self._page_done(keys=keys, args=[page_no, json.dumps(stats), instance]))

    def pending_pages(self, run_id: str) -> list[tuple[int, list[str]]]:
        """Handed-off pages not yet indexed, in page order."""
        pages = cast(dict[str, str], self.client.hgetall(self.keys.pages(run_id)))
        done = cast(set[str], self.client.smembers(self.keys.done(run_id)))
        return sorted((int(n), json.loads(ids)) for n, ids in pages.items() if n not in done)

    def mark_sent(self, run_id: str, page_no: int) -> None:
        """The index_page message of a handed-off page is in the broker's queue."""
        self.client.hset(self.keys.sent(run_id), str(page_no), 1)

    def unsent_pages(self, run_id: str) -> list[tuple[int, list[str]]]:
        """Pending pages whose index_page message was never queued (the worker died between
        recording the page and sending it, or Redis lost that last write): the ones a recovered
        run must send. A queued message waits for an index worker however long that takes,
        and one a dead worker held comes back by the broker's visibility timeout, so sending
        those again only piled up duplicates while no index worker ran."""
        sent = cast(set[str], set(self.client.hkeys(self.keys.sent(run_id))))
        return [(n, ids) for n, ids in self.pending_pages(run_id) if str(n) not in sent]

    def page_totals(self, run_id: str) -> tuple[RunCounts, int]:
        """The index counts of the run's indexed pages summed (what finalizing adds to the
        run's counts), and how many of its index pages were dead-lettered."""
        values = cast(dict[str, str], self.client.hgetall(self.keys.stats(run_id))).values()
        known = {f.name for f in fields(RunCounts)}
        total = RunCounts()
        dead = 0
        for stats in (json.loads(v) for v in values):
            dead += int(stats.get("dead_lettered", 0))
            total.add(RunCounts(**{k: v for k, v in stats.items() if k in known}))
        return total, dead

    def claim_finalize(self, run_id: str, fence: int) -> bool:
        """True for exactly one finalizer per fence."""
        return bool(self._claim_finalize(keys=[self.keys.run(run_id)], args=[fence]))

    def close(self, run_id: str, fence: int) -> bool:
        """Forget the run and release its lease (fenced): the run is over."""
        keys = [
            self.keys.run(run_id),
            self.keys.pages(run_id),
            self.keys.done(run_id),
            self.keys.stats(run_id),
            self.keys.runs,
            self.keys.lease(run_id),
            self.keys.sent(run_id),
        ]
        return bool(self._close(keys=keys, args=[fence, run_id]))
