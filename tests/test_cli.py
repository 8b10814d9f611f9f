"""The command line: init, db, cases import and frame summary, and their errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from callback import migrate
from callback.cli import cli as root

HEADER = [
    "办件编号",
    "事项名称",
    "实施部门",
    "所属镇街",
    "申请人",
    "联系电话",
    "办结时间",
    "办理渠道",
]


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([HEADER, *rows])
    return path


def test_init_creates_then_reports_up_to_date(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = runner.invoke(root, ["--database", url, "init"])
    assert first.exit_code == 0, first.output
    assert "Created the callback database" in first.output
    second = runner.invoke(root, ["--database", url, "init"])
    assert "up to date" in second.output
    current = runner.invoke(root, ["--database", url, "db", "current"])
    assert f"current: {migrate.head()}" in current.output and "up to date" in current.output


def test_commands_on_an_uninitialised_database_say_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        root, ["--database", f"sqlite:///{tmp_path / 'x.db'}", "frame", "summary"]
    )
    assert result.exit_code == 1
    assert "callback init" in result.output
    assert "Traceback" not in result.output


def test_db_downgrade_and_upgrade(cli) -> None:
    assert "At revision base" in cli("db", "downgrade", "base").output
    assert f"At revision {migrate.head()}" in cli("db", "upgrade").output


def test_import_prints_counts_and_the_rejects_file(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "june.csv",
        [
            [
                "C1",
                "结婚登记",
                "区民政局",
                "西溪街道",
                "张三",
                "13912345671",
                "2018-06-03 10:00",
                "窗口",
            ],
            [
                "",
                "结婚登记",
                "区民政局",
                "西溪街道",
                "李四",
                "13912345672",
                "2018-06-03 10:00",
                "窗口",
            ],
        ],
    )
    result = cli("cases", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "june.csv: read 2 rows: 1 inserted, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert "june.csv.rejects.csv" in result.output
    again = cli("cases", "import", "--json", str(path))
    data = json.loads(again.stdout)
    assert data[0]["unchanged"] == 1 and data[0]["inserted"] == 0


def test_import_errors_are_one_clean_line(cli, tmp_path: Path) -> None:
    missing = cli("cases", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "file not found" in missing.output
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    result = cli("cases", "import", str(bad_header))
    assert result.exit_code == 1
    assert "no header row" in result.output and "Traceback" not in result.output
    mapping = tmp_path / "m.toml"
    mapping.write_text("[columns]\nnope = 'x'\n", encoding="utf-8")
    result = cli("cases", "import", "--mapping", str(mapping), str(bad_header))
    assert result.exit_code == 1 and "not a fact callback imports" in result.output


def test_bad_area_code_option_is_refused(cli, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", [])
    result = cli("cases", "import", "--default-area-code", "571", str(path))
    assert result.exit_code == 1 and "area code" in result.output


def test_frame_summary(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "june.csv",
        [
            [
                "C1",
                "结婚登记",
                "区民政局",
                "西溪街道",
                "张三",
                "13912345671",
                "2018-06-03 10:00",
                "窗口",
            ],
            [
                "C2",
                "社保卡",
                "区人社局",
                "三墩镇",
                "李四",
                "0571-87654321",
                "2018-09-30 16:00",
                "掌上",
            ],
            [
                "C3",
                "社保卡",
                "区人社局",
                "三墩镇",
                "王五",
                "11111111111",
                "2018-07-01 10:00",
                "掌上",
            ],
        ],
    )
    cli("cases", "import", str(path))
    result = cli("frame", "summary")
    assert result.exit_code == 0, result.output
    assert "Cases: 3 handled 2018-06-03 to 2018-09-30, from 1 imported files" in result.output
    assert "Cases without a valid phone: 1" in result.output
    assert "区人社局" in result.output
    data = json.loads(cli("frame", "summary", "--json").stdout)
    assert data["cases"] == 3
    assert data["by_channel"] == {"mobile": 2, "window": 1}
    assert data["contacts"]["unknown fake"] == 1


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "callback", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "callback, version" in result.stdout


def test_the_import_progress_bar_never_counts_bytes_twice() -> None:
    """A file read again in one piece (after a misleading quote) starts from byte 0: the bar
    waits until the new read passes where the first had got to, and ends at the file's size."""
    from callback.cli.cases import _Progress

    class Bar:
        def __init__(self) -> None:
            self.total = 0
            self.label = ""

        def update(self, steps: int, current_item: object = None) -> None:
            assert steps >= 0
            self.total += steps

    progress = _Progress("cases.csv")
    progress.bar = bar = Bar()
    for position in (100, 400, 50, 300, 450, 1_000):  # read in segments, then again whole
        progress.update(position, rows=position // 10)
    assert bar.total == 1_000
