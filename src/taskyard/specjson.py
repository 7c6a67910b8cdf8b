"""The JSON shape of a submit (the HTTP API's body, a line of ``taskyard submit
--from-file``, a mapping given to ``Yard.submit_many``) as a :class:`TaskSpec`: one
conversion for all three, checked strictly (unknown fields and wrong types refused,
naming the field)."""

from __future__ import annotations

import base64
import time
from typing import Any

from pydantic import ValidationError

from . import limits, outputbounds, retry, validate
from .errors import InvalidInput
from .model import TaskSpec
from .rates import parse_rate_limit
from .web.schemas import SubmitBody


def from_json_text(text: str | bytes, tenant: str | None = None, *,
                   cwd: str | None = None) -> TaskSpec:
    """The spec of one JSON object (``cwd``: where it runs when it names no cwd)."""
    try:
        body = SubmitBody.model_validate_json(text)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return _with_cwd(spec_of(body, tenant), cwd)


def from_mapping(value: object, tenant: str | None = None, *,
                 cwd: str | None = None) -> TaskSpec:
    """The spec of a mapping of the same fields (Python values as JSON has them)."""
    try:
        body = SubmitBody.model_validate(value)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return _with_cwd(spec_of(body, tenant), cwd)


def _with_cwd(spec: TaskSpec, cwd: str | None) -> TaskSpec:
    return spec._replace(cwd=cwd) if spec.cwd is None and cwd is not None else spec


def _invalid(exc: ValidationError) -> InvalidInput:
    """pydantic's first complaint as one line naming the field."""
    first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {"msg": "invalid"}
    if first.get("type") == "json_invalid":
        ctx: dict[str, Any] = first.get("ctx") or {}
        return InvalidInput(f"not JSON: {ctx.get('error', 'invalid')}", field="json")
    field = ".".join(str(p) for p in first.get("loc", ()) if not _union_member(p)) or "spec"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return InvalidInput(f"{field}: {message}", field=field)


def _union_member(part: object) -> bool:
    """pydantic names a union's member in an error's location (``delay.str``)."""
    return isinstance(part, str) and part in ("str", "int", "float", "bool", "none")


def spec_of(body: SubmitBody, tenant: str | None) -> TaskSpec:
    """The TaskSpec of a submit body (``tenant``: the caller's, which wins)."""
    if body.argv is None and body.function is None:
        raise InvalidInput("give argv (a command) or function (a registered function's"
                           " name)", field="argv")
    if body.argv is not None and body.function is not None:
        raise InvalidInput("give argv (a command) or function, not both", field="argv")
    if body.kwargs is not None and body.function is None:
        raise InvalidInput("kwargs goes with function", field="kwargs")
    if body.stdin is not None and body.stdin_base64 is not None:
        raise InvalidInput("give stdin or stdin_base64, not both", field="stdin")
    stdin = body.stdin.encode("utf-8", "surrogatepass") if body.stdin is not None else None
    if body.stdin_base64 is not None:
        try:
            stdin = base64.b64decode(body.stdin_base64, validate=True)
        except ValueError:
            raise InvalidInput("stdin_base64 is not base64", field="stdin_base64") from None
    fds = _fds(body)
    if body.cwd is not None and not body.cwd.startswith("/"):
        raise InvalidInput("cwd must be an absolute path", field="cwd")
    if body.at is not None and body.delay is not None:
        raise InvalidInput("give at or delay, not both", field="at")
    run_at = None
    if body.at is not None:
        text = body.at.strip()
        naive = len(text) <= 10 or not any(c in text[10:] for c in "Zz+-")
        run_at = validate.parse_time(text + ("Z" if naive else ""), "at")
    elif body.delay is not None:
        seconds = (validate.parse_duration(body.delay, "delay") if isinstance(body.delay, str)
                   else validate.real(body.delay, "delay", 0.0, 100 * 365 * 86400.0))
        run_at = time.time() + seconds
    retry_on = (tuple(r.value for r in retry.parse_on(",".join(body.retry_on)))
                if body.retry_on is not None else TaskSpec._field_defaults["retry_on"])
    return TaskSpec(argv=tuple(body.argv or ()), name=body.name, queue=body.queue,
                    env=dict(body.env), cwd=body.cwd, meta=dict(body.meta), stdin=stdin,
                    stdin_open=body.stdin_open, timeout=body.timeout, priority=body.priority,
                    run_at=run_at, retries=body.retries, retry_delay=body.retry_delay,
                    backoff=body.backoff, retry_on=retry_on, after=tuple(body.after),
                    unique=body.unique, mutex=body.mutex,
                    tenant=tenant or body.tenant or "default", function=body.function,
                    kwargs=dict(body.kwargs) if body.kwargs is not None else (
                        {} if body.function is not None else None), fds=fds,
                    on_finish=(validate.check_hook(body.on_finish)
                               if body.on_finish is not None else None), keep=body.keep,
                    limits=limits.parse(body.limits.model_dump(exclude_none=True), "limits.")
                    if body.limits is not None else limits.NONE,
                    rate_limit=(parse_rate_limit(body.rate_limit)
                                if body.rate_limit is not None else None),
                    output_head=outputbounds.parse_optional(body.output_head, "output_head"),
                    output_tail=outputbounds.parse_optional(body.output_tail, "output_tail"))


def _fds(body: SubmitBody) -> dict[int, bytes]:
    """``fds`` (text) and ``fds_base64``, keyed by descriptor number."""
    found: dict[int, bytes] = {}
    given = [(k, v.encode("utf-8", "surrogatepass")) for k, v in body.fds.items()]
    for key, text in body.fds_base64.items():
        try:
            given.append((key, base64.b64decode(text, validate=True)))
        except ValueError:
            raise InvalidInput(f"fds_base64 {key}: not base64", field="fds_base64") from None
    for key, data in given:
        if not (key.isascii() and key.isdigit()) or len(key) > 4 or int(key) in found:
            raise InvalidInput(f"fds: {key!r} is not a descriptor number (3-255), or is"
                               " given twice", field="fds")
        found[int(key)] = data
    return validate.check_fds(found)
