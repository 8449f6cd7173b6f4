#!/usr/bin/env python3
"""Watch the mind's memory around every context growth, as the kernel sees it, limited or not.

    PYTHONPATH=scripts:services python3 scripts/bench_growth_memory.py [--limit 600m] [--growths 12]
        [--threads 1] [--out test-output/growth-memory-unlimited.json]
    PYTHONPATH=scripts:services .venv/bin/python scripts/bench_growth_memory.py --local [--limit 600m]

Runs one throwaway mind container (as `latent lifespan` runs it: MIND_TOKENS_PER_S=0, no compose file),
reads its cgroup from the host every ~2 ms (v1 memory.usage_in_bytes; memory.stat's file pages every
~20 ms, left out as the mind leaves them out) and polls /vitals for the context size. For each growth
it prints the real peak beside the peak the mind's memory model (mind.lifespan) gives with the costs the
mind measured so far, and the difference: the memory the model does not see. Ends at the death (with a
limit) or after --growths growths; writes every growth as JSON to --out. --local runs `python -m mind`
from this checkout (the .venv's llama.cpp, the bundled model) in a v1 memory cgroup of its own
(root), no Docker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from latent.lifespan import MindContainer, MindOptions, docker_client
from mind.lifespan import ContextSettings, Costs
from mind.sizes import parse_size

log = logging.getLogger("bench_growth_memory")
MiB = 1 << 20


def cgroup_dir(container_id: str) -> Path:
    for d in (
        Path(f"/sys/fs/cgroup/memory/docker/{container_id}"),
        Path(f"/sys/fs/cgroup/memory/system.slice/docker-{container_id}.scope"),
    ):
        if (d / "memory.usage_in_bytes").exists():
            return d
    raise SystemExit(f"no cgroup v1 memory directory for {container_id[:12]} (this bench reads cgroup v1)")


class Sampler(threading.Thread):
    """(time, usage, usage without file pages) every ~2 ms until stopped or the cgroup is gone."""

    def __init__(self, d: Path) -> None:
        super().__init__(daemon=True)
        self.d = d
        self.samples: list[tuple[float, int, int]] = []
        self.files: list[tuple[float, int, int, int]] = []  # (time, file pages, mapped file pages, dirty)
        self.stop = threading.Event()

    def run(self) -> None:
        usage_f = os.open(self.d / "memory.usage_in_bytes", os.O_RDONLY)
        stat_path = self.d / "memory.stat"
        file_pages, next_stat = 0, 0.0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now >= next_stat:
                    try:
                        stat = dict(line.split() for line in stat_path.read_text().splitlines())
                    except OSError:
                        return
                    file_pages = int(stat.get("total_inactive_file", 0)) + int(stat.get("total_active_file", 0))
                    mapped, dirty = int(stat.get("total_mapped_file", 0)), int(stat.get("total_dirty", 0))
                    self.files.append((now, file_pages, mapped, dirty))
                    next_stat = now + 0.02
                try:
                    usage = int(os.pread(usage_f, 32, 0))
                except (OSError, ValueError):
                    return
                self.samples.append((now, usage, usage - file_pages))
                time.sleep(0.002)
        finally:
            os.close(usage_f)


class LocalMind:
    """`python -m mind` from this checkout in a v1 memory cgroup of its own: what MindContainer offers
    the bench (url, running, vitals, death)."""

    def __init__(self, limit: int | None, threads: int, env: dict) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.limit_bytes = limit
        self.cgroup = Path(f"/sys/fs/cgroup/memory/bench-growth-{os.getpid()}")
        self.cgroup.mkdir()
        if limit is not None:
            (self.cgroup / "memory.limit_in_bytes").write_text(str(limit))
            (self.cgroup / "memory.memsw.limit_in_bytes").write_text(str(limit))
        root = Path(__file__).resolve().parent.parent
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MIND_")}
        environment |= {
            "PYTHONPATH": str(root / "services"),
            "MIND_PORT": str(port),
            "MIND_HOST": "127.0.0.1",
            "MIND_N_THREADS": str(threads),
            "MIND_TOKENS_PER_S": "0",
            "MIND_CACHE": "false",
            **env,
        }
        cmd = ["sh", "-c", f'echo $$ > {self.cgroup}/cgroup.procs && exec "$@"', "sh", sys.executable, "-m", "mind"]
        self.log = open(f"test-output/bench-growth-{os.getpid()}.log", "w")
        self.proc = subprocess.Popen(cmd, env=environment, cwd="/tmp", stdout=self.log, stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self.proc.poll() is None

    def vitals(self) -> dict | None:
        from latent.lifespan import http_get

        got = http_get(self.url + "/vitals", timeout=5)
        return json.loads(got[1]) if got and got[0] == 200 else None

    def death(self, timeout: float = 1) -> tuple[int | None, bool, None]:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, False, None
        return code, code == -signal.SIGKILL, None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()
        for _ in range(50):
            try:
                self.cgroup.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", help="memory limit (none: unlimited, as `lifespan predict` measures)")
    p.add_argument("--growths", type=int, default=12, help="stop after this many growths (unlimited runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--image", default="latent-reflection/mind:latest")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--local", action="store_true", help="the mind from this checkout in a cgroup of its own")
    p.add_argument("--out", help="JSON of every growth (default: test-output/growth-memory-<limit>.json)")
    args = p.parse_args()
    limit = parse_size(args.limit) if args.limit else None
    env = dict(item.split("=", 1) for item in args.env)
    prompts = Path(__file__).resolve().parent.parent / "services" / "mind" / "prompts"
    options = MindOptions(image=args.image, context=ContextSettings(), threads=args.threads, env=env, prompts=prompts)
    out = Path(args.out or f"test-output/growth-memory-{args.limit or 'unlimited'}.json")
    epochs: list[dict] = []  # one per context size seen: first/last time, the vitals last seen in it
    if args.local:
        local = LocalMind(limit, args.threads, env)
        mind_cm, cg = contextlib.nullcontext(local), local.cgroup
    else:
        mind_cm, cg = MindContainer(docker_client(), options, limit, f"bench-growth-{os.getpid()}"), None
    with mind_cm as mind:
        sampler = Sampler(cg or cgroup_dir(mind.container.id))
        sampler.start()
        t_end = time.monotonic() + 3600
        while time.monotonic() < t_end:
            v = mind.vitals()
            now = time.monotonic()
            if v is None:
                if not mind.running():
                    break
                time.sleep(0.2)
                continue
            if v.get("state") == "thinking" and v.get("n_ctx"):
                if not epochs or epochs[-1]["n_ctx"] != v["n_ctx"]:
                    epochs.append({"n_ctx": v["n_ctx"], "first": now, "last": now, "vitals": v})
                    log.info("context %d at %d tokens", v["n_ctx"], v.get("tokens", 0))
                epochs[-1]["last"], epochs[-1]["vitals"] = now, v
                if limit is None and (v.get("growths") or 0) >= args.growths:
                    break
            time.sleep(0.1)
        time.sleep(0.3)
        sampler.stop.set()
        sampler.join(2)
        code, oom, _ = mind.death(timeout=1) if limit else (None, False, None)
    if args.local:
        local.close()
    samples = sampler.samples
    rows = []
    for old, new in zip(epochs, epochs[1:], strict=False):
        # the growth's peak: from the start of the old context's epoch to a second into the new one
        window = [s for s in samples if old["first"] <= s[0] <= new["first"] + 1.0]
        if not window:
            continue
        peak_nonfile = max(s[2] for s in window)
        peak_usage = max(s[1] for s in window)
        costs = _costs(new["vitals"])
        model = costs.peak_bytes(old["n_ctx"], new["n_ctx"]) if costs else None
        resident_after = min((s[2] for s in samples if new["first"] + 1.0 <= s[0] <= new["last"]), default=None)
        files = [f for f in sampler.files if old["first"] <= f[0] <= new["first"] + 1.0]
        rows.append(
            {
                "mapped_file": max((f[2] for f in files), default=None),
                "file_pages": min((f[1] for f in files), default=None),
                "n_old": old["n_ctx"],
                "n_new": new["n_ctx"],
                "peak_nonfile": peak_nonfile,
                "peak_usage": peak_usage,
                "model_peak": None if model is None else int(model),
                "unseen": None if model is None else int(peak_nonfile - model),
                "resident_after": resident_after,
                "model_resident": None if costs is None else int(costs.resident_bytes(new["n_ctx"])),
            }
        )
    last = epochs[-1] if epochs else None
    fatal = None
    if limit and last is not None:
        window = [s for s in samples if s[0] >= last["first"]]
        files = [f for f in sampler.files if f[0] >= last["first"]]
        fatal = {
            "file_pages_last": files[-1][1] if files else None,
            "mapped_file_last": files[-1][2] if files else None,
            "dirty_last": files[-1][3] if files else None,
            "file_pages_min": min((f[1] for f in files), default=None),
            "last_samples": [(round(t - window[-1][0], 4), u, n) for t, u, n in window[-20:]] if window else [],
            "n_ctx": last["n_ctx"],
            "tokens": last["vitals"].get("tokens"),
            "max_nonfile": max((s[2] for s in window), default=None),
            "max_usage": max((s[1] for s in window), default=None),
            "model_next_peak": int(_costs(last["vitals"]).peak_bytes(last["n_ctx"], last["n_ctx"] + 256))
            if _costs(last["vitals"])
            else None,
            "exit_code": code,
            "oom_killed": oom,
        }
    print(
        f"{'growth':>13} {'real peak':>10} {'model':>10} {'unseen':>8} {'usage pk':>10}  (MiB; unseen = real - model)"
    )
    for r in rows:
        model = "-" if r["model_peak"] is None else f"{r['model_peak'] / MiB:10.1f}"
        unseen = "-" if r["unseen"] is None else f"{r['unseen'] / MiB:+8.1f}"
        print(
            f"{r['n_old']:>6}->{r['n_new']:<6} {r['peak_nonfile'] / MiB:10.1f} {model:>10} {unseen:>8} "
            f"{r['peak_usage'] / MiB:10.1f}"
        )
    if fatal:
        print("death:", json.dumps(fatal))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"limit": limit, "growths": rows, "death": fatal, "last_vitals": last and last["vitals"]}, indent=2)
    )
    print(f"wrote {out} ({len(samples)} samples)")
    return 0


def _costs(v: dict) -> Costs | None:
    try:
        return Costs.from_mapping(v)
    except (KeyError, TypeError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
