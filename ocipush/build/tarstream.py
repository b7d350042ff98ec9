"""A fast, deterministic tar writer for layer directories.

`iter_tree` walks a directory (sorted, excludes applied, special files refused) yielding entries; `write_tar`
turns entries into ustar/PAX bytes delivered in fixed-size chunks. Keeping the two apart lets a layer be tarred
twice (a diff_id-only pass, then a compressing pass) from one walk. Headers are built by hand: `tarfile`
spends most of its time in per-member Python objects, which is what this module avoids. Every header carries the
same mtime, uid/gid (the base's own, for the base directories a layer's destination passes through) and empty
owner names, so the bytes depend only on names, modes, owners, link targets and contents."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ocipush.build.ignore import IgnoreMatcher, State
from ocipush.errors import BuildError

CHUNK_SIZE = 1 << 20
BLOCK = 512
# Regular files, directories, symlinks, hardlinks, PAX extended header.
REG, LNK, SYM, DIR, PAX = b"0", b"1", b"2", b"5", b"x"
_MAX_OCTAL_11 = 0o77777777777
_MAX_OCTAL_7 = 0o7777777
_PAX_NAME = b"././@PaxHeader"
_HEADER = struct.Struct("100s8s16s12s12s8s1s100s8s32s32s8s8s155s12s")
_DIR_MODE = 0o755

Sink = Callable[[bytearray], None]


class Entry(NamedTuple):
    """One tar member: `name` is the archive path (bytes, directories end with '/'), `path` the file to read.

    A NamedTuple rather than a frozen dataclass: one is made per file, and tuples are several times cheaper."""

    name: bytes
    kind: bytes
    mode: int
    size: int = 0
    path: str = ""
    link: bytes = b""
    # (mtime_ns, ctime_ns, inode) of a regular file: a change stamp for the layer cache, never written to the tar.
    stamp: tuple[int, int, int] = (0, 0, 0)
    # (uid, gid) when this entry's owner is not the layer's (a directory the base already has).
    owner: tuple[int, int] | None = None


@dataclass(frozen=True)
class Ownership:
    """The owner and group every entry of a layer gets."""

    uid: int = 0
    gid: int = 0


def dest_parts(dest: str) -> list[str]:
    """'/app/src' -> ['app', 'src'] ([] for the root); '..' is refused."""
    parts = [p for p in dest.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BuildError(f"layer destination {dest!r} must not contain '..'")
    return parts


class Placement(NamedTuple):
    """Where a layer's contents go: the archive path `prefix` (b'usr/bin/x/', b'' for the root) and an entry for
    each directory on the way, parents first."""

    prefix: bytes
    parents: tuple[Entry, ...]


def new_placement(dest: str) -> Placement:
    """The placement under `dest` when nothing is there yet: every directory made 0755, owned by the layer's owner."""
    parts = dest_parts(dest)
    return make_placement(parts, [None] * len(parts))


def make_placement(parts: list[str], existing: list[tuple[int, int, int] | None]) -> Placement:
    """A placement at `parts`, whose directories are either made by the layer (None) or kept as the base has
    them ((mode, uid, gid))."""
    names: list[bytes] = []
    parents = []
    for part, meta in zip(parts, existing, strict=True):
        names.append(os.fsencode(part))
        name = b"/".join(names) + b"/"
        parents.append(Entry(name, DIR, _DIR_MODE) if meta is None else Entry(name, DIR, meta[0], owner=meta[1:]))
    return Placement(parents[-1].name if parents else b"", tuple(parents))


