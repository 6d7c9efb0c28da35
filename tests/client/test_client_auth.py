import httpx
import pytest

from tests.client.client_fakes import SERVER, FakeServer, error
from trio_chat_client.auth import MissingPasswordError, authenticate
from trio_chat_client.config import TokenStore
from trio_chat_client.errors import UnauthorizedError

STATUS = {
    "username": "alice",
    "chats": ["general"],
    "rate_limit": {"limit": 20, "remaining": 20, "reset_at": None},
    "banned_until": None,
}


def password(value):
    calls = []

    async def get():
        calls.append(1)
        return value

    get.calls = calls
    return get


async def test_saved_token_is_reused_without_asking_for_a_password(tmp_path):
    store = TokenStore(tmp_path)
    store.put(SERVER, "alice", "saved")
    fake = FakeServer()
    fake.on("GET", "/status", httpx.Response(200, json=STATUS))
    get = password("pw")
    async with fake.client(token=None) as api:
        await authenticate(api, store, "alice", get, print)
        assert api.token == "saved"
    assert get.calls == []
    assert [r.url.path for r in fake.requests] == ["/status"]


async def test_rejected_token_falls_back_to_login_and_is_replaced(tmp_path):
    store = TokenStore(tmp_path)
    store.put(SERVER, "alice", "stale")
    fake = FakeServer()
    fake.on("GET", "/status", error(401, "unauthorized"))
    fake.on("POST", "/login", httpx.Response(200, json={"username": "alice", "token": "new"}))
    notices = []
    async with fake.client(token=None) as api:
        await authenticate(api, store, "alice", password("pw"), notices.append)
        assert api.token == "new"
    assert store.get(SERVER, "alice") == "new"
    assert notices == ["the saved session is no longer valid; logging in again"]


async def test_unknown_user_is_registered(tmp_path):
    fake = FakeServer()
    fake.on("POST", "/login", error(401, "bad_credentials"))
    fake.on("POST", "/register", httpx.Response(201, json={"username": "zoe", "token": "z"}))
    notices = []
    store = TokenStore(tmp_path)
    async with fake.client(token=None) as api:
        await authenticate(api, store, "zoe", password("password1"), notices.append)
    assert store.get(SERVER, "zoe") == "z"
    assert notices == [f"registered a new account 'zoe' on {SERVER}"]


async def test_wrong_password_for_an_existing_user_is_bad_credentials(tmp_path):
    fake = FakeServer()
    fake.on("POST", "/login", error(401, "bad_credentials"))
    fake.on("POST", "/register", error(409, "username_taken"))
    async with fake.client(token=None) as api:
        with pytest.raises(UnauthorizedError) as info:
            await authenticate(api, TokenStore(tmp_path), "alice", password("bad"), print)
    assert info.value.code == "bad_credentials"
    assert not (tmp_path / "tokens.json").exists()


async def test_no_password_available(tmp_path):
    fake = FakeServer()
    async with fake.client(token=None) as api:
        with pytest.raises(MissingPasswordError, match="TRIO_CHAT_PASSWORD"):
            await authenticate(api, TokenStore(tmp_path), "alice", password(None), print)
    assert fake.requests == []
