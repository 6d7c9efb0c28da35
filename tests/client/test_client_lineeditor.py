from trio_chat_client.ui.lineeditor import LineEditor, render_incoming, render_line


def test_render_line_puts_the_cursor_at_the_edit_position():
    assert render_line("> ", "hello", 5) == b"\r\x1b[K> hello"
    assert render_line("> ", "hello", 2) == b"\r\x1b[K> hello\x1b[3D"
    assert render_line("alice> ", "", 0) == b"\r\x1b[Kalice> "


def test_incoming_line_is_printed_above_and_the_input_redrawn():
    out = render_incoming("> ", "half typ", 8, "[14:05] #3 bob: hi")
    assert out == b"\r\x1b[K[14:05] #3 bob: hi\r\n\r\x1b[K> half typ"
    out = render_incoming("> ", "ab", 1, "x\ny")
    assert out == b"\r\x1b[Kx\r\ny\r\n\r\x1b[K> ab\x1b[1D"
    assert render_incoming("> ", "é", 1, "ü") == "\r\x1b[Kü\r\n\r\x1b[K> é".encode()


def type_(editor, text):
    return editor.feed(text)


def test_typing_and_enter():
    ed = LineEditor()
    r = ed.feed("hel")
    assert (r.lines, r.redraw, ed.buffer) == ([], True, "hel")
    r = ed.feed("lo\rsecond\r\n")
    assert r.lines == ["hello", "second"]
    assert (ed.buffer, ed.cursor) == ("", 0)


def test_crlf_is_one_enter_but_two_crs_are_two():
    ed = LineEditor()
    assert ed.feed("a\r\nb\r\r").lines == ["a", "b", ""]


def test_backspace_arrows_home_end_delete():
    ed = LineEditor()
    ed.feed("helo")
    ed.feed("\x1b[D")  # left
    ed.feed("l")
    assert (ed.buffer, ed.cursor) == ("hello", 4)
    ed.feed("\x1b[H")  # home
    ed.feed("\x1b[3~")  # delete
    assert (ed.buffer, ed.cursor) == ("ello", 0)
    ed.feed("\x05\x7f")  # Ctrl-E, backspace
    assert (ed.buffer, ed.cursor) == ("ell", 3)
    assert ed.render() == b"\r\x1b[K> ell"


def test_escape_sequence_split_across_reads():
    ed = LineEditor()
    ed.feed("ab")
    assert ed.feed("\x1b").redraw is False
    assert ed.feed("[").redraw is False
    assert ed.feed("D").redraw is True
    assert ed.cursor == 1
    ed.feed("\x1b[1;5C")  # Ctrl+Right acts as Right
    assert ed.cursor == 2
    assert ed.buffer == "ab"  # nothing of the sequences was inserted


def test_kill_word_and_line():
    ed = LineEditor()
    ed.feed("one two three")
    ed.feed("\x17")
    assert ed.buffer == "one two "
    ed.feed("\x15")
    assert (ed.buffer, ed.cursor) == ("", 0)


def test_ctrl_d_quits_only_on_an_empty_line_and_ctrl_c_always():
    ed = LineEditor()
    ed.feed("x\x01")
    r = ed.feed("\x04")
    assert (r.eof, ed.buffer) == (False, "")
    assert ed.feed("\x04").eof is True
    ed2 = LineEditor()
    r = ed2.feed("abc\x03ignored")
    assert r.eof is True and ed2.buffer == "abc"


def test_history_recall():
    ed = LineEditor()
    ed.feed("first\rsecond\r")
    ed.feed("\x1b[A")
    assert ed.buffer == "second"
    ed.feed("\x1b[A\x1b[A")
    assert ed.buffer == "first"
    ed.feed("\x1b[B\x1b[B")
    assert ed.buffer == ""


def test_control_characters_are_not_inserted():
    ed = LineEditor()
    ed.feed("a\x00\x07\tb")
    assert ed.buffer == "a b"
