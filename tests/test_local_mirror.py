"""Local mirror, exclude patterns and dry runs through the built module."""

from __future__ import annotations

import os
import stat

import pytest

import blit

MTIME_NS = 1_600_000_000_123_456_789


def test_mirror_deletes_extraneous(src, dst, make_tree, tree_diff):
    src.file("kept.txt", "kept")
    src.file("sub/kept.txt", "kept")
    existing = make_tree("dst")
    existing.file("extra.txt", "extra")
    existing.file("sub/extra.txt", "extra")
    existing.file("gone/deep/file.txt", "deep")
    existing.dir("gone-empty")
    existing.symlink("gone-link", "kept.txt")

    summary = blit.mirror(src.root, dst)

    assert tree_diff(src.root, dst) == []
    # Deleted: extra.txt, sub/extra.txt, gone, gone/deep, gone/deep/file.txt,
    # gone-empty and gone-link.
    assert summary.deleted == 7
    assert summary.failed == 0


def test_copy_mirror_flag_deletes(src, dst, make_tree):
    src.file("kept.txt", "kept")
    make_tree("dst").file("extra.txt", "extra")

    summary = blit.copy(src.root, dst, mirror=True)

    assert sorted(os.listdir(dst)) == ["kept.txt"]
    assert summary.deleted == 1


def test_mirror_into_empty_dst(src, dst, tree_diff):
    src.file("a/b.txt", "b")
    src.dir("empty")

    summary = blit.mirror(src.root, dst)

    assert tree_diff(src.root, dst) == []
    assert summary.deleted == 0


def test_mirror_replaces_dir_with_file(src, dst, make_tree, tree_diff):
    src.file("name", "now a file")
    make_tree("dst").file("name/inside.txt", "was a directory")

    summary = blit.mirror(src.root, dst)

    assert (dst / "name").is_file()
    assert (dst / "name").read_text() == "now a file"
    assert tree_diff(src.root, dst, ignore_root=True) == []
    assert summary.failed == 0


def test_mirror_replaces_file_with_dir(src, dst, make_tree, tree_diff):
    src.file("name/inside.txt", "now a directory")
    make_tree("dst").file("name", "was a file")

    summary = blit.mirror(src.root, dst)

    assert (dst / "name" / "inside.txt").read_text() == "now a directory"
    assert tree_diff(src.root, dst, ignore_root=True) == []
    assert summary.failed == 0


def test_mirror_replaces_dir_with_symlink(src, dst, make_tree):
    src.symlink("name", "elsewhere")
    make_tree("dst").file("name/inside.txt", "was a directory")

    blit.mirror(src.root, dst)

    assert (dst / "name").is_symlink()
    assert os.readlink(dst / "name") == "elsewhere"


def test_second_mirror_is_noop(src, dst, make_tree):
    src.file("a.txt", "a")
    src.file("d/b.txt", "b")
    src.symlink("d/link", "b.txt")
    src.file("skip.log", "excluded")
    make_tree("dst").file("protected.log", "kept")
    blit.mirror(src.root, dst, exclude=["*.log"])

    summary = blit.mirror(src.root, dst, exclude=["*.log"])

    assert summary.transferred == 0
    assert summary.deleted == 0
    assert summary.failed == 0
    # Skipped: a.txt, d, d/b.txt and d/link.
    assert summary.skipped == 4
    assert (dst / "protected.log").read_text() == "kept"


def test_exclude_name_any_depth(src, dst):
    src.file("keep.txt", "k")
    src.file("top.log", "x")
    src.file("a/b/deep.log", "x")
    src.file("a/b/deep.txt", "k")

    summary = blit.copy(src.root, dst, exclude=["*.log"])

    assert (dst / "keep.txt").exists()
    assert (dst / "a" / "b" / "deep.txt").exists()
    assert not os.path.lexists(dst / "top.log")
    assert not os.path.lexists(dst / "a" / "b" / "deep.log")
    assert summary.failed == 0


def test_exclude_anchored(src, dst):
    src.file("build/out.o", "root build")
    src.file("lib/build/out.o", "nested build")

    blit.copy(src.root, dst, exclude=["/build"])

    assert not os.path.lexists(dst / "build")
    assert (dst / "lib" / "build" / "out.o").read_text() == "nested build"


