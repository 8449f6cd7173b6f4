"""latent lives reads the chronicle from the mirror (its port from .env) and names an unreachable Docker engine
instead of a traceback."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from latent import lives

ROOT = Path(__file__).resolve().parents[2]
LIVES = [
    {
        "number": 1,
        "life": "0effda773b74bf2e",
        "born_at": 1795425453.78,
        "lifespan_s": 612.0,
        "tokens": 2091,
        "peak_memory_bytes": 480 << 20,
        "limit_bytes": 480 << 20,
        "alive": False,
        "cause": "oom",
        "cause_words": "killed at its memory limit",
    },
    {
        "number": 2,
        "life": "9a7b6c5d4e3f2a1b",
        "born_at": 1795426070.0,
        "lifespan_s": 30.0,
        "tokens": 120,
        "peak_memory_bytes": 400 << 20,
        "limit_bytes": 480 << 20,
        "alive": True,
        "cause": None,
    },
]


def test_the_chronicle_comes_from_the_mirror_on_the_env_port_and_no_docker_is_named(tmp_path, monkeypatch, capsys):
    class Mirror(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps(LIVES).encode() if self.path == "/chronicle/lives" else b"[]"
            self.send_response(200 if self.path == "/chronicle/lives" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
        (tmp_path / ".env").write_text(f"MIRROR_PORT={httpd.server_address[1]}\n")
        monkeypatch.delenv("MIRROR_PORT", raising=False)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
        code = lives.main(["--project-dir", str(tmp_path)])
    finally:
        httpd.shutdown()
        httpd.server_close()
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["#", "life", "born"]
    assert rows[1].split()[:2] == ["1", "0effda773b"] and rows[1].endswith("killed at its memory limit")
    assert "2091" in rows[1] and "10.2 min" in rows[1] and "480 MiB" in rows[1]
    assert rows[2].endswith("alive")
    assert code == 2 and "Docker is not reachable" in err and "Traceback" not in err
