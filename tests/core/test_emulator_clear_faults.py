"""The emulator's reset contract: `clear_faults()` removes every fault and releases the requests
held (the one reset); `release_held()` lets held requests go on and keeps the faults."""

from __future__ import annotations

import threading

from paywire.testing.emulator import EmulatorServer, Fault
from tests.core.test_emulator_fault_aim import Keyed, _post


def _held_post(url: str, key: str, answers: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.append(_post(url, b"x", key)))
    thread.start()
    return thread


def test_clear_faults_removes_the_faults_and_answers_the_held_requests() -> None:
    app = Keyed()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="hold", method="POST", path="/ops", times=5))
        answers: list[int] = []
        thread = _held_post(server.url, "k1", answers)
        assert app.wait_until_held(1)
        app.clear_faults()
        thread.join()
        assert answers == [200]
        assert _post(server.url, b"y", "k2") == 200  # no fault left to hold it
        assert app.wait_until_held(1, timeout=0) is False


def test_release_held_answers_the_held_requests_and_keeps_the_faults() -> None:
    app = Keyed()
    with EmulatorServer(app) as server:
        app.inject(Fault(kind="hold", method="POST", path="/ops", times=2))
        answers: list[int] = []
        first = _held_post(server.url, "k1", answers)
        assert app.wait_until_held(1)
        assert app.release_held()
        first.join()
        assert answers == [200]
        second = _held_post(server.url, "k2", answers)
        assert app.wait_until_held(1)  # the fault's second use holds it too
        app.clear_faults()
        second.join()
        assert answers == [200, 200]
