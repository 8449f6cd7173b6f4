import threading

from mind.broadcast import Broadcaster
from mind.sources import EX_CONFIG, ContextInfo, SourceError
from mind.thinker import Thinker
from mind_helpers import wait_until


class BytesSource:
    name = "bytes"

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.done = threading.Event()

    def load(self):
        pass

    def next_piece(self):
        if not self.pieces:
            self.done.set()
            threading.Event().wait(0.01)
            return b""
        return self.pieces.pop(0)

    def info(self):
        return ContextInfo(n_ctx=16, n_ctx_train=16, n_past=0, prompt_tokens=0, growth_step=16, shifting=False)

    def close(self):
        pass


def tokens_of(b: Broadcaster):
    return [e for e in b._ring if e.event == "token"]


def test_a_character_split_across_tokens_is_published_whole():
    b = Broadcaster("life")
    src = BytesSource([b" caf", "é".encode()[:1], "é".encode()[1:], b" \xe2\x80", b"\x94 ok"])
    t = Thinker(src, b, birth_data=lambda: {"life": "life"}, on_fatal=lambda c: None)
    t.start()
    src.done.wait(5)
    t.stop()
    texts = [e.data for e in tokens_of(b)]
    assert texts == [
        '{"life":"life","seq":0,"text":" caf"}',
        '{"life":"life","seq":1,"text":"é"}',
        '{"life":"life","seq":2,"text":" "}',
        '{"life":"life","seq":3,"text":"— ok"}',
    ]
    assert t.tokens >= 5


def test_a_source_that_cannot_load_is_fatal_with_ex_config():
    class Broken(BytesSource):
        def load(self):
            raise SourceError("model file not found")

    codes = []
    t = Thinker(Broken([]), Broadcaster("x"), birth_data=dict, on_fatal=codes.append)
    t.start()
    wait_until(lambda: codes)
    assert codes == [EX_CONFIG] and t.state == "failed"
