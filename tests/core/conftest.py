"""Fixtures for the core's tests: a small programmable HTTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