def iter_tree(root: str, dest: str | Placement = "/", ignore: IgnoreMatcher | None = None) -> Iterator[Entry]:
    """Entries for `root`'s contents placed under `dest`, in sorted depth-first order, parents first.

    A generator, so that the tar writer (and the hashing and compressing threads behind it) start while the
    walk is still going."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise BuildError(f"layer directory {root} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise BuildError(f"layer source {root} is not a directory")
    place = new_placement(dest) if isinstance(dest, str) else dest
    yield from place.parents
    yield from _Walker(ignore).walk(root, place.prefix)


# Each directory is opened relative to its parent's fd and its entries are stat'ed relative to its own, so the
# kernel does not resolve the whole path again for every file. O_NOFOLLOW: a directory swapped for a symlink
# after its stat is refused, never followed out of the tree (the root itself may be a symlink).
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR_FLAGS = _ROOT_FLAGS | os.O_NOFOLLOW
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _gone(path: str, how: str = "disappeared") -> BuildError:
    return BuildError(f"{path} {how} while the layer was being built; build again")


def _open_dir(path: str, name: str, parent: int | None) -> int:
    try:
        return os.open(name, _ROOT_FLAGS if parent is None else _DIR_FLAGS, dir_fd=parent)
    except PermissionError:
        raise BuildError(f"cannot read directory {path}: permission denied") from None
    except FileNotFoundError:
        raise _gone(path) from None
    except NotADirectoryError:
        # Listed as a directory, now something else (a symlink, under O_NOFOLLOW): not walked into.
        raise _gone(path, "changed") from None


class _Dir:
    """A directory on the walk's stack: its open fd, what its children's paths, archive names and ignore paths
    start with, and its children not walked yet, sorted by encoded name. `pending` is the entry of a directory
    walked although excluded (a '!' pattern may re-include something inside): it is written only if something
    inside is."""

    __slots__ = ("children", "fd", "path", "pending", "prefix", "rel", "state")

    def __init__(self, fd: int, path: str, prefix: bytes, rel: str, state: State, pending: Entry | None) -> None:
        self.fd, self.path, self.prefix, self.rel, self.state, self.pending = fd, path, prefix, rel, state, pending
        try:
            with os.scandir(fd) as it:
                # Each name is encoded once, for the sort and the archive name; names in a directory are unique,
                # so the DirEntry in the pair is never compared.
                listed = sorted([(e.name.encode(_FS_ENCODING, _FS_ERRORS), e) for e in it])
        except BaseException:
            os.close(fd)
            raise
        self.children = iter(listed)


class _Walker:
    """A depth-first walk with an explicit stack of open directories (one fd per level, all closed however the
    walk ends): no generator per directory that every entry would have to pass up through."""

    def __init__(self, ignore: IgnoreMatcher | None) -> None:
        self.ignore = ignore
        self.inodes: dict[tuple[int, int], bytes] = {}

    def walk(self, root: str, prefix: bytes) -> Iterator[Entry]:
        ignore = self.ignore
        base = root if root.endswith("/") else root + "/"
        stack: list[_Dir] = []
        try:
            state = ignore.initial_state() if ignore else ()
            stack.append(_Dir(_open_dir(root, root, None), base, prefix, "", state, None))
            waiting = 0  # directories on the stack whose entry is pending
            while stack:
                top = stack[-1]
                for encoded, child in top.children:
                    excluded, state = False, top.state
                    if ignore is not None:
                        excluded, state = ignore.check(top.rel + child.name, state)
                        if excluded and not (ignore.has_negations and child.is_dir(follow_symlinks=False)):
                            continue
                    entry, inner = self._entry(top, encoded, child, excluded, state)
                    if inner is not None:
                        stack.append(inner)
                        if inner.pending is not None:
                            waiting += 1
                            break
                    if waiting:
                        yield from _release(stack)
                        waiting = 0
                    yield entry
                    if inner is not None:
                        break
                else:
                    stack.pop()
                    os.close(top.fd)
                    if top.pending is not None:
                        waiting -= 1
        finally:
            for left in stack:
                os.close(left.fd)

    def _entry(
        self, top: _Dir, encoded: bytes, child: os.DirEntry[str], excluded: bool, state: State
    ) -> tuple[Entry, _Dir | None]:
        """`child`'s entry, and for a directory the stack frame to walk it with."""
        try:
            st = child.stat(follow_symlinks=False)
        except FileNotFoundError:
            raise _gone(top.path + child.name) from None
        mode = st.st_mode
        name = top.prefix + encoded
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = self.inodes.get(key)
                if first is not None:
                    return Entry(name, LNK, stat.S_IMODE(mode), link=first), None
                self.inodes[key] = name
            stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            return Entry(name, REG, stat.S_IMODE(mode), st.st_size, top.path + child.name, stamp=stamp), None
        if stat.S_ISDIR(mode):
            path = top.path + child.name
            entry = Entry(name + b"/", DIR, stat.S_IMODE(mode))
            fd = _open_dir(path, child.name, top.fd)
            inner = _Dir(fd, path + "/", name + b"/", top.rel + child.name + "/", state, entry if excluded else None)
            return entry, inner
        if stat.S_ISLNK(mode):
            try:
                target = os.readlink(child.name, dir_fd=top.fd)
            except FileNotFoundError:
                raise _gone(top.path + child.name) from None
            return Entry(name, SYM, stat.S_IMODE(mode), link=target.encode(_FS_ENCODING, _FS_ERRORS)), None
        kind = "socket" if stat.S_ISSOCK(mode) else "fifo" if stat.S_ISFIFO(mode) else "device file"
        raise BuildError(f"{top.path + child.name} is a {kind}; layers can only hold files, directories and links")


