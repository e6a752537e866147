"""An incoming activity, checked against the shape botbuilder and Firebell rely on, then built.

botbuilder's `Activity().deserialize` crashes on a wrong type (`"from": 5`, a list where an
object goes, a timestamp in year 10000) and CloudAdapter answered that with a 500, before any
authentication; other wrong types passed and crashed the turn later. The check follows
botbuilder's own schema (each model's attribute map: strings, booleans, ISO 8601 times, nested
models, lists of models) and adds what botbuilder and Firebell read without looking: the fields
every activity to a bot has, `channelData` and `value` as objects (and the tenant, team, channel
and card action in them), mentions, and card action data as text. A problem is a 400 naming
the field.
"""
from __future__ import annotations

from typing import Any

import botbuilder.schema as schema
from botbuilder.schema import Activity
from msrest.exceptions import DeserializationError
from msrest.serialization import Deserializer

from handlers.ingest.delivery import Rejected

_MODELS = {name: cls for name, cls in vars(schema).items()
           if isinstance(cls, type) and hasattr(cls, "_attribute_map")}
# Firebell reads these as objects (and ids and names in them as text).
_OBJECTS = {"channelData": ("tenant", "team", "channel"), "value": ("action",)}
# Ids Firebell stores, and the columns' sizes (PostgreSQL enforces them): longer is a 400.
_ID_LIMITS = {("conversation", "id"): 500, ("conversation", "tenantId"): 100,
              ("conversation", "tenantID"): 100,
              ("channelData", "team", "id"): 500, ("channelData", "tenant", "id"): 100}
# Display names it stores: longer is clipped.
_NAME_LIMITS = {("from", "name"): 200, ("conversation", "name"): 300,
                ("channelData", "channel", "name"): 300}


def activity_from(doc: Any) -> Activity:
    if not isinstance(doc, dict):
        raise Rejected(400, "not an activity: a JSON object with a `type` is required")
    if not isinstance(doc.get("type"), str) or not doc["type"]:
        raise Rejected(400, "not an activity: `type` must be a non-empty string")
    _check_model(Activity, doc, "")
    _check_required(doc)
    for key, inner in _OBJECTS.items():
        _check_object(doc, key, inner)
    _check_mentions(doc.get("entities") or [])
    _check_lengths(doc)
    if doc["type"] == "message":  # Action.Submit: the data is the value
        _check_card_data(doc.get("value") or {}, "value")
    if doc["type"] == "invoke" and doc.get("name") == "adaptiveCard/action":
        action = (doc.get("value") or {}).get("action") or {}
        _check_card_data(action.get("data") or {}, "value.action.data")
    try:
        return Activity().deserialize(doc)
    except DeserializationError as exc:  # a net under the checks above
        raise Rejected(400, f"not a Bot Framework activity: {str(exc)[:200]}") from None


