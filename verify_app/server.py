"""One server process: the REST API at ``/api/v1`` and the web app mounted beside it at ``/``.

The models are loaded once, when the server starts, and shared by both. With micro-batching on
(:mod:`verify.batching`), concurrent requests of either front end share forward passes, and
their samples are decoded in the requests' own threads.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from fastapi import FastAPI

from enrollment.service import Service
from verify.batching import BatchingConfig, BatchingPipeline, sample_decoder
from verify.config import MODALITIES
from verify.embedding import Pipeline
from verify.lanes import load_lanes
from verify_app.rest import ApiConfig, build_api
from verify_app.ui import PAGE_HEAD, build_app

MAX_UPLOAD = "50mb"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def serving_pipelines(device: Any, batching: BatchingConfig | None, cpu_threads: int | None = None,
                      lanes: int | None = None) -> dict[str, Pipeline]:
    """Both modalities' pipelines, loaded now; wrapped for micro-batching unless ``batching`` is None.

    With micro-batching, each modality runs in ``lanes`` copies (:mod:`verify.lanes`; ``None``:
    as many as suit the device), each serving batches from the one queue; without it, in one
    (live streams keep their face tracking). ``cpu_threads``: threads of each copy's networks on
    the CPU (``None``: its share of the cores).
    """
    count = 1 if batching is None else lanes
    pipelines = {modality: load_lanes(modality, device, count, cpu_threads) for modality in MODALITIES}
    if batching is None:
        return pipelines
    return {m: BatchingPipeline(p, batching, prepare=sample_decoder(p)) for m, p in pipelines.items()}


def build_server(service: Service, api: ApiConfig = ApiConfig(), *, ui_auth: tuple[str, str] | None = None,
                 ui_concurrency: int = 2, host: str = "127.0.0.1", port: int = 7860) -> FastAPI:
    """The REST API over ``service`` with the web app mounted at ``/`` (its own ``--auth`` login).

    Raises:
        ValueError: the API is served without tokens on an address other than localhost.
    """
    if not api.require_token and host not in LOCAL_HOSTS:
        raise ValueError(f"--no-api-auth is only allowed with a localhost address, not {host!r}")
    app = build_api(service, api)
    demo = build_app(service, concurrency=ui_concurrency)
    return gr.mount_gradio_app(app, demo, path="/", auth=ui_auth, max_file_size=MAX_UPLOAD, show_error=False,
                               server_name=host, server_port=port, head=PAGE_HEAD)


def close_pipelines(pipelines: dict[str, Pipeline]) -> None:
    """Stop the batching workers of ``pipelines`` (others need nothing)."""
    for pipeline in pipelines.values():
        if isinstance(pipeline, BatchingPipeline):
            pipeline.close()
