#!/usr/bin/env python3
"""A mind's birth in plain containers, without deaths or a display: where its seconds go.

    .venv/bin/python scripts/bench_birth.py births IMAGE [IMAGE ...] [--rounds 5] [--limit 367m]
    .venv/bin/python scripts/bench_birth.py load [IMAGE] [--rounds 3]

births: each image in turn starts a container as compose would (read-only root, MIND_N_THREADS=1,
the memory limit, a state volume of its own, filled by an unmeasured first round), and the times from
the container's start to the mind's milestones are read from Docker's log timestamps: loading model,
model loaded, web surface ready, prompt read ("ready" is the later of the last two: the first token
can reach the display). Also the mind's CPU time by then (the container's cgroup) and that of the
fuse-overlayfs process serving its root filesystem, where the engine uses one.

load: what the model load costs inside the image, each probe in a fresh container: reading the file
through the image's filesystem and through a bind mount of the same file from the host, the whole
load, the vocabulary alone, the load without weight repacking, with direct I/O, and beside the
imports of the settings and the web stack (as `python -m mind` does). IMAGE defaults to
latent-reflection/mind:latest.

Prints one JSON line per measurement and medians. Needs the images (scripts/build-images).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
MILESTONES = {
    "load_start": "loading model ",
    "loaded": "model loaded in ",
    "web": "web surface ready",
    "prompt": "prompt read: ",
}

# Runs inside the mind image: `python -c PROBE path mode`.
PROBE = r"""
import importlib.util, sys, threading, time
spec = importlib.util.find_spec("llama_cpp")
sys.modules["llama_cpp"] = importlib.util.module_from_spec(spec)
import llama_cpp.llama_cpp as L
path, mode = sys.argv[1], sys.argv[2]
if mode == "read":
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass
    print(round(time.perf_counter() - t, 3)); sys.exit()
quiet = L.llama_log_callback(lambda level, text, user: None)  # kept referenced while llama.cpp holds it
L.llama_log_set(quiet, None)
L.llama_backend_init()
p = L.llama_model_default_params()
p.load_mode = L.LLAMA_LOAD_MODE_DIRECT_IO if mode == "direct" else L.LLAMA_LOAD_MODE_NONE
p.vocab_only = mode == "vocab"
p.use_extra_bufts = mode != "norepack"
took = {}
def load():
    sys.setswitchinterval(1e-4)  # as the mind's ModelPreload does while it reads
    t = time.perf_counter(); L.llama_model_load_from_file(path.encode(), p); took["load"] = time.perf_counter() - t
th = threading.Thread(target=load); th.start()
if mode == "beside_imports":
    t = time.perf_counter()
    import mind.settings, uvicorn, mind.app
    took["imports"] = time.perf_counter() - t
