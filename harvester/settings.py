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

    # Cluster mode (Celery workers); explained one by one in harvester.celery_app.ClusterSettings
    lease_seconds: float = 60.0
    index_backlog: int = 8
    backpressure_delay: float = 2.0
    visibility_timeout: int = 600
    unacked_restore_interval: int = 10
    task_soft_time_limit: int = 120
    task_time_limit: int = 180
    task_max_retries: int = 5
    retry_backoff_max: int = 300
    max_deliveries: int = 5
    sweep_interval: float = 30.0
    metrics_port: int = 0
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