def test_exclude_unanchored_dir(src, dst):
    src.file("build/out.o", "root build")
    src.file("lib/build/out.o", "nested build")
    src.file("lib/keep.c", "source")

    blit.copy(src.root, dst, exclude=["build"])

    assert not os.path.lexists(dst / "build")
    assert not os.path.lexists(dst / "lib" / "build")
    assert (dst / "lib" / "keep.c").exists()


def test_exclude_dir_only(src, dst):
    src.file("cache/entry", "in a cache directory")
    src.file("sub/cache", "a file named cache")
    src.file("sub/deeper/cache/entry", "in a nested cache directory")

    blit.copy(src.root, dst, exclude=["cache/"])

    assert not os.path.lexists(dst / "cache")
    assert not os.path.lexists(dst / "sub" / "deeper" / "cache")
    assert (dst / "sub" / "cache").read_text() == "a file named cache"


def test_exclude_inner_slash_any_depth(src, dst):
    src.file("sub/file", "excluded")
    src.file("x/sub/file", "excluded")
    src.file("xsub/file", "kept")
    src.file("sub/other", "kept")

    blit.copy(src.root, dst, exclude=["sub/file"])

    assert not os.path.lexists(dst / "sub" / "file")
    assert not os.path.lexists(dst / "x" / "sub" / "file")
    assert (dst / "xsub" / "file").exists()
    assert (dst / "sub" / "other").exists()


def test_exclude_star_within_component(src, dst):
    src.file("docs/a.md", "excluded")
    src.file("docs/sub/b.md", "kept")
    src.file("other/c.md", "kept")

    blit.copy(src.root, dst, exclude=["/docs/*.md"])

    assert not os.path.lexists(dst / "docs" / "a.md")
    assert (dst / "docs" / "sub" / "b.md").exists()
    assert (dst / "other" / "c.md").exists()


def test_exclude_double_star_crosses(src, dst):
    src.file("a/z", "excluded")
    src.file("a/b/c/z", "excluded")
    src.file("a/b/c/y", "kept")
    src.file("x/z", "kept")

    blit.copy(src.root, dst, exclude=["/a/**/z"])

    assert not os.path.lexists(dst / "a" / "z")
    assert not os.path.lexists(dst / "a" / "b" / "c" / "z")
    assert (dst / "a" / "b" / "c" / "y").exists()
    assert (dst / "x" / "z").exists()


def test_exclude_protects_dst_entries(src, dst, make_tree):
    src.file("kept.txt", "kept")
    existing = make_tree("dst")
    existing.file("local.log", "protected")
    existing.file("sub/local.log", "protected")
    existing.file("sub/extra.txt", "deleted")
    existing.file("extra.txt", "deleted")

    summary = blit.mirror(src.root, dst, exclude=["*.log"])

    assert (dst / "local.log").read_text() == "protected"
    assert (dst / "sub" / "local.log").read_text() == "protected"
    assert not os.path.lexists(dst / "sub" / "extra.txt")
    assert not os.path.lexists(dst / "extra.txt")
    assert summary.deleted == 2
    assert summary.failed == 0


def test_exclude_keeps_parent_dir(src, dst, make_tree):
    src.file("kept.txt", "kept")
    existing = make_tree("dst")
    existing.file("old/deep/notes.log", "protected")
    existing.file("old/deep/extra.txt", "deleted")
    existing.file("old/extra.txt", "deleted")
    existing.file("gone/extra.txt", "deleted")

    blit.mirror(src.root, dst, exclude=["*.log"])

    assert (dst / "old" / "deep" / "notes.log").read_text() == "protected"
    assert os.listdir(dst / "old") == ["deep"]
    assert os.listdir(dst / "old" / "deep") == ["notes.log"]
    assert not os.path.lexists(dst / "gone")


def test_exclude_anchored_protection(src, dst, make_tree):
    src.file("kept.txt", "kept")
    existing = make_tree("dst")
    existing.file("state", "protected at the root")
    existing.file("sub/state", "not protected below the root")

    blit.mirror(src.root, dst, exclude=["/state"])

    assert (dst / "state").read_text() == "protected at the root"
    assert not os.path.lexists(dst / "sub")


def test_exclude_dir_only_protection(src, dst, make_tree):
    src.file("kept.txt", "kept")
    existing = make_tree("dst")
    existing.file("cache/entry", "protected")
    existing.file("sub/cache", "a file named cache, deleted")

    blit.mirror(src.root, dst, exclude=["cache/"])

    assert (dst / "cache" / "entry").read_text() == "protected"
    assert not os.path.lexists(dst / "sub")


