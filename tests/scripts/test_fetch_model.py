"""latent fetch-model against a real HTTP server on loopback: a download cut half-way resumes where it stopped
(an HTTP Range request), in the same run and in the next; a file whose SHA-256 differs from the expected
one is refused and deleted; progress goes to stderr; the file lands in the models folder compose.yaml mounts
and the .env lines printed are the ones the container needs."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from latent import CliError, fetch
from latent.progress import Line

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
PAYLOAD = b"GGUF" + os.urandom(3 * MiB - 4)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Serves PAYLOAD at /model.gguf with Range support; ``cut_after`` makes the next response stop early
    (the promised length is sent, the connection closed after that many bytes), ``ranges`` records the
    Range header of every request, ``body`` replaces the payload, ``no_range`` ignores Range."""

    def __init__(self) -> None:
        self.cut_after: int | None = None
        self.no_range = False
        self.body = PAYLOAD
        self.ranges: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.ranges.append(self.headers.get("Range"))
                body, start = outer.body, 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m and not outer.no_range:
                    start = int(m.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                data = body[start:]
                if outer.cut_after is not None:
                    data, outer.cut_after = data[: outer.cut_after], None
                    self.wfile.write(data)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.gguf"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "latent-reflection"
    root.mkdir()
    for name in ("compose.yaml", ".env.example"):
        shutil.copy(ROOT / name, root / name)
    (root / "services" / "mind").mkdir(parents=True)
    monkeypatch.delenv("LATENT_PROJECT_DIR", raising=False)
    return root


def test_a_cut_download_resumes_where_it_stopped_in_the_same_run(server, tmp_path):
    server.cut_after = MiB + 12345
    target = tmp_path / "m.gguf"
    sha = fetch.download(server.url, target, SHA, retries=2, backoff_s=0, line=Line(stream=io.StringIO()))
    assert sha == SHA and target.read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={MiB + 12345}-"]  # the second request asked only for the rest
    assert not (tmp_path / "m.gguf.part").exists()


def test_a_download_cut_too_often_keeps_its_part_and_the_next_run_resumes_it(server, project, capsys):
    server.cut_after = 700_000
    with pytest.raises(CliError, match="run the same command again to resume"):
        fetch.download(server.url, project / "x.gguf", SHA, retries=0, line=Line(stream=io.StringIO()))
    part = project / "x.gguf.part"
    assert part.read_bytes() == PAYLOAD[:700_000]
    # the next run, through the command, into the models folder
    (project / "models").mkdir()
    shutil.move(part, project / "models" / "test-model.gguf.part")
    code = fetch.main([server.url, "--name", "test-model", "--sha256", SHA, "--project-dir", str(project)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert server.ranges[-1] == "bytes=700000-"
    assert (project / "models" / "test-model.gguf").read_bytes() == PAYLOAD
    assert "resuming test-model.gguf.part at" in err


def test_a_server_that_cannot_resume_is_read_from_the_start(server, tmp_path):
    server.no_range = True
    part = tmp_path / "m.gguf.part"
    part.write_bytes(b"stale bytes of some earlier file")
    sha = fetch.download(server.url, tmp_path / "m.gguf", SHA, line=Line(stream=io.StringIO()))
    assert sha == SHA and (tmp_path / "m.gguf").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_is_refused_and_deleted(server, project, capsys):
    code = fetch.main([server.url, "--name", "bad", "--sha256", "0" * 64, "--project-dir", str(project)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert f"SHA-256 is {SHA}, not the expected {'0' * 64}: refused and deleted" in err
    assert list((project / "models").iterdir()) == []  # neither the file nor its part


def test_a_file_that_is_not_gguf_is_refused(server, project, capsys):
    server.body = b"<html>Access denied</html>"
    code = fetch.main([server.url, "--name", "page", "--project-dir", str(project)])
    assert code == 2 and "did not return a GGUF file" in capsys.readouterr().err
    assert list((project / "models").iterdir()) == []


def test_it_lands_where_compose_mounts_it_and_prints_the_env_lines_with_progress(server, project, capsys):
    assert not (project / "models").exists()  # made by us, never by Docker as root
    code = fetch.main([server.url, "--name", "my-model", "--project-dir", str(project)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (project / "models" / "my-model.gguf").read_bytes() == PAYLOAD
    assert out.splitlines() == [
        "MIND_MODEL_PATH=/models/extra/my-model.gguf",
        "MIND_PROMPT=entity",
        "MIND_MEMORY_LIMIT=200m",  # 3 MiB + the runtime (150 MiB) + a quarter of the weights, up to 50 MiB
    ]
    assert f"sha256 {SHA} (none was known" in err  # computed and printed
    # progress on stderr: a bar, the bytes and the total
    assert re.search(r"\[#+-*\] my-model\.gguf: [\d.]+ MiB of 3\.0 MiB", err), err
    assert "[########################] my-model.gguf: 3.0 MiB of 3.0 MiB" in err


def test_write_env_sets_the_lines_in_env_and_warns_of_a_limit_below_the_weights(server, project, capsys, monkeypatch):
    monkeypatch.setattr(fetch, "RUNTIME_BYTES", 800 * MiB)  # stands for a model much larger than 3 MiB
    (project / ".env").write_text("MIRROR_PORT=9090\nMIND_MEMORY_LIMIT=700m\n")
    code = fetch.main(
        [server.url, "--name", "m", "--prompt", "transcript", "--write-env", "--project-dir", str(project)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "MIND_MEMORY_LIMIT=700m (your .env or the default) is below this model's weights" in err
    env = (project / ".env").read_text().splitlines()
    assert env[:1] == ["MIRROR_PORT=9090"]  # the rest of the maker's .env is kept
    assert set(out.splitlines()) <= set(env)
    assert "MIND_MODEL_PATH=/models/extra/m.gguf" in env and "MIND_PROMPT=transcript" in env


def test_a_catalogue_entry_carries_a_pinned_url_and_its_checksum():
    for name, model in fetch.CATALOGUE.items():
        assert model.url.startswith("https://huggingface.co/") and model.url.endswith(".gguf"), name
        assert model.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", model.sha256), name
        if model.sha256:
            assert re.fullmatch(r"[0-9a-f]{40}", model.revision), f"{name}: a checksum needs a pinned revision"
    # a limit that fits: weights + runtime + 4096 tokens of KV
    big = fetch.CATALOGUE["llama-3.2-3b-instruct"]
    limit = fetch.suggested_limit(big.size, big.kv_bytes_per_token)
    assert limit > big.size + fetch.RUNTIME_BYTES + 4096 * big.kv_bytes_per_token
    assert limit % (50 * MiB) == 0
