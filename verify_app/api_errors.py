"""The REST API's errors: one table from error class to HTTP status, and the JSON every error returns.

Every answer that is not a success is ``{"error": "<class name>", "message": "<what went wrong>"}``
with the status of the nearest class in :data:`STATUS_BY_ERROR` along the error's class hierarchy.
Server faults (the store, the weights, anything unexpected) answer 500 without their message,
which may name server paths; the log keeps it.
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from enrollment.errors import (
    InvalidIdentityError,
    InvalidTokenError,
    LockedOutError,
    StoreError,
    ThrottledError,
    TokenScopeError,
    UnknownIdentityError,
)
from verify.errors import BusyError, InputTooLargeError, ModelMismatchError, VerifyError, WeightsError

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    VerifyError: 400,  # bad input: unreadable sample, no face, no speech, bad option, invalid name
    InvalidTokenError: 401,
    TokenScopeError: 403,
    UnknownIdentityError: 404,
    ModelMismatchError: 409,  # enrolled with another model: re-enroll
    InputTooLargeError: 413,
    LockedOutError: 423,
    ThrottledError: 429,
    BusyError: 503,
    InvalidIdentityError: 400,
    StoreError: 500,
    WeightsError: 500,
}
"""HTTP status of each error class; an error takes the entry of its nearest class."""

SERVER_FAULT = 500


def status_of(error: BaseException) -> int:
    """The HTTP status of ``error``: its nearest class's entry in :data:`STATUS_BY_ERROR`, else 500."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return SERVER_FAULT


def retry_after_s(error: BaseException) -> int | None:
    """Seconds a client should wait before trying again (the ``Retry-After`` header), if it applies."""
    if isinstance(error, LockedOutError):
        return max(1, math.ceil(error.until - time.time()))
    if isinstance(error, ThrottledError):
        return max(1, math.ceil(error.retry_after))
    if isinstance(error, BusyError):
        return 1
    return None


def error_response(error: BaseException) -> JSONResponse:
    """The JSON answer to ``error``, with ``WWW-Authenticate`` and ``Retry-After`` where they apply."""
    status = status_of(error)
    if status >= SERVER_FAULT:
        log.error("request failed: %s: %s", type(error).__name__, error, exc_info=error)
        body = {"error": "InternalError", "message": "the server failed to answer; its log says why"}
    else:
        body = {"error": type(error).__name__, "message": str(error)}
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    wait = retry_after_s(error)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, prefix: str) -> None:
    """Answer every error under ``prefix`` as JSON (other paths, the web app's, keep their own)."""

    async def verify_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(error)

    async def bad_request(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "RequestValidationError", "message": str(error)}, status_code=400)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        name = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status_code, "HTTPError")
        return JSONResponse({"error": name, "message": str(error.detail)}, status_code=error.status_code,
                            headers=error.headers)

    async def unexpected(request: Request, error: Exception) -> Response:
        if not request.url.path.startswith(prefix):  # what Starlette answers without a handler
            return PlainTextResponse("Internal Server Error", status_code=SERVER_FAULT)
        return error_response(error)

    app.add_exception_handler(VerifyError, verify_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
