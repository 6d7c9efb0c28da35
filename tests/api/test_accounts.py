"""Accounts over HTTP: register, login, logout, and the 401s."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, register


async def test_register_login_logout(http):
    response = await http.post("/register", json={"username": "Alice", "password": PASSWORD})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    first = response.json()
    assert first["username"] == "Alice" and len(first["token"]) >= 43

    login = await http.post("/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200
    second = login.json()
    assert second["username"] == "Alice" and second["token"] != first["token"]

    for token in (first["token"], second["token"]):
        status = await http.get("/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200 and status.json()["username"] == "Alice"

    out = await http.post("/logout", headers={"Authorization": f"Bearer {first['token']}"})
    assert out.status_code == 204 and out.content == b""
    gone = await http.get("/status", headers={"Authorization": f"Bearer {first['token']}"})
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "unauthorized"
    # The other session lives on.
    still = await http.get("/status", headers={"Authorization": f"Bearer {second['token']}"})
    assert still.status_code == 200


async def test_username_taken_case_insensitively(http):
    await register(http, "alice")
    response = await http.post("/register", json={"username": "ALICE", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"username": "", "password": PASSWORD}, ["$.username"]),
        ({"username": "x" * 33, "password": PASSWORD}, ["$.username"]),
        ({"username": "bad name", "password": "short"}, ["$.username", "$.password"]),
        ({"username": "ok", "password": "x" * 257}, ["$.password"]),
        ({"username": "ok"}, ["$.password"]),
        ({"username": 5, "password": PASSWORD}, ["$.username"]),
        ({"username": "ok", "password": PASSWORD, "admin": True}, ["$"]),
    ],
)
async def test_register_validation(http, body, paths):
    response = await http.post("/register", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [f["path"] for f in error["fields"]] == paths
    assert all(f["message"] for f in error["fields"])


async def test_bad_credentials(http):
    await register(http, "alice")
    for body in (
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
    ):
        response = await http.post("/login", json=body)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad_credentials"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
)
async def test_missing_or_unknown_token(http, headers):
    response = await http.post("/connect", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_malformed_json_and_wrong_shapes(http):
    bad = await http.post(
        "/register", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
    not_utf8 = await http.post("/register", content=b'{"username": "\xff"}')
    assert not_utf8.json()["error"]["code"] == "malformed_json"
    array = await http.post("/register", json=["alice"])
    assert array.status_code == 400 and array.json()["error"]["code"] == "invalid_request"
    empty = await http.post("/register")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_request"
