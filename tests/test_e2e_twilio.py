"""A small campaign end to end: ``callback run`` and ``callback serve`` against a fake Twilio.

The dispatcher (``callback run``) and the web server (``callback serve``) run as the real
commands in subprocesses, on one database. The plugin's ``FakeTwilioAPI`` stands in for
Twilio's REST API, and for each call it is asked to create it plays the rest of Twilio's
part: the status callbacks, the signed voice webhook, the TwiML followed key by key and the
answering machine verdict, all sent to ``callback serve`` at the URLs the call was created
with. What the database holds afterwards is what a real campaign would have left there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

pytest.importorskip("callback_twilio")
pytest.importorskip("uvicorn")

from callback_twilio.testing import (  # noqa: E402
    FakeTwilioAPI,
    TwilioPhone,
    TwimlPage,
    WebhookRequest,
    parse_twiml,
    walk_survey,
)

from callback.config import Settings  # noqa: E402
from callback.importing import ImportOptions, import_file  # noqa: E402
from callback.models import CallAttempt, QueueItem, Response, table  # noqa: E402
from callback.synthetic import write_district  # noqa: E402

pytestmark = pytest.mark.slow

#: Wednesday 10 June 2026, 10:00 in Shanghai: a working day, inside the default morning window.
#: ``callback run`` is told so with --now; its clock runs on from there at the wall's pace.
NOW_LOCAL = "2026-06-10 10:00"
#: What a call's Twilio callbacks say happened when, counted from the call's placement.
RINGING, ANSWERED, BUSY_AFTER, NO_ANSWER_AFTER, TALKED = 1, 6, 4, 30, 95
#: Long enough for two subprocesses to start and six calls to be played, short of a hang.
DEADLINE = 25.0
attempts_t, items_t, responses_t = table(CallAttempt), table(QueueItem), table(Response)


@dataclass(frozen=True)
class Scenario:
    """What one citizen's phone does: Twilio's final status, AMD verdict, keys pressed."""

    name: str
    #: "completed" (answered), "busy" or "no-answer".
    status: str = "completed"
    answered_by: str = "human"
    keys: tuple[str, ...] = ()
    #: The attempt's outcome and AAPOR code, and the item's final code (None: a retry).
    outcome: str = "completed"
    disposition: str = "1.1"
    final: str | None = "1.1"
    #: Where the retry rules put the next try, at the least, after the placement.
    retry_after: timedelta | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    rates: tuple[bool | None, bool | None] = (None, None)


SCENARIOS = (
    Scenario(
        "satisfied applicant",
        # 本人, yes it is my case, went once, satisfied, no suggestion, policy explained, recontact.
        keys=("1", "1", "1", "2", "2", "1", "1"),
        answers={
            "identity": "applicant",
            "case": True,
            "trips": 1,
            "satisfaction": "satisfied",
            "has_suggestion": False,
            "policy": True,
            "recontact": True,
        },
        rates=(True, True),
    ),
    Scenario(
        "the person who handled it",
        # 经办人, yes, never went (done online), fairly satisfied, no suggestion, no policy,
        # no recontact.
        keys=("2", "1", "0", "3", "2", "2", "2"),
        answers={
            "identity": "contact",
            "case": True,
            "trips": 0,
            "satisfaction": "basically_satisfied",
            "has_suggestion": False,
            "policy": False,
            "recontact": False,
        },
        rates=(True, True),
    ),
    Scenario(
        "dissatisfied applicant",
        # 本人, yes, three trips, dissatisfied, it took too long, silence where speech was
        # asked for (optional), no suggestion, policy explained, no recontact.
        keys=("1", "1", "3", "4", "2", "", "2", "1", "2"),
        answers={
            "identity": "applicant",
            "case": True,
            "trips": 3,
            "satisfaction": "dissatisfied",
            "reason": "too_slow",
            "has_suggestion": False,
            "policy": True,
            "recontact": False,
        },
        rates=(False, False),
    ),
    Scenario(
        "busy line",
        status="busy",
        answered_by="",
        outcome="busy",
        disposition="3.12",
        final=None,
        retry_after=timedelta(minutes=20),
    ),
    Scenario(
        "nobody home",
        status="no-answer",
        answered_by="",
        outcome="no-answer",
        disposition="3.13",
        final=None,
        retry_after=timedelta(hours=2),
    ),
    Scenario(
        "voicemail",
        answered_by="machine_start",
        outcome="machine",
        disposition="3.14",
        final=None,
        retry_after=timedelta(hours=4),
    ),
)


def wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def attempt_of(url: str) -> int:
    """The attempt id at the end of a webhook URL, /twilio/voice/<attempt_id>."""
    return int(url.rstrip("/").rsplit("/", 1)[1])


class TwilioCalls:
    """Twilio's part of every call the dispatcher creates, as ``FakeTwilioAPI.on_create``.

    Each number plays its scenario against ``callback serve``. The callbacks wait until the
    dispatcher has recorded the call as placed: Twilio's first callback comes a network round
    trip after it answered the create request, and the dispatcher writes the SID at once.
    Status callbacks carry Twilio's Timestamp, counted from the placement the dispatcher
    recorded, so that the calls' times follow ``callback run``'s --now clock.
    """

    def __init__(self, engine: Engine, serve_url: str, scenarios: dict[str, Scenario]) -> None:
        self.engine = engine
        self.serve_url = serve_url
        self.scenarios = scenarios
        self.api: FakeTwilioAPI | None = None
        #: Set once `callback serve` answers. The test starts it beside `callback run`, so a
        #: call may be placed before the server listens; Twilio would fail that call, and a
        #: deployment starts the server first, so Twilio's part waits for it here.
        self.serving = threading.Event()
        #: The TwiML pages each call went through, by SID.
        self.pages: dict[str, list[TwimlPage]] = {}

    def send(self, request: WebhookRequest) -> str:
        status, body = request.send_to(self.serve_url)
        assert status in (200, 204), (request.url, status, body)
        return body

    def placed(self, attempt: int, sid: str) -> datetime:
        def row() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(
                    sa.select(attempts_t.c.state, attempts_t.c.provider_call_id,
                              attempts_t.c.placed_at).where(attempts_t.c.id == attempt)
                ).first()  # fmt: skip

        assert wait_until(lambda: (r := row()) is not None and r.provider_call_id == sid, 10), (
            f"attempt {attempt} was never recorded as placed with {sid}: {row()}"
        )
        return row().placed_at

    def __call__(self, sid: str) -> None:
        api = self.api
        assert api is not None
        assert self.serving.wait(DEADLINE), "callback serve never came up"
        phone = api.phone(sid)
        scenario = self.scenarios[phone.to]
        # Whole seconds, as Twilio's RFC 2822 Timestamp has them.
        start = self.placed(attempt_of(phone.voice_url), sid).replace(microsecond=0)

        def status(call_status: str, after: int, **fields: Any) -> None:
            api.set_call(sid, call_status, **{k: v for k, v in fields.items() if k != "duration"})
            self.send(phone.status(call_status, timestamp=start + timedelta(seconds=after),
                                   **fields))  # fmt: skip

        status("initiated", 0)
        status("ringing", RINGING)
        if scenario.status != "completed":
            status(scenario.status, BUSY_AFTER if scenario.status == "busy" else NO_ANSWER_AFTER,
                   duration=0)  # fmt: skip
            return
        status("in-progress", ANSWERED)
        if scenario.answered_by == "human":
            self.pages[sid] = walk_survey(self.send, phone, scenario.keys)
            self.send(phone.amd("human"))
        else:
            self.pages[sid] = self.voicemail(phone, scenario.answered_by)
        status("completed", ANSWERED + TALKED, duration=TALKED,
               answered_by=scenario.answered_by)  # fmt: skip

    def voicemail(self, phone: TwilioPhone, verdict: str) -> list[TwimlPage]:
        """The greeting plays to the machine; the verdict comes; the Gather times out."""
        first = parse_twiml(self.send(phone.voice()))
        self.send(phone.amd(verdict))
        redirect = first.next_url("")
        assert redirect, first.xml
        return [first, parse_twiml(self.send(phone.gather(redirect)))]


def subprocess_env() -> dict[str, str]:
    """This environment without callback's or Twilio's settings: the config file decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CALLBACK_", "TWILIO_"))}


