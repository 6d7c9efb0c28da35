from tests.conftest import register


async def test_register_send_connect(http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    sent = await alice.send("hello")
    assert sent["author"] == "alice"
    body = (await bob.post("/connect")).json()
    assert [m["text"] for m in body["history"]] == ["hello"]
