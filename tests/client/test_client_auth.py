import json

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


class Passwords:
    def __init__(self, *values, interactive=False):
        self.values = list(values)
        self.interactive = interactive
        self.prompts = []

    async def ask(self, prompt):
        self.prompts.append(prompt)
        return self.values.pop(0) if self.values else None


def password(value):
    return Passwords(value)


async def test_saved_token_is_reused_without_asking_for_a_password(tmp_path):
    store = TokenStore(tmp_path)
    store.put(SERVER, "alice", "saved")
    fake = FakeServer()
    fake.on("GET", "/status", httpx.Response(200, json=STATUS))
    get = password("pw")
    async with fake.client(token=None) as api:
        assert await authenticate(api, store, "ALICE", get, print) == "alice"
        assert api.token == "saved"
    assert get.prompts == []
    assert [r.url.path for r in fake.requests] == ["/status"]


async def test_rejected_token_falls_back_to_login_and_is_replaced(tmp_path):
    store = TokenStore(tmp_path)
    store.put(SERVER, "alice", "stale")
    fake = FakeServer()
    fake.on("GET", "/status", error(401, "unauthorized"))
    fake.on("POST", "/login", httpx.Response(200, json={"username": "alice", "token": "new"}))
    notices = []
    async with fake.client(token=None) as api:
        await authenticate(api, store, "alice", password("pw"), notices.append, "laptop")
        assert api.token == "new"
    assert json.loads(fake.sent("POST", "/login")[0].content)["device"] == "laptop"
    assert store.get(SERVER, "alice") == "new"
    assert notices == ["the saved session is no longer valid; logging in again"]


async def test_an_unknown_name_is_never_registered_by_logging_in(tmp_path):
    fake = FakeServer()
    fake.on("POST", "/login", error(401, "bad_credentials"))
    async with fake.client(token=None) as api:
        with pytest.raises(UnauthorizedError) as info:
            await authenticate(api, TokenStore(tmp_path), "zoe", password("password1"), print)
    assert "--register" in info.value.message
    assert fake.sent("POST", "/register") == []


async def test_register_asks_a_person_for_the_password_twice(tmp_path):
    fake = FakeServer()
    fake.on("POST", "/register", httpx.Response(201, json={"username": "zoe", "token": "z"}))
    notices = []
    store = TokenStore(tmp_path)
    typed = Passwords("password1", "password1", interactive=True)
    async with fake.client(token=None) as api:
        name = await authenticate(api, store, "zoe", typed, notices.append, register=True)
    assert name == "zoe" and store.get(SERVER, "zoe") == "z"
    assert len(typed.prompts) == 2
    assert notices == [f"registered a new account 'zoe' on {SERVER}"]


async def test_register_with_two_different_passwords_makes_nothing(tmp_path):
    fake = FakeServer()
    typed = Passwords("password1", "passwrod1", interactive=True)
    async with fake.client(token=None) as api:
        with pytest.raises(UnauthorizedError, match="differ"):
            await authenticate(api, TokenStore(tmp_path), "zoe", typed, print, register=True)
    assert fake.requests == []


async def test_a_person_gets_a_second_try_at_the_password(tmp_path):
    fake = FakeServer()
    fake.on(
        "POST",
        "/login",
        error(401, "bad_credentials"),
        httpx.Response(200, json={"username": "alice", "token": "T"}),
    )
    notices = []
    typed = Passwords("typo", "password1", interactive=True)
    async with fake.client(token=None) as api:
        await authenticate(api, TokenStore(tmp_path), "alice", typed, notices.append)
    assert notices == ["wrong username or password; try again"]
    assert [json.loads(r.content)["password"] for r in fake.requests] == ["typo", "password1"]


async def test_wrong_password_for_an_existing_user_is_bad_credentials(tmp_path):
    fake = FakeServer()
    fake.on("POST", "/login", error(401, "bad_credentials"))
    typed = Passwords("bad", "worse", interactive=True)
    async with fake.client(token=None) as api:
        with pytest.raises(UnauthorizedError, match="wrong username or password"):
            await authenticate(api, TokenStore(tmp_path), "alice", typed, print)
    assert len(fake.requests) == 2  # two tries, then it gives up
    assert not (tmp_path / "tokens.json").exists()


async def test_no_password_available(tmp_path):
    fake = FakeServer()
    async with fake.client(token=None) as api:
        with pytest.raises(MissingPasswordError, match="TRIO_CHAT_PASSWORD"):
            await authenticate(api, TokenStore(tmp_path), "alice", password(None), print)
    assert fake.requests == []
