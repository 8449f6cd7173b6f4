"""A small file cache for what a life derives from its model and would otherwise recompute at every
birth: the prompt frame's state once it is read (mind.llama.frame_state), and per-model data such as
a list of banned tokens. Stdlib only, so any part of the mind may use it. What goes in is the
caller's choice; the mind puts in only what follows from the model file and the frame, never a
thought of a past life (the piece's rule is amnesia).

Usage::

    cache = FileCache(directory, max_bytes=256 << 20)   # the directory is made at the first put
    fingerprint = model_fingerprint(model_path, cache)  # the whole file hashed once, then remembered
    key = {"model": fingerprint, "rule": 2}             # anything JSON can say: str keys; str, int,
                                                        # float, bool, None, lists and dicts of them
    data = cache.get("banned-tokens", key)              # a bytearray, or None: missing or corrupt
    if data is None:
        data = array("i", scan(vocab)).tobytes()
        cache.put("banned-tokens", key, data)           # False if it could not be written

    for entry in cache.entries("frame-state"):          # every entry of a kind: (key, path, size),
        ...                                             # read from headers only
    data = cache.read(entry)                            # its payload, checked; None if corrupt
    cache.remove("banned-tokens", key)

- **Kinds** name what an entry holds (``[a-z0-9-]+``); each is the first part of its file names.
- **Keys** are stored whole in every entry and compared on every read: two keys never share an entry,
  even if the digests that name their files were ever to collide. Put everything the data depends on
  in the key (the model's fingerprint, a version of the code that derives it): a stale entry is then
  simply never asked for again, and the bound deletes it in time.
- **Checksums**: BLAKE2b of the payload, checked on every read. A corrupt or unreadable entry is
  deleted and reads as missing, so the caller recomputes and puts it again.
- **Bound**: after every put, the least recently used entries (a read counts as a use) are deleted
  until all of them together fit in ``max_bytes``; an entry larger than that is not kept at all.
- **Writes** go to a temporary file in the same directory, renamed into place when complete: a
  reader never sees half an entry. A temporary file left by a death is deleted by a later put.
- **Errors**: nothing here raises for I/O. A cache that cannot be read or written misses (logged once
  at WARNING); the life goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"latent-reflection cache 1\n"
_HEADER_LEN = struct.Struct("<I")
_KIND = re.compile(r"^[a-z0-9-]+$")
_SUFFIX = ".entry"
_TEMP_PREFIX = ".tmp-"
STALE_TEMP_S = 600.0  # a temporary file this old belongs to a writer that died
READ_CHUNK = 1 << 20


def canonical(key: Mapping[str, Any]) -> bytes:
    """The one byte string of a key: JSON with sorted keys and no spaces."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def checksum(data) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One cached payload, as its header describes it."""

    kind: str
    key: dict
    path: Path
    size: int  # of the payload
    checksum: str


