"""docker-compose.yml cannot run on machines without Docker; this checks that it wires
every part the code needs, with settings the code accepts and the SDKs can parse."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.data.tables import TableServiceClient
from azure.servicebus import ServiceBusClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.storage.blob import BlobServiceClient

from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.settings import MIN_API_KEY_LENGTH, Settings

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
ROLES = ("api", "worker")
# What every role must be told: where storage, the bus and Ray are, and who may call.
NEEDED = {
    "STATSAGA_STORAGE_CONNECTION_STRING",
    "STATSAGA_SERVICEBUS_CONNECTION_STRING",
    # The emulator serves queue depths on a port of its own (5300), not on the AMQP one.
    "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING",
    "RAY_ADDRESS",
    "STATSAGA_API_KEYS",
}


# What an operator exports before `docker compose up` (docs/running.md).
SECRETS = {
    "STATSAGA_API_KEYS": ",".join(
        f"{role}-{'k' * MIN_API_KEY_LENGTH}:{role}" for role in ("ingest", "read", "admin")
    ),
    "RAY_AUTH_TOKEN": "t" * 64,
    "MSSQL_SA_PASSWORD": "Sa-Example-Passw0rd",
}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<rest>[^}]*)\}")


def env(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("environment", {})
    return {k: str(v) for k, v in raw.items()}


def resolved(value: str, environ: dict[str, str] = SECRETS) -> str:
    """``value`` as compose interpolates it from ``environ`` (KeyError: compose refuses)."""

    def one(m: re.Match[str]) -> str:
        name, op, rest = m["name"], m["op"] or "", m["rest"]
        if environ.get(name):
            return environ[name]
        if op.endswith("?"):
            raise KeyError(name)
        return rest if op.endswith("-") else ""

    return VARIABLE.sub(one, value)


def test_every_part_is_a_service() -> None:
    assert {"azurite", "sqledge", "servicebus-emulator", "ray-head", *ROLES} <= set(SERVICES)


@pytest.mark.parametrize("role", ROLES)
def test_roles_run_the_right_command_with_every_setting_they_need(role: str) -> None:
    assert SERVICES[role]["command"] == f"statsaga {role}"
    assert set(env(role)) >= NEEDED
    for name in env(role):
        if name.startswith("STATSAGA_"):
            field = name.removeprefix("STATSAGA_").lower()
            assert field in Settings.model_fields, f"{role}: {name} is not a setting"
    Settings.model_validate(  # the values are valid settings, too
        {
            k.removeprefix("STATSAGA_").lower(): resolved(v)
            for k, v in env(role).items()
            if k.startswith("STATSAGA_")
        }
    )


@pytest.mark.parametrize("role", ROLES)
def test_connection_strings_parse_and_point_at_compose_services(role: str) -> None:
    variables = env(role)
    storage = variables["STATSAGA_STORAGE_CONNECTION_STRING"]
    for client in (TableServiceClient, BlobServiceClient):
        host = client.from_connection_string(storage).url.split("/")[2].split(":")[0]
        assert host in SERVICES
    bus = ServiceBusClient.from_connection_string(
        variables["STATSAGA_SERVICEBUS_CONNECTION_STRING"]
    )
    assert bus.fully_qualified_namespace.split(":")[0] in SERVICES
    admin = ServiceBusAdministrationClient.from_connection_string(
        variables["STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING"]
    )
    assert admin.fully_qualified_namespace == "servicebus-emulator:5300"
    assert variables["RAY_ADDRESS"].split(":")[0] in SERVICES
    for dependency in SERVICES[role]["depends_on"]:
        assert dependency in SERVICES


def test_the_emulator_reads_the_project_queues_and_finds_its_sql_server() -> None:
    emulator = SERVICES["servicebus-emulator"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in emulator["volumes"]}
    config = ROOT / mounts["/ServiceBus_Emulator/ConfigFiles/Config.json"]
    queues = json.loads(config.read_text())["UserConfig"]["Namespaces"][0]["Queues"]
    by_name = {q["Name"]: q["Properties"] for q in queues}
    assert {MATCHES_QUEUE, PLAYER_UPDATES_QUEUE} <= set(by_name)
    assert by_name[MATCHES_QUEUE]["RequiresDuplicateDetection"] is True
    assert env("servicebus-emulator")["SQL_SERVER"] in SERVICES
    assert resolved(env("servicebus-emulator")["MSSQL_SA_PASSWORD"]) == resolved(
        env("sqledge")["MSSQL_SA_PASSWORD"]
    )


def test_the_ray_head_and_the_roles_share_the_cluster_token() -> None:
    for role in ROLES:
        for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
            assert env(role)[name] == env("ray-head")[name], (role, name)


def test_the_api_listens_on_every_interface_and_is_published_on_loopback() -> None:
    assert env("api")["STATSAGA_HOST"] == "0.0.0.0"
    published = [resolved(p) for p in SERVICES["api"]["ports"]]
    assert published == [f"127.0.0.1:{env('api')['STATSAGA_PORT']}:8000"]
    # ... unless the operator says otherwise.
    wider = {**SECRETS, "STATSAGA_PUBLISH_ADDRESS": "0.0.0.0"}
    assert [resolved(p, wider) for p in SERVICES["api"]["ports"]] == ["0.0.0.0:8000:8000"]


def test_only_the_api_is_published() -> None:
    # Azurite answers to a well-known key and the emulator to a fixed SAS key: published,
    # anyone reaching the host could write storage or send match.invalidated.
    assert [name for name, service in SERVICES.items() if "ports" in service] == ["api"]
    assert env("worker")["STATSAGA_METRICS_PORT"] in map(str, SERVICES["worker"]["expose"])


def test_no_secret_has_a_default() -> None:
    found = {m["name"]: m["op"] for m in VARIABLE.finditer(TEXT)}
    assert set(SECRETS) <= set(found)
    for name, op in found.items():
        if re.search(r"KEY|TOKEN|PASSWORD|SECRET", name):
            assert op == ":?", f"{name} must come from the environment (${{{name}:?...}})"
    for service in SERVICES:
        for name, value in env(service).items():
            if name in SECRETS:
                assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value), (service, name)


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose_naming_it(missing: str) -> None:
    with pytest.raises(KeyError, match=missing):
        for service in SERVICES:
            for value in env(service).values():
                resolved(value, {k: v for k, v in SECRETS.items() if k != missing})


def test_images_are_pinned_to_versions() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        tag = image.rpartition("/")[2].partition(":")[2]
        assert tag and tag != "latest", f"{name}: {image} is not pinned"


def test_the_image_runs_as_a_user_and_installs_the_locked_dependencies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"pip install .*--require-hashes -r requirements\.lock", dockerfile)
    assert "COPY requirements.lock" in dockerfile
    assert re.search(r"pip install .*--no-deps \.", dockerfile)


def compose_command() -> list[str] | None:
    """Docker's compose plugin, or the standalone docker-compose (Debian's package)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose_config(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "COMPOSE_FILE"}
    return subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**clean, **environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_compose_itself_accepts_the_file_and_binds_the_api_to_loopback() -> None:
    config = compose_config(SECRETS)
    assert config.returncode == 0, config.stderr
    services = yaml.safe_load(config.stdout)["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["api"]
    (port,) = published["api"]
    # The long form (compose v2) or the short one (docker-compose 1.x).
    host = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
    assert host == "127.0.0.1"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_itself_refuses_to_start_without_a_secret(missing: str) -> None:
    config = compose_config({k: v for k, v in SECRETS.items() if k != missing})
    assert config.returncode != 0
    assert f"set {missing}" in config.stderr


def test_one_image_holds_the_code_for_head_and_roles() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("app", "actors", "storage", "config"):
        assert f"COPY {package} ./{package}" in dockerfile
    images = {SERVICES[s]["image"] for s in ("ray-head", *ROLES)}
    assert len(images) == 1
