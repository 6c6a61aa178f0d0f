"""lexmargin.fileio: atomic saves keep normal permissions, leave no temporaries, and loads are safe."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lexmargin import DataError, FileInUseError
from lexmargin.fileio import (atomic_write, dumps_strict, exclusive_writer, read_npz, remove_stale_temporaries,
                              savez_atomic, write_text_atomic)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_files_get_the_umask_permissions_and_existing_ones_keep_theirs(tmp_path):
    script = ("import os, sys; os.umask(int(sys.argv[2], 8));"
              "from lexmargin.fileio import write_text_atomic; write_text_atomic(sys.argv[1], 'x')")
    for umask, expected in (("022", 0o644), ("077", 0o600), ("002", 0o664)):
        target = tmp_path / f"new_{umask}.txt"
        subprocess.run([sys.executable, "-c", script, str(target), umask], check=True, timeout=60)
        assert target.stat().st_mode & 0o777 == expected
    kept = tmp_path / "kept.txt"
    kept.write_text("old")
    kept.chmod(0o640)
    write_text_atomic(kept, "new")
    assert kept.read_text() == "new" and kept.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_stale_temporaries_are_removed_by_the_next_save(tmp_path):
    target = tmp_path / "c.npz"
    (tmp_path / ".c.npz.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "c.npz.tmp").write_bytes(b"legacy")
    (tmp_path / ".other.npz.xyz.tmp").write_bytes(b"not ours")
    savez_atomic(target, x=np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.npz.xyz.tmp", "c.npz"]
    assert remove_stale_temporaries(target) == []


def test_read_npz_names_the_kind_and_never_advises_pickle(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("plain text")
    with pytest.raises(DataError, match="bad.npz is corrupt or not a lexmargin checkpoint file") as info:
        read_npz(bad, "checkpoint")
    assert "allow_pickle" not in str(info.value)
    objects = tmp_path / "objects.npz"
    np.savez(objects, o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="Python objects") as info:
        read_npz(objects, "data")
    assert "allow_pickle" not in str(info.value)
    good = tmp_path / "good.npz"
    np.savez(good, x=np.arange(2))
    with pytest.raises(DataError, match=r"arrays \['y'\] missing"):
        read_npz(good, "data", required=("x", "y"))


def test_exclusive_writer_refuses_a_second_writer_and_releases(tmp_path):
    target = tmp_path / "ck.npz"
    with exclusive_writer(target, "checkpoint"):
        with pytest.raises(FileInUseError, match="already being written"), exclusive_writer(target, "checkpoint"):
            pass
    with exclusive_writer(target, "checkpoint"):   # released: a new writer may take it
        pass


def test_dumps_strict_writes_null_for_non_finite_numbers():
    text = dumps_strict({"a": float("nan"), "b": [np.inf, 1.5], "c": np.float64(-np.inf), "d": np.array([2.0])})
    assert text == '{"a": null, "b": [null, 1.5], "c": null, "d": [2.0]}'
