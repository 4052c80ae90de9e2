"""The live test server's own helper: `wait_until_idle`, which the browser tests rely on before the tables are
emptied."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screening.config import Settings
from screening.screens.models import Answer, Screen
from tests import live
from tests.factories import make_user
from tests.web.helpers import Api


def test_wait_until_idle_waits_for_a_request_still_in_hand(settings: Settings, engine: Engine, session: Session,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    nurse = make_user(session)
    with live.live_server(settings) as base, ThreadPoolExecutor(1) as pool:
        api = Api(base, nurse.username)
        sid = api.screen()["id"]
        live.wait_until_idle(base)  # the POST's task may outlast its response: only the PATCH's is counted below
        # The screen's row locked (on SQLite, the session's write lock): the PATCH waits for the database.
        session.execute(select(Screen).where(Screen.id == sid).with_for_update())
        patched = pool.submit(api.http.patch, f"/api/v1/screens/{sid}/answers", json={"answers": {"bjmhs_1": True}})
        deadline = time.monotonic() + 10
        while not live.requests_in_hand(base):
            assert time.monotonic() < deadline, "the PATCH never reached the server"
            time.sleep(0.01)
        with pytest.raises(AssertionError, match=r"still had a request in hand after 0\.3 s"):
            live.wait_until_idle(base, timeout=0.3)
        # A poller held up for longer than the quiet spell, as on a machine busy with a browser, still sees it: it
        # once returned because 50 ms had passed since it last saw the request, and the tables emptied under the
        # PATCH deadlocked with it.
        with monkeypatch.context() as m:
            m.setattr(live, "_pause", lambda _: time.sleep(0.08))
            with pytest.raises(AssertionError, match=r"still had a request in hand after 0\.3 s"):
                live.wait_until_idle(base, timeout=0.3)
        assert not patched.done()
        session.rollback()
        live.wait_until_idle(base)
        # Returned once the request was done: its answer committed (the client may not have read the reply yet).
        assert session.scalar(select(func.count()).select_from(Answer).where(Answer.screen_id == sid)) == 1
        assert patched.result(timeout=30).status_code == 200
        api.close()
