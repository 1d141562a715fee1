"""All configuration in one object: ``STATSAGA_*`` environment variables, or a ``.env``."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.dev_endpoints import (
    DEV_BLOB_PORT,
    DEV_BUS_ADMIN_PORT,
    DEV_BUS_PORT,
    DEV_TABLE_PORT,
    connection_string,
    servicebus_connection_string,
)
from app.domain.faults import FaultPlan, parse_faults
from app.domain.placement import MAX_SIZE
from app.domain.ratelimit import RateLimit
from app.domain.retry import InProcessRetry, RetryPolicy
from app.observability.logs import LEVELS, LogFormat

# Shorter keys come within reach of guessing over the API: 16 is the length of
# `openssl rand -hex 8` (64 bits); the README suggests twice that.
MIN_API_KEY_LENGTH = 16


class Role(StrEnum):
    """What an API key may do; ``admin`` may do everything."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


def parse_api_keys(raw: str) -> dict[str, Role]:
    """``"k1:ingest,k2:read"`` → ``{"k1": Role.INGEST, ...}``; raises ``ValueError``."""
    keys: dict[str, Role] = {}
    # Entries are named by position: no part of a key goes into a message (or a log).
    entries = [part.strip() for part in raw.split(",")]
    for n, item in enumerate((e for e in entries if e), start=1):
        key, sep, role = item.rpartition(":")
        if not sep or not key:
            raise ValueError(f"API key entry {n} must look like KEY:ROLE")
        try:
            keys[key] = Role(role.strip())
        except ValueError:
            raise ValueError(
                f"API key entry {n}: its role is not one of {', '.join(r.value for r in Role)}"
            ) from None
    return keys


