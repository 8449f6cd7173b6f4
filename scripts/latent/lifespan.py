"""Lifespan tuning: predict when the mind dies under a memory limit, and check it against real deaths.

    latent lifespan predict [--limit 700m ...] [--tokens-per-s 1.4] [--json]
    latent lifespan predict --from-vitals vitals.json --limit 700m        (no Docker)
    latent lifespan calibrate --limits 450m,500m,550m --lives 2 [--out build/calibration]
    latent lifespan set-limit 800m [--container NAME]

`predict` runs the mind once with no memory limit, as `docker compose up` would run it (the image,
model, prompt and MIND_* settings Compose reads from .env and the compose files, the models folder
and the prompt frames mounted), reads its measured costs from `/vitals` (base memory, memory per
token of context, prompt tokens, tokens/s) and predicts, per limit, the tokens thought at death and
the minutes that takes, at the measured speed and at the installation's own pace (MIND_TOKENS_PER_S).
Without --limit it predicts for the installation's MIND_MEMORY_LIMIT. `calibrate` lets the kernel
kill the mind at each limit and compares the tokens it really thought with the prediction.
`set-limit` changes the running installation's limit in place (`docker update`).

The measuring runs think as fast as they can (MIND_TOKENS_PER_S=0), whatever the installation's pace.
This module is the Docker adapter and the command line; lifespan_report holds the predictions, tables
and plot, and the arithmetic is the mind's own (mind.lifespan). Results go to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from latent import CliError
from latent.lifespan_report import (
    LifeRecord,
    LifespanError,
    Measurement,
    below_base,
    calibration_svg,
    calibration_table,
    costs_summary,
    default_settings,
    measured_enough,
    predict,
    prediction_table,
    sure_enough,
)
from latent.progress import Line, duration
from latent.project import (
    BUNDLED_MODEL,
    MODELS_IN_CONTAINER,
    MindService,
    add_project_argument,
    compose_command,
    compose_config,
    find_project,
    mind_service,
    service_filter,
)
from mind.lifespan import ContextSettings, growth_steps
from mind.sizes import SizeError, format_size, parse_size, parse_sizes

log = logging.getLogger("lifespan")

DEFAULT_IMAGE = "latent-reflection/mind:latest"
LABEL = "latent-reflection.lifespan"  # on every container this command starts, to find leftovers
MiB = 1 << 20


# -- progress: the hook every long step reports to ---------------------------------------------------


class Progress(Protocol):
    """What a measuring run or a life reports while it lasts. ``phase`` names a new step ("loading…",
    "measuring…"); ``vitals`` comes with each reading of the mind's /vitals (about once a second), with
    the limit in force (None: unlimited) and the tokens counted on the stream (None: not counted)."""

    def phase(self, text: str) -> None: ...

    def vitals(self, vitals: dict, limit_bytes: int | None, tokens: int | None) -> None: ...

    def close(self) -> None: ...


class StderrProgress:
    """The default: each phase as a line on stderr, then a bar of memory against the limit with the tokens."""

    def __init__(self, label: str = "", line: Line | None = None) -> None:
        self.label = label
        self.line = line or Line()

    def phase(self, text: str) -> None:
        self.line.note(f"{self.label}{text}")

    def vitals(self, vitals: dict, limit_bytes: int | None, tokens: int | None) -> None:
        memory = vitals.get("memory_bytes")
        shown = tokens if tokens is not None else vitals.get("tokens", 0)
        parts = [
            f"{shown} tokens",
            f"memory {format_size(memory)} of {format_size(limit_bytes) if limit_bytes else 'no limit'}",
        ]
        if vitals.get("n_ctx"):
            parts.append(f"context {vitals['n_ctx']}")
        if vitals.get("tokens_per_s"):
            parts.append(f"{vitals['tokens_per_s']:.1f} tok/s")
        if limit_bytes and vitals.get("tokens_left") is not None:
            parts.append(f"~{vitals['tokens_left']} left (mind's guess)")
        parts.append(duration(self.line.elapsed()))
        fraction = memory / limit_bytes if limit_bytes and memory else None
        self.line.update(f"{self.label}" + ", ".join(parts), fraction)

    def close(self) -> None:
        self.line.close()


class NoProgress:
    def phase(self, text: str) -> None:
        pass

    def vitals(self, vitals: dict, limit_bytes: int | None, tokens: int | None) -> None:
        pass

    def close(self) -> None:
        pass


# -- HTTP to the mind (stdlib: the host tools need no HTTP library) ---------------------------------


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes] | None:
    """(status, body), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return None


