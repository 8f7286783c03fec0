"""Fovea's settings: read once, from the environment (prefix FOVEA_) or the CLI, and nowhere else.

Why: the layers below take plain values (a database URL, a storage URL, limits), so tests and tools can
build them without touching the environment. `docs/configuration.md` documents every field.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.imaging.syntaxes import find_transfer_syntax, find_transfer_syntax_by_name

GIB = 1024**3


def _syntax_uid(name: str) -> str:
    """A transfer syntax UID from a UID or a keyword Fovea knows; ValueError otherwise."""
    syntax = find_transfer_syntax_by_name(name)
    if syntax is None:
        raise ValueError(f"unknown transfer syntax {name!r} (a UID or a keyword such as HTJ2KLossless)")
    return syntax.uid


class DuplicatePolicy(StrEnum):
    """What STOW-RS does with a SOP Instance UID that is already stored."""

    REPLACE = "replace"  # the new instance replaces the stored one (atomically)
    REJECT = "reject"  # the new instance fails with Failure Reason 0x0111 (duplicate)
    KEEP = "keep"  # the stored instance is kept; the new one is discarded with a warning


class PatientMismatchPolicy(StrEnum):
    """What ingest does with an instance whose patient identity contradicts the index's (ID, name)."""

    REJECT = "reject"  # the instance fails with Failure Reason 0xC410; the index is unchanged
    ACCEPT_NEW = "accept-new"  # stored, filed under the patient the index has; warning 0xB110
    UPDATE = "update"  # stored; the study is filed under the instance's patient; warning 0xB111


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOVEA_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for the default SQLite index and blobs")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the index; default sqlite:///<data_dir>/fovea.db"
    )
    storage_url: str | None = Field(
        None, description="Blob store: a folder path, file:///path or s3://bucket/prefix"
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO...)")
    s3_region: str = Field("us-east-1", description="S3 region")
    s3_access_key_id: str | None = Field(None, description="S3 access key (else boto3 defaults)")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key")
    public_base_url: str | None = Field(
        None,
        description="Absolute URL of the DICOMweb root as clients see it, e.g. "
        "https://pacs.example.org/dicom-web; unset: derived per request (X-Forwarded-*)",
    )
    host: str = Field("127.0.0.1", description="Address `fovea serve` listens on")
    port: int = Field(8080, description="Port `fovea serve` listens on")
    max_request_bytes: int = Field(16 * GIB, description="Largest STOW-RS request body (413 above)")
    max_instance_bytes: int = Field(4 * GIB, description="Largest single instance in a STOW-RS part")
    duplicate_policy: DuplicatePolicy = Field(
        DuplicatePolicy.REPLACE,
        description="Re-storing a stored SOP Instance UID: replace|reject|keep",
    )
    patient_mismatch: PatientMismatchPolicy = Field(
        PatientMismatchPolicy.REJECT,
        description="An instance whose Patient ID/issuer or Patient's Name contradicts its study's "
        "patient: reject|accept-new|update",
    )
    auto_migrate: bool | None = Field(
        None,
        description="Apply database migrations at start-up; default: yes for SQLite, no otherwise "
        "(run `fovea migrate`)",
    )
    ingest_workers: int = Field(
        0, ge=0, description="Worker processes parsing and storing instances; 0: one per CPU core"
    )
    accepted_transfer_syntaxes: str = Field(
        "",
        description="Comma-separated UIDs or keywords STOW-RS and import accept; others fail with "
        "0xC122. Empty: every syntax Fovea knows",
    )
    storage_transfer_syntax: str | None = Field(
        None,
        description="Lossless UID or keyword (e.g. HTJ2KLossless, DeflatedImageFrameCompression) that "
        "lossless input is converted into at ingest, pixels checked bit for bit; unset: as received",
    )
    codec_workers: int = Field(
        0,
        ge=0,
        description="Threads, and processes where a codec holds the GIL, that decode and "
        "encode frames; 0: one per CPU core",
    )
    transcode_cache_mb: int = Field(
        256, ge=0, description="Memory for transcoded frames kept per server process (MB); 0: none kept"
    )
    gzip_frames: bool = Field(
        True,
        description="gzip uncompressed frames and bulk data for clients that accept it (JSON is "
        "always compressed when accepted)",
    )
    rendered_cache_mb: int = Field(
        64,
        ge=0,
        description="Memory for rendered images and thumbnails kept per server process (MB); 0: none",
    )
    qido_max_results: int = Field(
        10_000,
        ge=1,
        description="Most results one QIDO-RS response holds; a search with more, or a larger limit, "
        "gets this many and a Warning header",
    )
    database_connect_timeout_s: int = Field(
        5, ge=1, description="PostgreSQL: seconds to establish a connection (libpq: at least 2)"
    )
    database_statement_timeout_s: float = Field(
        10.0,
        ge=0,
        description="PostgreSQL: seconds one statement may run (server side) or one round trip may "
        "wait (client side, plus 1 s); 0: no limit. Migrations have none",
    )
    database_pool_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to wait for a free index connection of the pool"
    )
    sqlite_busy_timeout_s: float = Field(
        10.0, ge=0, description="SQLite: seconds to wait for another writer's lock"
    )
    s3_connect_timeout_s: float = Field(3.0, gt=0, description="S3: seconds to establish a connection")
    s3_read_timeout_s: float = Field(
        5.0, gt=0, description="S3: seconds to wait for the next bytes of an answer"
    )
    s3_max_attempts: int = Field(
        2, ge=1, description="S3: attempts per call, the first included (standard retry mode)"
    )
    readiness_timeout_s: float = Field(
        2.0, gt=0, description="Seconds /readyz (and /health) waits for the index and the blob store"
    )
    retry_after_s: int = Field(
        5, ge=0, description="Retry-After (seconds) of a 503 answered while the index or blob store is down"
    )
    cors_origins: str = Field(
        "",
        description="Web origins browsers may call Fovea from (comma-separated, e.g. "
        "https://viewer.example.org; * for any); empty: no CORS headers",
    )

    @field_validator("accepted_transfer_syntaxes")
    @classmethod
    def _known_accepted_syntaxes(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        return ",".join(_syntax_uid(name) for name in names)

    @field_validator("storage_transfer_syntax")
    @classmethod
    def _lossless_storage_syntax(cls, value: str | None) -> str | None:
        if not value:
            return None
        uid = _syntax_uid(value.strip())
        syntax = find_transfer_syntax(uid)
        writable = syntax is not None and (syntax.encapsulated or uid == "1.2.840.10008.1.2.1")
        if syntax is None or syntax.lossless is not True or syntax.is_video or not writable:
            raise ValueError(
                f"{value}: the storage syntax must be Explicit VR LE or a lossless encapsulated one"
            )
        return uid

    @property
    def accepted_syntax_uids(self) -> tuple[str, ...]:
        return tuple(uid for uid in self.accepted_transfer_syntaxes.split(",") if uid)

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fovea.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str((self.data_dir / "blobs").resolve())

    @property
    def migrate_at_startup(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.resolved_database_url.startswith("sqlite")
