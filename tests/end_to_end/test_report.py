"""`make report` on a real PostgreSQL: every figure under a label."""

from __future__ import annotations

from tools.report import report


def test_the_per_hour_rows_have_labelled_columns(warehouse):
    warehouse.execute(
        "INSERT INTO songplays (songplay_id, start_time, song_id) VALUES "
        "('a', '2018-11-01 12:05', 'S1'), ('b', '2018-11-01 12:30', NULL), ('c', '2018-11-02 12:59', 'S2'), "
        "('d', '2018-11-01 13:00', NULL)"
    )
    lines = report(warehouse).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("hour"))
    noon = next(line for line in lines if line.lstrip().startswith("12:00"))
    one = next(line for line in lines if line.lstrip().startswith("13:00"))
    assert header.split() == ["hour", "plays", "matched"]
    # Each figure ends where its column's label ends.
    assert noon.split()[-2:] == ["3", "2"] and one.split()[-2:] == ["1", "0"]
    for line in (noon, one):
        assert len(line) == len(header)
        assert line[: header.index("plays") + len("plays")].endswith(line.split()[-2])
