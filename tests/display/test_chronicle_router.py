"""The chronicle's web view: page, JSON, exports; read-only, escaped, self-contained, streamed."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from display.chronicle import Chronicle, chronicle_router, render
from display.chronicle.router import _encoded
from display.core.causes import PROBABLE_OOM, VITALS, Death

MiB = 2**20
EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def birth(life: str, limit: int | None = 512 * MiB, born_at: float | None = None) -> dict:
    return {
        "life": life,
        "born_at": born_at or time.time(),
        "model": "gemma-3-270m",
        "prompt": "You are.",
        "limit_bytes": limit,
    }


@pytest.fixture
def chronicle(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    c.on_birth(birth("aa01", born_at=time.time() - 600))
    for seq, text in enumerate(["I ", "am ", EVIL]):
        c.on_token({"life": "aa01", "seq": seq, "text": text})
    c.on_vitals(
        {
            "life": "aa01",
            "memory_bytes": 500 * MiB,
            "peak_memory_bytes": 505 * MiB,
            "limit_bytes": 512 * MiB,
            "tokens": 3,
            "tokens_left": 2,
        }
    )
    c.on_death(Death("aa01", PROBABLE_OOM, VITALS))
    c.on_birth(birth("bb02", limit=None))
    c.on_token({"life": "bb02", "seq": 0, "text": "again"})
    yield c
    c.close()


@pytest.fixture
def client(chronicle):
    app = FastAPI()
    app.include_router(chronicle_router(chronicle))
    return TestClient(app)


def test_the_page_lists_lives_newest_first_with_age_tokens_and_cause(client):
    page = client.get("/chronicle")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = re.findall(r"<tr class=\"(alive|dead)\">(.*?)</tr>", page.text)
    assert [kind for kind, _ in rows] == ["alive", "dead"]
    dead = rows[1][1]
    assert 'href="?life=aa01#text"' in dead and ">3<" in dead and "10 min" in dead
    assert "probable oom (memory near its limit)" in dead
    assert "alive" in rows[0][1]


def test_the_page_draws_four_plots_in_plain_svg_and_loads_nothing_from_elsewhere(client):
    text = client.get("/chronicle").text
    assert text.count("<svg") == 4
    assert "Lifespan per life (tokens)" in text and "Minutes lived against memory limit" in text
    assert "<script" not in text.replace("&lt;script", "")
    assert not re.search(r"(src|href)=\"(https?:)?//", text)


def test_a_lives_text_is_shown_escaped(client):
    page = client.get("/chronicle", params={"life": "aa01"})
    assert page.status_code == 200
    assert EVIL not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page.text
    assert client.get("/chronicle", params={"life": "nobody"}).status_code == 404


def test_lives_as_json_and_one_life_with_its_text(client):
    lives = client.get("/chronicle/lives").json()
    assert [(s["number"], s["life"], s["alive"], s["cause"]) for s in lives] == [
        (1, "aa01", False, PROBABLE_OOM),
        (2, "bb02", True, None),
    ]
    one = client.get("/chronicle/lives/aa01").json()
    assert one["text"] == "I am " + EVIL and one["tokens"] == 3 and one["peak_memory_bytes"] == 505 * MiB
    assert client.get("/chronicle/lives/nobody").status_code == 404


def test_the_chronicle_is_read_only(client):
    for path in ("/chronicle", "/chronicle/lives", "/chronicle/lives/aa01", "/chronicle/export.jsonl"):
        assert client.post(path).status_code == 405
        assert client.delete(path).status_code == 405


def test_exports_through_the_router(client):
    jsonl = client.get("/chronicle/export.jsonl")
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["text"] for line in jsonl.text.splitlines()] == ["I am " + EVIL, "again"]
    txt = client.get("/chronicle/export.txt")
    assert txt.headers["content-type"].startswith("text/plain")
    assert "=== Life 1 (aa01) ===" in txt.text and EVIL in txt.text


def test_a_large_export_is_produced_in_bounded_pieces(chronicle):
    chronicle.on_birth(birth("cc03"))
    for seq in range(20000):
        chronicle.on_token({"life": "cc03", "seq": seq, "text": f"{seq:08d} " * 10})
    pieces = list(_encoded(render.export_jsonl(chronicle.lives_with_text())))
    total = sum(map(len, pieces))
    assert total > 1_800_000
    assert len(pieces) > 10 and max(map(len, pieces)) < total / 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(chronicle):
    app = FastAPI()
    app.include_router(chronicle_router(chronicle))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_a_real_server_streams_the_exports_while_the_life_goes_on(served, chronicle):
    chronicle.on_birth(birth("cc03"))
    for seq in range(5000):
        chronicle.on_token({"life": "cc03", "seq": seq, "text": f"{seq:08d} " * 10})
    with httpx.stream("GET", f"{served}/chronicle/export.jsonl", timeout=30) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not built first
        # The writer goes on while an export is read (WAL: neither waits for the other).
        chronicle.on_token({"life": "cc03", "seq": 5000, "text": "later"})
        body = b"".join(response.iter_bytes())
    lives = [json.loads(line) for line in body.decode().splitlines()]
    assert [s["life"] for s in lives] == ["aa01", "bb02", "cc03"]
    assert lives[2]["text"].removesuffix("later") == "".join(f"{seq:08d} " * 10 for seq in range(5000))
    text = httpx.get(f"{served}/chronicle/export.txt", timeout=30)
    assert text.status_code == 200 and "=== Life 3 (cc03) ===" in text.text and text.text.count("===") == 6
