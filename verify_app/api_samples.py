"""What a REST request carries: form fields and sample files, multipart or raw, under a size limit.

Two shapes are accepted:

- ``multipart/form-data`` with files ``face`` and/or ``voice`` and text fields (``name``,
  ``level``, ...); fields may also come in the query string (or a urlencoded form: fields only);
- the raw file as the body, ``Content-Type: image/*`` (a face) or ``audio/*`` (a voice), or any
  type with ``?modality=face|voice``; fields in the query string.

Bodies over the limit are refused with :class:`InputTooLargeError` (413): at once when
``Content-Length`` says so, else as soon as the bytes received pass it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from verify.config import MODALITIES
from verify.errors import InputError, InputTooLargeError
from verify_app.api_errors import error_response

SAMPLE_FIELDS = MODALITIES  # ("face", "voice")
MAX_FORM_FIELDS = 8

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class FieldError(InputError):
    """A form field or query parameter is missing, unknown or malformed."""


@dataclass(frozen=True)
class Submission:
    """A request's text fields and encoded samples.

    Attributes:
        fields: text fields by name (``name``, ``level``, ...).
        samples: encoded file bytes by modality (``face``, ``voice``).
    """

    fields: Mapping[str, str] = field(default_factory=dict)
    samples: Mapping[str, bytes] = field(default_factory=dict)

    def text(self, name: str, required: bool = False) -> str | None:
        """The field ``name``, or ``None`` when absent.

        Raises:
            FieldError: it is required and absent or blank.
        """
        value = self.fields.get(name)
        if required and (value is None or not value.strip()):
            raise FieldError(f"the field {name!r} is required")
        return value

    def flag(self, name: str) -> bool:
        """A boolean field: ``true``/``1``/``yes`` or ``false``/``0``/``no`` (absent: false).

        Raises:
            FieldError: any other value.
        """
        value = (self.fields.get(name) or "false").strip().lower()
        if value not in ("true", "1", "yes", "false", "0", "no"):
            raise FieldError(f"the field {name!r} must be true or false, got {value!r}")
        return value in ("true", "1", "yes")


def _check_fields(names: set[str], allowed: frozenset[str]) -> None:
    unknown = sorted(names - allowed - set(SAMPLE_FIELDS))
    if unknown:
        raise FieldError(f"unknown field(s) {', '.join(map(repr, unknown))}; this endpoint takes "
                         f"{', '.join(sorted(allowed | set(SAMPLE_FIELDS)))}")


async def read_submission(request: Request, allowed: frozenset[str]) -> Submission:
    """The fields and samples of ``request`` (see the module's docstring for the accepted shapes).

    Raises:
        FieldError: an unknown field, a sample sent as text, or a raw body of unknown modality.
        InputTooLargeError: the body is over the limit.
    """
    query = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields, samples = dict(query), {}
        async with request.form(max_files=len(SAMPLE_FIELDS), max_fields=MAX_FORM_FIELDS) as form:
            for key, value in form.multi_items():
                if key in SAMPLE_FIELDS:
                    if not isinstance(value, UploadFile):
                        raise FieldError(f"the field {key!r} must be a file")
                    samples[key] = await value.read()
                else:
                    fields[key] = value if isinstance(value, str) else ""
        _check_fields(set(fields) | set(samples), allowed)
        return Submission(fields, samples)
    modality = query.pop("modality", None) or {"image": "face", "audio": "voice"}.get(content_type.split("/")[0])
    body = await request.body()
    _check_fields(set(query), allowed)
    if not body:
        return Submission(query, {})
    if modality not in SAMPLE_FIELDS:
        raise FieldError("send multipart/form-data with files 'face' and/or 'voice', or the raw file with "
                         "Content-Type image/* or audio/* (or ?modality=face|voice)")
    return Submission(query, {modality: body})


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` under ``prefix`` (413, JSON)."""

    def __init__(self, app: ASGIApp, max_bytes: int, prefix: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    def _too_large(self, declared_bytes: int | None = None) -> InputTooLargeError:
        size = f" ({declared_bytes / 2**20:.1f} MiB)" if declared_bytes is not None else ""
        return InputTooLargeError(f"the request body{size} is over the limit of {self.max_bytes / 2**20:g} MiB")

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(self._too_large(int(declared)))(scope, receive, send)
            return
        received = 0

        async def limited() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, limited, send)
