"""The REST API (``/api/v1``) for integrators: plain HTTP, JSON answers, API tokens, OpenAPI.

A front end like the command line and the web app: every endpoint calls one use case of the
:class:`~enrollment.Service`, so the same rules hold (quality gate, lockout, 1:N throttle, audit,
sealed templates). Use cases run in a thread pool, never on the event loop; errors answer JSON
with the status of :mod:`verify_app.api_errors`.

==========================================  ======  =========================================
endpoint                                    scope   does
==========================================  ======  =========================================
``POST /api/v1/enroll``                     admin   enroll ``name`` from ``face`` and/or ``voice``
``POST /api/v1/verify``                     verify  check ``face``/``voice`` against ``name``
``POST /api/v1/identify``                   verify  who among the enrolled is this?
``GET /api/v1/identities``                  admin   the enrolled people and their templates
``DELETE /api/v1/identities/{name}``        admin   delete (``?modality=face|voice|all``)
``GET /api/v1/info``                        verify  models, thresholds, limits
``GET /api/v1/health``                      none    liveness
==========================================  ======  =========================================

OpenAPI: ``/api/v1/docs`` (interactive) and ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request

from enrollment.service import Service
from verify.config import MODALITIES, SECURITY_LEVELS
from verify.device import select_device
from verify.models import model_spec
from verify_app import api_models as answers
from verify_app.api_auth import ApiAuth
from verify_app.api_errors import install_error_handlers
from verify_app.api_samples import BodyLimit, read_submission

API_PREFIX = "/api/v1"
API_VERSION = "1.0"
T = TypeVar("T")


@dataclass(frozen=True)
class ApiConfig:
    """How the REST API is served.

    Attributes:
        require_token: every endpoint but ``health`` needs an API token (False only on localhost,
            with ``--no-api-auth``).
        max_body_bytes: larger request bodies are refused (413).
        workers: use cases running at once in the thread pool (with micro-batching most of them
            wait for the batch they joined, so this is the number of requests that can share one).
    """

    require_token: bool = True
    max_body_bytes: int = 32 * 2**20
    workers: int = 32


ERRORS = {status: {"model": answers.ErrorAnswer} for status in (400, 401, 403, 404, 413, 423, 429, 503)}


def _sample_body(fields: dict[str, str], required: tuple[str, ...]) -> dict:
    """OpenAPI of a request carrying samples: multipart, or the raw file with fields in the query."""
    properties = {
        "face": {"type": "string", "format": "binary", "description": "a photo (JPEG, PNG, WebP, HEIC, AVIF, BMP, GIF, TIFF)"},
        "voice": {"type": "string", "format": "binary", "description": "a speech clip (WAV, FLAC, OGG, MP3)"},
        **{name: {"type": "string", "description": text} for name, text in fields.items()},
    }
    raw = {"schema": {"type": "string", "format": "binary"}}
    parameters = [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                   "description": f"{text} (with a raw body)"} for name, text in fields.items()]
    parameters.append({"name": "modality", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": list(MODALITIES)},
                       "description": "what a raw body of another type than image/* or audio/* holds"})
    return {"parameters": parameters, "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": list(required)}},
        "image/*": raw, "audio/*": raw, "application/octet-stream": raw}}}


NAME = "the person's name"
LEVEL = "security level: low, medium or high (default: the server's)"


class _Runner:
    """Runs use cases in a bounded thread pool, off the event loop."""

    def __init__(self, workers: int) -> None:
        self.limiter = anyio.CapacityLimiter(workers)

    async def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(function, *args, **kwargs), limiter=self.limiter)


def api_router(service: Service, config: ApiConfig = ApiConfig()) -> APIRouter:
    """The ``/api/v1`` endpoints over ``service``."""
    auth = ApiAuth(service, config.require_token)
    run = _Runner(config.workers)
    router = APIRouter(prefix=API_PREFIX, responses=ERRORS)

    @router.post("/enroll", response_model=answers.EnrollAnswer, summary="Enroll a person (admin)",
                 openapi_extra=_sample_body({"name": NAME, "allow_low_quality": "true: accept a blurry, dark or "
                                             "clipped sample"}, ("name",)), dependencies=[Depends(auth.needs("admin"))])
    async def enroll(request: Request) -> dict:
        """Enroll ``name`` from one photo and/or one clip; again to add samples."""
        sent = await read_submission(request, frozenset({"name", "allow_low_quality"}))
        result = await run(service.enroll, sent.text("name", required=True), face=sent.samples.get("face"),
                           voice=sent.samples.get("voice"), allow_low_quality=sent.flag("allow_low_quality"))
        return answers.enroll_answer(result)

    @router.post("/verify", response_model=answers.VerifyAnswer, summary="Is this the person claimed?",
                 openapi_extra=_sample_body({"name": NAME, "level": LEVEL}, ("name",)))
    async def verify(request: Request, caller: str = Depends(auth.needs("verify"))) -> dict:
        """Check a photo and/or a clip against ``name``; with both, both must match (or, on a server
        started with ``--fusion sum``, their summed evidence must). Logged, and failures count
        towards the person's lockout (423 once locked)."""
        sent = await read_submission(request, frozenset({"name", "level"}))
        result = await run(service.check, sent.text("name", required=True), face=sent.samples.get("face"),
                           voice=sent.samples.get("voice"), level=sent.text("level"), caller=caller)
        return answers.verify_answer(result)

    @router.post("/identify", response_model=answers.IdentifyAnswer, summary="Who is this?",
                 openapi_extra=_sample_body({"level": LEVEL}, ()))
    async def identify(request: Request, caller: str = Depends(auth.needs("verify"))) -> dict:
        """Search every enrolled person; someone is named only on a clear match. Throttled per token
        (429)."""
        sent = await read_submission(request, frozenset({"level"}))
        result = await run(service.identify, face=sent.samples.get("face"), voice=sent.samples.get("voice"),
                           level=sent.text("level"), caller=caller)
        return answers.identify_answer(result)

    @router.get("/identities", response_model=answers.IdentitiesAnswer, summary="Enrolled people (admin)",
                dependencies=[Depends(auth.needs("admin"))])
    async def identities() -> dict:
        return answers.identities_answer(await run(service.templates))

    @router.delete("/identities/{name}", response_model=answers.DeleteAnswer, summary="Delete a person (admin)",
                   dependencies=[Depends(auth.needs("admin"))])
    async def delete(name: str, modality: str = "all") -> dict:
        """Delete ``name``'s templates: every modality, or ``?modality=face|voice``."""
        return {"identity": name, "deleted": await run(service.delete, name, modality)}

    @router.get("/info", response_model=answers.InfoAnswer, summary="Models, thresholds and limits",
                dependencies=[Depends(auth.needs("verify"))])
    async def info() -> dict:
        return await run(_info, service, config)

    @router.get("/health", response_model=answers.HealthAnswer, summary="Liveness (no token needed)")
    async def health() -> dict:
        return {"status": "ok", "models_loaded": list(service.loaded())}

    return router


