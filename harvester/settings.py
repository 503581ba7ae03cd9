"""The one settings object: environment variables prefixed `ERNTE_` (plus the conventional
`REDIS_URL`, `ES_URL`, `KIBANA_URL`), optionally from a `.env` file. Read once, via `get_settings()`.

With neither `REDIS_URL` nor `ES_URL` set, ernte runs in embedded mode: harvest state in a local
SQLite file, the index on disk under `data_dir`. With them set, state lives in Redis, work runs as
Celery tasks and the index is Elasticsearch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from harvester.config_files import SOURCES, config_file
from harvester.errors import ErnteError

DAY = 86_400
"""Upper bound of the time settings, in seconds: beyond it a value is a typo (and `inf` or
`99999999999` overflowed the task time limits and date arithmetic with a traceback)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ERNTE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,  # ERNTE_READ_TIMEOUT=inf overflowed the task time limits
    )

    data_dir: Path = Field(default=Path("data"), description="raw archive, state, embedded index")
    config_dir: Path = Field(
        default=Path("config"),
        description="files here override the packaged defaults of the same name (config_files)",
    )
    sources_file: Path = Field(
        default=Path(SOURCES),
        description="default: <config_dir>/sources.yaml if present, else the packaged one",
    )
    log_format: Literal["text", "json"] = Field(default="text", description="text or json")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # HTTP politeness and robustness (refused at start when negative or not a number)
    user_agent: str = "ernte/0.1 (OAI-PMH harvester; +https://github.com/ernte)"
    connect_timeout: float = Field(default=10.0, gt=0, le=DAY)
    read_timeout: float = Field(default=120.0, gt=0, le=DAY)
    max_retries: int = Field(default=5, ge=0, le=100)
    backoff_base: float = Field(default=2.0, ge=0, le=DAY)
    backoff_max: float = Field(default=120.0, ge=0, le=DAY)
    retry_after_cap: float = Field(default=300.0, ge=0, le=DAY)
    page_delay: float = Field(default=0.5, ge=0, le=DAY)
    overlap_seconds: int = Field(default=86400, ge=0, le=100 * 365 * DAY)
    max_empty_pages: int = Field(default=5, ge=1)
    # The largest response body (after decompression) one request may return; a bigger one is
    # refused with a clear error instead of filling memory.
    max_response_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    # `harvest --reconcile` refuses to delete more than this share of the live records at once.
    reconcile_max_share: float = Field(default=0.1, ge=0, le=1)

    # Embedded index writes (issue 14): during a harvest the index is committed at most every
    # this many seconds (and when the harvest ends), not after every page.
    index_commit_interval: float = Field(default=5.0, ge=0)
    # Worker processes that normalize and analyze records beside `ernte harvest` and
    # `ernte index rebuild` (0: all in the command's own process); None: one per core, at
    # most 2, and none on a single core.
    index_workers: int | None = Field(default=None, ge=0)
    # `ernte harvest` and `ernte index` run at this niceness at least, lower in priority than the
    # searches of the same host (`ernte serve`, `ernte search`): batch work yields the CPU to
    # people waiting (issue 14), and loses nothing on an otherwise idle host. 0: not lowered.
    batch_niceness: int = Field(default=10, ge=0, le=19)

    # Cluster mode
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "ERNTE_REDIS_URL")
    )
    es_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ES_URL", "ERNTE_ES_URL")
    )
    es_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ES_API_KEY", "ERNTE_ES_API_KEY")
    )
    es_username: str | None = Field(
        default=None, validation_alias=AliasChoices("ES_USERNAME", "ERNTE_ES_USERNAME")
    )
    es_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ES_PASSWORD", "ERNTE_ES_PASSWORD")
    )
    es_ca_certs: Path | None = Field(
        default=None, validation_alias=AliasChoices("ES_CA_CERTS", "ERNTE_ES_CA_CERTS")
    )
    es_verify_certs: bool = True
    es_index_alias: str = Field(
        default="ernte-records",
        validation_alias=AliasChoices("ES_INDEX_ALIAS", "ERNTE_ES_INDEX_ALIAS"),
    )
    kibana_url: str | None = Field(
        default=None, validation_alias=AliasChoices("KIBANA_URL", "ERNTE_KIBANA_URL")
    )

    # Cluster mode (Celery workers, harvester/cluster/app.py); defaults suit ORLIS-sized runs.
    # Lifetime of a harvest lease, renewed every third of it while a task works; after a worker
    # dies, recovery starts within lease + sweep_interval seconds.
    lease_seconds: float = Field(default=60.0, ge=1)
    # How many pages fetch_page may run ahead of indexing before it backs off, and its countdown.
    index_backlog: int = Field(default=8, ge=1)
    backpressure_delay: float = Field(default=2.0, gt=0, le=DAY)
    # Seconds before Redis re-delivers an unacknowledged message: must exceed the longest task
    # plus any countdown, else running tasks are delivered twice; how often kombu looks for them.
    # Unset: derived from the task time limits (harvester/cluster/time_limits.py).
    visibility_timeout: int | None = Field(default=None, gt=0)
    unacked_restore_interval: int = Field(default=10, ge=1)
    # A page task that hangs is interrupted, then killed. Unset: derived from the HTTP timeouts,
    # retries and Retry-After cap above, so that one slow page is never cut short; set, they
    # are checked against those at worker start (harvester/cluster/time_limits.py).
    task_soft_time_limit: int | None = Field(default=None, gt=0)
    task_time_limit: int | None = Field(default=None, gt=0)
    # Time a page task needs besides HTTP (parse, archive, hand off), added to the derived limits.
    task_margin: float = Field(default=30.0, ge=0, le=DAY)
    # Retries of transient failures (backoff capped) before the dead-letter list.
    task_max_retries: int = Field(default=5, ge=0)
    retry_backoff_max: int = Field(default=300, ge=0, le=DAY)
    # Deliveries of one task id without finishing (worker lost) before it is dead-lettered.
    max_deliveries: int = Field(default=5, ge=1)
    # How often each worker looks for runs whose lease expired.
    sweep_interval: float = Field(default=30.0, ge=1)  # 0 swept in a busy loop
    # Workers serve Prometheus metrics on this port (0: off; see `ernte metrics`), on this
    # address (loopback unless configured: in a container, 0.0.0.0 behind a published port).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # RedBeat's lock lifetime and tick: a standby beat takes over within about the lock timeout.
    beat_lock_timeout: int = Field(default=60, ge=1)
    beat_max_loop_interval: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _resolve_sources_file(self) -> Settings:
        """Without ERNTE_SOURCES_FILE, the sources file follows the config-directory rule."""
        if "sources_file" not in self.model_fields_set:
            self.sources_file = config_file(SOURCES, self.config_dir)
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """redis:// or rediss:// with a host and a port that exists: a bare `host:6379`, a
        Sentinel or unix-socket URL failed deep inside Redis' client with a traceback."""
        return _checked_url(value, ("redis", "rediss"), "redis://HOST:PORT/DB")

    @field_validator("es_url")
    @classmethod
    def _es_url(cls, value: str | None) -> str | None:
        return _checked_url(value, ("http", "https"), "https://HOST:PORT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def embedded(self) -> bool:
        """True when no Elasticsearch is configured: the index lives on disk here."""
        return self.es_url is None

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.sqlite"


class SettingsError(ErnteError, ValueError):
    """A setting (environment variable or `.env` line) whose value cannot be used."""


def _checked_url(value: str | None, schemes: tuple[str, ...], form: str) -> str | None:
    """`value` when it is a URL of one of `schemes` with a host and a valid port (ValueError,
    which names the form expected, otherwise); None and "" stay unset."""
    if not value:
        return None
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in schemes or not parts.hostname or port == -1 or port == 0:
        raise ValueError(f"expected {form} ({' or '.join(s + '://' for s in schemes)} only)")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; SettingsError names each unusable variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_describe_invalid(exc)) from exc


def _describe_invalid(exc: ValidationError) -> str:
    """One line naming every unusable variable, its value and what was wrong with it."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        variable = name if name in _UNPREFIXED else f"ERNTE_{name}"
        problems.append(f"{variable}={error.get('input')!r}: {error['msg']}")
    return "invalid setting: " + "; ".join(problems)


_UNPREFIXED = frozenset(
    {
        "REDIS_URL",
        "ES_URL",
        "ES_API_KEY",
        "ES_USERNAME",
        "ES_PASSWORD",
        "ES_CA_CERTS",
        "ES_INDEX_ALIAS",
        "KIBANA_URL",
    }
)
