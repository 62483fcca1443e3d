"""Time on the wire: datetimes in the models, RFC 3339 (UTC, `Z`) in JSON and Kubernetes. The one place that formats them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rfc3339(moment: datetime, *, fraction: bool = False) -> str:
    """`2026-12-01T10:00:00Z` (with microseconds when `fraction`, as Kubernetes MicroTime wants)."""
    text = as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f" if fraction else "%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def parse_rfc3339(value: str | None) -> datetime | None:
    """The datetime of an RFC 3339 string (`Z` or an offset); None for None or an empty string."""
    if not value:
        return None
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def utc_now() -> datetime:
    return datetime.now(UTC)


Timestamp = Annotated[
    datetime,
    AfterValidator(as_utc),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    Field(description="RFC 3339 time", json_schema_extra={"format": "date-time"}),
]
