"""The real installation under test: compose up a uniquely named project, watch the mind's container
through the Docker SDK, read the display over its published port. No part of it is faked."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str] | None:
    """Compose v2 where it exists (`docker compose`), else Debian's docker-compose 1.29."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_images(timeout: float = 2400) -> None:
    """scripts/build-images: offline, from local bases when none can be pulled. Cached layers make
    a second call take seconds."""
    subprocess.run([str(ROOT / "scripts" / "build-images")], cwd=ROOT, check=True, timeout=timeout)


@dataclass
class DockerEvent:
    at: float  # seconds, from the engine's timeNano
    action: str
    attrs: dict


@dataclass
class EventLog:
    """Every event of one container, collected by a thread from `docker events`."""

    client: docker.DockerClient
    container_id: str
    events: list[DockerEvent] = field(default_factory=list)

    def start(self, since: float) -> None:
        self._stream = self.client.events(
            decode=True, since=int(since), filters={"container": self.container_id, "type": "container"}
        )
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for ev in self._stream:
                self.events.append(
                    DockerEvent(
                        at=ev.get("timeNano", 0) / 1e9 or float(ev.get("time", 0)),
                        action=ev.get("Action") or ev.get("status", ""),
                        attrs=(ev.get("Actor") or {}).get("Attributes", {}),
                    )
                )
        except Exception:  # noqa: BLE001 - the stream closes (any way it likes) when the test ends
            return

    def stop(self) -> None:
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing an already broken stream
            pass

    def deaths(self) -> list[tuple[DockerEvent, DockerEvent]]:
        """(oom, die) pairs: a die preceded by an oom since the previous die."""
        pairs, oom = [], None
        for ev in list(self.events):
            if ev.action == "oom":
                oom = ev
            elif ev.action == "die":
                if oom is not None:
                    pairs.append((oom, ev))
                oom = None
        return pairs

    def first_after(self, action: str, t: float) -> DockerEvent | None:
        return next((e for e in list(self.events) if e.action == action and e.at >= t), None)


class Stack:
    def __init__(self, project: str, env: dict[str, str]):
        self.project = project
        self.mirror_port = free_port()
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": project,
            # a chronicle of its own: never the installation's (`down -v` removes it)
            "CHRONICLE_VOLUME": f"{project}_chronicle",
            "MIRROR_PORT": str(self.mirror_port),
            **env,
        }
        self.client = docker.from_env()
        self.base = f"http://127.0.0.1:{self.mirror_port}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = compose_command()
        assert cmd is not None, "no compose command"
        return subprocess.run(
            [*cmd, *args], cwd=ROOT, env=self.env, check=True, timeout=timeout, capture_output=True, text=True
        )

    def up(self) -> None:
        self.compose("up", "-d", "--no-build")

    def down(self) -> None:
        try:
            self.compose("down", "-v", "--remove-orphans", timeout=180)
        except subprocess.SubprocessError:
            pass

    def container(self, service: str):
        found = self.client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]},
        )
        assert found, f"no {service} container in project {self.project}"
        return found[0]

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(self.base + path, timeout=timeout)

    def wait_http(self, path: str, deadline_s: float) -> httpx.Response:
        end = time.monotonic() + deadline_s
        while True:
            try:
                r = self.get(path)
                if r.status_code == 200:
                    return r
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise AssertionError(f"{path} did not answer 200 within {deadline_s}s")
            time.sleep(0.5)

    def lives(self) -> list[dict]:
        return self.get("/chronicle/lives").json()

    def mirror_status(self, timeout: float = 10.0) -> dict:
        """The first status the mirror page would receive on connect (its snapshot)."""
        with httpx.stream("GET", self.base + "/frames", timeout=timeout) as r:
            event = None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "status":
                    return json.loads(line.split(":", 1)[1])
        raise AssertionError("the mirror sent no status")

    def mind_vitals(self) -> dict:
        """The mind's GET /vitals, read inside its container (it has no port on the host)."""
        try:
            out = self.container("mind").exec_run(
                [
                    "python",
                    "-c",
                    (
                        "import sys, urllib.request; "
                        "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8000/vitals', timeout=5)"
                        ".read().decode())"
                    ),
                ]
            )
        except docker.errors.APIError:  # not running: between a death and its restart
            return {}
        return json.loads(out.output) if out.exit_code == 0 else {}

    def measured_costs(self, timeout_s: float = 300) -> dict:
        """The mind's vitals once it has measured its base memory and what a token of context costs
        (at its first growth step)."""

        def measured():
            v = self.mind_vitals()
            return v if v.get("growths", 0) >= 1 and v.get("base_bytes") and v.get("kv_bytes_per_token") else None

        return wait_for(measured, timeout_s, "the mind to measure its memory costs")

    def set_mind_limit(self, limit: int, timeout_s: float = 20) -> None:
        """A live limit change (docker update), swap limited to the same value. cgroup v1 refuses a limit
        below the usage it cannot reclaim at once (the frame cache's dirty pages, until written back):
        tried again until it takes. A limit below what the life holds for good never takes: set it
        between lives (restart_mind_with_limit)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.container("mind").update(mem_limit=limit, memswap_limit=limit)
                return
            except docker.errors.APIError as e:
                if "unable to set memory limit" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def restart_mind_with_limit(self, limit: int) -> float:
        """A new life under ``limit``: the mind stopped, its limit changed, started again. A lower limit
        set live races the life: cgroup v1 refuses it once the life holds more, and a life just under it
        dies before its vitals report it. Returns a moment between the two lives (lives born after it
        are the new limit's)."""
        mind = self.container("mind")
        mind.stop(timeout=20)
        between = time.time()
        mind.update(mem_limit=limit, memswap_limit=limit)
        mind.start()
        return between

    def mind_logs(self) -> str:
        return self.container("mind").logs().decode("utf-8", "replace")


def wait_for(predicate, timeout_s: float, what: str, every: float = 1.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@contextmanager
def running_stack(client: docker.DockerClient, prefix: str, env: dict[str, str], log_name: str):
    """A compose project up, with the mind's Docker events collected; always torn down (even when
    bringing it up fails half-way), the mind's log kept under test-output/."""
    stack = Stack(f"{prefix}{os.getpid()}", env)
    try:
        stack.up()
        stack.events = EventLog(client, stack.container("mind").id)
        stack.events.start(since=time.time() - 60)
        yield stack
    finally:
        out = ROOT / "test-output"
        out.mkdir(exist_ok=True)
        try:
            (out / log_name).write_text(stack.mind_logs()[-500_000:])
        except Exception:  # noqa: BLE001 - no mind container to read: nothing to keep
            pass
        if getattr(stack, "events", None) is not None:
            stack.events.stop()
        stack.down()