th.join()
print(round(took["load"], 3), round(took.get("imports", 0), 3))
"""


def stamp(text: str) -> float:
    head, frac = text.rstrip("Z").split(".")
    return datetime.fromisoformat(f"{head}.{frac[:6]}+00:00").timestamp()


def fuse_cpu_seconds(merged_dir: str) -> float | None:
    """CPU time of the fuse-overlayfs process mounting ``merged_dir`` (None: no such process)."""
    if not merged_dir:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "fuse-overlayfs" in args and merged_dir in args:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return None


def birth(client, image: str, volume: str, limit: str) -> dict:
    container = client.containers.run(
        image,
        detach=True,
        read_only=True,
        tmpfs={"/tmp": ""},
        volumes={volume: {"bind": "/var/lib/mind", "mode": "rw"}},
        environment={"MIND_N_THREADS": "1", "MIND_TOKENS_PER_S": "0"},
        mem_limit=limit,
        memswap_limit=limit,
    )
    try:
        end = time.monotonic() + 120
        logs = ""
        while time.monotonic() < end and not ("prompt read" in logs and "web surface ready" in logs):
            time.sleep(0.05)
            logs = container.logs(timestamps=True).decode("utf-8", "replace")
        container.reload()
        if container.status != "running":
            raise RuntimeError(f"{image}: the mind exited during its birth:\n{logs[-2000:]}")
        cpu = container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
        fuse = fuse_cpu_seconds(container.attrs["GraphDriver"]["Data"].get("MergedDir", ""))
        started = stamp(container.attrs["State"]["StartedAt"])
        row: dict = {"image": image}
        for line in logs.splitlines():
            at, _, text = line.partition(" ")
            for key, pattern in MILESTONES.items():
                if pattern in text and key not in row:
                    row[key] = round(stamp(at) - started, 3)
        missing = [k for k in MILESTONES if k not in row]
        if missing:
            raise RuntimeError(f"{image}: no {missing} within 120 s:\n{logs[-2000:]}")
        row["ready"] = max(row["web"], row["prompt"])
        row["mind_cpu"] = round(cpu, 3)
        row["fuse_cpu"] = fuse
        row["restored"] = int(m.group(1)) if (m := re.search(r"\((\d+) restored", logs)) else None
        row["loadavg"] = round(os.getloadavg()[0], 2)
        return row
    finally:
        container.remove(force=True)


def medians(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, float) and all(r.get(k) is not None for r in rows)]
    return {k: round(statistics.median(r[k] for r in rows), 3) for k in keys}


def births(args) -> None:
    client = docker.from_env()
    volumes = {image: f"lrbirth{os.getpid()}-{n}" for n, image in enumerate(args.images)}
    rows: dict[str, list[dict]] = {image: [] for image in args.images}
    try:
        for r in range(args.rounds + 1):
            for image in args.images:
                row = birth(client, image, volumes[image], args.limit)
                if r == 0:
                    continue  # fills the frame cache and the host's page cache
                rows[image].append(row)
                print(json.dumps(row), flush=True)
    finally:
        for volume in volumes.values():
            try:
                client.volumes.get(volume).remove(force=True)
            except docker.errors.APIError:
                pass
    for image, image_rows in rows.items():
        print(json.dumps({"image": image, "median": medians(image_rows), "births": len(image_rows)}))


def load(args) -> None:
    client = docker.from_env()
    sys.path.insert(0, str(ROOT / "services"))
    from mind.modelfile import resolve_model_path

    host_model = str(resolve_model_path(None))  # the same GGUF as the image's, on the host's filesystem
    probes = [
        ("read", "/models/default.gguf"),
        ("read", "/bind/model.gguf"),
        ("full", "/models/default.gguf"),
        ("full", "/bind/model.gguf"),
        ("vocab", "/models/default.gguf"),
        ("norepack", "/models/default.gguf"),
        ("direct", "/models/default.gguf"),
        ("beside_imports", "/models/default.gguf"),
    ]
    rows = []
    for _ in range(args.rounds):
        for mode, path in probes:
            out = client.containers.run(
                args.image,
                ["python", "-c", PROBE, path, mode],
                remove=True,
                read_only=True,
                tmpfs={"/tmp": ""},
                volumes={host_model: {"bind": "/bind/model.gguf", "mode": "ro"}},
            )
            values = [float(v) for v in out.decode().split()]
            row = {"mode": mode, "path": "bind mount" if path.startswith("/bind") else "image", "seconds": values[0]}
            if mode == "beside_imports":
                row["imports_seconds"] = values[1]
            row["loadavg"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for mode, path in probes:
        kind = "bind mount" if path.startswith("/bind") else "image"
        same = [r for r in rows if r["mode"] == mode and r["path"] == kind]
        print(json.dumps({"mode": mode, "path": kind, "median": medians(same)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("births", help="births of each image, taking turns")
    b.add_argument("images", nargs="+")
    b.add_argument("--rounds", type=int, default=5)
    b.add_argument("--limit", default="367m", help="the container's memory limit (a tight one, as in a life)")
    ld = sub.add_parser("load", help="where the model load's time goes, inside the image")
    ld.add_argument("image", nargs="?", default="latent-reflection/mind:latest")
    ld.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    births(args) if args.command == "births" else load(args)


if __name__ == "__main__":
    main()
