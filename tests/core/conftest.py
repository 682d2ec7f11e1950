"""Fixtures for the core's tests: a small programmable HTTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from paywire import security
from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, Reply, route


class EchoApp(EmulatorApp):
    """Answers every request from a queue of replies (default 200 echoing the request)."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[Reply] = []
        self.seen: list[EmulatorRequest] = []

    @route("GET", "/.*")
    @route("POST", "/.*")
    @route("DELETE", "/.*")
    def any(self, request: EmulatorRequest) -> Reply:
        with self.lock:
            self.seen.append(request)
            if self.replies:
                return self.replies.pop(0)
        body = {"method": request.method, "path": request.path, "query": dict(request.query),
                "headers": dict(request.headers), "body": request.body.decode()}
        return Reply.json(200, body)


@pytest.fixture
def echo() -> Iterator[tuple[EchoApp, str]]:
    app = EchoApp()
    with EmulatorServer(app) as server:
        yield app, server.url


@pytest.fixture
def json_reply() -> Callable[..., Reply]:
    def make(status: int, payload: Any, **headers: str) -> Reply:
        return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})

    return make


@pytest.fixture
def known_secrets_restored() -> Iterator[None]:
    """Each example wraps new secrets; the rest of the run redacts against the usual few."""
    before = security._known_secrets
    yield
    security._known_secrets = before
    security._secrets_version += 1