class FileCache:
    """Keyed, checksummed, size-bounded files in ``directory`` (see the module's docstring)."""

    def __init__(self, directory: str | os.PathLike, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._warned = False

    # -- reading -----------------------------------------------------------------------------------

    def get(self, kind: str, key: Mapping[str, Any]) -> bytearray | None:
        """The payload stored under (``kind``, ``key``), or None if there is none or it is corrupt."""
        path = self._path(kind, key)
        entry = self._header(path)
        if entry is None or entry.kind != kind or canonical(entry.key) != canonical(key):
            return None
        return self.read(entry)

    def entries(self, kind: str) -> Iterator[Entry]:
        """Every readable entry of ``kind`` (headers only; payloads are read by read())."""
        _check_kind(kind)
        try:
            paths = sorted(self.directory.glob(f"{kind}-*{_SUFFIX}"))
        except OSError as exc:
            self._warn("cannot list", exc)
            return
        for path in paths:
            entry = self._header(path)
            if entry is not None and entry.kind == kind:
                yield entry

    def read(self, entry: Entry) -> bytearray | None:
        """``entry``'s payload if its checksum holds (the entry is deleted if not); a read is a use."""
        try:
            with open(entry.path, "rb") as f:
                now = self._parse_header(f, entry.path)
                if (now.size, now.checksum) != (entry.size, entry.checksum):
                    return None  # replaced since its header was read: ask again
                data = bytearray(entry.size)
                view, got = memoryview(data), 0
                while got < entry.size and (n := f.readinto(view[got : got + READ_CHUNK])):
                    got += n
                extra = f.read(1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn("cannot read", exc)
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cache entry %s has a corrupt header (%s): deleted", entry.path.name, exc)
            self._unlink(entry.path)
            return None
        if got != entry.size or extra or checksum(data) != entry.checksum:
            log.warning("cache entry %s is corrupt (checksum or length): deleted", entry.path.name)
            self._unlink(entry.path)
            return None
        try:
            os.utime(entry.path)  # least recently used goes first when the cache is full
        except OSError:
            pass
        return data

    # -- writing -----------------------------------------------------------------------------------

    def put(self, kind: str, key: Mapping[str, Any], data) -> bool:
        """Store ``data`` (any bytes-like object) under (``kind``, ``key``), replacing what was there;
        then keep the cache within its bound. False if it was not stored."""
        payload = memoryview(data).cast("B")
        header = canonical({"kind": kind, "key": key, "size": payload.nbytes, "checksum": checksum(payload)})
        total = len(MAGIC) + _HEADER_LEN.size + len(header) + payload.nbytes
        if total > self.max_bytes:
            log.info("cache: %s entry of %d bytes exceeds the bound (%d bytes): not kept", kind, total, self.max_bytes)
            return False
        path = self._path(kind, key)
        temp = self.directory / f"{_TEMP_PREFIX}{os.getpid()}-{path.name}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as f:
                f.write(MAGIC)
                f.write(_HEADER_LEN.pack(len(header)))
                f.write(header)
                f.write(payload)
            os.replace(temp, path)
        except OSError as exc:
            self._warn("cannot write", exc)
            self._unlink(temp)
            return False
        self._bound(keep=path)
        return True

    def remove(self, kind: str, key: Mapping[str, Any]) -> None:
        self._unlink(self._path(kind, key))

    def size(self) -> int:
        """Bytes held by all entries."""
        return sum(size for _, size, _ in self._files())

    # -- inside ------------------------------------------------------------------------------------

    def _path(self, kind: str, key: Mapping[str, Any]) -> Path:
        _check_kind(kind)
        digest = hashlib.blake2b(canonical(key), digest_size=16).hexdigest()
        return self.directory / f"{kind}-{digest}{_SUFFIX}"

    @staticmethod
    def _parse_header(f, path: Path) -> Entry:
        """The header of the entry open as ``f``, which is left at the payload. Raises ValueError,
        KeyError or TypeError if it is not one."""
        head = f.read(len(MAGIC) + _HEADER_LEN.size)
        if len(head) < len(MAGIC) + _HEADER_LEN.size or not head.startswith(MAGIC):
            raise ValueError("not a cache entry")
        (n,) = _HEADER_LEN.unpack(head[len(MAGIC) :])
        raw = f.read(n)
        if len(raw) != n:
            raise ValueError("truncated header")
        fields = json.loads(raw)  # its errors are ValueErrors
        return Entry(str(fields["kind"]), dict(fields["key"]), path, int(fields["size"]), str(fields["checksum"]))

    def _header(self, path: Path) -> Entry | None:
        try:
            with open(path, "rb") as f:
                return self._parse_header(f, path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn("cannot read", exc)
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cache entry %s has a corrupt header (%s): deleted", path.name, exc)
            self._unlink(path)
            return None

    def _files(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, last use) of every entry; stale temporary files are deleted on the way."""
        out = []
        now = time.time()
        try:
            with os.scandir(self.directory) as it:
                for d in it:
                    try:
                        st = d.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if d.name.startswith(_TEMP_PREFIX):
                        if now - st.st_mtime > STALE_TEMP_S:
                            self._unlink(Path(d.path))
                    elif d.name.endswith(_SUFFIX) and d.is_file(follow_symlinks=False):
                        out.append((Path(d.path), st.st_size, st.st_mtime))
        except OSError:
            return []
        return out

    def _bound(self, keep: Path) -> None:
        files = sorted(self._files(), key=lambda f: f[2])  # least recently used first
        total = sum(size for _, size, _ in files)
        for path, size, _ in files:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            self._unlink(path)
            total -= size
            log.info("cache: deleted %s (least recently used) to stay within %d bytes", path.name, self.max_bytes)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    def _warn(self, what: str, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("cache in %s: %s (%s); going on without it", self.directory, what, exc)


def _check_kind(kind: str) -> None:
    if not _KIND.match(kind):
        raise ValueError(f"a cache kind is [a-z0-9-]+, not {kind!r}")


# -- the model's fingerprint -----------------------------------------------------------------------


def hash_file(path: str | os.PathLike) -> str:
    """``blake2b-256:<hex>:<size>`` of the whole file (BLAKE2b: fast in software, as on a Pi 4's
    cores, which have no SHA instructions)."""
    h = hashlib.blake2b(digest_size=32)
    size = 0
    with open(path, "rb") as f:
        buf = bytearray(8 << 20)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])  # hashlib releases the GIL for large updates
            size += n
    return f"blake2b-256:{h.hexdigest()}:{size}"


def model_fingerprint(path: str | os.PathLike, cache: FileCache | None, *, compute: bool = True) -> str | None:
    """A hash of the whole model file, computed once and then remembered in ``cache`` by the file's
    (real path, size, modification and change times): a file replaced or rewritten is hashed again.
    None if it is not remembered and ``compute`` is False, or if the file cannot be read."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    memo = {"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}
    if cache is not None:
        known = cache.get("model-hash", memo)
        if known is not None:
            return known.decode("ascii")
    if not compute:
        return None
    started = time.monotonic()
    try:
        digest = hash_file(real)
    except OSError as exc:
        log.warning("cannot hash the model file %s: %s", real, exc)
        return None
    log.info("model file hashed in %.2f s: %s", time.monotonic() - started, digest)
    if cache is not None:
        cache.put("model-hash", memo, digest.encode("ascii"))
    return digest