class Settings(BaseSettings):
    """statsaga's settings; every field can be set as ``STATSAGA_<FIELD>``."""

    # hide_input_in_errors: a refused value (an API key list, say) is not echoed.
    model_config = SettingsConfigDict(
        env_prefix="STATSAGA_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    host: str = Field("127.0.0.1", description="Address the HTTP API binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP API.")
    metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="Port of /metrics of a worker run without the API (which serves its own "
        "on its port), on the same host; 0: off.",
    )
    storage_connection_string: SecretStr = Field(
        SecretStr(connection_string(DEV_BLOB_PORT, DEV_TABLE_PORT)),
        description="Azure Storage connection string (Tables + Blob); defaults to Azurite.",
    )
    servicebus_connection_string: SecretStr = Field(
        SecretStr(servicebus_connection_string(DEV_BUS_PORT)),
        description="Azure Service Bus connection string; defaults to the local broker.",
    )
    servicebus_admin_connection_string: SecretStr | None = Field(
        None,
        description="Service Bus administration API (queue depths); unset: the same as "
        "servicebus_connection_string, or the local broker's port 5300 if that is unset too.",
    )
    storage_prefix: str = Field(
        "",
        pattern=r"^([A-Za-z][A-Za-z0-9]{0,19})?$",
        description="Prefix of table and container names (isolates test runs).",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join; unset: RAY_ADDRESS, else an embedded Ray."
    )
    ray_namespace: str = Field("statsaga", description="Ray namespace of the actor pools.")
    ray_num_cpus: int | None = Field(None, description="CPUs of an embedded Ray.")
    game_pool_size: int = Field(
        2,
        ge=1,
        le=MAX_SIZE["game"],
        description="GameActors of a new deployment (then `statsaga pools`).",
    )
    player_pool_size: int = Field(
        2,
        ge=1,
        le=MAX_SIZE["player"],
        description="PlayerShards of a new deployment (then `statsaga pools`).",
    )
    max_pool_size: int = Field(
        64,
        ge=1,
        le=max(MAX_SIZE.values()),
        description="Largest size an operator may resize a pool to (a typo must not start "
        "hundreds of actors).",
    )
    board_actors: int = Field(
        1,
        ge=1,
        le=MAX_SIZE["board"],
        description="BoardActors of a new deployment, each holding the leaderboards of the "
        "modes it owns (then `statsaga pools`).",
    )
    board_snapshot_interval_s: float = Field(
        10.0, gt=0, description="How often a mode's changed leaderboards are saved."
    )
    shard_capacity: int = Field(10_000, ge=1, description="Active grains per shard, at most.")
    grain_idle_ttl_s: float = Field(300.0, gt=0, description="Idle grains are deactivated.")
    grain_blind_insert: bool = Field(
        True,
        description="A grain's first update writes as if its player were new, with no read "
        "first, while most recent first updates were of new players.",
    )
    api_keys: Annotated[dict[str, Role], NoDecode] = Field(
        default_factory=dict,
        description="Comma list of KEY:ROLE (roles ingest, read, admin).",
        repr=False,  # keys never reach a log line, not even through a settings dump
    )
    public_reads: bool = Field(
        False, description="Reads (players, matches) answer without an API key."
    )
    ingest_rate_per_s: float = Field(
        100.0, ge=0, description="Matches one ingest key may post per second (0: no limit)."
    )
    ingest_burst: int = Field(200, ge=1, description="Posts one ingest key may make at once.")
    read_rate_per_s: float = Field(
        200.0,
        ge=0,
        description="Reads one key (or, for public reads without a key, one client address) "
        "may make per second (0: no limit).",
    )
    read_burst: int = Field(400, ge=1, description="Reads one key or address may make at once.")
    auth_failures_per_min: int = Field(
        10,
        ge=0,
        description="Requests with an unknown API key one client address may make a minute "
        "before its every request answers 429 (0: no limit).",
    )
    retry_base_s: float = Field(1.0, gt=0, description="First durable retry delay.")
    retry_cap_s: float = Field(60.0, gt=0, description="Longest durable retry delay.")
    retry_max_attempts: int = Field(8, ge=1, description="Failed attempts before dead-letter.")
    ingest_retry_deadline_s: float = Field(
        InProcessRetry().deadline_s,
        gt=0,
        le=60,
        description="How long a POST retries its storage writes and publish on transient "
        "errors before it answers 503 (with Retry-After).",
    )
    # 64: at 32 a full pipeline left a sixth of two cores idle, sagas waiting on one
    # another's storage round trips (issue 21's paired bench runs, docs/performance.md).
    worker_concurrency: int = Field(64, ge=1, le=1024, description="Sagas run at once.")
    lock_renewal_s: float = Field(
        300.0, gt=0, description="How long the worker keeps renewing a held message's lock."
    )
    outbox_interval_s: float = Field(
        10.0, gt=0, description="How often the API sweeps for stored matches that have not started."
    )
    outbox_grace_s: float = Field(
        30.0, ge=0, description="Age after which a match that has not started is published again."
    )
    stall_after_s: float = Field(
        300.0,
        gt=0,
        description="An unfinished saga unchanged this long is re-driven (above retry_cap_s).",
    )
    stall_interval_s: float = Field(30.0, gt=0, description="How often to look for stalls.")
    storage_sdk_retries: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Retries the Azure Storage SDKs make on their own; unset: their default.",
    )
    faults: str = Field(
        "",
        description="Fault injection, off when empty: storage=RATE,latency_ms=MS,seed=N.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted body.")
    data_dir: str = Field(".data", description="Where `statsaga dev` keeps local data.")
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: LogFormat = Field(
        "json", description="json (one object per line) or text (readable, same fields)."
    )
    access_log: bool = Field(False, description="Log every HTTP request (uvicorn's access log).")
    http_limit_concurrency: int = Field(
        1000,
        ge=1,
        description="Connections and requests the HTTP API holds at once; past it, new "
        "requests answer 503 at once instead of queueing until memory runs out.",
    )
    http_keep_alive_s: int = Field(
        5, ge=1, le=300, description="An idle keep-alive connection is closed after this."
    )
    http_backlog: int = Field(
        2048, ge=1, description="Connections the kernel queues before the API accepts them."
    )
    http_max_header_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="Most bytes of a request's line and headers buffered while they are "
        "incomplete; past it, 400 and the connection is closed.",
    )

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LEVELS)}")
        return value.upper()

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        return parse_api_keys(value) if isinstance(value, str) else value

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, value: dict[str, Role]) -> dict[str, Role]:
        for n, key in enumerate(value, start=1):
            if len(key) < MIN_API_KEY_LENGTH:
                # By position, like parse_api_keys: no part of a key reaches the message.
                raise ValueError(
                    f"STATSAGA_API_KEYS entry {n} is shorter than {MIN_API_KEY_LENGTH} "
                    "characters: use a random key, e.g. `openssl rand -hex 16`"
                )
        return value

    @field_validator("faults")
    @classmethod
    def _faults(cls, value: str) -> str:
        parse_faults(value)  # a ValueError here names the bad key
        return value

    @property
    def fault_plan(self) -> FaultPlan:
        """The faults to inject (none by default)."""
        return parse_faults(self.faults)

    @model_validator(mode="after")
    def _ray_address_from_env(self) -> Self:
        if self.ray_address is None and os.environ.get("RAY_ADDRESS"):
            self.ray_address = os.environ["RAY_ADDRESS"]
        return self

    @model_validator(mode="after")
    def _stall_after_retries(self) -> Self:
        # A saga waiting for a scheduled retry does not change until it fires.
        if self.stall_after_s <= self.retry_cap_s:
            raise ValueError(
                f"stall_after_s ({self.stall_after_s}) must exceed retry_cap_s "
                f"({self.retry_cap_s}): a saga waiting for its retry is not stalled"
            )
        return self

    @property
    def ingest_limit(self) -> RateLimit:
        """The per-key ingest rate limit (per API process)."""
        return RateLimit(self.ingest_rate_per_s, self.ingest_burst)

    @property
    def read_limit(self) -> RateLimit:
        """The per-key (or per-address) read rate limit (per API process)."""
        return RateLimit(self.read_rate_per_s, self.read_burst)

    @property
    def auth_failure_limit(self) -> RateLimit:
        """Failed authentications per client address (per API process): a burst of the
        minute's allowance, refilled over the minute."""
        return RateLimit(self.auth_failures_per_min / 60.0, max(self.auth_failures_per_min, 1))

    @property
    def servicebus_admin(self) -> SecretStr:
        """Where to read queue depths: Azure serves the administration API on the
        namespace's own endpoint, emulators on a port of their own."""
        if self.servicebus_admin_connection_string is not None:
            return self.servicebus_admin_connection_string
        if "servicebus_connection_string" not in self.model_fields_set:
            return SecretStr(servicebus_connection_string(DEV_BUS_ADMIN_PORT))
        return self.servicebus_connection_string

    @property
    def ingest_retry(self) -> InProcessRetry:
        """The in-process retry of a POST's writes."""
        return InProcessRetry(self.ingest_retry_deadline_s)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The durable retry policy these settings describe."""
        return RetryPolicy(
            self.retry_base_s, max(self.retry_cap_s, self.retry_base_s), self.retry_max_attempts
        )
