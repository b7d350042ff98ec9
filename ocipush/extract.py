"""Apply image layers to a directory safely: whiteouts, links, modes, times; nothing is written outside it.

Every write happens relative to a directory file descriptor reached by opening each parent component with
`O_NOFOLLOW`, so a symlink in the tree can never redirect a write. A symlink met as a parent is followed only
when its target stays inside the root (relative, not climbing out); absolute targets point at the host and are
refused.
`tarfile`'s own extraction and its `data` filter are not used: the filter refuses absolute symlinks and strips
set-uid bits, both normal in a root filesystem, and it resolves paths by name rather than by descriptor."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Protocol, cast

from ocipush.digest import HashingReader, check_digest
from ocipush.errors import DigestMismatchError, NotFoundError, UnsafeArchiveError, UsageError
from ocipush.fsutil import write_all
from ocipush.layout import OCILayout
from ocipush.mediatypes import layer_compression
from ocipush.models import ImageConfig, Manifest

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
COPY_SIZE = 1 << 20
MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Raw(io.RawIOBase):
    """Adapts any `read(n)` object to the `readinto` interface that gzip readers need."""

    def __init__(self, stream: Reader) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def decompress_stream(stream: Reader, compression: str) -> BinaryIO:
    """A reader of the uncompressed bytes of a gzip, zstd or plain stream (decompressed as it is read)."""
    if compression == "gzip":
        from isal import igzip

        raw = _Raw(stream)
        return cast(BinaryIO, igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]
    if compression == "zstd":
        import zstandard

        return cast(
            BinaryIO,
            zstandard.ZstdDecompressor().stream_reader(cast(BinaryIO, stream), read_across_frames=True),
        )
    if compression == "none":
        return cast(BinaryIO, stream)
    raise UsageError(f"unsupported layer compression {compression!r}")


def corrupt_stream_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "the compressed or tar bytes are damaged" (not an I/O failure)."""
    import gzip

    import zstandard

    return (tarfile.TarError, EOFError, gzip.BadGzipFile, zstandard.ZstdError)


class ChunkReader:
    """`read(n)` over an iterator of byte chunks (a streamed HTTP body or blob range); short reads, as a raw stream
    gives."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")

    def read(self, n: int = -1, /) -> bytes:
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._chunk = memoryview(chunk)
        take = len(self._chunk) if n < 0 else n
        data, self._chunk = self._chunk[:take], self._chunk[take:]
        return bytes(data)


# tarfile's stream mode copies the rest of its buffer on every header read: small enough to be cheap, large
# enough that skipping file contents takes few reads (CPU time for a 121 MB Debian layer: 1 MiB 0.48 s,
# 64 KiB 0.33 s, of which decompressing and hashing is 0.20 s).
_HEADER_BUFFER = 1 << 16


def layer_members(blob: Reader, digest: str, media_type: str) -> Iterator[tarfile.TarInfo]:
    """The tar headers of a layer blob (compressed as `media_type`), file contents skipped. Read to its end, the
    blob's bytes are checked against `digest` before the generator finishes."""
    reader = HashingReader(blob, digest.split(":", 1)[0])  # type: ignore[arg-type]
    try:
        stream = decompress_stream(reader, layer_compression(media_type))
        with tarfile.open(fileobj=stream, mode="r|", bufsize=_HEADER_BUFFER) as tar:
            yield from tar
    except corrupt_stream_errors() as exc:
        raise UsageError(f"layer {digest} is damaged or not a tar stream: {exc}") from None
    while reader.read(COPY_SIZE):  # what follows the tar's end is part of the digest too
        pass
    check_digest(digest, reader.digest, f"layer {digest}")


def extract_layers(
    layout: OCILayout,
    manifest: Manifest,
    target_dir: str,
    *,
    allow_devices: bool | None = None,
    overwrite: bool = False,
    max_size: int | None = None,
) -> None:
    """Unpack the layers in order into `target_dir` (created if missing; must be empty unless `overwrite`).

    Each layer is checked against its digest and, uncompressed, against the diff_id the image config lists for
    it. `max_size` caps the bytes all files may hold together (apparent sizes; refused before writing past it).

    Device nodes and fifos: see `device_refusal`. Not atomic: on an error the directory holds what was applied
    so far (`ocipush.api.pull_rootfs` extracts into a sibling directory and renames it at the end)."""
    os.makedirs(target_dir, exist_ok=True)
    if not overwrite and os.listdir(target_dir):
        raise UsageError(f"{target_dir} is not empty; extract into an empty directory or pass overwrite=True")
    budget = SizeBudget(max_size) if max_size is not None else None
    for layer, diff_id in zip(manifest.layers, _diff_ids(layout, manifest), strict=True):
        with layout.open_blob(layer.digest) as blob:
            reader = HashingReader(blob, layer.digest.split(":", 1)[0])
            apply_layer(
                reader, layer.media_type, target_dir, allow_devices=allow_devices, diff_id=diff_id, budget=budget
            )
            while reader.read(COPY_SIZE):  # the tar end may leave padding unread: hash all of it
                pass
        check_digest(layer.digest, reader.digest, f"layer {layer.digest}")