def _release(stack: list[_Dir]) -> Iterator[Entry]:
    """The pending entries of excluded directories on the stack, parents first: something inside them is kept."""
    for frame in stack:
        if frame.pending is not None:
            yield frame.pending
            frame.pending = None


_FINGERPRINT_BATCH = 512


class Fingerprint:
    """A running hash of the entries that pass through `watch`: names, modes, sizes, link targets and change stamps
    (mtime, ctime, inode). Equal fingerprints predict equal tars, the way git's index settles "unchanged" from
    stat data. Computed as the entries stream by, so memory does not grow with the number of files.

    `newest_ns` is the latest mtime or ctime seen: a file changed within a timestamp tick of being read could keep
    its stamp, so a fingerprint whose newest stamp is that recent is not kept (git's "racily clean" entries)."""

    def __init__(self, *settings: object) -> None:
        self._hash = hashlib.sha256(repr(settings).encode())
        self.newest_ns = 0

    def watch(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        # Lines are hashed a batch at a time (the digest is the same): one hash call per entry cost more than
        # the line's formatting.
        lines: list[bytes] = []
        add = lines.append
        newest = self.newest_ns
        for e in entries:
            name, kind, mode, size, _, link, (mtime, ctime, inode), _ = e
            add(b"%b\0%b\0%d %d %d %d %d %b\n" % (name, kind, mode, size, mtime, ctime, inode, link))
            if mtime > newest or ctime > newest:
                newest = max(mtime, ctime)
            if len(lines) == _FINGERPRINT_BATCH:
                self._hash.update(b"".join(lines))
                lines.clear()
            yield e
        self._hash.update(b"".join(lines))
        self.newest_ns = newest

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_records(records: list[tuple[bytes, bytes]]) -> bytes:
    out = []
    for key, value in records:
        body = b" " + key + b"=" + value + b"\n"
        # The length prefix counts itself, so grow it until it is self-consistent.
        length = len(body) + 1
        while len(b"%d" % length) + len(body) != length:
            length = len(b"%d" % length) + len(body)
        out.append(b"%d" % length + body)
    return b"".join(out)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for a path that fits ustar's 155+100 bytes split at a '/', else None (as Go's tar does)."""
    length = len(name)
    if length > 156:
        length = 156
    elif name.endswith(b"/"):
        length -= 1
    cut = name.rfind(b"/", 0, length)
    rest = len(name) - cut - 1
    if cut <= 0 or rest == 0 or rest > 100:
        return None
    return name[:cut], name[cut + 1 :]


class _Headers:
    """Builds 512-byte headers; the fields that are the same for every member are packed and summed once."""

    def __init__(self, owner: Ownership, mtime: int) -> None:
        if mtime < 0 or mtime > _MAX_OCTAL_11:
            raise BuildError(f"timestamp {mtime} cannot be stored in a tar header")
        self.pax_ids: list[tuple[bytes, bytes]] = []
        uid, gid = owner.uid, owner.gid
        if uid > _MAX_OCTAL_7:
            self.pax_ids.append((b"uid", b"%d" % uid))
            uid = 0
        if gid > _MAX_OCTAL_7:
            self.pax_ids.append((b"gid", b"%d" % gid))
            gid = 0
        self.ids = _octal(uid, 8) + _octal(gid, 8)
        self.mtime = _octal(mtime, 12)
        # Checksum of the constant fields: ids, mtime, the checksum field as spaces, magic and version.
        self.constant_sum = sum(self.ids) + sum(self.mtime) + 8 * 32 + sum(b"ustar\x0000")

    def _one(self, name: bytes, kind: bytes, mode: int, size: int, link: bytes, prefix: bytes = b"") -> bytes:
        mode_field, size_field = _octal(mode, 8), _octal(size, 12)
        checksum = self.constant_sum + sum(name) + sum(mode_field) + sum(size_field) + kind[0] + sum(link)
        if prefix:
            checksum += sum(prefix)
        return _HEADER.pack(
            name, mode_field, self.ids, size_field, self.mtime, b"%06o\0 " % checksum, kind, link,
            b"ustar\x0000", b"", b"", b"", b"", prefix, b"",
        )  # fmt: skip

    def build(self, name: bytes, kind: bytes, mode: int, size: int = 0, link: bytes = b"") -> bytes:
        simple = len(name) <= 100 and len(link) <= 100 and size <= _MAX_OCTAL_11 and not self.pax_ids
        if simple and name.isascii() and link.isascii():
            return self._one(name, kind, mode, size, link)
        prefix = b""
        records = list(self.pax_ids)
        if not name.isascii():
            records.append((b"path", name))
            name = name[:100]
        elif len(name) > 100:
            split = _split_ustar(name)
            if split:
                prefix, name = split
            else:
                records.append((b"path", name))
                name = name[:100]
        if len(link) > 100 or not link.isascii():
            records.append((b"linkpath", link))
            link = link[:100]
        if size > _MAX_OCTAL_11:
            records.append((b"size", b"%d" % size))
            size = 0
        header = self._one(name, kind, mode, size, link, prefix)
        if not records:
            return header
        # Integer-only records, no times: the PAX header is as deterministic as the ustar one.
        data = _pax_records(sorted(records))
        pad = -len(data) % BLOCK
        return self._one(_PAX_NAME, PAX, 0o644, len(data), b"") + data + b"\0" * pad + header


class Chunker:
    """Accumulates output in fixed-size chunks; file contents are read straight into the chunk buffer.

    Fixed chunk boundaries keep the compressed bytes independent of file sizes and read patterns; a full
    buffer is handed to the sink and never touched again, so consumer threads need no copy."""

    def __init__(self, sink: Sink, size: int) -> None:
        self.sink, self.size = sink, size
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.pos = 0

    def _flush_full(self) -> None:
        self.view.release()
        self.sink(self.buf)
        self.buf = bytearray(self.size)
        self.view = memoryview(self.buf)
        self.pos = 0

    def write(self, data: bytes) -> None:
        n = len(data)
        pos = self.pos
        if pos + n < self.size:
            self.buf[pos : pos + n] = data
            self.pos = pos + n
            return
        offset = 0
        while offset < n:
            take = min(n - offset, self.size - self.pos)
            self.buf[self.pos : self.pos + take] = data[offset : offset + take]
            self.pos += take
            offset += take
            if self.pos == self.size:
                self._flush_full()

    def read_file(self, fd: int, size: int, path: str) -> None:
        """Read exactly `size` bytes of `fd` into the buffer, then the padding to a 512-byte block."""
        remaining = size
        while remaining:
            want = min(remaining, self.size - self.pos)
            got = os.readv(fd, [self.view[self.pos : self.pos + want]])
            if got == 0:
                raise BuildError(f"{path} shrank while it was being read; build again")
            self.pos += got
            remaining -= got
            if self.pos == self.size:
                self._flush_full()
        pad = -size % BLOCK
        if pad:
            self.write(b"\0" * pad)

    def close(self) -> None:
        if self.pos:
            self.view.release()
            self.sink(self.buf[: self.pos])
        self.pos = 0


def write_tar(entries: Iterable[Entry], sink: Sink, mtime: int, owner: Ownership = Ownership()) -> None:
    """Write `entries` as a tar stream (ending in two zero blocks) into `sink`, in chunks of CHUNK_SIZE."""
    headers = _Headers(owner, mtime)
    kept: dict[tuple[int, int], _Headers] = {}  # headers for the base's own directories, by owner
    out = Chunker(sink, CHUNK_SIZE)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for entry in entries:
        if entry.kind != REG:
            use = headers
            if entry.owner is not None:
                use = kept.get(entry.owner) or kept.setdefault(entry.owner, _Headers(Ownership(*entry.owner), mtime))
            out.write(use.build(entry.name, entry.kind, entry.mode, 0, entry.link))
            continue
        out.write(headers.build(entry.name, REG, entry.mode, entry.size))
        try:
            fd = os.open(entry.path, flags)
        except PermissionError:
            raise BuildError(f"cannot read {entry.path}: permission denied") from None
        except FileNotFoundError:
            raise _gone(entry.path) from None
        try:
            out.read_file(fd, entry.size, entry.path)
        finally:
            os.close(fd)
    out.write(b"\0" * (2 * BLOCK))
    out.close()
