"""The emulator's `Fault(contains=...)` aim and its `hold` fault, on a real loopback server."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest

from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, Fault, Reply, route


class Counter(EmulatorApp):
    def __init__(self) -> None:
        super().__init__()
        self.applied: list[bytes] = []

    @route("POST", "/ops")
    def op(self, request: EmulatorRequest) -> Reply:
        self.applied.append(request.body)
        return Reply.json(200, {"ok": True})


class Keyed(Counter):
    """Deduplicates on `Op-Key` as providers do: the hold point between the operation and storing
    its answer under the key."""

    def handle(self, request: EmulatorRequest) -> Reply:
        key = request.header("op-key") or ""
        state, stored = self.idempotency.begin("ops", key, "")
        if state == "in_flight":
            return Reply.json(409, {"error": "in progress"})
        if stored is not None:
            return stored
        reply = super().handle(request)
        self.hold_point(request)
        self.idempotency.finish("ops", key, reply)
        return reply


def _post(url: str, body: bytes, key: str | None = None, timeout: float = 10) -> int:
    headers = {"Op-Key": key} if key else {}
    request = urllib.request.Request(url + "/ops", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("where", ["header", "body"])
def test_a_fault_aimed_by_contains_hits_only_the_requests_carrying_the_text(where: str) -> None:
    app = Counter()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="status_after", status=502, contains="key-one", times=5))
        assert _post(server.url, b"read first") == 200  # nothing aimed at it
        other = ("other-key", b"x") if where == "header" else (None, b"other-key")
        assert _post(server.url, other[1], other[0]) == 200
        aimed = ("key-one", b"x") if where == "header" else (None, b'{"key": "key-one"}')
        assert _post(server.url, aimed[1], aimed[0]) == 502
        assert len(app.applied) == 3  # status_after: applied, then the answer replaced


def _send_held(app: Counter, url: str, key: str) -> tuple[threading.Thread, list[int]]:
    """POST b"x" under `key` from a thread, and wait until the emulator holds it; its status lands
    in the list once it is released."""
    statuses: list[int] = []
    sender = threading.Thread(target=lambda: statuses.append(_post(url, b"x", key)))
    sender.start()
    assert app.wait_until_held()
    return sender, statuses


def test_a_held_request_is_applied_parked_and_answered_once_released() -> None:
    app = Counter()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="hold", contains="held"))
        sender, statuses = _send_held(app, server.url, "held")
        assert app.applied == [b"x"] and statuses == []  # applied, its answer not yet sent
        assert _post(server.url, b"y", "free") == 200  # other requests go on meanwhile
        assert app.release_held()
        sender.join(10)
        assert statuses == [200]


def test_a_request_held_at_its_hold_point_keeps_its_key_in_flight() -> None:
    app = Keyed()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="hold", contains="k1"))
        sender, statuses = _send_held(app, server.url, "k1")
        assert _post(server.url, b"x", "k1", timeout=5) == 409  # the duplicate meets the key in flight
        assert app.release_held()
        sender.join(10)
        assert statuses == [200] and app.applied == [b"x"]
        assert _post(server.url, b"x", "k1", timeout=5) == 200 and app.applied == [b"x"]  # the stored answer


def test_a_request_is_held_once_though_the_emulator_and_the_base_both_offer_a_hold_point() -> None:
    app = Keyed()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="hold", contains="k2", times=2))
        statuses: list[int] = []
        sender = threading.Thread(target=lambda: statuses.append(_post(server.url, b"x", "k2")))
        sender.start()
        assert app.wait_until_held()
        assert app.release_held()  # returns once the request was answered: not parked again on its way out
        sender.join(10)
        assert statuses == [200]


def test_clearing_faults_releases_a_held_request() -> None:
    app = Counter()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="hold"))
        sender = threading.Thread(target=lambda: _post(server.url, b"x"))
        sender.start()
        assert app.wait_until_held()
        app.clear_faults()
        sender.join(10)
        assert not sender.is_alive()


def test_an_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="hold"):
        Fault(kind="stall")
