"""Files end to end: a real server; interactive clients on pipes and on a pseudo-terminal;
``send --file`` for scripts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal

import httpx

from tests.client.conftest import ensure_account
from tests.client.test_client_e2e import err, out

CONNECTED = "* connected to "
MIB = 1024 * 1024
FILE_LINE = r"\[file ([0-9a-f]{{8}}): {name}, {size}\]"


def file_line(name: str, size: str) -> str:
    return FILE_LINE.format(name=re.escape(name), size=re.escape(size))


async def login(url: str, user: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/login", json={"username": user, "password": "password1"})
        return {"Authorization": f"Bearer {answer.json()['token']}"}


async def test_upload_and_download_back_byte_for_byte(start_server, start_client, tmp_path):
    server = await start_server()
    blob = tmp_path / "blob 2.bin"
    blob.write_bytes(os.urandom(2 * MIB))
    alice = await start_client(server, "alice")
    bob = await start_client(server, "bob")
    await alice.expect(CONNECTED)
    await bob.expect(CONNECTED)

    await alice.say(f'/upload "{blob}" the data, as promised')
    sent = await alice.wait_for(r"#m\d+ alice: the data, as promised$")
    ref = (await alice.wait_for(file_line("blob 2.bin", "2.0 MiB"))).group(1)
    await bob.expect("alice: the data, as promised")
    assert (await bob.wait_for(file_line("blob 2.bin", "2.0 MiB"))).group(1) == ref
    assert sent

    # To a directory, under its name; again: beside it, never over it.
    into = tmp_path / "downloads"
    into.mkdir()
    await bob.say(f"/download {ref} {into}")
    await bob.expect(f"* saved 2.0 MiB to {into / 'blob 2.bin'}")
    assert (into / "blob 2.bin").read_bytes() == blob.read_bytes()
    await bob.say(f"/download {ref} {into}")
    await bob.expect(f"* saved 2.0 MiB to {into / 'blob 2 (1).bin'} (blob 2.bin was there")
    # To a file named by the user; one that exists is refused.
    await bob.say(f"/download {ref} {into / 'copy.bin'}")
    await bob.expect("* saved 2.0 MiB to ")
    assert hashlib.sha256((into / "copy.bin").read_bytes()).digest() == (
        hashlib.sha256(blob.read_bytes()).digest()
    )
    await bob.say(f"/download {ref} {into / 'copy.bin'}")
    assert await bob.expect("error: ") == (
        f"error: {into / 'copy.bin'} exists already; nothing was overwritten"
    )
    # Unknown files are named as such; a file nobody showed bob is not his to take.
    await bob.say("/download fdeadbeef")
    assert await bob.expect("error: ") == (
        "error: there is no file fdeadbeef (or it is not one you may see)"
    )
    await alice.say(f"/upload {tmp_path / 'nothing-here.txt'}")
    assert (await alice.expect("error: ")).startswith(
        f"error: cannot read {tmp_path / 'nothing-here.txt'}: No such file or directory"
    )
    for client in (alice, bob):
        assert await client.quit() == 0


async def test_a_malicious_name_is_saved_inside_the_directory(start_server, start_client, tmp_path):
    server = await start_server()
    here = tmp_path / "dl" / "a" / "b"  # bob's current directory
    here.mkdir(parents=True)
    bob = await start_client(server, "bob", cwd=here)
    await bob.expect(CONNECTED)
    mallory = await start_client(server, "mallory")
    await mallory.expect(CONNECTED)
    headers = await login(server.url, "mallory")
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        ids = []
        for name, data in (("../../x", b"evil"), ("..", b"dots"), ("/tmp/.profile", b"hi")):
            up = await http.post("/files", params={"name": name}, content=data)
            assert up.status_code == 201, up.text
            ids.append(up.json()["file"]["id"])
        sent = await http.post("/send", json={"to": "bob", "files": ids})
        assert sent.status_code == 201, sent.text
    refs = [(await bob.wait_for(FILE_LINE.format(name=re.escape(n), size=r"\d B"))).group(1)
            for n in ("../../x", "..", "/tmp/.profile")]  # fmt: skip

    await bob.say(f"/download {refs[0]}")
    await bob.expect(f"* saved 4 B to {here / 'x'} (the server calls it '../../x')")
    assert (here / "x").read_bytes() == b"evil"
    assert not (tmp_path / "dl" / "x").exists()
    await bob.say(f"/download {refs[1]}")
    assert await bob.expect("error: ") == (
        "error: the file's name '..' is not a file name; give a PATH to save it as: "
        "/download ID PATH"
    )
    await bob.say(f"/download {refs[1]} dots.bin")
    await bob.expect(f"* saved 4 B to {here / 'dots.bin'}")
    await bob.say(f"/download {refs[2]}")
    await bob.expect(f"* saved 2 B to {here / 'profile'} (the server calls it '/tmp/.profile')")
    assert sorted(p.name for p in here.iterdir()) == ["dots.bin", "profile", "x"]
    assert sorted(p.name for p in (tmp_path / "dl").rglob("*")) == sorted(
        ["a", "b", "dots.bin", "profile", "x"]
    )
    assert await bob.quit() == 0


async def test_send_file_for_scripts(start_server, run_client, tmp_path):
    server = await start_server()
    notes, photo = tmp_path / "notes.txt", tmp_path / "photo.jpg"
    notes.write_text("hello notes\n")
    photo.write_bytes(b"\xff\xd8\xff" + os.urandom(3000))
    await ensure_account(server.url, "bob", "password1")
    sent = await run_client(
        server.url, "alice", "send", "--file", str(notes), "--file", str(photo), "two", "files"
    )
    assert sent.returncode == 0, err(sent)
    only = await run_client(server.url, "alice", "send", "--to", "bob", "--file", str(notes))
    assert only.returncode == 0, err(only)  # no text: the file alone
    read = await run_client(server.url, "alice", "read", "--json")
    (message,) = [json.loads(line)["message"] for line in out(read).splitlines()]
    assert (message["id"], message["text"]) == (out(sent).strip(), "two files")
    assert [(f["name"], f["size"], f["content_type"]) for f in message["files"]] == [
        ("notes.txt", 12, "text/plain"),
        ("photo.jpg", 3003, "image/jpeg"),
    ]
    plain = await run_client(server.url, "bob", "read", "--with", "alice")
    assert re.fullmatch(
        rf"\S+ {out(only).strip()} alice -> bob:  \[file f[0-9a-f]+ 12 notes\.txt\]\n", out(plain)
    ), out(plain)
    async with httpx.AsyncClient(base_url=server.url) as http:
        got = await http.get(
            f"/files/{message['files'][1]['id']}", headers=await login(server.url, "bob")
        )
        assert got.content == photo.read_bytes()

    missing = await run_client(server.url, "alice", "send", "--file", str(tmp_path / "nope"), "x")
    assert (missing.returncode, err(missing).strip()) == (
        1,
        f"trio-chat-client: cannot read the file {tmp_path / 'nope'}; nothing was sent",
    )
    nothing = await run_client(server.url, "alice", "send")
    assert nothing.returncode == 1 and "send needs TEXT, or a file with --file PATH" in err(nothing)
    # Too large for the server: said so, and no message was made.
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    small = await start_server("--max-file-size", "1024")
    refused = await run_client(small.url, "alice", "send", "--file", str(big), "big")
    assert refused.returncode == 4, err(refused)
    assert err(refused).strip() == (
        "trio-chat-client: the server refuses a file this large (the body is 2048 bytes; the "
        "limit is 1024)"
    )


async def test_the_upload_progress_bar_on_the_full_screen(start_server, start_tui, tmp_path):
    server = await start_server()
    blob = tmp_path / "big.bin"
    blob.write_bytes(os.urandom(4 * MIB + 123))
    small = tmp_path / "small.txt"
    small.write_text("hi")
    tui = await start_tui(server, "alice", rows=12, cols=70)
    await tui.expect(r"^\* connected to ")
    for n in range(8):  # a screenful, the last message on two rows
        tui.send(f"message {n}\r")
        await tui.expect(rf"alice: message {n}$")
    tui.send(f"/upload {small} the last one\r")
    await tui.expect(r"^ +\[file [0-9a-f]{8}: small\.txt, 2 B\]$")
    # The server stops reading (stopped, it cannot): the upload stalls partway, its bar shown.
    server.process.send_signal(signal.SIGSTOP)
    try:
        tui.send(f"/upload {blob}\r")
        # It moves (what went before the stall is counted), and stops short of the end.
        found = await tui.expect(r"^uploading big\.bin \[([#.]{20})\] +([1-9]\d?)% of 4\.0 MiB$")
        assert found[1] != "#" * 20
        rows = tui.rows()
        assert rows[-3] == found.string  # just above the status line
        assert rows[-2].startswith(" [1:general] │ live │")
        # The conversation gave up a row for it from the top: its last lines are still in view.
        assert rows[-4].strip().endswith("small.txt, 2 B]") and "the last one" in rows[-5]
    finally:
        server.process.send_signal(signal.SIGCONT)
    await tui.expect(r"#m10 alice: \[file [0-9a-f]{8}: big\.bin, 4\.0 MiB\]$")
    await tui.wait(lambda: not any(r.startswith("uploading") for r in tui.rows()), "no bar")
    assert tui.rows()[-2].startswith(" [1:general] │ live │")
    assert tui.rows()[-1] == "general>"
    tui.send("/quit\r")
    assert await tui.exit_status() == 0
