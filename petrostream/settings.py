"""One typed settings object for every resource name and knob.

Values come from environment variables prefixed ``PETROSTREAM_`` (or a ``.env`` file).
Nothing here does I/O or builds clients: reading settings is free.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PETROSTREAM_", env_file=".env", extra="ignore")

    # AWS account-level
    region: str = "us-east-1"
    profile: str | None = None
    project: str = "petrostream"

    # Streaming
    stream_name: str = "petrostream-ingest"
    stream_shards: int = Field(2, ge=1)
    lease_table: str = "petrostream-leases"

    # S3 buckets
    raw_bucket: str = "petrostream-raw"
    curated_bucket: str = "petrostream-curated"
    models_bucket: str = "petrostream-models"
    athena_results_bucket: str = "petrostream-athena-results"

    # Catalog / SQL
    glue_database: str = "petrostream"
    raw_table: str = "raw_readings"
    scored_table: str = "scored_readings"
    events_table: str = "anomaly_events"
    athena_workgroup: str = "petrostream"
    athena_bytes_scanned_cutoff: int = 10 * 1024**3
    query_backend: str = Field("auto", pattern="^(auto|athena|duckdb)$")
    lake_dir: Path | None = None  # local folder lake instead of S3 (DuckDB backend)

    # Model registry
    model_name: str = "petrostream-anomaly"
    mlflow_tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    mlflow_artifact_root: str = "mlruns/artifacts"

    # Local emulator
    local_host: str = "127.0.0.1"
    local_port: int = 4566
    state_dir: Path = Path(".petrostream")

    # Data
    data_dir: Path | None = None
    reports_dir: Path = Path("reports")

    # Service
    api_host: str = "0.0.0.0"
    api_port: int = 8080
    inference_url: str = ""  # the service's HTTP API as the dashboard reaches it (default: local api_port)
    dashboard_url: str = "http://127.0.0.1:8501"
    powerbi_report_url: str = ""

    @property
    def local_endpoint(self) -> str:
        return f"http://{self.local_host}:{self.local_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
