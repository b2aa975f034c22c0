"""`UI_PASSWORD`: sessions signed for the right password only, wrong tries limited."""

import time

import pytest

from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}_ui import gate
from {{ cookiecutter.package_name }}_ui.gate import Gate, WrongPassword


def a_gate(password: str | None = "correct horse") -> Gate:
    return Gate(Settings(ui_password=password, redis_url=None))


def test_without_a_password_the_gate_is_open():
    open_gate = a_gate(None)
    assert open_gate.is_open
    assert open_gate.admits("")


async def test_the_right_password_gives_a_session_the_gate_admits():
    closed = a_gate()
    assert not closed.is_open
    assert not closed.admits("")
    session = await closed.enter("correct horse", "10.0.0.1")
    assert closed.admits(session)
    assert a_gate().admits(session)  # another process with the same password: Redis-free


async def test_a_session_is_refused_once_forged_expired_or_the_password_changed(monkeypatch):
    closed = a_gate()
    session = await closed.enter("correct horse", "10.0.0.1")
    expiry, signature = session.split(".")
    assert not closed.admits(f"{int(expiry) + 1}.{signature}")  # a longer life, forged
    assert not closed.admits(f"{expiry}.{'0' * len(signature)}")
    assert not closed.admits("not.a-session")
    assert not a_gate("another password").admits(session)
    monkeypatch.setattr(time, "time", lambda: int(expiry) + 1)
    assert not closed.admits(session)


async def test_a_wrong_password_is_refused_and_tries_are_limited_per_address():
    closed = a_gate()
    for _ in range(gate.WRONG_TRIES.amount):
        with pytest.raises(WrongPassword, match="not the password"):
            await closed.enter("guess", "10.0.0.2")
    with pytest.raises(WrongPassword, match="Too many wrong tries"):
        await closed.enter("correct horse", "10.0.0.2")  # even the right one, for a while
    assert closed.admits(await closed.enter("correct horse", "10.0.0.3"))


@pytest.mark.parametrize(("api_token", "warned"), [(None, True), ("s3cret", False)])
def test_a_gated_page_with_an_open_api_is_warned_about(caplog, api_token, warned):
    Gate(Settings(ui_password="correct horse", api_token=api_token, redis_url=None))
    assert ("without API_TOKEN" in caplog.text) == warned
