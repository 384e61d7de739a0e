"""The app served on a free loopback port, for tests that talk to it over HTTP or through a browser."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from enrollment.service import Service
from verify_app.rest import ApiConfig
from verify_app.server import build_server


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; the caller binds it soon after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(service: Service, api: ApiConfig = ApiConfig()) -> Iterator[str]:
    """The REST API and web app over ``service`` in one uvicorn, as ``app.py`` serves them, in a
    thread; yields the base URL (``http://127.0.0.1:PORT``) and stops the server on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_server(service, api, port=port), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
