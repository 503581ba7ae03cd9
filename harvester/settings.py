"""The one settings object: environment variables prefixed `ERNTE_` (plus the conventional
`REDIS_URL`, `ES_URL`, `KIBANA_URL`), optionally from a `.env` file. Read once, via `get_settings()`.

With neither `REDIS_URL` nor `ES_URL` set, ernte runs in embedded mode: harvest state in a local
SQLite file, the index on disk under `data_dir`. With them set, state lives in Redis, work runs as
Celery tasks and the index is Elasticsearch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ERNTE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(default=Path("data"), description="raw archive, state, embedded index")
    sources_file: Path = Field(default=CONFIG_DIR / "sources.yaml")
    log_format: str = Field(default="text", description="text or json")
    log_level: str = "INFO"

    # HTTP politeness and robustness
    user_agent: str = "ernte/0.1 (OAI-PMH harvester; +https://github.com/ernte)"
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_retries: int = 5
    backoff_base: float = 2.0
    backoff_max: float = 120.0
    retry_after_cap: float = 300.0
    page_delay: float = 0.5
    overlap_seconds: int = 86400
    max_empty_pages: int = 5
    # `harvest --reconcile` refuses to delete more than this share of the live records at once.
    reconcile_max_share: float = 0.1

    # Embedded index writes (issue 14): during a harvest the index is committed at most every
    # this many seconds (and when the harvest ends), not after every page.
    index_commit_interval: float = 5.0
    # Worker processes that normalize and analyze records beside `ernte harvest` and
    # `ernte index rebuild` (0: all in the command's own process); None: one per core, at
    # most 2, and none on a single core.
    index_workers: int | None = None

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
    es_index_alias: str = "ernte-records"
    kibana_url: str | None = Field(
        default=None, validation_alias=AliasChoices("KIBANA_URL", "ERNTE_KIBANA_URL")
    )

    # Cluster mode (Celery workers, harvester/celery_app.py); defaults suit ORLIS-sized runs.
    # Lifetime of a harvest lease, renewed every third of it while a task works; after a worker
    # dies, recovery starts within lease + sweep_interval seconds.
    lease_seconds: float = 60.0
    # How many pages fetch_page may run ahead of indexing before it backs off, and its countdown.
    index_backlog: int = 8
    backpressure_delay: float = 2.0
    # Seconds before Redis re-delivers an unacknowledged message: must exceed the longest task
    # plus any countdown, else running tasks are delivered twice; how often kombu looks for them.
    visibility_timeout: int = 600
    unacked_restore_interval: int = 10
    # A page task that hangs is interrupted, then killed.
    task_soft_time_limit: int = 120
    task_time_limit: int = 180
    # Retries of transient failures (backoff capped) before the dead-letter list.
    task_max_retries: int = 5
    retry_backoff_max: int = 300
    # Deliveries of one task id without finishing (worker lost) before it is dead-lettered.
    max_deliveries: int = 5
    # How often each worker looks for runs whose lease expired.
    sweep_interval: float = 30.0
    # Workers serve Prometheus metrics on this port (0: off; see `ernte metrics`).
    metrics_port: int = 0
    # RedBeat's lock lifetime and tick: a standby beat takes over within about the lock timeout.
    beat_lock_timeout: int = 60
    beat_max_loop_interval: int = 10

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