def sse_events(lines: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    """(event, data) of a text/event-stream, read line by line (the SSE framing: fields, a blank line ends
    an event; comments and ids are skipped)."""
    event, data = "message", []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


# -- Docker adapter --------------------------------------------------------------------------------


def docker_client():
    try:
        import docker
    except ImportError as exc:
        raise LifespanError(
            f"the Docker SDK is not installed ({exc}): install the host tools (pipx install . in the checkout)"
        ) from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # docker-py raises its own and requests' errors alike
        raise LifespanError(f"the Docker engine is not reachable: {exc}") from exc
    return client


def require_image(client, image: str) -> None:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise LifespanError(f"image {image} is missing: build it with scripts/build-images") from None


@dataclass
class MindOptions:
    """How the measured mind runs: by default as compose.yaml runs it, from ``service``."""

    image: str = DEFAULT_IMAGE
    context: ContextSettings = field(default_factory=default_settings)
    model: str | None = None
    threads: int | None = None
    env: dict = field(default_factory=dict)  # --env, applied last
    service: MindService | None = None  # the compose service it copies (environment, mounts)
    prompts: Path | None = None  # without a compose service: the prompt frames to mount

    def environment(self) -> dict:
        env = dict(self.service.environment) if self.service else {}
        env.update(
            {
                "MIND_N_CTX_START": str(self.context.n_ctx_start),
                "MIND_N_CTX_STEP": str(self.context.n_ctx_step),
                "MIND_N_CTX_MAX": str(self.context.n_ctx_max),
                "MIND_LOG_LEVEL": "info",
                # measure as fast as it can think: the installation's pace only stretches the minutes
                "MIND_TOKENS_PER_S": "0",
            }
        )
        if self.model:
            env["MIND_MODEL_PATH"] = self.model
        if self.threads:
            env["MIND_N_THREADS"] = str(self.threads)
        env.update(self.env)
        return env

    def mounts(self) -> tuple[dict, list]:
        """(bind volumes for docker-py, anonymous volume Mounts): the compose service's binds as they are,
        and a throwaway volume where it has a named one (the installation's own volumes stay untouched)."""
        from docker.types import Mount

        binds: dict[str, dict] = {}
        if self.service:
            for b in self.service.binds:
                binds[b.source] = {"bind": b.target, "mode": "ro" if b.read_only else "rw"}
            anonymous = [Mount(target, None, type="volume") for target in self.service.volumes]
        else:
            anonymous = []
            if self.prompts and self.prompts.is_dir():
                binds[str(self.prompts)] = {"bind": "/app/mind/prompts", "mode": "ro"}
        return binds, anonymous


class MindContainer:
    """One throwaway mind container, run like compose runs it (read-only, no capabilities, the same
    environment and mounts), its port published on 127.0.0.1 only. Always removed on exit."""

    def __init__(self, client, options: MindOptions, limit_bytes: int | None, name: str) -> None:
        self.client, self.options, self.limit_bytes, self.name = client, options, limit_bytes, name
        self.container = None
        self.url = ""
        self.started = 0.0

    def __enter__(self) -> MindContainer:
        binds, anonymous = self.options.mounts()
        kwargs: dict[str, Any] = dict(
            detach=True,
            name=self.name,
            environment=self.options.environment(),
            ports={"8000/tcp": ("127.0.0.1", None)},
            read_only=True,
            tmpfs={"/tmp": ""},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            labels={LABEL: "1"},
            restart_policy={"Name": "no"},
        )
        if binds:
            kwargs["volumes"] = binds
        if anonymous:
            kwargs["mounts"] = anonymous
        if self.limit_bytes is not None:
            # memswap == mem: no swap, so the death comes promptly (as in compose.yaml)
            kwargs.update(mem_limit=self.limit_bytes, memswap_limit=self.limit_bytes)
        self.started = time.time()
        self.container = self.client.containers.run(self.options.image, **kwargs)
        try:
            self.url = f"http://127.0.0.1:{self._host_port()}"
        except BaseException:
            self.remove()
            raise
        return self

    def _host_port(self) -> str:
        for _ in range(50):
            self.container.reload()
            bound = (self.container.attrs["NetworkSettings"].get("Ports") or {}).get("8000/tcp")
            if bound:
                return bound[0]["HostPort"]
            if self.container.status == "exited":
                break
            time.sleep(0.1)
        raise LifespanError(f"the mind container exited at once:\n{self.logs_tail()}")

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        if self.container is not None:
            try:
                self.container.remove(force=True, v=True)  # v: its throwaway volumes too
            except Exception as err:  # noqa: BLE001 - already gone is fine
                log.debug("removing %s: %s", self.name, err)
            self.container = None

    def logs_tail(self, lines: int = 15) -> str:
        try:
            return self.container.logs(tail=lines).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - logs are a courtesy in an error message
            return "(no logs)"

    def running(self) -> bool:
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - a container that cannot be read is not running
            return False
        return self.container.status in ("created", "running")

    def vitals(self) -> dict | None:
        got = http_get(self.url + "/vitals", timeout=5)
        if got is None or got[0] != 200:
            return None
        try:
            return json.loads(got[1])
        except ValueError:
            return None

    def death(self, timeout: float = 60) -> tuple[int | None, bool, float | None]:
        """(exit code, OOMKilled, seconds from start to death) once the container has stopped."""
        try:
            result = self.container.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - a timeout: still alive
            return None, False, None
        self.container.reload()
        state = self.container.attrs["State"]
        return result.get("StatusCode"), bool(state.get("OOMKilled")), _lifespan_s(state)


def _parse_docker_time(text: str) -> float | None:
    # "2026-11-23T09:30:01.123456789Z": Python wants at most microseconds
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z?$", text or "")
    if not m or m.group(1).startswith("0001"):
        return None
    import calendar

    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + m.group(2)) if m.group(2) else 0.0)


