"""Atomic file writes (a temporary file beside the target, fsync, rename; the same for directories), and opening
files that someone else could have planted: never through a symlink when writing, never blocking on a FIFO, only
ever a regular file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO, TypeVar

from ocipush.errors import LayoutError

# shutil (~3 ms with the compressors it loads) is imported by the functions that clean up, and new names come from
# os.urandom rather than tempfile (which loads shutil and random): a push or pull never pays for them.
_NEW_NAME_ATTEMPTS = 100
_Made = TypeVar("_Made")


def new_file_in(directory: str, prefix: str) -> tuple[int, str]:
    """Create a file no one else has opened, named `prefix` + random hex, mode 0600 (as tempfile.mkstemp does):
    its open descriptor and its path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return _made_new(directory, prefix, lambda path: (os.open(path, flags, 0o600), path))


def new_directory_in(directory: str, prefix: str) -> str:
    """Create a directory no one else has made, named `prefix` + random hex, mode 0700 (as tempfile.mkdtemp)."""

    def make(path: str) -> str:
        os.mkdir(path, 0o700)
        return path

    return _made_new(directory, prefix, make)


def _made_new(directory: str, prefix: str, make: Callable[[str], _Made]) -> _Made:
    """`make(path)` for random names until one did not exist yet (`make` raises FileExistsError when it did)."""
    for _ in range(_NEW_NAME_ATTEMPTS):
        try:
            return make(os.path.join(directory, prefix + os.urandom(8).hex()))
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", directory)


@contextlib.contextmanager
def atomic_writer(path: str, mode: int = 0o644, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a file that replaces `path` only when the block ends without an exception. `durable=False` skips
    the fsync: the rename still makes the swap atomic for other processes, only a power cut may lose it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = new_file_in(directory, ".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def naming_full_disk(path: str) -> Iterator[None]:
    """A full disk (ENOSPC, EDQUOT) reported with the path being written, which the OS error does not name."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or exc.filename:
            raise
        raise OSError(exc.errno, f"{os.strerror(exc.errno)} while writing into", path) from None


def pread_range(fd: int, offset: int, length: int, piece: int = 1 << 20) -> Iterator[bytes]:
    """Bytes [offset, offset + length) of an open file, in pieces; EOFError when the file is shorter."""
    end = offset + length
    while offset < end:
        data = os.pread(fd, min(piece, end - offset), offset)
        if not data:
            raise EOFError
        offset += len(data)
        yield data


def atomic_write_bytes(path: str, data: bytes, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as f:
        f.write(data)


@contextlib.contextmanager
def staged_directory(path: str, *, resumable: bool = False) -> Iterator[str]:
    """A directory to fill that becomes `path` only when the block ends without an error, so that a failure
    (or a crash) never leaves `path` holding half a result.

    `path` must be missing or an empty directory. It is filled beside itself (`.NAME.partial…`) and renamed into
    place; an empty directory is replaced, keeping its mode and owner. An empty mount point cannot be renamed
    over: it is filled in place and emptied again on an error. On an error the staging directory is removed,
    unless `resumable`: then it keeps its fixed name `.NAME.partial`, and the next attempt continues in it."""
    path = os.path.realpath(path)  # a symlink to an empty directory: fill the directory, keep the link
    parent, name = os.path.split(path)
    existing = os.stat(path) if os.path.isdir(path) else None
    if existing is not None and os.path.ismount(path):
        try:
            yield path
        except BaseException:
            _empty(path)
            raise
        return
    os.makedirs(parent, exist_ok=True)
    if not resumable:
        staging = new_directory_in(parent, f".{name}.partial-")
        yield from _fill_and_rename(staging, path, existing, keep_on_error=False)
        return
    staging = os.path.join(parent, f".{name}.partial")
    os.makedirs(staging, exist_ok=True)
    lock = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent attempt at the same path: one at a time
        if os.path.isdir(path) and os.listdir(path):
            with contextlib.suppress(OSError):  # made afresh after the other attempt renamed its own away
                os.rmdir(staging)
            yield path  # the other attempt completed it: add to it in place
        else:
            yield from _fill_and_rename(staging, path, existing, keep_on_error=True)
    finally:
        os.close(lock)  # releases the lock


def _fill_and_rename(
    staging: str, path: str, existing: os.stat_result | None, keep_on_error: bool
) -> Generator[str, None, None]:
    try:
        yield staging
        if existing is not None:
            os.chmod(staging, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0:
                os.chown(staging, existing.st_uid, existing.st_gid)
        else:
            os.chmod(staging, 0o755)  # as mkdir would make it (mkdtemp's is private)
        try:
            os.rename(staging, path)  # replaces an empty directory atomically
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            from ocipush.errors import UsageError

            raise UsageError(f"{path} is no longer empty: something else wrote to it meanwhile") from None
    except BaseException:
        if not keep_on_error:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def removed_on_error(path: str) -> Iterator[str]:
    """`path`, removed again if the block fails and it did not exist (or was empty) before: for outputs whose
    files must stay where they are written (a build's layout, whose blobs the layer cache points at)."""
    created = not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path))
    try:
        yield path
    except BaseException:
        if created:
            import shutil

            _empty(path) if os.path.ismount(path) else shutil.rmtree(path, ignore_errors=True)
        raise


def _empty(directory: str) -> None:
    import shutil

    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)


def open_regular(path: str, flags: int = os.O_RDONLY, *, follow: bool = True, mode: int = 0o644) -> int:
    """`os.open` for a file that must be a regular file: O_NONBLOCK so that a FIFO posing as one cannot hang the
    open, O_NOFOLLOW unless `follow` (writes never go through a planted symlink); anything else is a LayoutError."""
    extra = os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags | extra, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LayoutError(f"{path} is a symbolic link: refusing to open it") from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise LayoutError(f"{path} is not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayoutError(f"{path} is not a regular file")
    return fd


@contextlib.contextmanager
def locked_file(path: str) -> Iterator[int]:
    """An exclusive flock on the lock file `path` (created when missing, never through a symlink)."""
    fd = open_regular(path, os.O_WRONLY | os.O_CREAT, follow=False)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def real_directory(path: str) -> str:
    """`path`, made when missing; a symlink or anything but a directory there is refused."""
    os.makedirs(path, exist_ok=True)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise LayoutError(f"{path} is not a directory (a symbolic link?): refusing to write into it")
    return path


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
