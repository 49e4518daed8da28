"""The request document: JSON for import/export and the scheduler's input.

Schema id ``pyros.request/1`` (see docs/request-document.md). Within version 1 changes are
additive only; a breaking change gets ``pyros.request/2``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import Field

from pyros_common.domain.requests.model import Request, RequestContent

__all__ = ["SCHEMA_ID", "RequestDocument", "export_document", "export_json", "import_document", "json_schema"]

SCHEMA_ID: Final = "pyros.request/1"


class RequestDocument(RequestContent):
    """A request as exchanged in JSON (no owner: the importer decides who owns it)."""

    # Written as the document format everywhere, inside events too: "schema", not "schema_id".
    model_config = RequestContent.model_config | {"serialize_by_alias": True}

    schema_id: Literal["pyros.request/1"] = Field(
        default=SCHEMA_ID, alias="schema", description="Document format and version: 'pyros.request/1'."
    )


def export_document(request: RequestContent) -> dict[str, Any]:
    """The JSON-ready document of ``request`` (every field written, nulls included)."""
    content = RequestContent.model_fields.keys()
    doc = RequestDocument.model_validate({k: getattr(request, k) for k in content})
    out: dict[str, Any] = doc.model_dump(mode="json", by_alias=True)
    return {"schema": out.pop("schema"), **out}


def export_json(request: RequestContent, indent: int | None = 2) -> str:
    """The document of ``request`` as JSON text."""
    return json.dumps(export_document(request), indent=indent, ensure_ascii=False)


def import_document(data: Mapping[str, Any] | str | bytes, *, user: str, id: str | None = None) -> Request:
    """A request owned by ``user`` from a document (dict or JSON text); pydantic ValidationError
    naming the field when invalid."""
    doc = (
        RequestDocument.model_validate_json(data)
        if isinstance(data, str | bytes)
        else RequestDocument.model_validate(data)
    )
    fields = {k: getattr(doc, k) for k in RequestContent.model_fields}
    return Request.model_validate({**fields, "user": user, "id": id})


def json_schema() -> dict[str, Any]:
    """JSON Schema of the document, for the docs and for partner nodes."""
    return RequestDocument.model_json_schema(by_alias=True)
