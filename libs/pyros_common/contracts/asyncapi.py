"""AsyncAPI 3.0 document of every PyROS topic, generated from the contract models."""

from __future__ import annotations

import json
from typing import Any

from pyros_common.contracts.topics import TOPICS

ASYNCAPI_VERSION = "3.0.0"


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace("#/$defs/", "#/components/schemas/")
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12, as pydantic emits it) of each topic's model."""
    return {t.model.__name__: t.model.model_json_schema() for t in TOPICS.values()}


def build_asyncapi(version: str = "0.1.0", bootstrap: str = "kafka:9092") -> dict[str, Any]:
    """The AsyncAPI 3 document: servers, channels, operations, messages and schemas."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS.values():
        name = topic.model.__name__
        schema = topic.model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, def_schema in schema.pop("$defs", {}).items():
            schemas[def_name] = _rewrite_refs(def_schema)
        schemas[name] = _rewrite_refs(schema)
        messages[name] = {
            "name": name,
            "title": name,
            "summary": topic.summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
        }
        channel_id = topic.name.replace(".", "_")
        channels[channel_id] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.summary} Key: {topic.key}. Producers: {', '.join(topic.producers)}."
            f" Consumers: {', '.join(topic.consumers)}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"kafka": {"topic": topic.name}},
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "title": f"Producers of {topic.name}",
            "summary": f"Sent by: {', '.join(topic.producers)}",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"}],
            "x-pyros-producers": list(topic.producers),
        }
        operations[f"consume_{channel_id}"] = {
            "action": "receive",
            "title": f"Consumers of {topic.name}",
            "summary": f"Received by: {', '.join(topic.consumers)}",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"}],
            "x-pyros-consumers": list(topic.consumers),
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "PyROS events",
            "version": version,
            "description": "Every topic of a PyROS node. Each message shares one envelope: schema_version, "
            "event_id, sent_at, producer, correlation_id, telescope_id. Values are JSON (UTF-8); keys "
            "are UTF-8 strings.",
        },
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": bootstrap, "protocol": "kafka", "description": "The node's broker."}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def asyncapi_yaml(version: str = "0.1.0") -> str:
    """The document as YAML."""
    import yaml

    # Round-trip through JSON so that YAML holds only plain types.
    doc = json.loads(json.dumps(build_asyncapi(version)))
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
