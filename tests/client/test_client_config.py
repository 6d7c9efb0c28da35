import os
import stat
from pathlib import Path

from trio_chat_client.config import TokenStore, default_config_dir


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_tokens_round_trip_with_owner_only_permissions(tmp_path):
    store = TokenStore(tmp_path / "cfg")
    assert store.get("http://a:1", "alice") is None
    store.put("http://a:1", "alice", "t1")
    store.put("http://a:1", "bob", "t2")
    store.put("http://b:2", "alice", "t3")
    assert mode(store.path) == 0o600
    assert mode(store.directory) == 0o700
    again = TokenStore(tmp_path / "cfg")  # a new process reads the same file
    assert again.get("http://a:1", "alice") == "t1"
    assert again.get("http://a:1", "bob") == "t2"
    assert again.get("http://b:2", "alice") == "t3"
    again.forget("http://a:1", "alice")
    assert TokenStore(tmp_path / "cfg").get("http://a:1", "alice") is None
    assert TokenStore(tmp_path / "cfg").get("http://a:1", "bob") == "t2"
    assert [p.name for p in store.directory.iterdir()] == ["tokens.json"]  # no temp files left


def test_loosened_permissions_are_repaired_on_read(tmp_path):
    store = TokenStore(tmp_path)
    store.put("s", "u", "t")
    os.chmod(store.path, 0o644)
    assert store.get("s", "u") == "t"
    assert mode(store.path) == 0o600


def test_file_is_never_created_readable_by_others(tmp_path):
    old = os.umask(0)  # even with a permissive umask
    try:
        TokenStore(tmp_path / "x").put("s", "u", "t")
    finally:
        os.umask(old)
    assert mode(tmp_path / "x" / "tokens.json") == 0o600


def test_damaged_file_means_no_token(tmp_path):
    store = TokenStore(tmp_path)
    store.path.write_text("{not json")
    assert store.get("s", "u") is None
    store.put("s", "u", "t")
    assert store.get("s", "u") == "t"


def test_default_location_follows_xdg():
    assert default_config_dir({"XDG_CONFIG_HOME": "/x/cfg"}) == Path("/x/cfg/trio-chat")
    assert default_config_dir({}) == Path.home() / ".config" / "trio-chat"
    assert default_config_dir({"XDG_CONFIG_HOME": "relative"}) == (
        Path.home() / ".config" / "trio-chat"
    )


def test_usernames_are_found_whatever_their_case(tmp_path):
    store = TokenStore(tmp_path)
    store.put("s", "Alice", "t1")
    assert store.get("s", "alice") == "t1" and store.get("s", "ALICE") == "t1"
    store.path.write_text('{"s": {"Bob": "t2"}}')  # written before keys were lower-cased
    assert store.get("s", "Bob") == "t2"
    store.put("s", "bob", "t3")
    assert store.get("s", "Bob") == "t3"
    store.forget("s", "BOB")
    assert store.get("s", "bob") is None
