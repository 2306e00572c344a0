"""The receiver's sha256 of the files of a real xbstream (made by ``mbstream -c``), computed from the bytes as they
pass (:class:`wizard.agent.receiver.XbstreamHashes`), against hashlib over the same files; and what it leaves to
be read back from disk."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from wizard.agent import receiver

pytestmark = pytest.mark.skipif(shutil.which("mbstream") is None, reason="needs mbstream (mariadb-backup)")


def tree(tmp: Path) -> tuple[Path, list[str]]:
    src = tmp / "src"
    (src / "db").mkdir(parents=True)
    rng = random.Random(8)
    (src / "ibdata1").write_bytes(rng.randbytes(12 * 1024 * 1024 + 17))  # several chunks
    (src / "db" / "t.ibd").write_bytes(rng.randbytes(300_001))
    (src / "empty").write_bytes(b"")
    (src / "mariadb_backup_checkpoints").write_text("backup_type = full-backuped\n")
    return src, ["ibdata1", "db/t.ibd", "empty", "mariadb_backup_checkpoints"]


def stream_of(src: Path, names: list[str]) -> bytes:
    return subprocess.run(["mbstream", "-c", *names], cwd=src, check=True, capture_output=True).stdout


def digests(src: Path, names: list[str]) -> dict[str, tuple[str, int]]:
    return {n: (hashlib.sha256((src / n).read_bytes()).hexdigest(), (src / n).stat().st_size) for n in names}


@pytest.mark.parametrize("piece", [1, 7, 4096, 65536, 1 << 20, 1 << 30])
def test_stream_hashes_match_the_files_in_any_pieces(tmp_path: Path, piece: int) -> None:
    src, names = tree(tmp_path)
    data = stream_of(src, names)
    if piece == 1:  # byte by byte through the headers only: the first 64 kB, then the rest at once
        pieces = [data[i:i + 1] for i in range(65536)] + [data[65536:]]
    else:
        pieces = [data[i:i + piece] for i in range(0, len(data), piece)]
    h = receiver.XbstreamHashes()
    for p in pieces:
        h.feed(p)
    assert h.result() == digests(src, names)


def test_a_file_sent_twice_or_a_cut_stream_is_left_to_the_disk(tmp_path: Path) -> None:
    src, names = tree(tmp_path)
    data = stream_of(src, names)
    h = receiver.XbstreamHashes()
    h.feed(data + stream_of(src, ["db/t.ibd"]))
    got = h.result()
    assert "db/t.ibd" not in got and got["ibdata1"] == digests(src, ["ibdata1"])["ibdata1"]
    cut = receiver.XbstreamHashes()
    cut.feed(data[:-5])
    assert cut.result() == {}
    junk = receiver.XbstreamHashes()
    junk.feed(b"XBSTCK01\0S" + data)
    assert junk.result() == {}


def test_file_hashes_take_the_stream_where_sizes_agree_and_read_the_rest(tmp_path: Path) -> None:
    src, names = tree(tmp_path)
    want = digests(src, names)
    streamed = dict(want)
    streamed["db/t.ibd"] = ("0" * 64, 5)  # a size that disagrees with the file: read back instead
    del streamed["empty"]
    files, size, from_stream = receiver.file_hashes(str(src), streamed)
    assert {k: (v["sha256"], v["size"]) for k, v in files.items()} == want
    assert size == sum(s for _h, s in want.values())
    assert from_stream == 2


def test_the_receiver_thread_gives_the_same_as_the_parser(tmp_path: Path) -> None:
    src, names = tree(tmp_path)
    data = stream_of(src, names)
    sh = receiver.StreamHasher()
    for i in range(0, len(data), 100_000):
        sh.feed(data[i:i + 100_000])
    assert sh.result() == digests(src, names)
