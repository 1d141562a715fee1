"""Settings: the environment contract, and the README's table kept true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import MIN_API_KEY_LENGTH, Role, Settings, parse_api_keys

README = Path(__file__).resolve().parents[2] / "README.md"


def test_api_keys_parse_roles() -> None:
    assert parse_api_keys(" a:ingest, b:read ,c:admin,") == {
        "a": Role.INGEST,
        "b": Role.READ,
        "c": Role.ADMIN,
    }
    assert parse_api_keys("x:y:read") == {"x:y": Role.READ}  # the role is after the last colon


@pytest.mark.parametrize("raw", ["zqwnokey", ":read", "zqx9secret:owner", "zqy8:read,zqw7"])
def test_bad_api_keys_are_refused_without_echoing_the_key(raw: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_api_keys(raw)
    message = str(info.value)
    assert "KEY:ROLE" in message or "role" in message
    assert "zq" not in message  # not even the start of a key


def test_settings_show_no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_API_KEYS", "the-ingest-secret:ingest,the-admin-secret:admin")
    s = Settings()
    assert set(s.api_keys) == {"the-ingest-secret", "the-admin-secret"}
    for shown in (repr(s), str(s), f"{s}", f"{s!r}"):
        assert "secret" not in shown


def test_a_refused_key_list_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_API_KEYS", "the-ingest-secret:ingest,the-admin-secret:owner")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "api_keys" in str(info.value) and "secret" not in str(info.value)


@pytest.mark.parametrize("short", ["zq-admin", "zq" + "x" * (MIN_API_KEY_LENGTH - 3)])
def test_a_short_key_is_refused_at_startup_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    monkeypatch.setenv("STATSAGA_API_KEYS", f"zq-a-long-enough-ingest-key:ingest,{short}:admin")
    with pytest.raises(ValidationError) as info:
        Settings()
    message = str(info.value)
    assert "STATSAGA_API_KEYS entry 2 is shorter than 16 characters" in message
    assert "zq" not in message
    with pytest.raises(ValidationError, match="STATSAGA_API_KEYS entry 1"):
        Settings(api_keys={short: Role.READ})  # set in code, not only from the environment


def test_a_key_of_the_minimum_length_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_API_KEYS", "k" * MIN_API_KEY_LENGTH + ":read")
    assert Settings().api_keys == {"k" * MIN_API_KEY_LENGTH: Role.READ}


def test_log_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_LOG_LEVEL", "debug")
    assert (Settings().log_level, Settings().log_format) == ("DEBUG", "json")
    monkeypatch.setenv("STATSAGA_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="log_level must be one of"):
        Settings()
    monkeypatch.setenv("STATSAGA_LOG_LEVEL", "info")
    monkeypatch.setenv("STATSAGA_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


def test_environment_sets_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_PORT", "9001")
    monkeypatch.setenv("STATSAGA_API_KEYS", "k1-0123456789abcdef:ingest")
    monkeypatch.setenv("STATSAGA_PLAYER_POOL_SIZE", "5")
    s = Settings()
    assert (s.port, s.player_pool_size) == (9001, 5)
    assert s.api_keys == {"k1-0123456789abcdef": Role.INGEST}


def test_ray_address_falls_back_to_ray_s_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATSAGA_RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert Settings().ray_address == "127.0.0.1:6379"


def test_queue_depths_are_read_where_the_bus_is_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SERVICEBUS_CONNECTION_STRING", "SERVICEBUS_ADMIN_CONNECTION_STRING"):
        monkeypatch.delenv(f"STATSAGA_{name}", raising=False)
    # Nothing set: the local broker, whose administration API is on port 5300.
    assert "sb://127.0.0.1:5300;" in Settings().servicebus_admin.get_secret_value()
    # Azure: one endpoint serves AMQP and the administration API.
    azure = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v"
    monkeypatch.setenv("STATSAGA_SERVICEBUS_CONNECTION_STRING", azure)
    assert Settings().servicebus_admin.get_secret_value() == azure
    # An emulator elsewhere: said outright.
    admin = (
        "Endpoint=sb://bus:5300;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true"
    )
    monkeypatch.setenv("STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING", admin)
    assert Settings().servicebus_admin.get_secret_value() == admin


def test_connection_string_is_not_shown_in_repr() -> None:
    assert "AccountKey" not in repr(Settings())


def test_readme_documents_every_setting() -> None:
    documented = set(re.findall(r"`STATSAGA_([A-Z_]+)`", README.read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from the README table"
    assert documented - fields == set(), "README names settings that do not exist"


def test_the_keys_make_run_generates_are_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app.entrypoints import cli_settings

    monkeypatch.setattr(cli_settings, "configure_logging", lambda settings, role: None)
    generated = cli_settings.with_dev_keys(Settings(data_dir=str(tmp_path)), "api").api_keys
    raw = (tmp_path / cli_settings.DEV_KEYS_FILE).read_text().strip().partition("=")[2]
    monkeypatch.setenv("STATSAGA_API_KEYS", raw)
    assert Settings().api_keys == generated and set(generated.values()) == set(Role)


def test_statsaga_refuses_to_start_with_a_short_key_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.entrypoints.cli import main

    for name in ("RAY_USAGE_STATS_ENABLED", "RAY_DEDUP_LOGS", "RAY_DISABLE_WORKER_LOG_PREFIX"):
        monkeypatch.setenv(name, "0")  # main sets them if unset: keep them scoped to the test
    monkeypatch.setenv("STATSAGA_API_KEYS", "zq-short:admin")
    assert main(["api"]) == 2
    err = capsys.readouterr().err
    assert "api_keys: Value error, STATSAGA_API_KEYS entry 1 is shorter than 16" in err
    assert "Traceback" not in err and "zq" not in err


def test_grain_settings_reach_the_actors(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.bootstrap import actor_config

    assert actor_config(Settings()).grains.blind_insert is True
    monkeypatch.setenv("STATSAGA_GRAIN_BLIND_INSERT", "false")
    monkeypatch.setenv("STATSAGA_SHARD_CAPACITY", "7")
    grains = actor_config(Settings()).grains
    assert (grains.blind_insert, grains.capacity) == (False, 7)
