import pytest

from rung.backends.textstream import StopTextStream


@pytest.mark.parametrize(
    ("pieces", "stops", "expected", "stopped"),
    [
        ([b"Hello", b" world"], (), "Hello world", False),
        ([b"one, two", b", three"], (", t",), "one", True),
        ([b"ab", b"c", b"d"], ("cd",), "ab", True),
        ([b"ab", b"c", b"e"], ("cd",), "abce", False),  # held-back 'c' released by flush
        ([b"\xe2\x82", b"\xac!"], (), "\u20ac!", False),  # a UTF-8 character split in two
        ([b"x", b"STOP", b"after"], ("STOP",), "x", True),
        ([b"keep"], ("",), "keep", False),
    ],
)
def test_stop_text_stream(pieces: list[bytes], stops: tuple[str, ...], expected: str,
                          stopped: bool) -> None:
    s = StopTextStream(stops)
    out = "".join(s.push(p) for p in pieces) + s.flush()
    assert out == expected
    assert s.stopped is stopped


def test_nothing_after_stop() -> None:
    s = StopTextStream(("\n",))
    assert s.push(b"a\nb") == "a"
    assert s.push(b"more") == ""
    assert s.flush() == ""