def toml_table(name: str, values: dict[str, Any]) -> str:
    # JSON's strings and numbers are TOML's too.
    return f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


@dataclass
class Process:
    """A ``callback`` subprocess whose output goes to a file (a pipe could fill and block)."""

    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, args: list[str], cwd: Path, name: str) -> Process:
        log = cwd / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "callback", *args],
                env=subprocess_env(), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return cls(popen, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then wait; a process that does not stop is killed and fails the test."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"did not stop on SIGTERM:\n{self.output()}")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Subprocesses to kill if the test fails before it stops them."""
    started: list[Process] = []
    yield started
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()


def sampled_numbers(engine: Engine) -> list[str]:
    """The number the dispatcher will dial for each sampled case, in queue order."""
    query = sa.text(
        "SELECT q.id, MIN(c.e164) AS e164, COUNT(*) AS numbers FROM queue_items q "
        "JOIN contacts c ON c.case_id = q.case_id AND c.superseded_at IS NULL "
        "AND c.validity = 'valid' GROUP BY q.id ORDER BY q.id"
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    # A scenario belongs to a number, so each case must have one, and one of its own.
    assert all(r.numbers == 1 for r in rows) and len({r.e164 for r in rows}) == len(rows), rows
    return [r.e164 for r in rows]


def settled(engine: Engine, items: int) -> bool:
    """Every item was dialled, no call is still out, and no dispatcher holds an item."""
    with engine.connect() as conn:
        attempts = conn.execute(sa.select(attempts_t.c.queue_item_id, attempts_t.c.state)).all()
        held = conn.execute(
            sa.select(sa.func.count()).where(items_t.c.held_by.is_not(None))
        ).scalar_one()
    return (
        len({a.queue_item_id for a in attempts}) == items
        and all(a.state == "ended" for a in attempts)
        and held == 0
    )


def sample_campaign(cli: Any, engine: Engine, database_url: str, tmp_path: Path) -> list[str]:
    """Import a synthetic district, sample a twilio campaign from it; return its numbers."""
    frame = tmp_path / "cases.csv"
    write_district(frame, 30, seed=5, year=2025)
    import_file(
        engine, frame, Settings(database_url=database_url, actor="tester"),
        ImportOptions(rejects_dir=tmp_path),
    )  # fmt: skip
    rehearse = ("--now", NOW_LOCAL, "campaign")
    created = cli(*rehearse, "create", "e2e", "--year", "2025", "--size", str(len(SCENARIOS)),
                  "--dialer", "twilio", "--seed", "7")  # fmt: skip
    assert created.exit_code == 0, created.output
    sampled = cli(*rehearse, "sample", "e2e")
    assert sampled.exit_code == 0, sampled.output
    return sampled_numbers(engine)


def assert_recorded(
    scenario: Scenario, attempt: Any, item: Any, response: Any, pages: list[TwimlPage] | None
) -> None:
    """One case after its call: the attempt, its item, and the answers (or the retry)."""
    what = f"{scenario.name}: attempt {attempt.id}, item {item.id}"
    assert (attempt.state, attempt.outcome, attempt.disposition) == (
        "ended", scenario.outcome, scenario.disposition
    ), what  # fmt: skip
    assert item.attempts == 1 and item.held_by is None, what
    if scenario.status == "completed":
        # Stamped with Twilio's Timestamp of the answered callback (whole seconds).
        assert attempt.answered_at - attempt.placed_at > timedelta(seconds=ANSWERED - 1), what
        assert pages is not None and pages[-1].hangup, what
    else:
        assert attempt.answered_at is None and pages is None, what
    if scenario.final is not None:
        assert (item.state, item.final_disposition, item.due_at) == (
            "finished", scenario.final, None
        ), what  # fmt: skip
        assert response is not None and response.attempt_id == attempt.id, what
        assert response.complete and response.script == "service-callback", what
        assert {k: response.answers.get(k) for k in scenario.answers} == scenario.answers, what
        assert (response.realised, response.satisfied) == scenario.rates, what
        assert pages is not None and "感谢" in " ".join(pages[-1].says), what
    else:  # waiting for the retry the rules put off
        assert (item.state, item.final_disposition, response) == ("open", None, None), what
        assert scenario.retry_after is not None
        assert item.due_at >= attempt.placed_at + scenario.retry_after, what


def test_a_small_campaign_is_dialled_surveyed_and_recorded_end_to_end(
    cli: Any, engine: Engine, database_url: str, tmp_path: Path, processes: list[Process]
) -> None:
    numbers = sample_campaign(cli, engine, database_url, tmp_path)
    assert len(numbers) == len(SCENARIOS)
    by_number = dict(zip(numbers, SCENARIOS, strict=True))
    port = free_port()
    serve_url = f"http://127.0.0.1:{port}"
    twilio = TwilioCalls(engine, serve_url, by_number)
    with FakeTwilioAPI(on_create=twilio) as api:
        twilio.api = api
        config = tmp_path / "callback.toml"
        # Twilio reaches `callback serve` at its own address here: no proxy in between.
        dialer = api.settings(public_base_url=serve_url, calls_per_second=20.0)
        config.write_text(toml_table("dialers.twilio", dialer), encoding="utf-8")
        root = ["--database", database_url, "--config", str(config)]
        # Started side by side, which saves seconds of imports; see TwilioCalls.serving.
        serve = Process.start([*root, "serve", "--port", str(port), "--workers", "1"],
                              tmp_path, "serve")  # fmt: skip
        run = Process.start([*root, "--now", NOW_LOCAL, "run", "--tick", "0.2"], tmp_path, "run")
        processes.extend([serve, run])

        def up() -> bool:
            try:
                return httpx.get(serve_url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return serve.popen.poll() is not None

        assert wait_until(up, DEADLINE) and serve.popen.poll() is None, serve.output()
        twilio.serving.set()
        done = wait_until(
            lambda: (
                settled(engine, len(SCENARIOS))
                or run.popen.poll() is not None
                or bool(api.call_errors)
            ),
            DEADLINE,
        )
        assert api.call_errors == [], (api.call_errors, run.output(), serve.output())
        assert done and run.popen.poll() is None, run.output() + serve.output()
        assert api.wait_for_calls(10), "a call was still being played"
        assert run.stop() == 0, run.output()
        # uvicorn shuts down gracefully, then re-raises the signal it caught (uvicorn#1600).
        assert serve.stop() in (0, -signal.SIGTERM), serve.output()
        assert "Finished server process" in serve.output()
        requests, calls = api.requests, api.calls
    assert f"stopped; {len(SCENARIOS)} calls placed" in run.output()

    # One create request per attempt, each case dialled once, each attempt with its call's SID.
    creates = [r for r in requests if r.method == "POST" and r.path.endswith("/Calls.json")]
    assert [r.status for r in creates] == [201] * len(SCENARIOS)
    assert sorted(r.param("To") or "" for r in creates) == sorted(numbers)
    sid_of = {r.param("To"): r.response["sid"] for r in creates}
    with engine.connect() as conn:
        attempts = conn.execute(sa.select(attempts_t).order_by(attempts_t.c.id)).all()
        items = {i.id: i for i in conn.execute(sa.select(items_t)).all()}
        responses = {r.queue_item_id: r for r in conn.execute(sa.select(responses_t)).all()}
    assert len(attempts) == len(creates) == len(calls)
    assert {a.number: a.provider_call_id for a in attempts} == sid_of
    assert all(a.dialer == "twilio" and a.placed_at is not None for a in attempts)
    for request in creates:
        attempt = attempt_of(request.param("Url") or "")
        assert request.param("StatusCallback") == f"{serve_url}/twilio/status/{attempt}"
        assert request.param("AsyncAmdStatusCallback") == f"{serve_url}/twilio/amd/{attempt}"

    for attempt in attempts:
        assert_recorded(
            by_number[attempt.number], attempt, items[attempt.queue_item_id],
            responses.get(attempt.queue_item_id), twilio.pages.get(attempt.provider_call_id),
        )  # fmt: skip
    # The fake's calls ended as Twilio's would have: what a reconciliation would read.
    assert sorted(call["status"] for call in calls.values()) == sorted(s.status for s in SCENARIOS)
