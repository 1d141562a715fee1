"""``PayloadArchive`` on Azure Blob Storage: ``{match_id}/{payload_hash}.json`` holds the
canonical JSON of the match. The hash is in the name, so a different body lands in
another blob; ``put`` never overwrites (an existing blob of that name has this body)."""

from __future__ import annotations

import json
from typing import Any

from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient

from app.domain.model import Match
from storage.azure_errors import EntityExists, map_azure_errors


def blob_name(match_id: str, payload_hash: str) -> str:
    """Where one payload lives in the container."""
    return f"{match_id}/{payload_hash}.json"


def canonical_body(match: Match) -> bytes:
    """The bytes whose SHA-256 is ``match.payload_hash()``."""
    return match.canonical_json().encode()


class BlobPayloadArchive:
    """``PayloadArchive`` over one blob container."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    async def put(self, match: Match) -> None:
        """Upload unless the blob exists (If-None-Match: *); existing means done."""
        name = blob_name(match.match_id, match.payload_hash())
        settings = ContentSettings(content_type="application/json")
        try:
            with map_azure_errors():
                await self._container.upload_blob(
                    name, canonical_body(match), overwrite=False, content_settings=settings
                )
        except EntityExists:
            return  # same name, same hash: the body stored is this body

    async def get(self, match_id: str, payload_hash: str) -> dict[str, Any]:
        """The decoded payload; ``NotFound`` if there is no such blob."""
        with map_azure_errors():
            stream = await self._container.download_blob(blob_name(match_id, payload_hash))
            body = await stream.readall()
        payload: dict[str, Any] = json.loads(body)
        return payload

    async def close(self) -> None:
        """Close the container client."""
        await self._container.close()
