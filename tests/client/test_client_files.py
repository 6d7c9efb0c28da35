"""Files on this machine: a server-given name never becomes a path outside the target
directory, a download never overwrites, and what an upload is sent as."""

import os
from pathlib import Path

import pytest

from trio_chat_client.files import (
    Progress,
    UnsafeNameError,
    available_path,
    content_type_for,
    create_new,
    format_size,
    name_from_disposition,
    progress_bar,
    safe_name,
)
from trio_chat_client.transfers import LocalFileError, target_path, why_named


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("notes.txt", "notes.txt"),
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\windows\\evil.dll", "evil.dll"),
        ("a/b/../c.txt", "c.txt"),
        ("./.bashrc", "bashrc"),  # not a hidden file
        ("...", "download"),
        ("tab\there\x1b[31m.txt", "tabhere[31m.txt"),
        ("Kirchstraße 🍜.md", "Kirchstraße 🍜.md"),
    ],
)
def test_a_server_given_name_becomes_one_file_name(given, safe):
    assert safe_name(given) == safe


@pytest.mark.parametrize("given", ["..", ".", "", "../..", "foo/", "x/..", "\x00", " / "])
def test_names_that_are_no_file_name_are_refused(given):
    with pytest.raises(UnsafeNameError):
        safe_name(given)


def test_a_long_name_is_cut_keeping_its_extension():
    name = safe_name("é" * 200 + ".tar")
    assert len(name.encode()) <= 255 and name.endswith(".tar") and name.startswith("é")


def test_what_exists_is_not_overwritten(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    (tmp_path / "a (1).txt").write_text("old")
    assert available_path(tmp_path, "a.txt") == tmp_path / "a (2).txt"
    assert available_path(tmp_path, "new") == tmp_path / "new"
    (tmp_path / "README").write_text("x")
    assert available_path(tmp_path, "README") == tmp_path / "README (1)"
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    assert available_path(tmp_path, "dangling") == tmp_path / "dangling (1)"


def test_create_new_never_writes_through_a_link_or_over_a_file(tmp_path):
    (tmp_path / "there").write_text("keep")
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "there")
    outside = tmp_path / "outside"
    os.symlink(outside, tmp_path / "link")
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "link")
    assert not outside.exists() and (tmp_path / "there").read_text() == "keep"
    with create_new(tmp_path / "fresh") as f:
        f.write(b"hi")
    assert (tmp_path / "fresh").read_bytes() == b"hi"


def test_where_a_download_goes(tmp_path):
    cwd = tmp_path / "here"
    cwd.mkdir()
    (tmp_path / "dir").mkdir()
    # No PATH: the current directory, under the server's name made safe.
    assert target_path(None, "../../x", "f1", cwd) == cwd / "x"
    assert target_path(None, None, "f1", cwd) == cwd / "f1"  # no name: the id
    # A directory: in it. A relative PATH is from the current directory.
    assert target_path(str(tmp_path / "dir"), "/etc/passwd", "f1", cwd) == tmp_path / "dir/passwd"
    assert target_path("../dir", "a.txt", "f1", cwd) == cwd / "../dir/a.txt"
    # A file that does not exist yet: exactly there, whatever the server calls it.
    assert target_path(str(tmp_path / "mine.bin"), "../x", "f1", cwd) == tmp_path / "mine.bin"
    assert target_path("~/x.bin", "a", "f1", cwd) == Path.home() / "x.bin"
    (tmp_path / "taken").write_text("x")
    with pytest.raises(LocalFileError, match="exists already; nothing was overwritten"):
        target_path(str(tmp_path / "taken"), "a", "f1", cwd)
    with pytest.raises(LocalFileError, match="there is no directory"):
        target_path(str(tmp_path / "no/such/dir/file"), "a", "f1", cwd)
    with pytest.raises(LocalFileError, match=r"give a PATH to save it as"):
        target_path(None, "..", "f1", cwd)
    # PATH/ is a directory, never a file of that name.
    with pytest.raises(LocalFileError, match="there is no directory"):
        target_path("Downloads/", "a.txt", "f1", cwd)
    assert target_path("Downloads", "a.txt", "f1", cwd) == cwd / "Downloads"  # as cp would
    assert target_path(f"{tmp_path / 'dir'}/", "a.txt", "f1", cwd) == tmp_path / "dir/a.txt"


def test_why_a_download_is_not_called_what_the_server_calls_it(tmp_path):
    assert why_named(tmp_path / "x", "x") == ""
    assert why_named(tmp_path / "x", None) == ""
    assert why_named(tmp_path / "x", "../../x") == " (the server calls it '../../x')"
    assert why_named(tmp_path / "a (1).txt", "a.txt") == " (a.txt was there already)"
    assert why_named(tmp_path / "x (1)", "/x") == (
        " (the server calls it '/x'; x was there already)"
    )


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("attachment; filename*=UTF-8''notes.txt", "notes.txt"),
        ("attachment; filename*=UTF-8''..%2F..%2Fx", "../../x"),
        ("attachment; filename*=utf-8''Kirchstra%C3%9Fe.txt", "Kirchstraße.txt"),
        ('attachment; filename="a \\"b\\".txt"', 'a "b".txt'),
        ("attachment; filename=plain.txt", "plain.txt"),
        ("attachment", None),
        (None, None),
        ("attachment; filename*=UTF-8''%FF%FE", None),  # not UTF-8: no name rather than junk
    ],
)
def test_the_name_in_content_disposition(header, name):
    assert name_from_disposition(header) == name


def test_what_an_upload_is_sent_as():
    assert content_type_for(Path("notes.txt")) == "text/plain"
    assert content_type_for(Path("photo.JPG")) == "image/jpeg"
    assert content_type_for(Path("backup.tar.gz")) == "application/gzip"
    assert content_type_for(Path("no-extension")) == "application/octet-stream"


def test_sizes_and_progress():
    assert [format_size(n) for n in (0, 1023, 1024, 2 * 1024 * 1024, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "2.0 MiB",
        "5.0 GiB",
    ]
    assert progress_bar(0.0, 10) == "[..........]"
    assert progress_bar(0.55, 10) == "[#####.....]"
    assert progress_bar(1.5, 10) == "[##########]"
    progress = Progress("uploading", "big.bin", 2 * 1024 * 1024, 1024 * 1024)
    assert progress.describe(10) == "uploading big.bin [#####.....]  50% of 2.0 MiB"
