"""The mind's file cache and the frame's reading plan, without a model (mind.llama.cache,
mind.llama.frame_state's pure part)."""

from __future__ import annotations

import logging
import os
import time

import pytest

from mind.llama.cache import FileCache, hash_file, model_fingerprint
from mind.llama.frame_state import common_prefix, read_plan, restore_point, worth_keeping

MiB = 1 << 20


@pytest.fixture
def cache(tmp_path) -> FileCache:
    return FileCache(tmp_path / "cache", max_bytes=MiB)


def entry_files(cache: FileCache) -> list[str]:
    return sorted(p.name for p in cache.directory.glob("*.entry"))


# -- keys ------------------------------------------------------------------------------------------


def test_what_is_put_under_a_key_is_got_back_under_the_same_key_only(cache):
    key = {"model": "blake2b-256:ab:12", "n_ctx": 512, "tokens": [2, 7, 9]}
    assert cache.put("frame-state", key, b"state bytes")
    assert cache.get("frame-state", key) == b"state bytes"
    assert cache.get("frame-state", {**key, "n_ctx": 768}) is None
    assert cache.get("frame-state", {**key, "tokens": [2, 7, 8]}) is None
    assert cache.get("banned-tokens", key) is None  # the same key under another kind
    # the order of a key's fields does not matter, their values do
    assert cache.get("frame-state", dict(reversed(list(key.items())))) == b"state bytes"


def test_a_key_is_compared_whole_so_a_file_named_like_another_never_answers_for_it(cache):
    a, b = {"frame": "a"}, {"frame": "b"}
    cache.put("frame-state", a, b"A")
    # Pretend b's digest collided with a's: b's file name now holds a's entry.
    os.replace(cache._path("frame-state", a), cache._path("frame-state", b))
    assert cache.get("frame-state", b) is None
    assert cache.get("frame-state", a) is None  # moved away: missing, not wrong


def test_putting_under_an_existing_key_replaces_the_entry(cache):
    cache.put("k", {"x": 1}, b"old")
    cache.put("k", {"x": 1}, b"new")
    assert cache.get("k", {"x": 1}) == b"new"
    assert len(entry_files(cache)) == 1


def test_entries_lists_every_key_of_a_kind_and_read_returns_its_payload(cache):
    cache.put("frame-state", {"tokens": [1, 2]}, b"12")
    cache.put("frame-state", {"tokens": [1, 3]}, b"13")
    cache.put("model-hash", {"path": "/m"}, b"h")
    entries = {tuple(e.key["tokens"]): e for e in cache.entries("frame-state")}
    assert set(entries) == {(1, 2), (1, 3)}
    assert cache.read(entries[(1, 3)]) == b"13"


def test_a_kind_is_a_plain_name(cache):
    with pytest.raises(ValueError):
        cache.put("../escape", {"x": 1}, b"")
    with pytest.raises(ValueError):
        list(cache.entries("Frame State"))


def test_a_missing_directory_is_an_empty_cache_and_is_made_by_the_first_put(tmp_path):
    cache = FileCache(tmp_path / "a" / "b", max_bytes=MiB)
    assert cache.get("k", {"x": 1}) is None
    assert list(cache.entries("k")) == []
    assert cache.put("k", {"x": 1}, b"v") and cache.get("k", {"x": 1}) == b"v"


def test_a_cache_that_cannot_be_written_misses_and_says_so_once(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = FileCache(blocker / "cache", max_bytes=MiB)
    with caplog.at_level(logging.WARNING):
        assert not cache.put("k", {"x": 1}, b"v")
        assert not cache.put("k", {"x": 2}, b"v")
    assert cache.get("k", {"x": 1}) is None
    assert len([r for r in caplog.records if "going on without it" in r.message]) == 1


# -- checksums and corruption ----------------------------------------------------------------------


def flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupt_payload_reads_as_missing_and_its_entry_is_deleted(cache, caplog):
    cache.put("frame-state", {"t": 1}, b"x" * 1000)
    path = cache._path("frame-state", {"t": 1})
    flip_last_byte(path)
    with caplog.at_level(logging.WARNING):
        assert cache.get("frame-state", {"t": 1}) is None
    assert not path.exists()
    assert "corrupt" in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) - 10],  # cut short (a death while writing, a full disk)
        lambda b: b + b"more",  # longer than its header says
        lambda b: b"",  # empty
        lambda b: b"garbage" + b[7:],  # not an entry at all
        lambda b: b[:40] + b"}" + b[41:],  # a header that is not JSON
    ],
    ids=["truncated", "extended", "empty", "bad-magic", "bad-header"],
)
def test_a_damaged_file_is_never_returned(cache, damage):
    cache.put("frame-state", {"t": 1}, bytes(range(256)) * 4)
    path = cache._path("frame-state", {"t": 1})
    path.write_bytes(damage(path.read_bytes()))
    assert cache.get("frame-state", {"t": 1}) is None
    assert [cache.read(e) for e in cache.entries("frame-state")] in ([], [None])
    assert not path.exists()
    # and the next put repairs it
    cache.put("frame-state", {"t": 1}, b"fresh")
    assert cache.get("frame-state", {"t": 1}) == b"fresh"