def apply_layer(
    stream: Reader,
    media_type: str,
    target_dir: str,
    *,
    allow_devices: bool | None = None,
    diff_id: str | None = None,
    budget: SizeBudget | None = None,
) -> None:
    """Apply one layer changeset (compressed per `media_type`) on top of what `target_dir` already holds; with
    `diff_id`, the uncompressed stream must hash to it. Files are charged to `budget` when given.

    Device nodes and fifos: see `device_refusal`."""
    root_fd = os.open(target_dir, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        applier = _Applier(root_fd, refusal=device_refusal(allow_devices), budget=budget)
        data = decompress_stream(stream, layer_compression(media_type))
        hashed = HashingReader(data, diff_id.split(":", 1)[0]) if diff_id else None
        tar_bytes = cast(BinaryIO, hashed) if hashed is not None else data
        try:
            with tarfile.open(fileobj=tar_bytes, mode="r|") as tar:
                for member in tar:
                    applier.apply(member, tar)
            while tar_bytes.read(COPY_SIZE):  # the padding after the end marker is part of the diff_id
                pass
        except corrupt_stream_errors() as exc:
            raise UsageError(f"layer is damaged or not a {media_type} stream: {exc}") from None
        if hashed is not None and diff_id:
            check_digest(diff_id, hashed.digest, "uncompressed layer (the diff_id its image config lists)")
        applier.finish()
    finally:
        os.close(root_fd)


def device_refusal(allow_devices: bool | None) -> dict[str, str]:
    """Why each special entry kind ('device', 'fifo') is refused; a kind not in the answer is created.

    Root creates both unless `allow_devices` is False. Without root, device nodes cannot be created (mknod needs
    CAP_MKNOD), so they are refused with that reason; a fifo needs no privilege and is created unless refused."""
    if allow_devices is False:
        reason = "device nodes and fifos were refused on request (allow_devices=False, --no-devices)"
        return {"device": reason, "fifo": reason}
    if os.geteuid() != 0:
        return {"device": f"creating device nodes needs root (running as uid {os.geteuid()}); pull as root, "
                "or into an oci: layout or docker-archive: file, which keep them as tar entries"}  # fmt: skip
    return {}


def _diff_ids(layout: OCILayout, manifest: Manifest) -> list[str | None]:
    """The diff_id the image config lists for each layer; None for each when the config is not an image's."""
    try:
        config = ImageConfig.model_validate_json(layout.read_blob(manifest.config.digest))
    except (ValueError, NotFoundError):  # an artifact's config, or none at hand: nothing to check against
        return [None] * len(manifest.layers)
    listed = config.rootfs.diff_ids
    if not listed:
        return [None] * len(manifest.layers)
    if len(listed) != len(manifest.layers):
        raise DigestMismatchError(
            f"the image config lists {len(listed)} diff_ids for {len(manifest.layers)} layers"
        )
    return list(listed)


@dataclass
class SizeBudget:
    """Bytes the files of an extraction may still hold (a 2 MB gzip layer can expand to gigabytes)."""

    left: int

    def take(self, size: int, name: str) -> None:
        self.left -= size
        if self.left < 0:
            raise UnsafeArchiveError(
                f"refusing {name!r}: the files would hold more than the size limit (max_size, --max-size) allows"
            )


def split_path(name: str, what: str) -> list[str]:
    """Path components of a tar name: leading '/' and '.' dropped; any '..' refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"refusing {what} {name!r}: path contains '..'")
    return parts


@dataclass
class _Applier:
    """Applies one layer's entries under a root directory, whiteouts included."""

    root_fd: int
    refusal: dict[str, str]  # special entry kind -> why it is refused
    budget: SizeBudget | None = None
    # Paths written by this layer: a whiteout hides only what lower layers put there.
    written: set[str] = field(default_factory=set)
    # Directory metadata is applied last, children first, so that writing children does not disturb it.
    dir_meta: list[tuple[str, tarfile.TarInfo]] = field(default_factory=list)
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)

    # --- resolving parents -------------------------------------------------------------------------------

    def _resolve(self, parts: list[str], name: str, create: bool) -> list[str] | None:
        """The real (symlink-free) path inside the root of the directory `parts`; missing directories are
        created when `create`, else the answer is None."""
        resolved: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            comp = pending.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if not resolved:
                    raise UnsafeArchiveError(
                        f"refusing {name!r}: a symlink in its path leads outside the target"
                    )
                resolved.pop()
                continue
            path = "/".join([*resolved, comp])
            try:
                st = os.stat(path, dir_fd=self.root_fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    return None
                with self._open_dir(resolved) as fd:
                    os.mkdir(comp, 0o755, dir_fd=fd)
                self.written.add(path)
                resolved.append(comp)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                link = os.readlink(path, dir_fd=self.root_fd)
                if os.path.isabs(link) or hops > MAX_SYMLINKS:
                    raise UnsafeArchiveError(
                        f"refusing {name!r}: {path!r} is a symlink to {link!r}, outside the target"
                    )
                pending[:0] = link.split("/")
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafeArchiveError(f"refusing {name!r}: {path!r} is not a directory")
            resolved.append(comp)
        return resolved

    @contextlib.contextmanager
    def _open_dir(self, resolved: list[str]) -> Iterator[int]:
        """A descriptor of a resolved directory, opened one component at a time without following symlinks."""
        fd = os.dup(self.root_fd)
        try:
            for comp in resolved:
                try:
                    child = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafeArchiveError(f"refusing to write through symlink {comp!r}") from None
                    raise
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    # --- entries -------------------------------------------------------------------------------------------

    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = split_path(member.name, "entry")
        if not parts:
            return  # the root directory itself: the target's own attributes are the caller's
        *parent, base = parts
        if base.startswith(WHITEOUT):
            self._apply_whiteout(parent, base, member.name)
            return
        special = "fifo" if member.isfifo() else "device" if member.ischr() or member.isblk() else None
        if special is not None and special in self.refusal:
            raise UnsafeArchiveError(f"refusing {member.name!r}: {self.refusal[special]}")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isdev()):
            raise UnsafeArchiveError(f"refusing {member.name!r}: unsupported tar entry type {member.type!r}")
        link_source = self._link_source(member) if member.islnk() else None
        resolved = self._resolve(parent, member.name, create=True)
        assert resolved is not None  # created when missing
        path = "/".join([*resolved, base])
        with self._open_dir(resolved) as fd:
            self._make(fd, base, path, member, tar, link_source)
        self.written.add(path)

    def _apply_whiteout(self, parent: list[str], base: str, name: str) -> None:
        victim = base[len(WHITEOUT) :]
        if victim.startswith(WHITEOUT) and base != OPAQUE:
            return  # aufs metadata such as .wh..wh.plnk: not part of the image
        if not victim or victim in (".", "..") or "/" in victim:
            # .wh... would name the parent directory, .wh.. this one: never a file of the image
            raise UnsafeArchiveError(f"refusing whiteout {name!r}: it does not name an entry inside the image")
        resolved = self._resolve(parent, name, create=False)
        if resolved is None:
            return  # nothing below to hide
        with self._open_dir(resolved) as fd:
            if base == OPAQUE:
                self._prune(fd, "/".join(resolved))
            else:
                self._whiteout(fd, victim, "/".join([*resolved, victim]))

    def _link_source(self, member: tarfile.TarInfo) -> list[str]:
        parts = split_path(member.linkname, "hardlink target of")
        if not parts:
            raise UnsafeArchiveError(f"refusing hardlink {member.name!r}: it points at the root directory")
        *parent, base = parts
        resolved = self._resolve(parent, member.name, create=False)
        st = None
        if resolved is not None:
            with self._open_dir(resolved) as fd:
                st = _lstat(fd, base)
        if resolved is None or st is None:
            raise UnsafeArchiveError(
                f"refusing hardlink {member.name!r}: target {member.linkname!r} was not extracted before it"
            )
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError(
                f"refusing hardlink {member.name!r}: target {member.linkname!r} is a directory"
            )
        return [*resolved, base]

    def _make(
        self,
        fd: int,
        base: str,
        path: str,
        member: tarfile.TarInfo,
        tar: tarfile.TarFile,
        link_source: list[str] | None,
    ) -> None:
        existing = _lstat(fd, base)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(fd, base, existing)
                os.mkdir(base, 0o700, dir_fd=fd)
            self.dir_meta.append((path, member))
            return
        if link_source is not None:
            with self._open_dir(link_source[:-1]) as src_fd:
                source = _lstat(src_fd, link_source[-1])
                if existing is not None and source is not None and _same_inode(existing, source):
                    return
                _remove(fd, base, existing)
                os.link(link_source[-1], base, src_dir_fd=src_fd, dst_dir_fd=fd, follow_symlinks=False)
            return  # a hardlink shares its target's inode and metadata
        _remove(fd, base, existing)
        if member.issym():
            os.symlink(member.linkname, base, dir_fd=fd)
        elif member.isreg():
            self._write_file(fd, base, member, tar)
            return
        elif member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=fd)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=fd)
        self._set_meta(fd, base, member, symlink=member.issym())

    def _write_file(self, fd: int, base: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        out = os.open(
            base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd
        )
        try:
            if self.budget is not None:
                self.budget.take(member.size, member.name)
            source = tar.extractfile(member)
            if source is not None:
                _copy_keeping_holes(source, out, member)
            if self.is_root:
                os.fchown(out, member.uid, member.gid)
            os.fchmod(out, member.mode & 0o7777)  # after chown, which clears set-uid bits
            os.utime(out, (member.mtime, member.mtime))
        finally:
            os.close(out)

    def _set_meta(self, fd: int, base: str, member: tarfile.TarInfo, symlink: bool = False) -> None:
        if self.is_root:
            os.chown(base, member.uid, member.gid, dir_fd=fd, follow_symlinks=False)
        if not symlink:  # Linux has no lchmod: a symlink's mode is meaningless anyway
            os.chmod(base, member.mode & 0o7777, dir_fd=fd)
        os.utime(base, (member.mtime, member.mtime), dir_fd=fd, follow_symlinks=False)

    # --- whiteouts -----------------------------------------------------------------------------------------

    def _whiteout(self, fd: int, name: str, path: str) -> None:
        existing = _lstat(fd, name)
        if existing is None:
            return
        if path not in self.written:
            _remove(fd, name, existing)
        elif stat.S_ISDIR(existing.st_mode):
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                self._prune(child, path)
            finally:
                os.close(child)

    def _prune(self, fd: int, path: str) -> None:
        """Delete what lower layers put under a directory, keeping what this layer wrote."""
        for name in os.listdir(fd):
            self._whiteout(fd, name, f"{path}/{name}" if path else name)

    def finish(self) -> None:
        for path, member in reversed(self.dir_meta):
            parts = path.split("/")
            # A directory replaced later in the layer (by a symlink, say) has no metadata left to set.
            with contextlib.suppress(FileNotFoundError, UnsafeArchiveError), self._open_dir(parts[:-1]) as fd:
                existing = _lstat(fd, parts[-1])
                if existing is not None and stat.S_ISDIR(existing.st_mode):  # not replaced later in the layer
                    self._set_meta(fd, parts[-1], member)


_ZEROS = bytes(COPY_SIZE)


def _copy_keeping_holes(source: IO[bytes], out: int, member: tarfile.TarInfo) -> None:
    """Write a file's data and leave holes for the rest: the data regions of a sparse member (GNU or PAX), and
    whole MiBs of zeros in any file, are skipped with a seek, so a tiny sparse entry or a layer of zeros does not
    fill the disk. Zeros are checked per MiB read, at the speed of a memory compare."""
    # tarfile's sparse map is a list of (offset, length) data regions (typeshed says bytes). The buffered reader
    # cannot seek on a streamed tar; its raw reader can (forward), and reads a hole without touching the stream.
    regions = cast("list[tuple[int, int]] | None", member.sparse) or [(0, member.size)]
    raw = cast(IO[bytes], getattr(source, "raw", source))
    for offset, length in regions:
        raw.seek(offset)
        os.lseek(out, offset, os.SEEK_SET)
        while length > 0 and (chunk := raw.read(min(COPY_SIZE, length))):
            length -= len(chunk)
            if len(chunk) == COPY_SIZE and chunk == _ZEROS:
                os.lseek(out, COPY_SIZE, os.SEEK_CUR)
            else:
                write_all(out, chunk)
    os.ftruncate(out, member.size)  # the holes at the end


def _lstat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(fd: int, name: str, existing: os.stat_result | None) -> None:
    if existing is None:
        return
    if name in (".", "..") or "/" in name:  # a second guard: only ever an entry of this directory
        raise UnsafeArchiveError(f"refusing to remove {name!r}")
    if stat.S_ISDIR(existing.st_mode):
        shutil.rmtree(name, dir_fd=fd)  # fd-based on Linux: does not follow symlinks inside the tree
    else:
        os.unlink(name, dir_fd=fd)


def _same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

