"""The synthetic district is realistic enough to test with; the same seed, the same file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from callback.synthetic import DEPARTMENTS, MESSES, TOWNS, District, write_district


def test_the_same_seed_writes_the_same_file(tmp_path: Path) -> None:
    write_district(tmp_path / "a.csv", 500, seed=3, messy=0.1)
    write_district(tmp_path / "b.csv", 500, seed=3, messy=0.1)
    write_district(tmp_path / "c.csv", 500, seed=4, messy=0.1)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_a_district_has_its_units_skewed_volumes_and_the_summer_period() -> None:
    district = District(seed=1)
    rows = list(district.rows(20_000))
    units = Counter(row[3] for row in rows)
    assert len(DEPARTMENTS) == 40 and len(TOWNS) == 20
    assert len(units) >= 50
    busiest = units.most_common(6)
    assert sum(n for _, n in busiest) > 0.3 * len(rows)  # a few units carry much of the load
    months = {row[9][5:7] for row in rows}
    assert months == {"06", "07", "08", "09"}
    assert len({row[1] for row in rows}) > 200  # a few hundred items
    assert len({row[0] for row in rows}) == len(rows)


def test_every_kind_of_mess_is_made_and_counted() -> None:
    district = District(seed=2, messy=0.5)
    list(district.rows(2000))
    assert set(district.stats.messes) == set(MESSES)
    assert district.stats.expected_rejected == sum(
        n for kind, n in district.stats.messes.items() if MESSES[kind]
    )
