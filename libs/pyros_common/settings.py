"""Settings from the environment (prefix ``PYROS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every PyROS setting; each is read from ``PYROS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="production refuses missing secrets."
    )
    telescope_id: str = Field("gft", description="Telescope (or node) id carried by every event.")
    site: str = Field(
        "gft-spm", description="Site: a built-in id (gft-spm, ohp) or the path of a site file (TOML)."
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]."
    )
    topic_prefix: str = Field("", description="Prefix of every Kafka topic and consumer group.")
    topic_partitions: int = Field(3, ge=1, description="Partitions of topics created at start.")
    topic_replication: int = Field(1, ge=1, description="Replication factor of topics created at start.")
    bus_retries: int = Field(3, ge=1, description="Handler attempts before the dead-letter topic.")
    database_url: str = Field(
        "postgresql+psycopg://pyros:pyros@127.0.0.1:5432/pyros", description="SQLAlchemy database URL."
    )
    data_dir: Path = Field(Path("var"), description="Images, calibration frames, SQLite for pyros up.")
    http_host: str = Field("0.0.0.0", description="Address of each service's health/metrics server.")
    http_port: int = Field(8080, description="Port of each service's health/metrics server.")
    log_level: str = Field("INFO", description="Log level.")
    log_format: Literal["json", "console"] = Field(
        "json", description="json for machines, console for people."
    )
    heartbeat_s: float = Field(5.0, gt=0, description="Heartbeat period [s].")
    jwt_secret: SecretStr | None = Field(
        None, description="Secret signing API tokens; required in production."
    )
    jwt_ttl_s: int = Field(8 * 3600, description="Token lifetime [s].")
    startup_retry_max_s: float = Field(
        30.0, gt=0, description="Longest wait between prerequisite checks [s]."
    )
    # alerts intakes
    vtp_host: str | None = Field(None, description="VOEvent broker (Comet) host for the VTP intake.")
    vtp_port: int = Field(8099, description="VOEvent broker port.")
    gcn_client_id: str | None = Field(None, description="GCN Kafka client id.")
    gcn_client_secret: SecretStr | None = Field(None, description="GCN Kafka client secret.")
    gcn_domain: str | None = Field(None, description="GCN Kafka domain; unset means our own broker.")
    gcn_bootstrap: str | None = Field(None, description="Plain Kafka bootstrap used as the GCN feed (tests).")
    # devices
    indi_host: str | None = Field(None, description="indiserver host; unset means our simulators.")
    indi_port: int = Field(7624, description="indiserver port.")

    @model_validator(mode="after")
    def _secrets_in_production(self) -> Settings:
        if self.env == "production" and (self.jwt_secret is None or not self.jwt_secret.get_secret_value()):
            raise ValueError("PYROS_JWT_SECRET must be set in production (no default secret is shipped)")
        if (
            self.env == "production"
            and self.jwt_secret is not None
            and len(self.jwt_secret.get_secret_value()) < 32
        ):
            raise ValueError("PYROS_JWT_SECRET must be at least 32 characters in production")
        return self
