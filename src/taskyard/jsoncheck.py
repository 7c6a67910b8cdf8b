"""JSON values users hand in (meta, kwargs, results, messages, state): finite numbers,
64-bit integers, string keys, valid Unicode, bounded depth and size. Raises
:class:`InvalidInput` naming the field; re-exported by :mod:`taskyard.validate`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput
from .model import JSON

MAX_META_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
INT64 = 2**63


def check_unicode(value: str, what: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{what} is not valid UTF-8 text", field=what.split()[0].rstrip(":")) from None
    return value


def _check_json_number(value: float, field: str) -> None:
    if isinstance(value, int):
        if not -INT64 <= value < INT64:
            raise InvalidInput(f"{field}: JSON integer beyond 64 bits", field=field)
    elif not math.isfinite(value):
        raise InvalidInput(f"{field}: JSON number must be finite (no NaN or Infinity)",
                           field=field)


def _check_json_value(value: Any, depth: int = 0, field: str = "meta") -> None:
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(f"{field}: JSON nested deeper than {MAX_JSON_DEPTH} levels",
                           field=field)
    if isinstance(value, str):
        check_unicode(value, f"{field}: a string")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        _check_json_number(value, field)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json_value(item, depth + 1, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{field}: JSON object keys must be strings", field=field)
            check_unicode(key, f"{field}: a key")
            _check_json_value(item, depth + 1, field)
    else:
        raise InvalidInput(f"{field}: not a JSON value: {type(value).__name__}", field=field)


def check_json(value: Any, what: str, max_bytes: int = MAX_META_BYTES) -> str:
    """Validate a JSON value (finite numbers, 64-bit integers, string keys, depth,
    size); returns its compact JSON text."""
    _check_json_value(value, 0, what)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(text.encode()) > max_bytes:
        raise InvalidInput(f"{what} is over {max_bytes} bytes", field=what)
    return text


def _reject_constant(name: str, what: str = "meta") -> Any:
    raise InvalidInput(f"{what}: {name} is not valid JSON", field=what)


def parse_json_value(text: str | bytes, what: str,
                     max_bytes: int = MAX_META_BYTES) -> JSON:
    """Parse any user JSON value; size, depth, NaN and int range are checked."""
    if len(text) > max_bytes:
        raise InvalidInput(f"{what} is over {max_bytes} bytes", field=what)
    try:
        value = json.loads(text, parse_constant=lambda name: _reject_constant(name, what))
    except RecursionError:
        raise InvalidInput(f"{what}: JSON nested too deeply", field=what) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}", field=what) from None
    _check_json_value(value, 0, what)
    return value


def parse_json_object(text: str | bytes, what: str = "meta",
                      max_bytes: int = MAX_META_BYTES) -> dict[str, JSON]:
    """Parse user JSON that must be an object; size, depth, NaN and int range are checked."""
    value = parse_json_value(text, what, max_bytes)
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object", field=what)
    return value


def check_meta(meta: Mapping[str, JSON], max_bytes: int = MAX_META_BYTES) -> str:
    """Validate a meta object; returns its stored JSON text."""
    if not isinstance(meta, Mapping):
        raise InvalidInput("meta must be a JSON object", field="meta")
    return check_json(dict(meta), "meta", max_bytes)
