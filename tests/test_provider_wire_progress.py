"""A batch that reports `progress` (a percentage) instead of `request_counts` (together): never `0/0`."""

from __future__ import annotations

from rich.console import Console

from batchctl.api import Batch
from batchctl.cli.render import BatchView, batch_panel, batches_table, change_line, list_lines
from batchctl.jobs.view import _percent
from batchctl.watching import has_changed, progress_of

T0 = 1_700_000_000


def together(progress=42.0, status="in_progress", **extra) -> Batch:
    return Batch(id="b7f3", status=status, endpoint="/v1/chat/completions", created_at=T0, progress=progress, **extra)


def render(renderable, width=120) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def test_progress_of_a_percentage_is_live_even_without_live_counts():
    progress = progress_of(together(), live_counts=False)
    assert (progress.live, progress.percent, progress.fraction) == (True, 42.0, 0.42)


def test_counts_win_over_a_percentage():
    batch = together(request_counts={"total": 10, "completed": 5, "failed": 0})
    assert progress_of(batch).percent is None and progress_of(batch).fraction == 0.5


def test_change_line_shows_the_percentage_once():
    assert change_line(together(), now=T0 + 12, live_counts=False) == "b7f3  in_progress  42%  elapsed 0:00:12"


def test_panel_and_table_show_the_percentage_not_zero_counts():
    panel = render(batch_panel(BatchView(together(), live_counts=False), now=T0 + 5))
    assert "42%" in panel and "0/0" not in panel and "ok 0" not in panel
    table = render(batches_table([BatchView(together(progress=p)) for p in (10, 55.4, 100)], now=T0 + 5))
    assert all(cell in table for cell in ("10%", "55%", "100%")) and "0/0" not in table


def test_list_shows_the_percentage_in_the_done_column():
    lines = list_lines([together(), Batch(id="b2", status="completed", request_counts={"total": 3, "completed": 3})], now=T0)
    assert lines[1].split()[:3] == ["b7f3", "in_progress", "42%"]
    assert lines[2].split()[:3] == ["b2", "completed", "3/3"]


def test_a_moving_percentage_is_a_change():
    assert has_changed(together(40), together(41)) and not has_changed(together(40), together(40))


def test_a_job_of_parts_with_percentages_shows_their_mean():
    assert _percent([together(20), together(60)]) == 40
    assert _percent([together(20), together(None)]) is None


def test_a_long_base64_id_is_never_cut():
    """LiteLLM's ids run past a terminal's width: panels and tables fold them onto more lines, whole."""
    long_id = "+/+/" + "bGl0ZWxsbV9wcm94eTt1bmlmaWVkX2lk" * 4 + "=="
    batch = Batch(id=long_id, status="in_progress", created_at=T0, request_counts={"total": 3, "completed": 1})
    panel = render(batch_panel(BatchView(batch), now=T0, width=80), width=80)
    assert long_id in "".join(panel.replace("│", " ").split()) and "1/3" in panel
    table = render(batches_table([BatchView(batch)] * 3, now=T0, width=80), width=80)
    first_cells = "".join(line.split()[0] for line in table.splitlines()[2:] if line.strip())
    assert first_cells == long_id * 3 and table.count("in_progress") == 3 and "1/3" in table