def _info(service: Service, config: ApiConfig) -> dict:
    models = {}
    for modality in MODALITIES:
        spec = model_spec(modality)
        points = {level: service.operating_point(modality, level) for level in SECURITY_LEVELS}
        models[modality] = {"model": spec.model_id, "model_version": spec.version, "thresholds": {
            level: {"target_far": p.target_far, "threshold": p.threshold, "retry_threshold": p.retry_threshold}
            for level, p in points.items()}}
    return {"api_version": API_VERSION, "device": str(select_device(service.settings.device)),
            "default_level": service.settings.level, "auth": "token" if config.require_token else "none",
            "max_body_bytes": config.max_body_bytes, "models": models}


def build_api(service: Service, config: ApiConfig = ApiConfig()) -> FastAPI:
    """A FastAPI application serving the REST API over ``service`` (mount the web app beside it)."""
    app = FastAPI(title="Face and voice verification", version=API_VERSION, docs_url=f"{API_PREFIX}/docs",
                  openapi_url=f"{API_PREFIX}/openapi.json", redoc_url=None,
                  description="One-shot face and speaker verification. Send `Authorization: Bearer <token>`; "
                              "tokens come from `python -m verify token create NAME --scope verify|admin`.")
    install_error_handlers(app, "/api/")
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, prefix="/api/")
    app.include_router(api_router(service, config))

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def not_found(path: str) -> None:
        raise HTTPException(status_code=404, detail=f"no endpoint /api/{path}; see {API_PREFIX}/docs")

    app.state.service = service
    return app
