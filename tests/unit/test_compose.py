"""docker-compose.yml cannot run on machines without Docker; this checks that it wires
every part the code needs, with settings the code accepts and the SDKs can parse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.data.tables import TableServiceClient
from azure.servicebus import ServiceBusClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.storage.blob import BlobServiceClient

from app.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
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


def env(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("environment", {})
    return {k: str(v) for k, v in raw.items()}


def resolved(value: str) -> str:
    """``${VAR:-default}`` as compose resolves it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


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


def test_the_api_listens_on_every_interface_and_is_published() -> None:
    assert env("api")["STATSAGA_HOST"] == "0.0.0.0"
    assert f"{env('api')['STATSAGA_PORT']}:8000" in SERVICES["api"]["ports"]


def test_the_worker_serves_its_metrics_on_every_interface_and_is_published() -> None:
    assert env("worker")["STATSAGA_HOST"] == "0.0.0.0"
    assert f"{env('worker')['STATSAGA_METRICS_PORT']}:9464" in SERVICES["worker"]["ports"]


def test_one_image_holds_the_code_for_head_and_roles() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("app", "actors", "storage", "config"):
        assert f"COPY {package} ./{package}" in dockerfile
    images = {SERVICES[s]["image"] for s in ("ray-head", *ROLES)}
    assert len(images) == 1
