"""Letters as PDF on the practice's letterhead, for the print queue and the fax backend.

fpdf2 is pure Python (no system libraries) and renders a one-page letter in a few
milliseconds, which keeps the letters pipeline fast enough for its benchmark.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone
from fpdf import FPDF

if TYPE_CHECKING:
    from outreach.models import Letter

# The PDF core fonts speak Latin-1 only; typographic characters a template editor types
# become their plain equivalents rather than failing the letter.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u2192": "->",
    }
)


# Letters with no decomposition that Latin-1 lacks, as they are written without marks.
_UNMARKED = str.maketrans(
    {"Đ": "D", "đ": "d", "Ł": "L", "ł": "l", "Œ": "OE", "œ": "oe", "\u0131": "i"}
)


def _latin1(text: str) -> str:
    """The text in the core fonts' Latin-1. A letter outside it loses its accents rather
    than the whole letter (Nguyễn → Nguyen, Dvořák → Dvorak); only what has no Latin
    form (Arabic, Chinese) becomes "?"."""
    text = text.translate(_PLAIN)
    try:
        return text.encode("latin-1").decode("latin-1")
    except UnicodeEncodeError:
        return "".join(_latin1_char(char) for char in text)


def _latin1_char(char: str) -> str:
    if ord(char) < 256:
        return char
    bare = "".join(
        part
        for part in unicodedata.normalize("NFKD", char.translate(_UNMARKED))
        if not unicodedata.combining(part)
    )
    return bare.encode("latin-1", "replace").decode("latin-1") or "?"


@dataclass(frozen=True)
class Letterhead:
    name: str
    address: list[str]
    phone: str


def letterhead() -> Letterhead:
    return Letterhead(
        name=settings.PRACTICE_NAME,
        address=list(settings.PRACTICE_ADDRESS),
        phone=settings.PRACTICE_PHONE,
    )


def letter_pdf(letter: Letter) -> bytes:
    """The letter as a one- or more-page PDF: letterhead, date, recipient, subject, body."""
    head = letterhead()
    pdf = FPDF(format="letter")
    pdf.set_margins(left=22, top=18, right=22)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(_latin1(letter.subject))
    pdf.set_creator(_latin1(head.name))
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(text=_latin1(head.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(text=_latin1(" | ".join([*head.address, head.phone])), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(120, 120, 120)
    pdf.line(x1=pdf.l_margin, y1=pdf.get_y() + 2, x2=pdf.w - pdf.r_margin, y2=pdf.get_y() + 2)
    pdf.ln(10)
    pdf.set_font("Helvetica", size=11)
    sent_on = timezone.localtime(letter.sent_at).date() if letter.sent_at else letter.due_on
    pdf.cell(text=f"{sent_on:%B %-d, %Y}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    provider = letter.provider
    recipient = [provider.display_name]
    if provider.organization:
        recipient += [provider.organization.name, *provider.organization.address_lines]
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for line in _wrap(pdf, _latin1("\n".join(recipient)), width):
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", style="B", size=11)
    pdf.multi_cell(w=0, text=_latin1(letter.subject), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    for line in _wrap(pdf, _latin1(letter.body), width):
        if line.strip():
            pdf.cell(h=5.5, text=line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(5.5)
    return bytes(pdf.output())


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """Greedy word wrap. fpdf2's multi_cell re-measures the line for every character,
    which made it most of the letters pipeline's time; measuring each word once is
    enough for a letter's plain paragraphs."""
    space = pdf.get_string_width(" ")
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        words: list[str] = []
        used = 0.0
        for whole in paragraph.split(" "):
            for word in _pieces(pdf, whole, width):
                word_width = pdf.get_string_width(word)
                if words and used + space + word_width > width:
                    lines.append(" ".join(words))
                    words, used = [word], word_width
                else:
                    used += (space if words else 0.0) + word_width
                    words.append(word)
        lines.append(" ".join(words))
    return lines


def _pieces(pdf: FPDF, word: str, width: float) -> list[str]:
    """The word, or, when it is wider than the line (a long address pasted in a
    template), as many pieces as it takes, each as wide as fits."""
    if pdf.get_string_width(word) <= width:
        return [word]
    pieces, piece = [], ""
    for char in word:
        if piece and pdf.get_string_width(piece + char) > width:
            pieces.append(piece)
            piece = ""
        piece += char
    return [*pieces, piece]
