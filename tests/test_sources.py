"""Exports are read in their encodings and layouts, and every column is found by its header."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from callback.errors import ImportFileError, MappingError
from callback.reading import find_header
from callback.sources import Mapping, detect_encoding, header_key, load_mapping, open_source

ZH = ["办件编号", "事项名称", "实施部门", "所属镇街", "申请人", "联系电话", "办结时间", "办理渠道"]
ROW = ["330106001", "社会保障卡申领", "区人力资源和社会保障局", "西溪街道", "张三",
       "13912345671", "2018-06-03 10:00:00", "窗口"]  # fmt: skip


def write_csv(
    path: Path, rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out, delimiter=delimiter).writerows(rows)
    return path


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("gbk", "gb18030"),
     ("utf-16", "utf-16")],
)  # fmt: skip
def test_encodings_are_detected(tmp_path: Path, encoding: str, detected: str) -> None:
    path = write_csv(tmp_path / "cases.csv", [ZH, ROW], encoding)
    source = open_source(path)
    assert source.encoding == detected
    layout, rows = find_header(source, Mapping())
    assert rows[0][1][1] == "社会保障卡申领"


def test_undetectable_bytes_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(b"\x81\x30" * 10 + b"\xff\xfe\xfd" * 100)
    with pytest.raises(ImportFileError, match="--encoding") as info:
        open_source(path)
    assert str(path) in str(info.value)


def test_a_sample_cut_inside_a_character_is_still_utf8() -> None:
    sample = ("办件" * 600_000).encode()[: 1 << 20]
    assert detect_encoding(sample, "x.csv") == "utf-8"


@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    path = write_csv(tmp_path / "cases.csv", [ZH, ROW], delimiter=delimiter)
    layout, rows = find_header(open_source(path), Mapping())
    assert layout.headers == ZH


def test_the_header_is_found_below_title_rows(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "cases.csv", [["2018年6月办件明细"], [], ["导出时间", "2018-10-01"], ZH, ROW]
    )
    layout, rows = find_header(open_source(path), Mapping())
    assert layout.header_row == 4
    assert rows == [(5, ROW)]


def test_english_headers_and_synonyms(tmp_path: Path) -> None:
    header = [
        "Case No",
        "Item",
        "Department",
        "Town",
        "Applicant",
        "Phone",
        "Handled At",
        "Channel",
    ]
    path = write_csv(tmp_path / "cases.csv", [header, ROW])
    layout, _ = find_header(open_source(path), Mapping())
    assert layout.columns["case_no"] == [0]
    assert layout.columns["unit"] == [2]
    assert layout.columns["handled_at"] == [6]


def test_synonyms_rank_and_several_phone_columns(tmp_path: Path) -> None:
    header = ["申报号", "办理时间", "办结时间", "事项", "办理部门", "手机号码", "联系电话"]
    path = write_csv(tmp_path / "cases.csv", [header, ["1"] * 7])
    layout, _ = find_header(open_source(path), Mapping())
    assert layout.columns["handled_at"] == [2]  # 办结时间 (completed) before 办理时间
    assert layout.columns["phone"] == [5, 6]


def test_headers_with_decorations_still_match() -> None:
    assert header_key("办件编号（必填）*") == header_key("办件编号")
    assert header_key("\ufeffCase_No") == header_key("case no")


def test_a_missing_required_column_names_it_and_what_was_found(tmp_path: Path) -> None:
    header = ["办件编号", "事项名称", "联系电话", "办结时间"]
    path = write_csv(tmp_path / "cases.csv", [header, ["1"] * 4])
    with pytest.raises(ImportFileError) as info:
        find_header(open_source(path), Mapping())
    message = str(info.value)
    assert "cases.csv, row 1" in message
    assert "unit (实施部门)" in message
    assert "联系电话" in message


def test_no_header_at_all(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", [["a", "b", "c"]] * 30)
    with pytest.raises(ImportFileError, match="no header row"):
        find_header(open_source(path), Mapping())


def test_a_mapping_file_names_odd_columns_and_values(tmp_path: Path) -> None:
    mapping_path = tmp_path / "layout.toml"
    mapping_path.write_text(
        '[columns]\ncase_no = "流水"\nphone = ["手机", "座机"]\n'
        '[channels]\n"自助机" = "nearby"\n[applicant_types]\n"个体" = "company"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(mapping_path)
    header = ["流水", "事项名称", "实施部门", "手机", "座机", "办结时间"]
    path = write_csv(tmp_path / "cases.csv", [header, ["1"] * 6])
    layout, _ = find_header(open_source(path), mapping)
    assert layout.columns["case_no"] == [0]
    assert layout.columns["phone"] == [3, 4]
    assert mapping.channels["自助机"] == "nearby"
    assert mapping.applicant_types["个体"] == "company"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[columns]\ncase_number = 'x'\n", "not a fact"),
        ("[colums]\n", "unknown table"),
        ("[channels]\n'x' = 'fax'\n", "must be one of"),
        ("[columns]\nphone = 3\n", "header or a list"),
        ("columns = [\n", "not valid TOML"),
    ],
)
def test_mapping_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "layout.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match=message) as info:
        load_mapping(path)
    assert str(path) in str(info.value)


def test_xlsx_with_a_title_row_and_typed_cells(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "明细"
    sheet.append(["2018年办件"])
    sheet.append(ZH)
    sheet.append([330106001, "社会保障卡申领", "区民政局", "西溪街道", "张三", 13912345671,
                  datetime(2018, 6, 3, 10, 0), "窗口"])  # fmt: skip
    sheet.append([])
    sheet.append(
        ["330106002", "结婚登记", "区民政局", None, "李四", "0571-87654321", 43254.5, "网上"]
    )
    path = tmp_path / "cases.xlsx"
    book.save(path)
    source = open_source(path)
    layout, first = find_header(source, Mapping())
    rows = first + [row for batch in source.batches(10) for row in batch]
    assert [number for number, _ in rows] == [3, 5]
    assert rows[0][1][0] == 330106001
    assert source.sheet == "明细"


def test_xlsx_header_on_a_later_sheet(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["说明", "本表为导出数据"])
    data = book.create_sheet("数据")
    data.append(ZH)
    data.append(ROW)
    path = tmp_path / "cases.xlsx"
    book.save(path)
    source = open_source(path)
    layout, _ = find_header(source, Mapping())
    assert source.sheet == "数据"


def test_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    book = Workbook()
    book.active.title = "明细"
    path = tmp_path / "cases.xlsx"
    book.save(path)
    with pytest.raises(ImportFileError, match="明细"):
        open_source(path, sheet="nope")


def test_old_excel_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ImportFileError, match=r"\.xlsx or CSV"):
        open_source(tmp_path / "old.xls")
    with pytest.raises(ImportFileError, match="not found"):
        open_source(tmp_path / "nope.csv")


def test_a_sheet_option_on_a_csv_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", [ZH, ROW])
    with pytest.raises(ImportFileError, match="--sheet"):
        open_source(path, sheet="x")


def test_bytes_of_another_encoding_half_way_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    # Past the 1 MiB that detection reads, so the file looks like UTF-8 until then.
    good = "\n".join(",".join(r) for r in [ZH] + [ROW] * 12000) + "\n"
    path.write_bytes(good.encode() + ",".join(ROW).encode("gb18030") + b"\n")
    source = open_source(path)
    find_header(source, Mapping())
    with pytest.raises(ImportFileError, match="line 12002") as info:
        list(source.batches(50000))
    assert "--encoding" in str(info.value)