def _check_required(doc: dict[str, Any]) -> None:
    """What the Bot Framework always sends a bot, and what a turn cannot go without: the
    conversation and the service URL to answer in, who spoke and to whom."""
    for key in ("serviceUrl", "channelId"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise Rejected(400, f"`{key}` is required")
    if len(doc["serviceUrl"]) > 500 or not doc["serviceUrl"].startswith(("https://", "http://")):
        raise Rejected(400, "`serviceUrl` must be an http(s) URL of at most 500 characters")
    for key in ("from", "recipient", "conversation"):
        if not isinstance(doc.get(key), dict) or not doc[key].get("id"):
            raise Rejected(400, f"`{key}` with an `id` is required")


def _check_model(model: type, doc: dict[str, Any], where: str) -> None:
    # Case-insensitive, like msrest's deserializer (botbuilder maps `tenantID`; Teams sends
    # `tenantId`).
    sent = {k.lower(): k for k in doc}
    for attribute in model._attribute_map.values():
        key = sent.get(attribute["key"].lower())
        if key is not None and doc[key] is not None:
            _check_value(attribute["type"], doc[key], f"{where}{key}")


def _check_value(kind: str, value: Any, where: str) -> None:
    if kind.startswith("[") and kind.endswith("]"):
        if not isinstance(value, list):
            raise Rejected(400, f"`{where}` must be a list")
        for i, item in enumerate(value):
            _check_value(kind[1:-1], item, f"{where}[{i}]")
    elif value is None and where.endswith("]"):
        raise Rejected(400, f"`{where}` must not be null")
    elif kind == "str" and not isinstance(value, str):
        raise Rejected(400, f"`{where}` must be a string")
    elif kind == "bool" and not isinstance(value, bool):
        raise Rejected(400, f"`{where}` must be true or false")
    elif kind == "iso-8601":
        _check_time(value, where)
    elif kind in _MODELS:
        if not isinstance(value, dict):
            raise Rejected(400, f"`{where}` must be an object")
        _check_model(_MODELS[kind], value, f"{where}.")


def _check_time(value: Any, where: str) -> None:
    try:
        Deserializer.deserialize_iso(value)
    except DeserializationError:
        raise Rejected(400, f"`{where}` must be an ISO 8601 time in years 1 to 9999") from None


def _check_object(doc: dict[str, Any], key: str, inner: tuple[str, ...]) -> None:
    value = doc.get(key)
    if value is None:
        return
    if not isinstance(value, dict):
        raise Rejected(400, f"`{key}` must be an object")
    for name in inner:
        part = value.get(name)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise Rejected(400, f"`{key}.{name}` must be an object")
        for field in ("id", "name", "verb"):
            if part.get(field) is not None and not isinstance(part[field], str):
                raise Rejected(400, f"`{key}.{name}.{field}` must be a string")
        if part.get("data") is not None and not isinstance(part["data"], dict):
            raise Rejected(400, f"`{key}.{name}.data` must be an object")


def _check_lengths(doc: dict[str, Any]) -> None:
    for path, limit in _ID_LIMITS.items():
        _, value = _at(doc, path)
        if isinstance(value, str) and len(value) > limit:
            raise Rejected(400, f"`{'.'.join(path)}` is longer than {limit} characters")
    for path, limit in _NAME_LIMITS.items():
        parent, value = _at(doc, path)
        if isinstance(value, str) and len(value) > limit:
            parent[path[-1]] = value[:limit]


def _at(doc: dict[str, Any], path: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    parent = doc
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent.get(key), dict) else {}
    return parent, parent.get(path[-1])


def _check_mentions(entities: list[Any]) -> None:
    """botbuilder lower-cases every entity's type and reads a mention's `mentioned.id`."""
    for i, entity in enumerate(entities):
        if not isinstance(entity.get("type"), str):
            raise Rejected(400, f"`entities[{i}].type` must be a string")
        if entity["type"].lower() != "mention":
            continue
        mentioned = entity.get("mentioned")
        if not isinstance(mentioned, dict) or not isinstance(mentioned.get("id"), str):
            raise Rejected(400, f"`entities[{i}].mentioned` must be an object with an `id`")
        if not isinstance(entity.get("text") or "", str):
            raise Rejected(400, f"`entities[{i}].text` must be a string")


def _check_card_data(data: dict[str, Any], where: str) -> None:
    """A card's action data is what its inputs hold, plus Firebell's own `version` and `items`
    (a list of ids). Teams sends every input as text; a number or true/false in its place
    becomes that text here (the commands read text), and an object or a list is refused."""
    for key, item in data.items():
        if key == "version" and not isinstance(item, (dict, list)):
            continue
        if key == "items" and isinstance(item, list) and \
                not any(isinstance(x, (dict, list)) for x in item):
            continue
        if isinstance(item, (dict, list)):
            raise Rejected(400, f"`{where}.{key}` must be text")
        if isinstance(item, bool):
            data[key] = "true" if item else "false"
        elif isinstance(item, (int, float)):
            data[key] = str(item)
