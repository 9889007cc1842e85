import pytest

from core.text import strip_invisible


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("\u202eSmith", "Smith"),  # right-to-left override
        ("Sm\u200bith", "Smith"),  # zero-width space
        ("\u2067Ali\u2069", "Ali"),  # right-to-left isolate
        ("O\u200fBrien\u200e", "OBrien"),  # direction marks
        ("\ufeffRuth", "Ruth"),  # byte-order mark
        ("Ol\x07sen\x9b", "Olsen"),  # control characters
        ("Line one\nline two\tend\r", "Line one\nline two\tend\r"),  # kept
        ("👩\u200d⚕️ Zoë שלום", "👩\u200d⚕️ Zoë שלום"),  # joiner, accents, Hebrew: kept
    ],
)
def test_only_invisible_controls_are_taken_out(typed, kept):
    assert strip_invisible(typed) == kept
