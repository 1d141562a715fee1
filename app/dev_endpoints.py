"""Where the local development services listen, and the connection strings that reach
them: what the settings default to and what ``statsaga dev`` starts. Names and strings
only, so that the settings need not import the process spawner (devstack/processes.py)."""

from __future__ import annotations

# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# `statsaga dev` uses the usual local ports, so that tools such as Azure Storage Explorer
# and Service Bus Explorer find them.
DEV_BLOB_PORT, DEV_TABLE_PORT, DEV_BUS_PORT = 10000, 10002, 5672
# Where Microsoft's Service Bus emulator serves the administration API (queue depths).
DEV_BUS_ADMIN_PORT = 5300


def servicebus_connection_string(port: int, host: str = "127.0.0.1") -> str:
    """Connection string for a local Service Bus broker (sbemu, or Microsoft's emulator):
    ``UseDevelopmentEmulator=true`` turns TLS off and keeps the port."""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=local;UseDevelopmentEmulator=true"
    )


def connection_string(blob_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    """Connection string for Azurite's Blob and Table services on these ports."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT};"
    )


# In `statsaga dev`'s data directory while it runs: how to join its Ray head (`statsaga
# pools` in another terminal reads it).
DEV_RAY_FILE = "ray.env"