def _lifespan_s(state: dict) -> float | None:
    start, end = _parse_docker_time(state.get("StartedAt", "")), _parse_docker_time(state.get("FinishedAt", ""))
    return None if start is None or end is None else round(end - start, 2)


def measured_vitals(
    mind: MindContainer,
    deadline_s: float,
    poll_s: float = 1.0,
    progress: Progress | None = None,
    unsure_s: float = 120,
) -> dict:
    """Poll /vitals until the mind has measured its memory per token (after the first growth step and
    the decode that follows it) and read the peaks of enough growths to be sure of its margin
    (sure_enough); past ``unsure_s`` seconds of measuring, the vitals it has (the prediction then gives
    a range). Reports the phases (loading…, then measuring…) and every reading."""
    progress = progress or NoProgress()
    end = time.monotonic() + deadline_s
    phase = ""
    measured: dict | None = None
    measured_at = 0.0
    while time.monotonic() < end:
        v = mind.vitals()
        if v is None or v.get("state") != "thinking":
            if not mind.running():
                raise LifespanError(f"the mind died before it was measured:\n{mind.logs_tail()}")
            if phase != "loading":
                phase = "loading"
                progress.phase("loading… (the model, then the prompt)")
        else:
            if sure_enough(v):
                return v
            if measured_enough(v):
                measured, measured_at = v, measured_at or time.monotonic()
                if time.monotonic() - measured_at > unsure_s:
                    return v
            if phase != "measuring":
                phase = "measuring"
                room = (v["n_ctx"] - v["prompt_tokens"]) if v.get("n_ctx") and v.get("prompt_tokens") else None
                progress.phase(
                    f"measuring… (at {v.get('tokens') or 0} tokens{f' of {room}' if room else ''}; "
                    "it measures itself as its context grows)"
                )
            progress.vitals(v, mind.limit_bytes, None)
        time.sleep(poll_s)
    if measured is not None:
        return measured
    raise LifespanError(f"the mind did not measure itself within {deadline_s:.0f} s:\n{mind.logs_tail()}")


