"""The pure side of watching: poll timing and backoff, 429s, change detection, rate/ETA, exit codes, rendering."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from batchctl.api import Batch, InternalServerError, NotFoundError, RateLimitError
from batchctl.cli.render import NO_LIVE_COUNTS, BatchView, batch_panel, change_line, dashboard
from batchctl.errors import StuckInUnknownStatus, WatchGaveUp, exit_code_for_statuses
from batchctl.watching import (
    PollSchedule,
    RateTracker,
    default_interval,
    eta_seconds,
    format_duration,
    has_changed,
    poll_until_terminal,
    progress_of,
    rate_from_timestamps,
)

T0 = 1_700_000_000


def make(status="in_progress", done=0, failed=0, total=100, **extra) -> Batch:
    fields = {
        "id": "batch_abc",
        "status": status,
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-in",
        "created_at": T0,
        "request_counts": {"total": total, "completed": done, "failed": failed},
    }
    fields.update(extra)
    return Batch(**fields)


def render(renderable, width=120) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


# -- timing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "profile_interval", "expected"),
    [("local", None, 1.0), ("openai", None, 10.0), ("dashscope", None, 60.0), ("newapi", None, 10.0),
     ("dashscope", 5.0, 5.0), ("local", 0.5, 0.5)],
)
def test_default_interval_profile_wins_else_provider(provider, profile_interval, expected):
    assert default_interval(provider, profile_interval) == expected


def test_backoff_grows_while_unchanged_up_to_four_times_and_resets_on_change():
    schedule = PollSchedule(10.0)
    delays, delay = [], 10.0
    for _ in range(5):
        delay = schedule.after_poll(delay, changed=False)
        delays.append(delay)
    assert delays == [15.0, 22.5, 33.75, 40.0, 40.0]
    assert schedule.after_poll(delay, changed=True) == 10.0


@pytest.mark.parametrize(("interval", "cap"), [(1.0, 4.0), (15.0, 60.0), (30.0, 60.0), (60.0, 120.0)])
def test_backoff_cap(interval, cap):
    assert PollSchedule(interval).max_delay == cap


def test_after_failure_honours_retry_after_and_backs_off_without_one():
    schedule = PollSchedule(1.0)
    assert schedule.after_failure(1.0, retry_after=30.0) == 30.0
    assert schedule.after_failure(1.0) == 2.0
    assert schedule.after_failure(3.0) == 4.0  # doubled, capped at the backoff cap
    assert schedule.after_failure(1.0, retry_after=0.1) == 2.0  # never sooner than the backoff


# -- change, progress, rate ---------------------------------------------------------------------------


def test_change_is_status_counts_or_files_not_time():
    a = make(done=10)
    assert has_changed(None, a)
    assert not has_changed(a, make(done=10, in_progress_at=T0 + 5))
    assert has_changed(a, make(done=11))
    assert has_changed(a, make(status="finalizing", done=10))
    assert has_changed(a, make(done=10, output_file_id="file-out"))


def test_progress_is_honest_when_counts_are_not_live():
    running = progress_of(make(done=0, total=0), live_counts=False)
    assert running.fraction is None and not running.live
    finished = progress_of(make(status="completed", done=98, failed=2, total=100), live_counts=False)
    assert finished.live and finished.fraction == 1.0 and finished.done == 100


def test_rate_and_eta_from_samples():
    tracker = RateTracker()
    tracker.add(0.0, 0)
    assert tracker.rate() is None
    tracker.add(10.0, 20)
    tracker.add(20.0, 40)
    assert tracker.rate() == pytest.approx(2.0)
    assert eta_seconds(60, tracker.rate()) == pytest.approx(30.0)
    tracker.add(21.0, 5)  # counts went backwards: start over rather than report a negative rate
    assert tracker.rate() is None


def test_rate_from_timestamps_and_eta():
    batch = make(done=30, failed=0, in_progress_at=T0)
    assert rate_from_timestamps(batch, now=T0 + 10) == pytest.approx(3.0)
    assert rate_from_timestamps(make(done=0, in_progress_at=T0), now=T0 + 10) is None
    assert eta_seconds(70, 3.5) == pytest.approx(20.0)
    assert eta_seconds(70, None) is None


def test_format_duration():
    assert format_duration(12) == "0:00:12"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(2 * 86400 + 5) == "2d 0:00:05"
    assert format_duration(None) == "-"


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["completed"], 0),
        (["completed", "completed"], 0),
        (["failed"], 3),
        (["expired"], 4),
        (["cancelled"], 5),
        (["cancelled", "expired", "completed"], 4),
        (["cancelled", "failed", "expired"], 3),
        (["completed", "in_progress"], 6),
    ],
)
def test_exit_code_is_the_worst_final_state(statuses, code):
    assert exit_code_for_statuses(statuses) == code


# -- the loop ---------------------------------------------------------------------------------------


class Script:
    """A fake `fetch` that plays back answers (Batch or exception) per id, and a fake sleep."""

    def __init__(self, answers: dict[str, list]):
        self.answers = {k: list(v) for k, v in answers.items()}
        self.sleeps: list[float] = []
        self.calls: list[str] = []

    def fetch(self, batch_id: str) -> Batch:
        self.calls.append(batch_id)
        answer = self.answers[batch_id].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_loop_backs_off_while_nothing_changes_and_resets_on_change():
    same = make(done=10)
    script = Script({"batch_abc": [same, same, same, same, make(done=50), make(status="completed", done=100)]})
    updates = []
    final = poll_until_terminal(
        ["batch_abc"], script.fetch, lambda i, b, changed: updates.append(changed),
        schedule=PollSchedule(1.0), sleep=script.sleep,
    )
    assert final[0].status == "completed"
    assert updates == [True, False, False, False, True, True]
    assert script.sleeps == [1.0, 1.5, 2.25, 3.375, 1.0]


def test_loop_waits_out_a_429_retry_after_and_never_hammers():
    limited = RateLimitError("slow down", status=429)
    limited.retry_after = 7.0
    script = Script({"batch_abc": [make(done=1), limited, limited, make(status="completed", done=100)]})
    poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0), sleep=script.sleep)
    assert script.sleeps == [1.0, 7.0, 7.0]


class Clock:
    """A fake clock that a fake sleep moves forward."""

    def __init__(self, script: Script) -> None:
        self.now = 1_000_000.0
        self.script = script

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.script.sleep(seconds)
        self.now += seconds


def test_loop_keeps_going_through_an_outage_within_the_budget_then_gives_up():
    boom = InternalServerError("bad gateway", status=502)
    script = Script({"batch_abc": [make(done=1), boom, make(status="completed", done=100)]})
    poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0), sleep=script.sleep)
    assert script.sleeps == [1.0, 2.0]

    # 20 failures in a row (more than the old limit of 5, ~20 s) are fine inside a 10-minute budget.
    script = Script({"batch_abc": [make(done=1)] + [boom] * 20 + [make(status="completed", done=100)]})
    clock = Clock(script)
    final = poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0),
                                sleep=clock.sleep, clock=clock)  # fmt: skip
    assert final[0].status == "completed"

    script = Script({"batch_abc": [make(done=1)] + [boom] * 100})
    clock = Clock(script)
    with pytest.raises(WatchGaveUp, match=r"server unreachable since \d\d:\d\d:\d\d \(bad gateway \(HTTP 502\)\); gave up watching after 60 s"):
        poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0),
                            sleep=clock.sleep, clock=clock, give_up_after=60)  # fmt: skip
    assert 60 <= sum(script.sleeps[1:]) < 60 + 8  # polled until the budget was spent, not longer

    # A budget shorter than the back-off between polls: no pause runs past it (was: a 20 s wait for 3 s).
    script = Script({"batch_abc": [boom] * 10})
    clock = Clock(script)
    with pytest.raises(WatchGaveUp, match="gave up watching after 3 s"):
        poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(20.0),
                            sleep=clock.sleep, clock=clock, give_up_after=3)  # fmt: skip
    assert sum(script.sleeps) == 3


def test_the_outage_counts_from_the_poll_that_met_it_retries_included():
    """The API client retries a failing GET before the watch sees the failure (~3 s against a closed
    port): those seconds are part of the outage, so --give-up-after 3 gives up after ~3 s, not ~6."""
    boom = InternalServerError("bad gateway", status=502)
    script = Script({"batch_abc": [boom] * 10})
    clock = Clock(script)

    def fetch_with_retries(batch_id: str) -> Batch:
        clock.now += 3.5  # the client's back-off between its own attempts
        return script.fetch(batch_id)

    with pytest.raises(WatchGaveUp, match="gave up watching after 3 s"):
        poll_until_terminal(["batch_abc"], fetch_with_retries, lambda *a: None, schedule=PollSchedule(1.0),
                            sleep=clock.sleep, clock=clock, give_up_after=3)  # fmt: skip
    assert script.sleeps == []  # given up when the first failing poll came back: no pause, no second poll


def test_loop_stops_at_once_on_an_answer_that_is_not_a_batch():
    from batchctl.api._answers import UnexpectedAnswerError

    odd = UnexpectedAnswerError("the server answered 200 but not with a batch: an HTML page", status=200)
    script = Script({"batch_abc": [make(done=1), odd]})
    with pytest.raises(UnexpectedAnswerError):
        poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0), sleep=script.sleep)
    assert script.sleeps == [1.0]


def test_loop_stops_after_a_long_time_in_an_unknown_status():
    script = Script({"batch_abc": [make(done=1)] + [make(status="paused_by_provider", done=1)] * 600})
    clock = Clock(script)
    with pytest.raises(StuckInUnknownStatus, match="unknown status 'paused_by_provider' for 0:30:") as caught:
        poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0),
                            sleep=clock.sleep, clock=clock, unknown_status_limit=1800)  # fmt: skip
    assert caught.value.exit_code == 6
    assert 1800 <= sum(script.sleeps) < 1800 + 10


def test_loop_propagates_a_permanent_error_at_once():
    script = Script({"batch_abc": [NotFoundError("no such batch", status=404)]})
    with pytest.raises(NotFoundError):
        poll_until_terminal(["batch_abc"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0), sleep=script.sleep)
    assert script.sleeps == []


def test_loop_stops_polling_finished_batches():
    done_b = make(status="failed", total=0, id="batch_b")
    script = Script({
        "batch_a": [make(done=1, id="batch_a"), make(done=2, id="batch_a"), make(status="completed", done=100, id="batch_a")],
        "batch_b": [done_b],
    })
    final = poll_until_terminal(
        ["batch_a", "batch_b"], script.fetch, lambda *a: None, schedule=PollSchedule(1.0), sleep=script.sleep
    )
    assert [b.status for b in final] == ["completed", "failed"]
    assert script.calls == ["batch_a", "batch_b", "batch_a", "batch_a"]


# -- rendering --------------------------------------------------------------------------------------


def test_change_line_format():
    batch = make(done=35, failed=2)
    assert change_line(batch, now=T0 + 12) == "batch_abc  in_progress  37/100 (ok 35, failed 2)  37%  elapsed 0:00:12"
    finished = make(status="completed", done=100, completed_at=T0 + 61)
    assert change_line(finished, now=T0 + 999) == "batch_abc  completed  100/100 (ok 100, failed 0)  100%  elapsed 0:01:01"


def test_change_line_without_live_counts_says_so():
    line = change_line(make(done=0, total=0), now=T0 + 60, live_counts=False)
    assert line == f"batch_abc  in_progress  {NO_LIVE_COUNTS}  elapsed 0:01:00"


def test_panel_shows_progress_rate_eta_files_metadata():
    batch = make(done=40, failed=2, in_progress_at=T0 + 1, metadata={"description": "nightly eval"},
                 output_file_id=None, model="echo")
    text = render(batch_panel(BatchView(batch, rate=2.0), now=T0 + 30))
    assert "in_progress" in text
    assert "━" in text and "42/100  42%" in text
    assert "ok 40   failed 2" in text
    assert "elapsed 0:00:30   rate 2.0 req/s   ETA 0:00:29" in text
    assert "input  file-in" in text
    assert "description: nightly eval" in text
    assert "created " in text and "in progress " in text


def test_panel_of_a_dashscope_batch_does_not_show_a_frozen_zero():
    text = render(batch_panel(BatchView(make(done=0, total=0), live_counts=False), now=T0 + 5))
    assert NO_LIVE_COUNTS in text
    assert "0%" not in text and "ETA" not in text


def test_panel_of_a_failed_batch_lists_its_errors():
    errors = {"object": "list", "data": [
        {"code": "invalid_json", "message": "Line is not valid JSON.", "line": 3},
        {"code": "missing_model", "message": "body.model is required.", "line": 7, "param": "body.model"},
    ]}
    batch = make(status="failed", total=0, failed_at=T0 + 2, errors=errors)
    text = render(batch_panel(BatchView(batch), now=T0 + 10))
    assert "line 3: [invalid_json] Line is not valid JSON." in text
    assert "line 7: [missing_model] body.model is required. (body.model)" in text
    assert re.search(r"failed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)


def test_dashboard_for_many_batches_is_a_table():
    views = [BatchView(make(done=10 * i, id=f"batch_{i}")) for i in range(3)]
    text = render(dashboard(views, header="Watching 3 batches", now=T0 + 10))
    assert text.splitlines()[0] == "Watching 3 batches"
    for i in range(3):
        assert f"batch_{i}" in text
        assert f"{10 * i}/100 (ok {10 * i}, failed 0)" in text


def test_a_servers_line_number_is_said_once():
    from batchctl.api.models import BatchErrorItem
    from batchctl.cli.render import error_line

    item = BatchErrorItem(code="invalid_json_line", line=1, message="line 1: not valid JSON")
    assert error_line(item) == "line 1: [invalid_json_line] not valid JSON"
    other = BatchErrorItem(code="too_many_requests", line=None, message="the file has 60,000 requests")
    assert error_line(other) == "[too_many_requests] the file has 60,000 requests"
    plain = BatchErrorItem(code="x", line=4, message="bad url", param="url")
    assert error_line(plain) == "line 4: [x] bad url (url)"


def test_job_tags_stay_out_of_the_panel_but_not_the_json():
    batch = Batch.model_validate({"id": "batch_t", "status": "in_progress", "metadata": {
        "description": "nightly", "batchctl_job": "job_1", "batchctl_part": "0", "batchctl_token": "abc"}})
    console = Console(width=100, record=True)
    console.print(batch_panel(BatchView(batch)))
    text = console.export_text()
    assert "description: nightly" in text and "batchctl_" not in text
    assert batch.model_dump()["metadata"]["batchctl_job"] == "job_1"
