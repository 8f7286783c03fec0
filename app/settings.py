"""Fovea's settings: read once, from the environment (prefix FOVEA_) or the CLI, and nowhere else.

Why: the layers below take plain values (a database URL, a storage URL, limits), so tests and tools can
build them without touching the environment. `docs/configuration.md` documents every field.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.audit.syslog import parse_syslog_url
from app.imaging.syntaxes import find_transfer_syntax, find_transfer_syntax_by_name
from app.lifecycle.confidentiality_profile import DateHandling
from app.lifecycle.pseudonyms import MIN_SECRET_CHARACTERS
from app.log_setup import LogFormat
from app.store.policies import (
    DEFAULT_BLOB_DELETION_GRACE_S,
    DEFAULT_ORPHAN_GRACE_S,
    DuplicatePolicy,
    PatientMismatchPolicy,
    RejectedRestorePolicy,
)

if TYPE_CHECKING:
    from app.lifecycle.deidentify import Deidentifier
    from app.lifecycle.rendition import Rendition
    from app.store.infra.db import DatabaseTimeouts
    from app.store.write.ingest_pool import IngestTarget

GIB = 1024**3
ENV_PREFIX = "FOVEA_"
# URL schemes people write for PostgreSQL, and the driver Fovea installs (psycopg 3).
_POSTGRES_ALIASES = ("postgres://", "postgresql://")
_POSTGRES_DRIVER = "postgresql+psycopg://"


def _syntax_uid(name: str) -> str:
    """A transfer syntax UID from a UID or a keyword Fovea knows; ValueError otherwise."""
    syntax = find_transfer_syntax_by_name(name)
    if syntax is None:
        raise ValueError(f"unknown transfer syntax {name!r} (a UID or a keyword such as HTJ2KLossless)")
    return syntax.uid


class AnonymousAccess(StrEnum):
    """FOVEA_ALLOW_ANONYMOUS: what a request without credentials may do."""

    NO = "false"  # only on a loopback address with no authentication configured (the default)
    READ = "read"  # dicom.read, whatever else is configured
    ALL = "true"  # every scope: an open server, deliberately


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

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
    rejected_restore: RejectedRestorePolicy = Field(
        RejectedRestorePolicy.REFUSE,
        description="Storing a SOP Instance UID a rejection note rejected: refuse|accept",
    )
    rejected_delete_after_days: float | None = Field(
        None,
        ge=0,
        description="Days after which rejected instances are deleted; 0: when the note is stored; "
        "unset: never (hidden only)",
    )
    auto_migrate: bool | None = Field(
        None,
        description="Apply database migrations at start-up; default: yes for SQLite, no otherwise "
        "(run `fovea migrate`)",
    )
    ingest_workers: int = Field(
        0, ge=0, description="Worker processes parsing and storing instances; 0: one per CPU core"
    )
    ingest_inline_kb: int = Field(
        2048,
        ge=0,
        description="Instances of at most this many KiB are parsed and stored in the server process, "
        "not in an ingest worker process (none while a storage transfer syntax is set); 0: never",
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
    codec_memory_limit_mb: int = Field(
        4096,
        ge=0,
        description="Address space of each codec worker process (MiB); a frame whose decode needs more is "
        "refused with 406; 0: no limit",
    )
    codec_timeout_s: float = Field(
        10.0,
        ge=0,
        description="Longest one frame's decode, encode or rendering may run (seconds); then it is "
        "abandoned (406) and its worker process replaced; 0: no limit",
    )
    max_inflated_bytes: int | None = Field(
        None,
        ge=1,
        description="Largest size a Deflated Explicit VR Little Endian data set may inflate to at ingest "
        "(0xA700 above); unset: FOVEA_MAX_INSTANCE_BYTES",
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
    shared_cache_url: str = Field(
        "",
        description="Redis URL (redis://host:6379/0, rediss:// for TLS) of a derivative cache shared by "
        "every process and node: transcoded frames and rendered images made once; empty: none",
    )
    shared_cache_mb: int = Field(
        1024, ge=1, description="Bytes of derivatives the shared cache holds (MB); least recent dropped first"
    )
    shared_cache_prefix: str = Field(
        "fovea",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Key prefix in Redis: deployments sharing one Redis use different prefixes",
    )
    shared_cache_timeout_s: float = Field(
        0.5, gt=0, description="Seconds one shared cache call may take; slower counts as a miss"
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
    readiness_cache_s: float = Field(
        1.0, ge=0, description="Seconds a successful /readyz (and /health) check is reused (0: never)"
    )
    retry_after_s: int = Field(
        5, ge=0, description="Retry-After (seconds) of a 503 answered while the index or blob store is down"
    )
    cors_origins: str = Field(
        "",
        description="Web origins browsers may call Fovea from (comma-separated, e.g. "
        "https://viewer.example.org; * for any); empty: no CORS headers",
    )
    audit_log: str = Field(
        "",
        description="Where audit events go as JSON lines: a file path (appended to), - for stdout; "
        "empty: not written as JSON lines",
    )
    audit_db: bool = Field(
        True, description="Keep audit events in the index database (for `fovea audit`, GET /admin/audit)"
    )
    audit_syslog: str = Field(
        "",
        description="Also send audit events as DICOM audit messages (IHE ATNA) by syslog to "
        "udp://host:port or tcp://host:port; empty: not sent",
    )

    @field_validator("audit_syslog")
    @classmethod
    def _syslog_destination(cls, value: str) -> str:
        if value:
            parse_syslog_url(value)
        return value

    log_format: LogFormat = Field(
        LogFormat.CONSOLE, description="Log lines as `console` text for people or `json` for collectors"
    )
    log_level: str = Field(
        "info",
        pattern=r"(?i)^(debug|info|warning|error|critical)$",
        description="Least severe level logged: debug, info (one line per request), warning, error",
    )
    otel_enabled: bool = Field(
        False,
        description="Trace each HTTP request with OpenTelemetry (the `otel` extra); OTEL_* variables "
        "say where the spans go",
    )
    shutdown_grace_seconds: int = Field(
        30,
        ge=0,
        description="On SIGTERM or Ctrl-C, how long requests in flight may run before the server exits",
    )

    @field_validator("log_level")
    @classmethod
    def _lower_case_level(cls, value: str) -> str:
        return value.lower()

    @field_validator("database_url")
    @classmethod
    def _postgres_driver(cls, value: str | None) -> str | None:
        """postgres:// and postgresql:// mean PostgreSQL through psycopg 3, the driver Fovea ships."""
        if value:
            for alias in _POSTGRES_ALIASES:
                if value.startswith(alias):
                    return _POSTGRES_DRIVER + value.removeprefix(alias)
        return value

    blob_deletion_grace_s: float = Field(
        DEFAULT_BLOB_DELETION_GRACE_S,
        ge=0,
        description="Seconds a replaced or deleted instance's blob is kept after the index stops "
        "referring to it, for reads that looked it up before; longer than the slowest retrieval",
    )
    orphan_grace_s: float = Field(
        DEFAULT_ORPHAN_GRACE_S,
        ge=0,
        description="Seconds before garbage collection may remove a blob no index row refers to, or a "
        "spool file no live process owns; ingest gives up on an instance not indexed within half of it",
    )
    gc_interval_s: float = Field(
        60.0,
        ge=0,
        description="Seconds between a server process's runs of due blob deletions (after a full "
        "collection at start-up); 0: the server collects nothing, run `fovea gc` instead",
    )
    verify_interval_s: float = Field(
        0.0,
        ge=0,
        description="Seconds after which the server's background fixity check reads an instance's file "
        "again (2592000: every 30 days); 0: no background check, run `fovea verify` instead",
    )
    verify_rate_bytes_per_s: int = Field(
        5_000_000,
        gt=0,
        description="Bytes per second the background fixity check reads at most, across all server "
        "processes sharing the index (one of them checks at a time)",
    )

    # Security (docs/deployment.md "Security"): who may call Fovea, and which proxies it believes.
    allow_anonymous: AnonymousAccess = Field(
        AnonymousAccess.NO,
        description="Anonymous access: false (only on loopback with no authentication configured), "
        "read (anonymous dicom.read), true (anonymous everything, on any address)",
    )
    oidc_issuer: str | None = Field(
        None, description="OpenID Connect issuer URL; bearer JWTs it signs are accepted"
    )
    oidc_audience: str | None = Field(
        None, description="The `aud` Fovea's access tokens must carry (required with an issuer)"
    )
    oidc_scope_claim: str | None = Field(
        None,
        description="Claim holding the token's scopes or roles (dotted path, e.g. realm_access.roles); "
        "unset: `scope` (space-separated) and `scp` (list)",
    )
    oidc_scope_map: str = Field(
        "",
        description="Provider scope or role names mapped onto Fovea's, e.g. "
        "`pacs-reader=dicom.read,pacs-admin=admin`; Fovea's own names always count",
    )
    oidc_leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp and nbf")
    oidc_jwks_refresh_seconds: float = Field(
        30.0,
        ge=0,
        description="Least time between two key set fetches caused by tokens with an unknown key id",
    )
    oidc_timeout_seconds: float = Field(
        3.0, gt=0, le=30, description="Time allowed to the provider's discovery and key set endpoints"
    )
    share_secrets: str = Field(
        "",
        description="Secrets signing study share tokens (comma-separated, 32+ characters each): the "
        "first signs, all verify (rotation)",
    )
    deid_secret: str = Field(
        "",
        description=f"Key ({MIN_SECRET_CHARACTERS}+ characters) from which de-identified exports derive "
        "replacement UIDs, patient pseudonyms and date shifts; unset: no de-identified export",
    )
    deid_dates: DateHandling = Field(
        DateHandling.MODIFIED,
        description="De-identified dates: remove (Basic Profile), modified (shifted per patient) or full",
    )
    deid_retain_uids: bool = Field(False, description="De-identification keeps UIDs (Retain UIDs Option)")
    deid_retain_safe_private: bool = Field(
        False, description="De-identification keeps safe private attributes (Retain Safe Private Option)"
    )
    deid_allow_burned_in: bool = Field(
        False,
        description="The de-identified rendition also serves instances that may show identifying text in "
        "their pixels (Burned In Annotation YES, Secondary Capture without it NO)",
    )
    trusted_proxies: str = Field(
        "",
        description="Addresses or CIDRs of reverse proxies whose X-Forwarded-* headers are honoured; "
        "from any other peer they are ignored",
    )

    @field_validator("share_secrets")
    @classmethod
    def _long_share_secrets(cls, value: str) -> str:
        secrets = [secret.strip() for secret in value.split(",") if secret.strip()]
        if any(len(secret) < 32 for secret in secrets):
            raise ValueError("each share secret must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return ",".join(secrets)

    @field_validator("deid_secret")
    @classmethod
    def _long_deid_secret(cls, value: str) -> str:
        value = value.strip()
        if value and len(value) < MIN_SECRET_CHARACTERS:
            raise ValueError(
                f"the de-identification secret must be at least {MIN_SECRET_CHARACTERS} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        return value

    @property
    def share_secret_list(self) -> list[str]:
        return [secret for secret in self.share_secrets.split(",") if secret]

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer)

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
    def resolved_max_inflated_bytes(self) -> int:
        return self.max_inflated_bytes or self.max_instance_bytes

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

    # What the layers below take, built from the settings here so that none of them reads settings.
    # Imported on call: the store's modules (SQLAlchemy) are not needed to read or check settings.

    def database_timeouts(self) -> DatabaseTimeouts:
        from app.store.infra.db import DatabaseTimeouts

        return DatabaseTimeouts(
            connect_s=self.database_connect_timeout_s,
            statement_s=self.database_statement_timeout_s,
            pool_s=self.database_pool_timeout_s,
            sqlite_busy_s=self.sqlite_busy_timeout_s,
        )

    def ingest_target(self) -> IngestTarget:
        """Where ingest stores instances, as plain picklable values a worker process can take."""
        from app.store.infra.blobs import S3Timeouts
        from app.store.write.ingest_pool import IngestTarget

        return IngestTarget(
            database_url=self.resolved_database_url,
            storage_url=self.resolved_storage_url,
            spool_directory=(self.data_dir / "spool").resolve(),
            duplicate_policy=self.duplicate_policy,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            s3_access_key_id=self.s3_access_key_id,
            s3_secret_access_key=self.s3_secret_access_key,
            accepted_syntaxes=self.accepted_syntax_uids,
            storage_syntax=self.storage_transfer_syntax,
            max_inflated_bytes=self.resolved_max_inflated_bytes,
            codec_memory_bytes=self.codec_memory_limit_mb * 1024 * 1024,
            blob_deletion_grace_s=self.blob_deletion_grace_s,
            orphan_grace_s=self.orphan_grace_s,
            patient_mismatch=self.patient_mismatch,
            rejected_restore=self.rejected_restore,
            delete_rejected_at_once=self.rejected_delete_after_days == 0,
            database_timeouts=self.database_timeouts(),
            s3_timeouts=S3Timeouts(self.s3_connect_timeout_s, self.s3_read_timeout_s, self.s3_max_attempts),
        )

    def deidentifier(self) -> Deidentifier | None:
        """The Deidentifier FOVEA_DEID_* describe; None without FOVEA_DEID_SECRET."""
        if not self.deid_secret:
            return None
        from app.lifecycle.confidentiality_profile import ProfileOptions
        from app.lifecycle.deidentify import Deidentifier
        from app.lifecycle.pseudonyms import Pseudonyms

        options = ProfileOptions(
            dates=self.deid_dates,
            retain_uids=self.deid_retain_uids,
            retain_safe_private=self.deid_retain_safe_private,
        )
        return Deidentifier(Pseudonyms(self.deid_secret), options)

    def rendition(self) -> Rendition | None:
        """The de-identified rendition; None without FOVEA_DEID_SECRET."""
        deidentifier = self.deidentifier()
        if deidentifier is None:
            return None
        from app.lifecycle.rendition import Rendition

        return Rendition(deidentifier, allow_burned_in=self.deid_allow_burned_in)

    @property
    def ingest_inline_bytes(self) -> int:
        """The largest STOW-RS part or imported file stored by the receiving process itself."""
        return self.ingest_inline_kb * 1024

    @model_validator(mode="after")
    def _issuer_needs_an_audience(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("FOVEA_OIDC_AUDIENCE is required with FOVEA_OIDC_ISSUER")
        return self
