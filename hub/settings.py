"""All configuration, from HUB_* environment variables (or a .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# mappings/ and profiles/ are configuration kept beside the package, at the top of the checkout.
REPOSITORY = Path(__file__).resolve().parents[1]


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path(".hub-data"), description="Where the embedded store keeps its SQLite files."
    )
    fhir_url: str = Field(
        "", description="Base URL of a FHIR R4 server to use as the store; empty: embedded."
    )
    host: str = Field("127.0.0.1", description="Address `hub serve` listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port `hub serve` listens on.")
    public_base_url: str = Field(
        "",
        description="The FHIR base URL clients see, including /fhir (behind a proxy, e.g. "
        "https://hub.example.org/fhir), for links and Location headers; empty: taken from "
        "each request.",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    fhir_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout for each request to the remote FHIR server."
    )
    fhir_retries: int = Field(
        4, ge=0, description="Retries, with exponential backoff, of a failed remote request."
    )
    fhir_max_connections: int = Field(
        20, ge=1, description="Connection pool size towards the remote FHIR server."
    )
    sqlite_synchronous: str = Field(
        "FULL",
        pattern="^(FULL|NORMAL)$",
        description="SQLite synchronous mode: FULL survives power loss, NORMAL only crashes.",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    mappings_dir: Path = Field(
        REPOSITORY / "mappings", description="The mappings folder (YAML mappings, value maps)."
    )
    profiles_dir: Path = Field(
        REPOSITORY / "profiles", description="The profiles folder (StructureDefinitions, ...)."
    )
    database_url: str = Field(
        "",
        description="The hub's own state (inbox, match queue, and later audit and outbox): "
        "a PostgreSQL URL (postgresql://user:password@host:5432/hub), which several hub "
        "processes can share; empty: SQLite, hub.db in the data directory.",
    )
    mllp_enabled: bool = Field(
        True, description="Whether `hub serve` also runs the MLLP listener (HL7 v2 over TCP)."
    )
    mllp_port: int = Field(
        2575, ge=0, le=65535, description="Port the MLLP listener uses (0: any free port)."
    )
    mllp_mapping: str = Field(
        "slam-epr/adt", description="The mapping that messages received over MLLP go through."
    )
    workers: int = Field(
        1, ge=0, description="Pipeline workers run by `hub serve` and `hub mllp` (0: none)."
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much `hub work` lowers its CPU priority (Unix nice): on a machine it "
        "shares with listeners, their answers to senders come first; the inbox holds the work "
        "meanwhile, and a worker alone on its machine runs at full speed anyway. 0: unchanged.",
    )
    worker_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a worker holds the items it claimed; a worker that dies is "
        "replaced by another after this long, which takes its items again.",
    )
    retry_base_seconds: float = Field(
        1.0, gt=0, description="First wait before retrying a message after a transient failure."
    )
    retry_max_seconds: float = Field(
        300.0,
        gt=0,
        description="Longest wait between retries (a transient failure never "
        "drops a message: it is retried until it succeeds or is failed by hand).",
    )

    @property
    def state_url(self) -> str:
        """Where the hub's own state lives: HUB_DATABASE_URL, else SQLite in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"
