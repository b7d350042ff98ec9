"""The tree walk under the tar writer: order, paths, excluded directories, open directory fds and a tree that
changes while it is walked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from buildhelpers import make_tree

from ocipush.build.ignore import IgnoreMatcher
from ocipush.build.tarstream import DIR, REG, SYM, Entry, Fingerprint, iter_tree
from ocipush.errors import BuildError


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_names_are_sorted_by_bytes_and_paths_are_readable(tmp_path: Path) -> None:
    src = tmp_path / "src"
    # Byte order, not code point order: an undecodable byte (0xff, a surrogate escape in Python) sorts after
    # 'é' (0xc3 0xa9), and upper case before lower case.
    names = [b"\xff", "é".encode(), b"z", b"Z", b"a.b", b"a-b"]
    src.mkdir()
    for name in names:
        (Path(os.fsdecode(bytes(src) + b"/" + name))).write_bytes(name)
    entries = list(iter_tree(str(src) + "/"))
    assert [e.name for e in entries] == sorted(names)
    for entry in entries:
        assert entry.kind == REG
        with open(entry.path, "rb") as f:
            assert f.read() == entry.name
        assert entry.path == os.fsdecode(bytes(src) + b"/" + entry.name)


def test_entries_carry_modes_links_and_stamps(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    by_name = {e.name: e for e in iter_tree(str(src), "/srv")}
    current = by_name[b"srv/app/current.py"]
    assert (current.kind, current.link) == (SYM, b"main.py")
    run = by_name[b"srv/app/run.sh"]
    st = os.lstat(src / "app" / "run.sh")
    assert (run.mode, run.size, run.stamp) == (0o755, st.st_size, (st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    assert by_name[b"srv/app/empty/"] == Entry(b"srv/app/empty/", DIR, 0o755)


def test_excluded_directory_is_kept_only_around_what_is_re_included(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in ["docs/a.md", "docs/keep/x.md", "docs/keep/deeper/y.md", "docs/other/y.md", "src/main.py"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    (src / "docs" / "empty").mkdir()
    ignore = IgnoreMatcher(["docs", "!docs/keep/deeper/y.md"])
    names = [e.name for e in iter_tree(str(src), "/", ignore)]
    assert names == [b"docs/", b"docs/keep/", b"docs/keep/deeper/", b"docs/keep/deeper/y.md", b"src/", b"src/main.py"]
    # Nothing re-included: the excluded directory leaves nothing behind, not even its own entry.
    names = [e.name for e in iter_tree(str(src), "/", IgnoreMatcher(["docs", "!docs/none.md"]))]
    assert names == [b"src/", b"src/main.py"]


def test_walk_closed_early_closes_its_directories(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "a" / "b" / "c" / "f").write_text("x")
    (src / "z").write_text("x")
    before = open_fds()
    walk = iter_tree(str(src))
    assert [next(walk).name for _ in range(3)] == [b"a/", b"a/b/", b"a/b/c/"]
    assert len(open_fds() - before) == 4  # the root and the three directories on the way down
    walk.close()
    assert open_fds() == before
    assert [e.name for e in iter_tree(str(src))][-1] == b"z"
    assert open_fds() == before


def test_directory_swapped_for_a_symlink_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "inside.txt").write_text("in")
    outside.mkdir()
    (outside / "secret.txt").write_text("out")
    real_open = os.open
    swapped: list[str] = []

    def swap_then_open(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        # The race no test can time: 'sub' was stat'ed as a directory, and becomes a symlink before it is opened.
        if path == "sub" and dir_fd is not None and not swapped:
            os.rename(src / "sub", tmp_path / "sub-moved")
            os.symlink(outside, src / "sub")
            swapped.append(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", swap_then_open)
    before = open_fds()
    seen: list[Entry] = []
    with pytest.raises(BuildError, match=r"src/sub changed while the layer was being built"):
        seen.extend(iter_tree(str(src)))
    assert swapped == ["sub"]
    assert seen == []
    assert open_fds() == before


def test_unreadable_directory_is_a_build_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    (src / "locked").mkdir(parents=True)
    real_open = os.open
    denied: list[str] = []

    def deny(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        # Tests run as root, for whom mode 000 is readable: deny the open the way the kernel would.
        if path == "locked":
            denied.append(path)
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", deny)
    before = open_fds()
    with pytest.raises(BuildError, match=r"cannot read directory .*src/locked: permission denied"):
        list(iter_tree(str(src)))
    assert denied == ["locked"]
    assert open_fds() == before


def test_fingerprint_covers_every_entry_of_a_long_walk() -> None:
    # More entries than one batch of hashed lines: a change in any batch, the last partial one included, shows.
    def entries(changed: int | None = None) -> list[Entry]:
        return [Entry(b"f%d" % i, REG, 0o644, i, f"/f{i}", stamp=(i + (i == changed), 2 * i, i)) for i in range(1300)]

    def fingerprint(items: list[Entry]) -> tuple[str, int]:
        stamp = Fingerprint("settings")
        assert list(stamp.watch(items)) == items
        return stamp.hexdigest(), stamp.newest_ns

    digest, newest = fingerprint(entries())
    assert newest == 2 * 1299
    assert fingerprint(entries()) == (digest, newest)
    assert len({fingerprint(entries(changed))[0] for changed in (0, 700, 1299)} | {digest}) == 4
