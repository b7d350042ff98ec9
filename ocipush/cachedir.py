"""The one directory ocipush writes to besides its outputs: upload journals, build caches, pulled layouts.

`$OCIPUSH_CACHE_DIR`, else `$XDG_CACHE_HOME/ocipush` or `~/.cache/ocipush`; when that is not writable (AWS Lambda's
read-only HOME) a directory under the system temp dir (`/tmp` on Lambda)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

# tempfile and shutil are imported where used (see ocipush.fsutil): the cache dir is often found without them.


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def cache_dir(override: str | None = None) -> str:
    if override:
        os.makedirs(override, exist_ok=True)
        return override
    explicit = os.environ.get("OCIPUSH_CACHE_DIR")
    if explicit:
        os.makedirs(explicit, exist_ok=True)
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    preferred = os.path.join(base, "ocipush")
    if _writable(preferred):
        return preferred
    import tempfile

    fallback = os.path.join(tempfile.gettempdir(), f"ocipush-cache-{os.getuid()}")
    os.makedirs(fallback, mode=0o700, exist_ok=True)
    st = os.lstat(fallback)
    # In a shared /tmp another user could have made it first: use it only if it is ours and private.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return tempfile.mkdtemp(prefix="ocipush-cache-")
    return fallback


def cache_subdir(name: str, override: str | None = None) -> str:
    path = os.path.join(cache_dir(override), name)
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def scratch_dir(override: str | None = None) -> Iterator[str]:
    """A private work directory under the cache dir (same file system as the stores), removed afterwards."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="work-", dir=cache_subdir("tmp", override))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
