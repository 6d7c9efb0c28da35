import trio
import trio.testing

from trio_chat_client.ui.terminal import InputRouter


async def test_a_line_typed_while_a_password_is_asked_for_never_reaches_the_commands():
    asked = []
    router = InputRouter(asked.append)
    router.put("queued before")  # typed before the question: still a command
    got = []
    async with trio.open_nursery() as nursery:

        async def commands():
            while (line := await router.line()) is not None:
                got.append(line)

        nursery.start_soon(commands)
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as inner:
            secret = []

            async def ask():
                secret.append(await router.secret("password: "))

            inner.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            assert router.secret_wanted
            router.put("hunter22")  # the command loop is waiting too: the password wins
        router.put("after")
        router.close()
    assert secret == ["hunter22"]
    assert got == ["queued before", "after"]
    assert asked == ["password: ", None]


async def test_end_of_input_answers_a_password_request_with_none():
    router = InputRouter()
    router.close()
    assert await router.secret("password: ") is None
    assert await router.line() is None
