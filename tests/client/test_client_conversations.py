from datetime import UTC, datetime

from trio_chat_client.conversations import Conversations, dm_chat_id
from trio_chat_client.models import Message

NOW = datetime(2026, 11, 26, 13, 53, tzinfo=UTC)


def msg(mid, author="bob", to=None, chat=None):
    if chat is None:
        chat = dm_chat_id(author, to) if to else "general"
    return Message(id=mid, author=author, text="hi", sent_at=NOW, chat=chat, to=to)


def test_private_chats_are_named_like_the_server_and_titled_by_the_other_user():
    assert dm_chat_id("Bob", "alice") == dm_chat_id("alice", "bob") == "dm:alice:bob"
    views = Conversations("Alice")
    typed = views.open_private("BOB")
    assert (typed.id, typed.title) == ("dm:alice:bob", "BOB")
    views.add(msg("m1", author="bob", to="alice"))  # the server's spelling wins
    assert views.get("dm:alice:bob").title == "bob"
    assert [c.id for c in views] == ["general", "dm:alice:bob"]
    # A room is one more conversation, named by its id until it has a name.
    views.add(msg("m2", chat="room:r1"))
    assert views.get("room:r1").title == "room:r1" and views.index("room:r1") == 2


def test_unread_counts_only_others_messages_out_of_view_and_pages_go_before():
    views = Conversations("alice")
    assert views.add(msg("m1", to="alice")) and not views.add(msg("m1", to="alice"))
    views.add(msg("m2", author="alice", to="bob"))
    views.add(msg("m3"))  # in view
    private = views.get("dm:alice:bob")
    assert (private.unread, views.get("general").unread, views.unread_total()) == (1, 0, 1)
    older = views.add_page("dm:alice:bob", [msg("m0", to="alice"), msg("m1", to="alice")])
    assert [m.id for m in older] == ["m0"]  # m1 was there already
    assert private.ids == ["m0", "m1", "m2"] and private.unread == 1  # history is never unread
    assert views.chat_of_message_id("m0") == "dm:alice:bob"
    views.focus("dm:alice:bob")
    assert private.unread == 0 and views.current is private


def test_a_line_console_shows_everything_so_nothing_is_unread():
    views = Conversations("alice")
    views.all_visible = True
    views.add(msg("m1", to="alice"))
    assert views.unread_total() == 0


def test_rooms_are_found_by_name_or_id_and_stay_in_view_once_left():
    views = Conversations("alice")
    views.open_private("bob")
    club = views.open_room("room:5eb1bf2c", "Book Club")
    views.open_room("room:77aa", "book keeping")
    assert club.is_room and not views.get("general").is_room
    assert views.find("book club") == [club]  # a title, any capitalisation
    assert views.find("room:5eb1bf2c") == [club]  # an id
    assert views.find("room:5eb") == [club]  # the start of an id
    assert [c.title for c in views.find("book")] == ["Book Club", "book keeping"]  # ambiguous
    assert views.find("BOB") == [views.get("dm:alice:bob")]  # a private chat by its user
    assert len(views.find("bo")) == 3  # bob, Book Club, book keeping
    assert views.find("general") == views.find("common") == [views.get("general")]
    assert views.find("nothing") == []
    views.add(msg("m1", chat="room:5eb1bf2c"))
    assert club.unread == 1
    assert views.leave("room:5eb1bf2c") is club
    assert club.gone and club.unread == 0 and views.find("book club") == [club]
    views.focus("room:5eb1bf2c")  # still viewable
    assert club.gone and views.current is club
    # Let in again: the same conversation, writable again.
    assert views.open_room("room:5eb1bf2c", "Book Club") is club and not club.gone