@pytest.mark.parametrize("pattern", ["a[b", "/", "", "//"])
def test_invalid_exclude_raises(src, dst, pattern):
    src.file("f.txt", "x")

    with pytest.raises(blit.InvalidArgumentError) as caught:
        blit.copy(src.root, dst, exclude=["*.ok", pattern])

    assert isinstance(caught.value, ValueError)
    assert f'"{pattern}"' in caught.value.message
    assert not os.path.lexists(dst)


def test_dry_run_changes_nothing(src, dst, make_tree, snapshot):
    src.file("new.txt", "new")
    src.file("changed.txt", "changed content", mtime_ns=MTIME_NS)
    src.file("mode.txt", "same", mode=0o600, mtime_ns=MTIME_NS)
    src.file("same.txt", "same", mtime_ns=MTIME_NS)
    src.file("new-dir/inner.txt", "inner")
    src.symlink("new-link", "new.txt")
    existing = make_tree("dst")
    existing.file("changed.txt", "old", mtime_ns=MTIME_NS)
    existing.file("mode.txt", "same", mode=0o644, mtime_ns=MTIME_NS)
    existing.file("same.txt", "same", mtime_ns=MTIME_NS)
    existing.file("extra.txt", "extra")
    existing.file("extra-dir/inner.txt", "extra")
    existing.file(".blit-0123456789abcdef.tmp", "stale temporary")
    before = snapshot(dst)

    summary = blit.mirror(src.root, dst, dry_run=True)

    assert snapshot(dst) == before
    changes = sorted((change.action, change.path) for change in summary.changes)
    assert changes == [
        ("copy", "changed.txt"),
        ("copy", "new-dir/inner.txt"),
        ("copy", "new.txt"),
        ("delete", "extra-dir"),
        ("delete", "extra-dir/inner.txt"),
        ("delete", "extra.txt"),
        ("metadata", "mode.txt"),
        ("mkdir", "new-dir"),
        ("symlink", "new-link"),
    ]
    assert summary.dry_run
    assert summary.transferred == 6
    assert summary.deleted == 3
    assert summary.skipped == 1
    assert summary.bytes == 0


def test_dry_run_then_real_run(src, dst, make_tree, tree_diff):
    src.file("new.txt", "new")
    src.file("sub/inner.txt", "inner")
    make_tree("dst").file("extra.txt", "extra")
    planned = blit.mirror(src.root, dst, dry_run=True)

    summary = blit.mirror(src.root, dst)

    assert tree_diff(src.root, dst, ignore_root=True) == []
    assert summary.transferred == planned.transferred
    assert summary.deleted == planned.deleted
    assert summary.changes == []
    assert not summary.dry_run


def test_dry_run_missing_dst(src, dst):
    src.file("a/b.txt", "b")

    summary = blit.copy(src.root, dst, dry_run=True)

    assert not os.path.lexists(dst)
    changes = [(change.action, change.path) for change in summary.changes]
    assert changes == [("mkdir", "a"), ("copy", "a/b.txt")]


def test_dry_run_copy_lists_no_deletes(src, dst, make_tree):
    src.file("new.txt", "new")
    make_tree("dst").file("extra.txt", "extra")

    summary = blit.copy(src.root, dst, dry_run=True)

    assert [(change.action, change.path) for change in summary.changes] == [("copy", "new.txt")]
    assert summary.deleted == 0


def test_dry_run_to_dict(src, dst):
    src.file("new.txt", "new")

    result = blit.copy(src.root, dst, dry_run=True).to_dict()

    assert result["dry_run"] is True
    assert result["changes"] == [{"action": "copy", "path": "new.txt"}]
    assert result["transferred"] == 1
    assert result["failures"] == []


def test_mirror_source_inside_dst_raises(make_tree, tmp_path, snapshot):
    outer = make_tree("outer")
    outer.file("other.txt", "would be deleted")
    source = outer.file("inner/f.txt", "source")
    before = snapshot(outer.root)

    with pytest.raises(blit.InvalidArgumentError) as caught:
        blit.mirror(os.path.dirname(source), outer.root)

    assert "inside the destination" in caught.value.message
    assert snapshot(outer.root) == before


def test_mirror_fixes_dir_mode(src, dst, make_tree):
    src.file("d/f.txt", "f")
    src.dir("d", mode=0o750)
    make_tree("dst").dir("d", mode=0o700)

    blit.mirror(src.root, dst)

    assert stat.S_IMODE(os.lstat(dst / "d").st_mode) == 0o750