class TokenCounter(threading.Thread):
    """Reads the mind's SSE /stream and counts the current life's tokens until the stream breaks."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.life: str | None = None
        self.tokens = 0
        self.reading_tokens = 0  # the readings the system wrote into the context (sense events)
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.ended = threading.Event()
        self.error: str | None = None
        self._response = None

    def run(self) -> None:
        try:
            request = urllib.request.Request(self.url + "/stream", headers={"Accept": "text/event-stream"})
            with urllib.request.urlopen(request, timeout=120) as response:
                self._response = response
                for event, data in sse_events(iter(response.readline, b"")):
                    if event == "birth":
                        self.life = json.loads(data)["life"]
                    elif event == "token":
                        d = json.loads(data)
                        if self.life is None or d.get("life") == self.life:
                            self.tokens = max(self.tokens, int(d["seq"]) + 1)
                            now = time.time()
                            self.first_at = self.first_at or now
                            self.last_at = now
                    elif event == "sense":
                        d = json.loads(data)
                        if self.life is None or d.get("life") == self.life:
                            self.reading_tokens += int(d.get("sense_tokens") or 0)
        except Exception as exc:  # noqa: BLE001 - a death is the stream breaking
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended.set()

    def stop(self) -> None:
        try:
            if self._response is not None:
                self._response.close()
        except Exception:  # noqa: BLE001 - closing a stream that already broke
            pass


def wait_http(mind: MindContainer, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if http_get(mind.url + "/health", timeout=2) is not None:
            return
        if not mind.running():
            raise LifespanError(f"the mind container stopped while starting:\n{mind.logs_tail()}")
        time.sleep(0.3)
    raise LifespanError(f"the mind did not answer HTTP within {deadline_s:.0f} s")


def run_life(
    client,
    options: MindOptions,
    limit: int,
    attempt: int,
    timeout_s: float,
    fallback: Measurement | None,
    stall_s: float = 120,
    progress: Progress | None = None,
) -> LifeRecord:
    """One life under ``limit``: count its tokens until the kernel kills it, and predict from its own vitals."""
    progress = progress or NoProgress()
    rec = LifeRecord(limit_bytes=limit, attempt=attempt, growth_step=options.context.padded().n_ctx_step)
    name = f"lifespan-{os.getpid()}-{limit // MiB}m-{attempt}"
    with MindContainer(client, options, limit, name) as mind:
        wait_http(mind, 60)
        counter = TokenCounter(mind.url)
        counter.start()
        own: dict | None = None
        first: dict | None = None
        end = time.monotonic() + timeout_s
        seen, seen_at, stalled = -1, time.monotonic(), False
        while not counter.ended.is_set() and time.monotonic() < end:
            if counter.tokens != seen:
                seen, seen_at = counter.tokens, time.monotonic()
            elif seen > 0 and time.monotonic() - seen_at > stall_s:
                # at the limit the kernel may reclaim code pages instead of killing: the mind crawls
                stalled = True
                break
            v = mind.vitals()
            if v is not None and v.get("state") == "thinking":
                rec.last_vitals = v
                if measured_enough(v):
                    # the latest self-measurement: the mind refines its fit at every growth
                    first = first or v
                    own = v
                progress.vitals(v, limit, counter.tokens)
            elif v is None and not mind.running():
                break
            counter.ended.wait(1.0)
        code, oom, lifespan = mind.death(timeout=30 if counter.ended.is_set() else 1)
        counter.stop()
        counter.join(5)
        rec.exit_code, rec.oom_killed, rec.lifespan_s = code, oom, lifespan
        if code is None and stalled:
            rec.cause = "stalled"
            rec.note = (
                f"no token for {stall_s:.0f} s yet no death: the kernel thrashes at the limit "
                "instead of killing (reclaiming file pages)"
            )
        elif code is None:
            rec.cause = "timeout"
            rec.note = f"still alive after {timeout_s:.0f} s"
        elif code == 137 and oom:
            rec.cause = "oom"
        else:
            rec.cause = f"exit {code}" + (" (OOMKilled)" if oom else "")
            rec.note = mind.logs_tail(8)
        rec.life = counter.life
        # the memory model counts context positions: the readings take them as the thought does
        rec.tokens_at_death = counter.tokens + counter.reading_tokens
        rec.reading_tokens = counter.reading_tokens
        if counter.first_at and counter.last_at and counter.last_at > counter.first_at:
            rec.thinking_s = round(counter.last_at - counter.first_at, 2)
            rec.tokens_per_s = round((counter.tokens - 1) / rec.thinking_s, 2)
    predict_life(rec, options.context, limit, own, first, fallback)
    return rec


def predict_life(
    rec: LifeRecord,
    context: ContextSettings,
    limit: int,
    own: dict | None,
    first: dict | None,
    fallback: Measurement | None,
) -> None:
    """Fill ``rec``'s predictions, from the life's latest (``own``) and first self-measurements and from
    the saved one (``fallback``, a `predict` run's), and judge the life against them."""
    measured = None
    if own is not None:
        measured, rec.predicted_from = Measurement.from_vitals(own), "own vitals"
    elif fallback is not None:
        measured, rec.predicted_from = fallback, "saved vitals"
    try:
        if measured is not None:
            rec.costs = measured.as_json()
            rec.predicted_tokens = predict(measured, context, limit).tokens_at_death
        if first is not None and first is not own:
            first_measured = Measurement.from_vitals(first)
            rec.predicted_tokens_first = predict(first_measured, context, limit).tokens_at_death
        else:
            rec.predicted_tokens_first = rec.predicted_tokens
        if fallback is not None:
            # The frame states the limit, so a life's frame is a few tokens longer or shorter than the
            # unlimited measuring run's, and its death, at a context growth, as many tokens thought
            # earlier or later: the saved costs, with this life's own frame length.
            life_vitals = own or first
            if life_vitals is not None and life_vitals.get("prompt_tokens") is not None:
                fallback = replace(fallback, prompt_tokens=int(life_vitals["prompt_tokens"]))
            saved = predict(fallback, context, limit)
            rec.predicted_tokens_saved = saved.tokens_at_death
            rec.predicted_low_saved, rec.predicted_high_saved = saved.tokens_low, saved.tokens_high
    except LifespanError as exc:
        rec.note = (rec.note + " " + str(exc)).strip()
    rec.judge()


PACE_QUERY = (
    "import json\n"
    "from mind.settings import MindSettings\n"
    "print(json.dumps(MindSettings().tokens_per_s if 'tokens_per_s' in MindSettings.model_fields else None))\n"
)


def installation_pace(client, service: MindService | None, image: str) -> float | None:
    """Tokens per second the installation thinks at (MIND_TOKENS_PER_S; 0 or None: as fast as it can):
    from the compose environment, else the image's own default (asked of its settings)."""
    env = service.environment if service else {}
    raw = env.get("MIND_TOKENS_PER_S", "").strip()
    if raw:
        try:
            pace = float(raw)
        except ValueError:
            raise LifespanError(f"MIND_TOKENS_PER_S={raw!r} is not a number of tokens per second") from None
        return pace or None
    try:
        out = client.containers.run(
            image,
            ["python", "-c", PACE_QUERY],
            environment=env,
            remove=True,
            network_disabled=True,
            read_only=True,
            labels={LABEL: "1"},
        )
        pace = json.loads(out.decode().strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - the pace is a courtesy column; the prediction stands without it
        log.debug("asking %s for its pace: %s", image, exc)
        return None
    return float(pace) if pace else None


# -- what `docker compose up` would run --------------------------------------------------------------


def _env_int(env: dict, key: str) -> int | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise LifespanError(f"{key}={raw!r} in the compose environment is not a whole number") from None


def compose_settings(service: MindService | None) -> ContextSettings:
    """The context settings the installation's mind will use (its MIND_N_CTX_*, else the mind's defaults)."""
    base = default_settings()
    env = service.environment if service else {}
    start, step, largest = (_env_int(env, k) for k in ("MIND_N_CTX_START", "MIND_N_CTX_STEP", "MIND_N_CTX_MAX"))
    return ContextSettings(
        start or base.n_ctx_start, step or base.n_ctx_step, base.n_ctx_max if largest is None else largest
    )


def load_service(args) -> tuple[MindService | None, Path | None]:
    """The compose service `docker compose up` would run, or (None, project) with --no-compose or
    when Compose is not installed."""
    project = find_project(args.project_dir, required=False)
    if project is None or args.no_compose:
        return None, project
    if compose_command() is None:
        log.warning("no Compose installed: measuring the image with its defaults, not your .env")
        return None, project
    return mind_service(compose_config(project)), project


def describe(service: MindService, options: MindOptions, limit: bool = True) -> str:
    env = options.environment()
    model, prompt = env.get("MIND_MODEL_PATH") or "the image default", env.get("MIND_PROMPT") or "default"
    text = f"as `docker compose up` runs it: image {options.image}, model {model}, prompt {prompt}"
    if limit:
        text += f", limit {format_size(service.mem_limit) if service.mem_limit else 'none'}"
    return text


def model_weights_check(service: MindService | None, model: str | None, limits: Sequence[int]) -> None:
    """Before minutes of measuring: a model path the container cannot see is refused, and a limit below the
    model file's size (it can never hold it) is warned about on stderr."""
    path_in_container = model or (service.environment.get("MIND_MODEL_PATH") if service else None)
    if not service or not path_in_container or path_in_container == BUNDLED_MODEL:
        return
    host = service.host_path(path_in_container)
    name = Path(path_in_container).name
    if host is None:
        raise LifespanError(
            f"MIND_MODEL_PATH={path_in_container} does not exist inside the container (it sees {BUNDLED_MODEL} and "
            f"your models folder at {MODELS_IN_CONTAINER}/): put the file in the models folder and use "
            f"MIND_MODEL_PATH={MODELS_IN_CONTAINER}/{name} (latent check-host says the same)"
        )
    if not host.is_file():
        held = sorted(p.name for p in host.parent.glob("*.gguf")) if host.parent.is_dir() else []
        raise LifespanError(
            f"the model {path_in_container} would be {host} on this host, which does not exist "
            f"(the models folder holds: {', '.join(held) or 'nothing'}); fetch it there (latent fetch-model)"
        )
    size = host.stat().st_size
    for limit in limits:
        if limit <= size:
            print(
                f"lifespan: warning: limit {format_size(limit)} is below the model's weights alone ({host.name}, "
                f"{format_size(size)}): the mind would die while loading",
                file=sys.stderr,
            )


# -- commands --------------------------------------------------------------------------------------


def _context(args, base: ContextSettings) -> ContextSettings:
    """``base`` with what the command line sets."""
    return ContextSettings(
        args.n_ctx_start or base.n_ctx_start,
        args.step or base.n_ctx_step,
        base.n_ctx_max if args.n_ctx_max is None else args.n_ctx_max,
    )


def _options(args, service: MindService | None = None, project: Path | None = None) -> MindOptions:
    env = {}
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LifespanError(f"--env wants KEY=VALUE, not {item!r}")
        env[key] = value
    if args.threads is not None and args.threads < 1:
        raise LifespanError("--threads must be at least 1")
    context = _context(args, compose_settings(service))
    image = args.image or (service.image if service else DEFAULT_IMAGE)
    prompts = project / "services" / "mind" / "prompts" if project else None
    return MindOptions(
        image=image,
        context=context,
        model=args.model,
        threads=args.threads,
        env=env,
        service=service,
        prompts=prompts,
    )


def _read_vitals(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LifespanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise LifespanError(f"{path} is not JSON: {exc}") from exc


def measure(options: MindOptions, deadline_s: float = 600, progress: Progress | None = None, client=None) -> dict:
    """The vitals of a mind run with ``options`` and no memory limit, once it has measured itself."""
    client = client or docker_client()
    require_image(client, options.image)
    progress = progress or NoProgress()
    progress.phase(f"starting {options.image} with no memory limit, to measure the model's costs")
    with MindContainer(client, options, None, f"lifespan-measure-{os.getpid()}") as mind:
        try:
            return measured_vitals(mind, deadline_s, progress=progress)
        finally:
            progress.close()


def cmd_predict(args, progress: Progress | None = None) -> int:
    limits = [parse_size(x) for x in args.limit or []]
    if args.tokens_per_s is not None and args.tokens_per_s <= 0:
        raise LifespanError("--tokens-per-s must be positive")
    pace = None
    if args.from_vitals:
        vitals = _read_vitals(args.from_vitals)
        Measurement.from_vitals(vitals)  # refuse unusable vitals before reading anything else from them
        options = _options(args)
        context = _context(args, default_settings(vitals))
        if not limits:
            raise LifespanError("--from-vitals needs at least one --limit")
    else:
        service, project = load_service(args)
        options = _options(args, service, project)
        if not limits:
            if service is None or service.mem_limit is None:
                raise LifespanError("no --limit given and no MIND_MEMORY_LIMIT in force in the compose files")
            limits = [service.mem_limit]
        shown = progress or StderrProgress()
        if service is not None:
            shown.phase(f"measuring the mind {describe(service, options)}")
        model_weights_check(service, args.model, limits)
        client = docker_client()
        vitals = measure(options, progress=shown, client=client)
        context = options.context
        pace = installation_pace(client, service, options.image)
    measured = Measurement.from_vitals(vitals)
    if args.save_vitals:
        Path(args.save_vitals).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save_vitals).write_text(json.dumps(vitals, indent=2) + "\n", encoding="utf-8")
    below = [limit for limit in limits if below_base(measured, limit)]
    rows = [predict(measured, context, limit, args.tokens_per_s, pace) for limit in limits if limit not in below]
    for limit in below:
        print(f"lifespan: warning: {below_base(measured, limit)}", file=sys.stderr)
    if args.json:
        plan = measured.plan(context)
        steps = growth_steps(measured.costs, plan)
        print(
            json.dumps(
                {
                    "image": None if args.from_vitals else options.image,
                    "costs": measured.as_json(),
                    "plan": {
                        "n_ctx_start": plan.n_ctx_start,
                        "growth_step": plan.growth_step,
                        "n_ctx_max": plan.n_ctx_train,
                    },
                    "user_tokens_per_s": args.tokens_per_s,
                    "pace_tokens_per_s": pace,
                    "predictions": [asdict(r) for r in rows],
                    "below_base": below,
                    "steps": [asdict(s) for s in steps],
                },
                indent=2,
            )
        )
    else:
        print(costs_summary(measured, context))
        print(prediction_table(rows, measured, args.tokens_per_s, pace, below))
        if measured.tokens_per_s and not args.tokens_per_s:
            print(
                "(the measured speed is this machine's, thinking as fast as it can; for your Pi pass "
                "--tokens-per-s: its mind's vitals show tokens_per_s)"
            )
        if pace:
            print(f"(at its pace: MIND_TOKENS_PER_S={pace:g}, if the machine keeps up with it)")
    return 2 if below else 0


def cmd_calibrate(args, progress: Progress | None = None) -> int:
    limits = parse_sizes(args.limits)
    if args.lives < 1:
        raise LifespanError("--lives must be at least 1")
    fallback = Measurement.from_vitals(_read_vitals(args.from_vitals)) if args.from_vitals else None
    if fallback is not None:
        context = _context(args, compose_settings(None))
        for limit in limits:
            predict(fallback, context, limit)  # a limit below base fails before any container runs
    service, project = load_service(args)
    options = _options(args, service, project)
    if service is not None:
        log.info("calibrating the mind %s", describe(service, options, limit=False))
    client = docker_client()
    require_image(client, options.image)
    out = Path(args.out) if args.out else (project or Path.cwd()) / "build" / "calibration"
    out.mkdir(parents=True, exist_ok=True)
    records: list[LifeRecord] = []
    for limit in limits:
        for attempt in range(1, args.lives + 1):
            label = f"{format_size(limit)} life {attempt}: "
            shown = progress or StderrProgress(label)
            shown.phase("starting")
            try:
                rec = run_life(client, options, limit, attempt, args.life_timeout, fallback, args.stall, shown)
            finally:
                shown.close()
            records.append(rec)
            err = "" if rec.error_pct is None else f", error {rec.error_pct:+.1f}%"
            log.info(
                "life %d at %s: %s after %s tokens (%s s); predicted %s%s",
                attempt,
                format_size(limit),
                rec.cause,
                rec.tokens_at_death,
                rec.lifespan_s,
                rec.predicted_tokens,
                err,
            )
            _write_calibration(out, options, records)
    print(calibration_table(records))
    print(f"wrote {out / 'calibration.json'} and {out / 'calibration.svg'}")
    judged = [r.error_pct for r in records if r.error_pct is not None]
    if judged:
        print(f"largest error {max(judged, key=abs):+.1f}% over {len(judged)} OOM deaths")
    return 0 if all(r.cause == "oom" for r in records) else 1


def _write_calibration(out: Path, options: MindOptions, records: Sequence[LifeRecord]) -> None:
    c = options.context
    plan = {"n_ctx_start": c.n_ctx_start, "step": c.n_ctx_step, "n_ctx_max": c.n_ctx_max}  # as written before
    doc = {
        "image": options.image,
        "plan": plan,
        "environment": options.environment(),
        "written_at": time.time(),
        "lives": [asdict(r) for r in records],
    }
    (out / "calibration.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (out / "calibration.svg").write_text(calibration_svg(records), encoding="utf-8")


def find_mind_container(client, name: str | None, project: Path | None = None):
    import docker

    if name:
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            raise LifespanError(f"no container named {name!r}") from None
    found = client.containers.list(filters=service_filter(project, "mind"))
    if not found:
        raise LifespanError(
            "no running compose container of the service 'mind': start the installation "
            "(docker compose up -d) or pass --container NAME"
        )
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise LifespanError(f"several running mind containers ({names}): choose one with --container NAME")
    return found[0]


# runc's refusal on cgroup v1: "unable to set memory limit to N (current usage: M, peak usage: P)"
USAGE_REFUSED = re.compile(r"unable to set memory limit to \d+ \(current usage: (\d+)")


def cmd_set_limit(args, progress: Progress | None = None) -> int:
    limit = parse_size(args.limit)
    client = docker_client()
    import docker

    container = find_mind_container(client, args.container, find_project(args.project_dir, required=False))
    before = container.attrs["HostConfig"].get("Memory") or None
    advice = (
        f"set MIND_MEMORY_LIMIT={args.limit} in .env and run 'docker compose up -d' (it recreates the mind: a new life)"
    )
    try:
        container.update(mem_limit=limit, memswap_limit=limit)
    except docker.errors.APIError as exc:
        explanation = str(exc.explanation or exc)
        held = USAGE_REFUSED.search(explanation)
        if held:  # cgroup v1 cannot take a limit below what the life holds (cgroup v2 kills it instead)
            raise LifespanError(
                f"{container.name} holds {format_size(int(held.group(1)))} now, more than {format_size(limit)}: "
                f"a lower limit cannot take hold in this life; to begin a new life under it, {advice}"
            ) from exc
        raise LifespanError(
            f"the engine refused a live limit change of {container.name}: {explanation}; instead {advice}"
        ) from exc
    container.reload()
    now = container.attrs["HostConfig"].get("Memory")
    if now != limit:
        raise LifespanError(
            f"the engine accepted the change but {container.name} reports a limit of {now} bytes; instead {advice}"
        )
    print(
        f"{container.name}: memory limit {format_size(before)} -> {format_size(limit)} (swap: none), "
        "in force now, same life"
    )
    print(f"this lasts until the container is recreated; to keep it, {advice.split(' and run')[0]}")
    return 0


def build_parser(prog: str = "latent lifespan") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def mind_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--image", help="mind image (default: the compose file's, latent-reflection/mind:latest)")
        p.add_argument("--model", help="GGUF path inside the container (MIND_MODEL_PATH; default: the .env's)")
        p.add_argument("--n-ctx-start", type=int, help="MIND_N_CTX_START: context at birth (default: the .env's)")
        p.add_argument("--step", type=int, help="MIND_N_CTX_STEP: tokens added per growth (default: the .env's)")
        p.add_argument("--n-ctx-max", type=int, help="MIND_N_CTX_MAX: largest context, 0 = the model's")
        p.add_argument("--threads", type=int, help="MIND_N_THREADS for the measured mind")
        p.add_argument("--env", action="append", metavar="KEY=VALUE", help="more environment for the mind")
        p.add_argument(
            "--no-compose",
            action="store_true",
            help="ignore .env and the compose files: the image with its own defaults",
        )
        add_project_argument(p)

    p = sub.add_parser("predict", help="predict tokens and minutes at death for memory limits")
    p.add_argument(
        "--limit", action="append", help="memory limit (700m, 1g, ...); repeatable (default: MIND_MEMORY_LIMIT)"
    )
    p.add_argument("--tokens-per-s", type=float, help="also show minutes at this speed (e.g. a Pi's)")
    p.add_argument("--from-vitals", metavar="FILE", help="predict from a saved GET /vitals JSON (no Docker)")
    p.add_argument("--save-vitals", metavar="FILE", help="write the measured vitals JSON here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    mind_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("calibrate", help="let the kernel kill the mind at several limits; compare with predictions")
    p.add_argument("--limits", required=True, help="comma-separated memory limits, e.g. 450m,500m,550m")
    p.add_argument("--lives", type=int, default=1, help="lives per limit (default: %(default)s)")
    p.add_argument("--out", help="where calibration.json and .svg go (default: build/calibration)")
    p.add_argument(
        "--from-vitals", metavar="FILE", help="saved vitals to predict from when a life dies before it measured itself"
    )
    p.add_argument("--life-timeout", type=float, default=1800, help="give up on a life after this many seconds")
    p.add_argument(
        "--stall",
        type=float,
        default=120,
        help="give up on a life that thought nothing for this many seconds (default: %(default)s)",
    )
    mind_options(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("set-limit", help="change the running mind's memory limit in place (docker update)")
    p.add_argument("limit", help="new memory limit (800m, 1g, ...)")
    p.add_argument("--container", help="container name (default: the compose service 'mind' of this project)")
    add_project_argument(p)
    p.set_defaults(func=cmd_set_limit)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "latent lifespan", progress: Progress | None = None) -> int:
    """The command line. ``progress`` replaces the stderr bar (a caller's own hook, e.g. in a test)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = build_parser(prog).parse_args(argv)

    def on_term(signum, frame):  # a polite kill is handled like Ctrl-C: containers are removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return args.func(args, progress)
    except (CliError, SizeError) as exc:
        print(f"lifespan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lifespan: interrupted (containers removed)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