def test_an_entry_replaced_after_its_header_was_read_is_not_mistaken_for_corruption(cache):
    cache.put("k", {"x": 1}, b"first")
    (entry,) = cache.entries("k")
    cache.put("k", {"x": 1}, b"second, longer")
    assert cache.read(entry) is None  # asks again rather than return a mix
    assert cache.get("k", {"x": 1}) == b"second, longer"  # and the new entry was not deleted


# -- the bound -------------------------------------------------------------------------------------


def test_the_cache_stays_within_its_bound_deleting_the_least_recently_used_first(tmp_path):
    cache = FileCache(tmp_path, max_bytes=3 * 100_000 + 3 * 1000)  # room for three entries
    blob = b"\0" * 100_000
    for i in range(3):
        cache.put("k", {"i": i}, blob)
        past = time.time() - 100 + i  # 0 is the oldest ...
        os.utime(cache._path("k", {"i": i}), (past, past))
    assert cache.get("k", {"i": 0}) is not None  # ... but now the most recently used
    cache.put("k", {"i": 3}, blob)
    assert cache.size() <= cache.max_bytes
    assert cache.get("k", {"i": 1}) is None  # the least recently used went
    assert all(cache.get("k", {"i": i}) is not None for i in (0, 2, 3))


def test_an_entry_larger_than_the_bound_is_not_kept_and_evicts_nothing(tmp_path):
    cache = FileCache(tmp_path, max_bytes=10_000)
    cache.put("k", {"small": 1}, b"s")
    assert not cache.put("k", {"big": 1}, b"\0" * 20_000)
    assert cache.get("k", {"big": 1}) is None
    assert cache.get("k", {"small": 1}) == b"s"


def test_a_temporary_file_left_by_a_death_is_deleted_by_a_later_put(cache):
    cache.directory.mkdir(parents=True)
    stale = cache.directory / ".tmp-123-frame-state-x.entry"
    fresh = cache.directory / ".tmp-456-frame-state-y.entry"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    cache.put("k", {"x": 1}, b"v")
    assert not stale.exists()
    assert fresh.exists()  # another process may still be writing it
    assert [e.key for e in cache.entries("k")] == [{"x": 1}]


# -- the model's fingerprint -----------------------------------------------------------------------


def test_the_model_fingerprint_is_the_whole_file_hashed_once_then_remembered(tmp_path, cache, monkeypatch):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(range(256)) * 100)
    first = model_fingerprint(model, cache)
    assert first == hash_file(model) and first.endswith(f":{model.stat().st_size}")

    def no_hashing(path):
        raise AssertionError("hashed again")

    monkeypatch.setattr("mind.llama.cache.hash_file", no_hashing)
    assert model_fingerprint(model, cache) == first
    assert model_fingerprint(tmp_path / "link.gguf", cache) is None  # no such file


def test_a_model_file_rewritten_in_place_is_hashed_again(tmp_path, cache):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"a" * 1000)
    first = model_fingerprint(model, cache)
    st = model.stat()
    model.write_bytes(b"GGUF" + b"b" * 1000)  # same size ...
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and modification time put back
    second = model_fingerprint(model, cache)
    assert second != first and second == hash_file(model)  # the change time still tells


def test_without_compute_an_unknown_model_has_no_fingerprint(tmp_path, cache):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert model_fingerprint(model, cache, compute=False) is None
    known = model_fingerprint(model, cache)
    assert model_fingerprint(model, cache, compute=False) == known


# -- how a frame is read, and what of it can come from the cache -----------------------------------


def ends(text: str) -> list[bool]:
    """One token per character: a line ends at each '\\n'."""
    return [c == "\n" for c in text]


def test_the_plan_ends_a_batch_after_every_line_after_n_batch_tokens_and_before_the_last_token():
    assert read_plan(ends("ab\ncd\nef"), 64) == [0, 3, 6, 7, 8]
    assert read_plan(ends("abcdefg"), 3) == [0, 3, 6, 7]
    assert read_plan(ends("ab\n"), 64) == [0, 2, 3]  # the last token alone, even after a line's end
    assert read_plan(ends("a"), 64) == [0, 1]
    assert read_plan([], 64) == [0]


def digits(text: str) -> list[bool]:
    """One token per character: a number begins at a digit after a non-digit."""
    return [c.isdigit() and not (i and text[i - 1].isdigit()) for i, c in enumerate(text)]


