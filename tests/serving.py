"""Test helpers for the routing service: a free loopback port and a running `embedllm serve` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

KEY = "test-key-123"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A running `embedllm serve` process and an httpx client for it."""

    def __init__(self, db: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(db.parent / f"serve-{self.port}.log", "w")
        cmd = [sys.executable, "-c", "from embedllm.cli import main; main()", "serve", "--warehouse", str(db)]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port), "--log-level", "warning", *args],
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_up(self, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {Path(self.log.name).read_text()}")
            try:
                self.client.get("/health", headers={"authorization": f"Bearer {KEY}"})
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("serve did not come up")

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
