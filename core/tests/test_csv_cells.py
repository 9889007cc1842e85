"""Downloads of several tables: the main one first, each further one under its title in a
CSV and on its own sheet in a workbook, with the same safety rules in every table."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from core.csv_cells import Table, csv_download, safe_cell, table_download

MAIN = [["partner", "referrals"], [safe_cell("=HYPERLINK(1)"), 3], ["Maple", 2]]


def _csv_text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


def test_a_csv_starts_with_one_utf8_byte_order_mark_so_excel_reads_accents():
    def rows():
        yield ["Provider"]
        for _ in range(3):
            yield ["José Muñoz"]

    chunks = list(csv_download("partners.csv", rows()).streaming_content)
    body = b"".join(chunks)
    assert chunks[0] == "\ufeff".encode()  # once, before the first line
    assert body.count("\ufeff".encode()) == 1
    # Excel on Windows takes a file without the mark for ANSI: "JosÃ© MuÃ±oz".
    assert body.decode("utf-8-sig") == "Provider\r\n" + "José Muñoz\r\n" * 3


def test_a_csv_holds_the_main_table_first_then_each_further_table_under_its_title():
    response = table_download(
        "report",
        MAIN,
        file_format="csv",
        more=[
            Table("Totals", [["figure", "value"], ["referrals", 5], ["share %", 62.5]]),
            Table("By office", [["office", "referrals"], ["Maple Family", 5]]),
        ],
    )
    assert response["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert list(csv.reader(io.StringIO(_csv_text(response)))) == [
        ["partner", "referrals"],
        ["'=HYPERLINK(1)", "3"],
        ["Maple", "2"],
        [],
        ["Totals"],
        ["figure", "value"],
        ["referrals", "5"],
        ["share %", "62.5"],
        [],
        ["By office"],
        ["office", "referrals"],
        ["Maple Family", "5"],
    ]


def test_a_csv_of_one_table_is_that_table_alone():
    text = _csv_text(table_download("report", MAIN, file_format="csv"))
    assert text == "partner,referrals\r\n'=HYPERLINK(1),3\r\nMaple,2\r\n"


def test_a_table_title_that_starts_like_a_formula_is_defused_in_a_csv():
    response = table_download("report", MAIN, file_format="csv", more=[Table("=1+1", [["a"]])])
    assert "\r\n'=1+1\r\n" in _csv_text(response)


def test_a_workbook_has_a_sheet_per_table_the_main_one_first():
    response = table_download(
        "report",
        MAIN,
        file_format="xlsx",
        sheet="Who refers",
        more=[
            Table("Totals", [["figure", "value"], ["referrals", 5], ["share %", 62.5]]),
            # Excel refuses these characters in a sheet's name, and more than 31 of them.
            Table("Referrals by office: the busiest [all] of them/any", [["office"], ["M\x0bF"]]),
        ],
    )
    assert response["Content-Disposition"] == 'attachment; filename="report.xlsx"'
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    assert workbook.sheetnames == ["Who refers", "Totals", "Referrals by office the busiest"]
    assert workbook.active.title == "Who refers"
    sheets = {
        name: [list(row) for row in workbook[name].iter_rows(values_only=True)]
        for name in workbook.sheetnames
    }
    assert sheets["Who refers"] == [["partner", "referrals"], ["'=HYPERLINK(1)", 3], ["Maple", 2]]
    # Numbers stay numbers on every sheet, and control characters go from every sheet.
    assert sheets["Totals"] == [["figure", "value"], ["referrals", 5], ["share %", 62.5]]
    assert sheets["Referrals by office the busiest"] == [["office"], ["MF"]]


def test_tables_given_as_generators_are_written_whole_in_either_format():
    def offices():
        yield ["office", "referrals"]
        yield ["Maple", 1]

    response = table_download(
        "report", iter(MAIN), file_format="csv", more=[Table("By office", offices())]
    )
    assert _csv_text(response).endswith("\r\n\r\nBy office\r\noffice,referrals\r\nMaple,1\r\n")
    response = table_download(
        "report", iter(MAIN), file_format="xlsx", more=[Table("By office", offices())]
    )
    sheet = load_workbook(io.BytesIO(response.content), read_only=True)["By office"]
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        ["office", "referrals"],
        ["Maple", 1],
    ]