def test_the_plan_ends_a_batch_before_every_number():
    text = "life 12 of 3\nx"
    assert read_plan(ends(text), 64, digits(text)) == [0, 5, 11, 13, 14]
    # the life's number is where two births part: the cache restores up to it, not to the line's start
    a, b = "the frame\nlife 12. I", "the frame\nlife 13. I"
    ta, tb = [ord(c) for c in a], [ord(c) for c in b]
    point = restore_point(ta, read_plan(ends(a), 64, digits(a)), tb, read_plan(ends(b), 64, digits(b)))
    assert b[:point] == "the frame\nlife "
    assert restore_point(ta, read_plan(ends(a), 64), tb, read_plan(ends(b), 64)) == len("the frame\n")


def test_a_last_batch_that_begins_with_a_number_is_read_whole():
    # the shipped frames end "life number {life}. I": what follows the number is read with it, in one
    # forward pass, not as a batch and then the last token alone
    text = "the frame\nlife 12. I"
    assert read_plan(ends(text), 64, digits(text)) == [0, 10, 15, 20]
    # so the same frame at the next birth restores up to its number, not to its last token
    t = [ord(c) for c in text]
    plan = read_plan(ends(text), 64, digits(text))
    assert restore_point(t, plan, t, plan) == len("the frame\nlife ")
    # a last batch that begins elsewhere (a line, n_batch) leaves the last token alone, as before
    for text, n_batch in (("the frame\nlife is here", 64), ("the frame\nlife 12 and more words", 5)):
        assert read_plan(ends(text), n_batch, digits(text))[-2:] == [len(text) - 1, len(text)]


def test_the_plan_of_a_frame_begins_with_the_plan_of_any_frame_it_begins_with():
    # what makes a restored prefix exact: a batch boundary is decided by the tokens before it
    text = "line one\nline 22 is longer\nthe 3rd line"
    full = read_plan(ends(text), 5, digits(text))
    for cut in range(2, len(text)):
        part = read_plan(ends(text[:cut]), 5, digits(text[:cut]))
        # the forced ends of the shorter frame (its last token alone, unless its last batch begins
        # with a number) ...
        forced = [cut] if part[-2] < cut - 1 and digits(text[:cut])[part[-2]] else [cut - 1, cut]
        assert part[-len(forced) :] == forced
        # ... and before them, the same batches
        assert part[: -len(forced)] == [b for b in full if b < part[-len(forced)] and b < cut - 1]


def test_a_frame_that_differs_in_its_last_line_restores_every_line_before_it():
    a = "the frame\nsays this\nLife 1. warm"
    b = "the frame\nsays this\nLife 2. cold and loud"
    ta, tb = [ord(c) for c in a], [ord(c) for c in b]
    point = restore_point(ta, read_plan(ends(a), 64), tb, read_plan(ends(b), 64))
    assert point == a.index("Life")
    assert common_prefix(ta, tb) == a.index("1")


def test_the_same_frame_restores_all_but_its_last_token():
    t = [ord(c) for c in "the frame\nagain"]
    plan = read_plan(ends("the frame\nagain"), 64)
    assert restore_point(t, plan, t, plan) == len(t) - 1


def test_a_restore_stops_where_the_plans_part_even_within_a_common_prefix():
    # The cached frame ended early: its last token was read alone, where the longer frame reads on
    # in one batch; that batch must be read again, from its start.
    a, b = "abc\ndefg", "abc\ndefghij"
    pa, pb = read_plan(ends(a), 64), read_plan(ends(b), 64)
    assert pa == [0, 4, 7, 8] and pb == [0, 4, 10, 11]
    assert restore_point([ord(c) for c in a], pa, [ord(c) for c in b], pb) == 4
    # and within one long line, at the last n_batch boundary before the difference
    a, b = "abcdefghij", "abcdefgXij"
    pa, pb = read_plan(ends(a), 3), read_plan(ends(b), 3)
    assert restore_point([ord(c) for c in a], pa, [ord(c) for c in b], pb) == 6


def test_nothing_is_restored_from_a_frame_that_differs_from_its_first_line():
    a, b = "one\ntwo\n", "One\ntwo\n"
    assert restore_point([ord(c) for c in a], read_plan(ends(a), 64), [ord(c) for c in b], read_plan(ends(b), 64)) == 0


def test_a_frame_is_kept_when_nothing_was_restored_or_when_the_change_has_stayed():
    assert worth_keeping(0, 200, None)  # a miss
    assert not worth_keeping(199, 200, None)  # all but the last token came from the cache
    assert not worth_keeping(180, 200, None)  # a per-life last line, no history: one entry is enough
    assert not worth_keeping(180, 200, 180)  # the previous frame shares no more than the cache does
    assert worth_keeping(100, 200, 180)  # the previous frame shares more: the frame was edited
