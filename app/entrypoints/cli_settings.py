"""The settings as a command uses them: loaded (a refused one reported field by field),
logging configured with every secret they hold redacted, and development API keys made
up when none are configured."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import ValidationError

from app.entrypoints.cli_exits import InvalidSettings
from app.settings import Role, Settings, parse_api_keys

DEV_KEYS_FILE = "dev-keys.env"


def load_settings() -> Settings:
    """The settings from the environment; ``InvalidSettings`` names each refused one."""
    try:
        return Settings()
    except ValidationError as error:
        raise InvalidSettings(
            [
                (".".join(str(part) for part in problem["loc"]) or "settings", problem["msg"])
                for problem in error.errors()
            ]
        ) from None


def configure_logging(settings: Settings, role: str) -> None:
    """Log as ``role``, at the settings' level and format, secrets redacted."""
    from app.observability.logs import configure_logging as configure
    from app.observability.logs import connection_secrets

    redacted = [
        *settings.api_keys,
        *connection_secrets(settings.storage_connection_string.get_secret_value()),
        *connection_secrets(settings.servicebus_connection_string.get_secret_value()),
    ]
    configure(settings.log_level, settings.log_format, role, redacted)


def with_dev_keys(settings: Settings, role: str) -> Settings:
    """With no keys configured, use (and keep) a generated set, and print it."""
    if settings.api_keys:
        return settings
    path = Path(settings.data_dir) / DEV_KEYS_FILE
    if path.exists():
        raw = path.read_text().strip().partition("=")[2]
    else:
        raw = ",".join(f"{r.value}-{secrets.token_urlsafe(12)}:{r.value}" for r in Role)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"STATSAGA_API_KEYS={raw}\n")
        path.chmod(0o600)
    keys = parse_api_keys(raw)
    settings = settings.model_copy(update={"api_keys": keys})
    configure_logging(settings, role)  # the new keys are redacted too
    print(f"No STATSAGA_API_KEYS set: using development keys kept in {path}:", flush=True)
    for key, key_role in keys.items():
        print(f"  {key_role.value:<7} Authorization: Bearer {key}", flush=True)
    print(
        "Set STATSAGA_API_KEYS=KEY:ROLE,... (roles ingest, read, admin) to use your own.",
        flush=True,
    )
    return settings
