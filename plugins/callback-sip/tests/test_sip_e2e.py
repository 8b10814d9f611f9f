"""End to end: ``callback run`` dials a small campaign through the SIP dialer to sipp.

The whole path of an automated campaign, nothing mocked: a synthetic district imported, a
campaign created and sampled with the ``sip`` dialer and the built-in service-callback script,
then the dispatcher as its own process (``callback run``, PJSIP inside) dialling every case
to one sipp on the loopback interface, which plays four citizens told apart by the number
dialled (scenarios/trunk_by_number.xml). The database must then hold one attempt per call
sipp saw, the keyed answers, and the dispositions and retries the calling rules give.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from callback import plugins
from callback.cli import cli
from callback.db import create_engine, normalise_url
from callback.models import (
    AttemptState,
    CallAttempt,
    Contact,
    QueueItem,
    Response,
    SurveySession,
    table,
)
from callback.prompt_audio import prompt_filename
from callback.synthetic import write_district

from sipp_support import (
    LOOPBACK,
    Sipp,
    free_udp_ports,
    needs_sipp,
    received_invites,
    start_sipp,
    stop_sipp,
    write_keypad_pcap,
    write_tone_wav,
)

pytestmark = [
    needs_sipp,
    pytest.mark.sipp,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None or shutil.which("sox") is None,
        reason="the survey's Mandarin prompts need espeak-ng and sox",
    ),
]

#: Monday 8 October 2018, 10:00 in Hangzhou: inside the default calling window, after the
#: cases of "--year 2018" (June to September) were handled.
NOW = "2018-10-08 10:00"
#: identity 本人, case yes, one trip, satisfied, no suggestion, policy explained, may recontact.
SURVEY_KEYS = "1112211"
SURVEY_ANSWERS = {
    "identity": "applicant",
    "case": True,
    "trips": 1,
    "satisfaction": "satisfied",
    "has_suggestion": False,
    "policy": True,
    "recontact": True,
}
#: What each sampled case's citizen does, in the order of the queue items.
BEHAVIOURS = ("complete", "break_off", "busy", "no_answer")
#: Seconds the whole campaign may take once `callback run` starts (it takes about 6).
CAMPAIGN_TIMEOUT = 30.0


@contextmanager
def database(tmp: Path) -> Iterator[str]:
    """Yield the URL of an empty database: SQLite, or a fresh PostgreSQL schema in CI.

    PostgreSQL when CALLBACK_TEST_DATABASE_URL is set, as in the core's tests/conftest.py
    (which a plugin's tests cannot import).
    """
    base_url = os.environ.get("CALLBACK_TEST_DATABASE_URL")
    if not base_url:
        yield f"sqlite:///{tmp / 'callback.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    base = normalise_url(base_url).render_as_string(hide_password=False)
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote('-csearch_path=' + schema)}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def outside_settings() -> list[str]:
    """The CALLBACK_* variables of whoever runs the tests: none of them may steer these runs."""
    keep = "CALLBACK_TEST_DATABASE_URL"
    return [name for name in os.environ if name.startswith("CALLBACK_") and name != keep]


def callback(database_url: str, config: Path, *args: str) -> str:
    """Run a callback command in this process at ``NOW``; return its output."""
    result = CliRunner(env={name: None for name in outside_settings()}).invoke(
        cli,
        ["--database", database_url, "--config", str(config), "--actor", "tester", "--now", NOW,
         *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def sample_campaign(database_url: str, tmp: Path) -> None:
    """Import a small synthetic district and sample one case per behaviour for the sip dialer."""
    frame = tmp / "cases.csv"
    write_district(frame, 60, seed=5)
    config = tmp / "defaults.toml"  # not ./callback.toml, whatever the tests run in
    config.write_text("", encoding="utf-8")
    callback(database_url, config, "db", "upgrade")
    callback(database_url, config, "cases", "import", str(frame))
    size = str(len(BEHAVIOURS))
    callback(database_url, config, "campaign", "create", "e2e", "--year", "2018", "--size",
             size, "--strata", "", "--dialer", "sip", "--seed", "7")  # fmt: skip
    report = callback(database_url, config, "campaign", "sample", "e2e")
    assert f"sampled {size} of {size} requested" in report


def numbers_by_behaviour(engine: Engine) -> tuple[dict[int, str], dict[str, list[str]]]:
    """Give each queue item a behaviour; every number of its case routes to that behaviour.

    Which of a case's numbers the dispatcher dials first is its business, so all are routed.
    """
    items, contacts = table(QueueItem), table(Contact)
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(items.c.id, contacts.c.e164)
            .join(contacts, contacts.c.case_id == items.c.case_id)
            .where(contacts.c.superseded_at.is_(None), contacts.c.e164.is_not(None))
            .order_by(items.c.id, contacts.c.position)
        ).all()
    item_ids = sorted({row.id for row in found})
    behaviour = dict(zip(item_ids, BEHAVIOURS, strict=True))
    numbers: dict[str, list[str]] = {name: [] for name in BEHAVIOURS}
    for row in found:
        numbers[behaviour[row.id]].append(row.e164)
    return behaviour, numbers


def record_closing(directory: Path) -> Path:
    """Record the survey's closing words as a short tone, named as a recording of its text.

    The questions are synthesised (and cut short by the keys), but the closing plays in full:
    spoken by espeak-ng it lasts 12 s, recorded (``recorded_prompts``) 0.4 s.
    """
    closing = plugins.get_script("service-callback").question("closing")
    text = (closing.ivr or closing.agent).get("zh")
    directory.mkdir()
    write_tone_wav(directory / prompt_filename(text), seconds=0.4)
    return directory


def write_config(tmp: Path, peer: Sipp, *, ring_timeout: int = 3, recorded: bool = True) -> Path:
    """callback.toml for a SIP dialer talking to ``peer``; ``recorded``: with the survey's
    recorded closing prompt (a campaign that never speaks needs none)."""
    config = tmp / "callback.toml"
    prompts = f'recorded_prompts = "{record_closing(tmp / "recorded")}"\n' if recorded else ""
    config.write_text(
        f"""\
[dialers.sip]
server = "{peer.address}"
bind_address = "{LOOPBACK}"
sip_port = 0
rtp_port = {free_udp_ports(16)}
rtp_port_range = 16
ring_timeout = {ring_timeout}
calls_per_second = 5.0
max_concurrent = 4
prompt_cache = "{tmp / "prompts"}"
{prompts}""",
        encoding="utf-8",
    )
    return config


def start_run(
    database_url: str, config: Path, log: Path, now: str = NOW
) -> subprocess.Popen[bytes]:
    """`callback run` at ``now`` in a process of its own, its log in ``log``."""
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "callback", "--database", database_url, "--config",
             str(config), "--now", now, "run", "--tick", "0.2"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            env={k: v for k, v in os.environ.items() if k not in outside_settings()},
        )  # fmt: skip


def stop_run(run: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager stops it; return its exit status."""
    run.send_signal(signal.SIGTERM)
    try:
        return run.wait(30)
    except subprocess.TimeoutExpired:
        run.kill()
        run.wait()
        return -signal.SIGKILL


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table(model)).order_by("id")).all())


