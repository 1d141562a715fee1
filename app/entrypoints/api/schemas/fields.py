"""Field types shared by the schemas: ids (in a body and in a path), moments, counters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import Field

from app.domain.ids import ID_PATTERN, ID_RULE, MAX_ID_LENGTH
from app.domain.validation import (
    COUNTER_MAX,
    DATE_TIME,
)

Id = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description=ID_RULE)
]
# A match or player id in a path: the same rule, checked before any handler runs.
IdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description=ID_RULE)
]
Moment = Annotated[str, Field(pattern=DATE_TIME, json_schema_extra={"format": "date-time"})]


def count_field(name: str) -> Any:
    """A counter field: 0 by default, bounded as validation bounds it."""
    return Field(0, ge=0, le=COUNTER_MAX[name])
