"""Running `paywire serve` as a real process on loopback, and a FakePay that counts fetches."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from paywire.testing.emulator import EmulatorRequest, Reply
from tests.ledger.fakepay import CREDENTIALS, FakePayApp
from tests.ledger.support import PATIENT

ROOT = Path(__file__).resolve().parents[2]


class CountingFakePay(FakePayApp):
    """FakePay that counts the fetches of each payment, and how often two overlapped."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: dict[str, int] = {}
        self.overlaps = 0
        self._fetching: set[str] = set()

    def answer(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        parts = request.path.strip("/").split("/")
        fetch = request.method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payments"]
        if not fetch:
            return super().answer(request)
        pid = parts[2]
        with self.lock:
            self.fetches[pid] = self.fetches.get(pid, 0) + 1
            self.overlaps += pid in self._fetching
            self._fetching.add(pid)
        try:
            time.sleep(0.05)  # a provider takes a moment: room for a second worker to overlap
            return super().answer(request)
        finally:
            with self.lock:
                self._fetching.discard(pid)


def install_fakepay(folder: Path) -> Path:
    """A dist-info on a path of its own declaring FakePay in paywire's entry-point group."""
    info = folder / "paywire_fakepay-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paywire-fakepay\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[paywire]\nfakepay = tests.serve.fakepay_plugin:plugin\n")
    return folder


def write_config(path: Path, emulator_url: str, ledger_url: str, serve: dict[str, Any] | None = None,
                 read_timeout: float = PATIENT["read_timeout"]) -> Path:
    """A paywire.toml for `paywire serve` on the ledger and FakePay. Its reads (the Janitor's, a
    webhook's follow-up) are patient by default: a loaded machine's slow answer is still an
    answer, which a test needs; a test that needs a read to outlast something passes its own."""
    lines = ["[paywire]", f"ledger = {json.dumps(ledger_url)}"]
    if serve:
        lines.append("[paywire.serve]")
        lines += [f"{key} = {_toml(value)}" for key, value in serve.items()]
    lines += ["[methods.fakepay]", 'environment = "sandbox"', f"base_url = {json.dumps(emulator_url)}",
              f"timeout = {{ connect = 0.5, read = {read_timeout} }}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return "true" if value is True else "false" if value is False else json.dumps(value)


class ServeProcess:
    """`paywire serve` in a process of its own (without the environment variables in `without`),
    on the loopback port it chose itself (`--port 0`) and named on stderr: a port found free
    beforehand could be taken by another process before the server binds it."""

    def __init__(self, config: Path, plugin_path: Path, args: Sequence[str] = (), without: Sequence[str] = ()) -> None:
        command, env = self.command(config, plugin_path, ["--port", "0", *args])  # a later --port wins
        for name in without:
            del env[name]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self.said: list[str] = []  # the lines it logged before saying where it listens
        self._port: int | None = None
        self._named = threading.Event()  # set once it named its port, or once its stderr closed
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def port(self) -> int:
        """The port it listens on, once it has said so."""
        if not self._named.wait(60) or self._port is None:
            raise AssertionError(f"paywire serve (exit code {self.proc.poll()}) never said where it listens:\n"
                                 f"{''.join(self.stderr)}")
        return self._port

    @staticmethod
    def command(config: Path, plugin_path: Path, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """The `paywire serve` command line with `args`, and its environment (FakePay installed)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(plugin_path), env.get("PYTHONPATH", "")])
        env["PAYWIRE_PLUGINS"] = "fakepay"
        for name, value in CREDENTIALS.items():
            env[f"PAYWIRE_FAKEPAY_{name.upper()}"] = value
        return [sys.executable, "-c", "from paywire.cli import run; run()", "--config", str(config), "serve",
                *args], env

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self._port is None and (found := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)):
                self.said = list(self.stderr)
                self._port = int(found.group(1))
                self._named.set()
            self.stderr.append(line)
        self._named.set()

    def request(self, verb: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(verb, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"paywire serve exited {self.proc.returncode}:\n{''.join(self.stderr)}")
            try:
                status, _, body = self.request("GET", "/healthz", timeout=5)
                if status == 200:
                    return dict(json.loads(body))
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"paywire serve never became healthy:\n{''.join(self.stderr)}")
            time.sleep(0.1)

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.exit_code(timeout)

    def exit_code(self, timeout: float = 60) -> int:
        """Wait for the process to end by itself; its exit code, with its stderr read."""
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@contextmanager
def serving(config: Path, plugin_path: Path, args: Sequence[str] = (), without: Sequence[str] = ()
            ) -> Iterator[ServeProcess]:
    server = ServeProcess(config, plugin_path, args, without)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.kill()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples with these labels, from Prometheus' text format (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return float(sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                     if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())))