def wait_for(predicate: Callable[[], bool], seconds: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what()
        time.sleep(0.2)


@dataclass
class Run:
    """What one `callback run` of the campaign left behind, for the tests to look at."""

    numbers: dict[str, list[str]]
    #: The attempts, all of them and by the behaviour of their case.
    attempts: list[Any]
    by_behaviour: dict[str, Any]
    items: dict[int, Any]
    responses: dict[int, Any]
    sessions: dict[int, Any]
    #: The numbers sipp was called at, by SIP Call-ID; its exit status (0: all as scripted).
    invites: dict[str, str]
    sipp_status: int
    exit_status: int
    log: str


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Sample the campaign, run `callback run` until sipp has had every call, then stop it."""
    tmp = tmp_path_factory.mktemp("e2e")
    with database(tmp) as url:
        engine = create_engine(url)
        try:
            yield run_campaign(url, engine, tmp)
        finally:
            engine.dispose()


def run_campaign(url: str, engine: Engine, tmp: Path) -> Run:
    sample_campaign(url, tmp)
    behaviour, numbers = numbers_by_behaviour(engine)
    write_keypad_pcap(tmp / "survey.pcap", SURVEY_KEYS)
    write_keypad_pcap(tmp / "one_key.pcap", "1")
    fill = {name.upper(): "|".join(n.lstrip("+") for n in numbers[name]) for name in BEHAVIOURS}
    peer = start_sipp(
        tmp / "sipp", "trunk_by_number.xml", calls=len(BEHAVIOURS), fill=fill,
        pcaps=(tmp / "survey.pcap", tmp / "one_key.pcap"), timeout=CAMPAIGN_TIMEOUT + 10,
    )  # fmt: skip
    log = tmp / "run.log"

    def report() -> str:
        attempts = [(a.number, a.state, a.outcome) for a in rows(engine, CallAttempt)]
        return f"attempts {attempts}\n--- callback run\n{log.read_text()}\n{peer.messages()}"

    def all_ended() -> bool:
        attempts = rows(engine, CallAttempt)
        return len(attempts) >= len(BEHAVIOURS) and all(a.ended_at for a in attempts)

    try:
        run = start_run(url, write_config(tmp, peer), log)
        try:
            wait_for(all_ended, CAMPAIGN_TIMEOUT, report)
            # sipp exits once it has seen its calls through.
            sipp_status = peer.wait(CAMPAIGN_TIMEOUT)
        finally:
            exit_status = stop_run(run)
    finally:
        stop_sipp(peer)
    attempts = rows(engine, CallAttempt)
    return Run(
        numbers=numbers,
        attempts=attempts,
        by_behaviour={behaviour[a.queue_item_id]: a for a in attempts},
        items={i.id: i for i in rows(engine, QueueItem)},
        responses={r.attempt_id: r for r in rows(engine, Response)},
        sessions={s.attempt_id: s for s in rows(engine, SurveySession)},
        invites=received_invites(peer),
        sipp_status=sipp_status,
        exit_status=exit_status,
        log=report(),
    )


def test_every_call_sipp_had_is_one_attempt_and_every_attempt_one_call(campaign: Run) -> None:
    assert campaign.sipp_status == 0, campaign.log  # each call went as its branch scripts it
    assert len(campaign.invites) == len(campaign.attempts) == len(BEHAVIOURS), campaign.log
    assert sorted(campaign.invites.values()) == sorted(a.number for a in campaign.attempts)
    assert set(campaign.by_behaviour) == set(BEHAVIOURS)  # one attempt of each case
    for name, attempt in campaign.by_behaviour.items():
        assert attempt.number in campaign.numbers[name]
        assert (attempt.state, attempt.dialer) == (AttemptState.ENDED, "sip")
        assert attempt.placed_at is not None and attempt.provider_call_id
    attempt_of = {a.queue_item_id: a for a in campaign.attempts}
    for item in campaign.items.values():
        assert (item.attempts, item.held_by) == (1, None)
        # The calling rules' retry delays count from here (the dispatcher's own clock).
        assert item.last_attempt_at == attempt_of[item.id].placed_at


def test_callback_run_stops_cleanly_on_sigterm(campaign: Run) -> None:
    assert campaign.exit_status == 0, campaign.log
    assert "SIGTERM: stopping" in campaign.log
    assert f"stopped; {len(BEHAVIOURS)} calls placed" in campaign.log
    assert "Traceback" not in campaign.log


def test_a_survey_keyed_to_the_end_is_a_complete_interview(campaign: Run) -> None:
    attempt = campaign.by_behaviour["complete"]
    assert (attempt.outcome, attempt.disposition) == ("completed", "1.1"), attempt.detail
    assert attempt.answered_at is not None
    detail = attempt.detail
    assert (detail["hangup_by"], detail["hangup_reason"]) == ("dialer", "survey-finished")
    assert detail["survey_finished"] is True
    assert detail["turns"] == len(SURVEY_KEYS) + 1  # each question, then the closing words
    assert detail["dtmf"] == ["rfc2833"]
    response = campaign.responses[attempt.id]
    assert response.complete is True
    assert response.answers == SURVEY_ANSWERS
    assert (response.realised, response.satisfied) == (True, True)
    assert campaign.sessions[attempt.id].status == "finished"
    item = campaign.items[attempt.queue_item_id]
    assert (item.state, item.final_disposition, item.due_at) == ("finished", "1.1", None)


def test_a_citizen_hanging_up_midway_is_a_break_off_called_again_later(campaign: Run) -> None:
    attempt = campaign.by_behaviour["break_off"]
    assert (attempt.outcome, attempt.disposition) == ("completed", "2.12"), attempt.detail
    assert attempt.answered_at is not None
    assert (attempt.detail["hangup_by"], attempt.detail["survey_finished"]) == ("callee", False)
    response = campaign.responses[attempt.id]
    assert (response.complete, response.answers) == (False, {"identity": "applicant"})
    assert campaign.sessions[attempt.id].status == "stopped"  # the next call resumes it
    item = campaign.items[attempt.queue_item_id]
    assert (item.state, item.final_disposition) == ("open", None)
    assert item.due_at >= attempt.placed_at + timedelta(hours=1)


def test_a_busy_line_is_called_again_later(campaign: Run) -> None:
    attempt = campaign.by_behaviour["busy"]
    assert (attempt.outcome, attempt.disposition) == ("busy", "3.12"), attempt.detail
    assert attempt.answered_at is None
    assert attempt.detail["sip_status"] == 486
    assert attempt.id not in campaign.sessions
    item = campaign.items[attempt.queue_item_id]
    assert (item.state, item.final_disposition) == ("open", None)
    assert item.due_at >= attempt.placed_at + timedelta(minutes=20)


def test_ringing_past_the_ring_timeout_is_no_answer_called_again_later(campaign: Run) -> None:
    attempt = campaign.by_behaviour["no_answer"]
    assert (attempt.outcome, attempt.disposition) == ("no-answer", "3.13"), attempt.detail
    assert attempt.answered_at is None
    assert attempt.detail["ring_timeout"] is True  # our CANCEL after ring_timeout = 3
    assert attempt.id not in campaign.sessions
    item = campaign.items[attempt.queue_item_id]
    assert (item.state, item.final_disposition) == ("open", None)
    assert item.due_at >= attempt.placed_at + timedelta(hours=2)


def test_calls_are_timed_by_the_dispatchers_clock(campaign: Run) -> None:
    for attempt in campaign.attempts:
        assert attempt.created_at <= attempt.placed_at <= attempt.ended_at
        assert attempt.answered_at is None or attempt.placed_at <= attempt.answered_at
        assert attempt.ended_at - attempt.created_at < timedelta(minutes=1)
