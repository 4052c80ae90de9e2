"""End to end in Chromium: a nurse signs in, opens a screen, records consent, answers, goes offline and
back, resolves a conflict, sees the assessment and finalises; a person declines; axe-core on every page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screening.errors import PROBLEM_MEDIA_TYPE, RETRY_AFTER_SECONDS, UNAVAILABLE_DETAIL
from screening.screens.models import Answer, AnswerEvent, Consent, Screen
from tests.factories import make_user
from tests.web.helpers import Api, check_accessibility, current_item, question_count, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

# Answers by item: option index for ordinal items, 0 = Yes / 1 = No for yes/no items (the order on screen).
YES, NO = 0, 1


def answer_section(page: Page, section: str, plan: dict[str, int]) -> list[str]:
    """Open a section from the section list and answer every question asked in it; returns the items seen."""
    page.locator("#section-list").get_by_role("button", name=re.compile(section)).click()
    expect(page.locator("#section-title")).to_have_text(section)
    seen = []
    while True:
        item = current_item(page)
        seen.append(item)
        radios = page.locator("#question input[type=radio]")
        boolean = radios.count() == 2 and page.locator("#question").get_by_label("Yes", exact=True).count() == 1
        radios.nth(plan.get(item, NO if boolean else 0)).check()
        number, of = question_count(page)
        if number == of:
            return seen
        page.get_by_role("button", name="Next question").click()
        expect(page.locator("#question")).not_to_have_attribute("data-item", item)


def stored_answers(session: Session, screen_id: str) -> dict[str, object]:
    """What the server holds. The read transaction is ended at once: on SQLite every transaction takes the
    write lock (BEGIN IMMEDIATE), and the live server must not wait for the test."""
    try:
        return {a.item_id: a.value for a in session.scalars(select(Answer).where(Answer.screen_id == screen_id))}
    finally:
        session.rollback()


class TestSignIn:
    def test_wrong_password_is_named_then_right_one_lands_on_todays_screens(
        self, page: Page, session: Session
    ) -> None:
        nurse = make_user(session, full_name="Nurse Ada")
        page.goto("/app/")
        expect(page).to_have_url(re.compile(r"/app/signin"))  # signed out: sent to sign in
        page.get_by_role("button", name="Sign in").click()
        summary = page.locator("#error-summary")
        expect(summary).to_be_visible()
        expect(summary.get_by_role("link", name="Enter your username")).to_be_visible()
        check_accessibility(page, "sign-in with errors")
        summary.get_by_role("link", name="Enter your password").click()
        expect(page.get_by_label("Password")).to_be_focused()

        page.get_by_label("Username").fill(nurse.username)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(summary).to_contain_text("The username or password is not right")

        sign_in(page, nurse.username)
        expect(page).to_have_url(re.compile(r"/app/$"))
        expect(page.get_by_role("heading", name="Today's screens")).to_be_visible()
        expect(page.locator("#screens-empty")).to_be_visible()
        check_accessibility(page, "today's screens (empty)")


class TestFullScreen:
    def test_consent_to_final(self, page: Page, session: Session, live_url: str) -> None:
        nurse = make_user(session, full_name="Nurse Ada")
        username = nurse.username  # read now: reloading it later would hold SQLite's write lock
        sign_in(page, username)
        page.get_by_role("link", name="Open a new screen").click()

        # The error summary names each missing field and links to it.
        page.get_by_role("button", name="Open screen").click()
        expect(page.locator("#error-summary")).to_contain_text("Enter the custody record number")
        expect(page.locator("#error-summary")).to_contain_text("Enter the date of birth")
        check_accessibility(page, "new screen with errors")
        page.get_by_label("Custody record number").fill("CR/01234/26")
        page.get_by_label("Date of birth").fill("1990-05-17")
        page.get_by_label("Female").check()
        page.get_by_role("button", name="Open screen").click()

        expect(page.get_by_role("heading", name="Consent and capacity")).to_be_visible()
        expect(page.locator("#screen-caption")).to_contain_text("CR/01234/26")
        page.get_by_role("button", name="Save consent").click()
        expect(page.locator("#error-summary")).to_contain_text("Select whether the person agrees to be screened")
        check_accessibility(page, "consent with errors")
        page.get_by_label("Yes, agrees to screening").check()
        page.locator("#share_with_health").check()
        page.locator("#share_with_court").check()
        page.get_by_label("Has capacity").check()
        page.get_by_role("button", name="Save consent").click()

        expect(page.get_by_role("heading", name="Screening questions")).to_be_visible()
        screen_id = re.search(r"id=([0-9a-f-]+)", page.url).group(1)  # type: ignore[union-attr]
        check_accessibility(page, "questions")

        plan = {"phq9_1": 2, "phq9_2": 3, "phq9_3": 2, "phq9_4": 2, "phq9_9": 1, "bjmhs_7": YES, "risk_plan": YES,
                "risk_current_thoughts": YES, "audit_1": 0, "audit_2": 0, "audit_3": 0}
        answered: list[str] = []
        # Sections in any order: start in the middle.
        answered += answer_section(page, "Self-harm and suicide risk", plan)
        answered += answer_section(page, "Mental health", plan)
        # Skip logic: with AUDIT-C under 5 the rest of AUDIT is not asked ...
        alcohol = answer_section(page, "Alcohol", plan)
        assert alcohol == ["audit_1", "audit_2", "audit_3"]
        # ... and once it reaches 5 it is.
        page.locator("#question").get_by_label("Daily or almost daily", exact=True).check()  # audit_3: 4 points
        page.get_by_role("button", name="Previous question").click()
        page.locator("#question").get_by_label("3 to 4", exact=True).check()  # audit_2: 1 point
        expect(page.locator(".question__count")).to_contain_text("of 10")
        page.get_by_role("button", name="Next question").click()
        for _ in range(7):
            page.get_by_role("button", name="Next question").click()
            page.locator("#question input[type=radio]").first.check()
        assert question_count(page) == (10, 10)
        answered += [f"audit_{i}" for i in range(1, 11)]
        for section in ("Learning disability and communication", "Drugs and withdrawal", "Social needs",
                        "Physical health"):
            answered += answer_section(page, section, plan)
        expect(page.locator("#progress-text")).to_have_text(f"{len(answered)} of {len(answered)} questions answered")
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"))

        stored = stored_answers(session, screen_id)
        assert set(stored) == set(answered)
        assert stored["phq9_2"] == 3 and stored["risk_plan"] is True and stored["audit_2"] == 1
        assert stored["social_housing"] is False

        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.get_by_role("button", name="See assessment").click()
        expect(page.get_by_role("heading", name="Assessment", exact=True)).to_be_visible()
        urgent = page.locator("#urgent")
        expect(urgent).to_be_visible()
        expect(urgent).to_contain_text("Urgent: act now")
        expect(urgent).to_contain_text("Current plan or intent to end their life")
        scores = page.locator("#scores")
        expect(scores.get_by_role("row", name=re.compile("PHQ-9"))).to_contain_text("Moderate depression")
        expect(scores.get_by_role("row", name=re.compile("BJMHS"))).to_contain_text("Met")
        # The model: each domain with the answers that raised or lowered it, in words as well as bars.
        domains = page.locator("#model .domain")
        expect(domains).to_have_count(3)
        mental = domains.filter(has_text="Mental health")
        expect(mental.locator(".domain__result")).to_contain_text(re.compile(r"suggested \d+% \(threshold \d+%\)"))
        # PHQ-9 of 14 and a current plan can only push mental health up.
        expect(mental.locator(".bar--up", has_text="PHQ-9")).to_contain_text("▲ raises")
        check_accessibility(page, "assessment (draft)")

        # Routes: accept the most urgent, decline the next with a reason; a decline without one is named.
        routes = page.locator("#routes article.route")
        expect(routes.first).to_be_visible()
        assert routes.count() >= 2
        # The first render takes the routes from the assessment's response: one request for both, not two.
        assert any(u.endswith(f"/api/v1/screens/{screen_id}/assessment") for u in requested)
        assert not any(u.endswith("/recommendations") for u in requested), requested
        first_title = routes.nth(0).locator("h3").inner_text()
        routes.nth(0).get_by_label("Accept", exact=True).check()
        routes.nth(0).get_by_role("button", name=re.compile("Save decision")).click()
        expect(routes.nth(0)).to_contain_text("Accepted")
        routes.nth(1).get_by_label("Decline", exact=True).check()
        routes.nth(1).get_by_role("button", name=re.compile("Save decision")).click()
        expect(page.locator("#error-summary")).to_contain_text("choose a reason for declining")
        check_accessibility(page, "assessment with a decision error")
        routes.nth(1).get_by_label("Reason (needed to decline)").select_option("already_supported")
        routes.nth(1).get_by_label("Note (needed to decline)").fill("Seen by the crisis team this morning.")
        routes.nth(1).get_by_role("button", name=re.compile("Save decision")).click()
        expect(routes.nth(1)).to_contain_text("Declined")
        decided = Api(live_url, username).http.get(f"/api/v1/screens/{screen_id}/recommendations").json()
        by_decision = {r["decision"]["decision"]: r for r in decided if r["decision"]}
        assert set(by_decision) == {"accept", "decline"}
        assert by_decision["accept"]["title"] in first_title
        assert by_decision["decline"]["decision"]["reason_code"] == "already_supported"

        # Needs: confirm the proposed mental health need; an override without a reason is named.
        needs = page.locator("#needs article.route")
        mh = needs.filter(has_text="Mental health")
        expect(mh).to_contain_text("Proposed: need present")
        mh.get_by_label("No need").check()
        mh.get_by_role("button", name=re.compile("Save judgement")).click()
        expect(page.locator("#error-summary")).to_contain_text("choose a reason for changing the proposal")
        mh.get_by_label("Need present").check()
        mh.get_by_role("button", name=re.compile("Save judgement")).click()
        expect(page.locator("#needs article.route").filter(has_text="Mental health")).to_contain_text(
            "You confirmed: need present")
        check_accessibility(page, "assessment with a confirmed need")

        page.get_by_role("button", name="Finalise screen").click()
        expect(page.locator("#status-line")).to_contain_text("Final: finalised by")
        expect(page.get_by_role("button", name="Finalise screen")).to_be_hidden()
        screen = session.get(Screen, screen_id)
        assert screen is not None and screen.status == "final"
        session.rollback()

        # The court report: previewed in the page, and its PDF downloaded.
        preview = page.locator("#report .report-preview")
        expect(preview).to_contain_text("CR/01234/26")
        # The need she confirmed reaches the court, in plain words.
        expect(preview).not_to_contain_text("confirmed no needs")
        check_accessibility(page, "assessment (final, report preview)")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download PDF").click()
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        assert download.value.suggested_filename == "court-report-CR-01234-26.pdf"

        # Back on the list, the final screen is there with its status in words.
        page.goto("/app/")
        row = page.locator("tr", has_text="CR/01234/26")
        expect(row).to_contain_text("Final")
        check_accessibility(page, "today's screens")


def on_the_first_question(page: Page, session: Session, live_url: str) -> tuple[Api, str]:
    """A nurse signed in, on the first question of a new screen with consent: the API client (as her, for arranging
    and checking), and the screen's id."""
    nurse = make_user(session)
    api = Api(live_url, nurse.username)
    screen = api.screen(consent={})
    sign_in(page, nurse.username)
    page.goto(f"/app/questions?id={screen['id']}")
    expect(page.locator("#question")).to_have_attribute("data-item", "phq9_1")
    return api, str(screen["id"])


def on_the_first_question_watching_the_banner(page: Page, session: Session, live_url: str) -> tuple[Api, str]:
    """`on_the_first_question`, with every state the sync banner takes from here on recorded as it takes it
    (`banner_states`)."""
    api, screen_id = on_the_first_question(page, session, live_url)
    page.evaluate("""() => {
        window.bannerStates = [];
        const banner = document.querySelector("#sync-banner");
        new MutationObserver(() => window.bannerStates.push(banner.className + " " + banner.textContent))
            .observe(banner, { attributes: true, childList: true, subtree: true });
    }""")
    return api, screen_id


def banner_states(page: Page) -> list[str]:
    """Each state the banner took since `on_the_first_question_watching_the_banner`: its classes and its text."""
    return list(page.evaluate("window.bannerStates"))


class TestOffline:
    def test_answers_given_offline_reach_the_server_once(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        nurse = make_user(session)
        api = Api(live_url, nurse.username)
        screen = api.screen(consent={})
        sign_in(page, nurse.username)
        page.goto(f"/app/questions?id={screen['id']}")
        page.locator("#question").get_by_label("Several days", exact=True).check()  # phq9_1, online
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"))

        page.context.set_offline(True)
        given = {"phq9_1": 1}
        for item, label in [("phq9_2", "Nearly every day"), ("phq9_3", "Not at all"), ("phq9_4", "Several days")]:
            page.get_by_role("button", name="Next question").click()
            expect(page.locator("#question")).to_have_attribute("data-item", item)
            page.locator("#question").get_by_label(label, exact=True).check()
        # Changed twice while offline: only the last value is sent.
        page.locator("#question").get_by_label("More than half the days", exact=True).check()
        given |= {"phq9_2": 3, "phq9_3": 0, "phq9_4": 2}
        expect(page.locator("#sync-banner")).to_contain_text("Offline: will sync")
        expect(page.locator("#progress-text")).to_contain_text("4 of")
        assert stored_answers(session, screen["id"]) == {"phq9_1": 1}
        check_accessibility(page, "questions while offline")

        page.context.set_offline(False)
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"), timeout=15_000)
        assert stored_answers(session, screen["id"]) == given
        events = dict(session.execute(
            select(AnswerEvent.item_id, func.count()).where(AnswerEvent.screen_id == screen["id"])
            .group_by(AnswerEvent.item_id)).tuples().all())
        session.rollback()
        assert events == {item: 1 for item in given}, "every answer written exactly once"
        api.close()

    def test_a_change_made_as_the_last_save_lands_is_not_a_conflict(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        """The page passes the revision it last drew, which it updates only after a save's response has been
        handled; a change made in between (the nurse tapping on) is sent against the newer revision this
        device saw saved, not answered with a false conflict."""
        api, screen_id = on_the_first_question(page, session, live_url)
        left = page.evaluate("""async (id) => {
            await LD.queueAnswer(id, "phq9_2", 1, 0);  // saved: revision 1
            await LD.queueAnswer(id, "phq9_2", 2, 0);  // as the page would pass it before the "saved" event
            return (await LD.pending(id)).length;
        }""", screen_id)
        assert left == 0
        saved = api.get(screen_id)
        assert saved["answers"]["phq9_2"] == 2 and saved["revisions"]["phq9_2"] == 2
        api.close()

    def test_a_save_whose_answer_was_lost_is_sent_again_without_a_conflict(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        """The server saved the answer but the tablet never heard back (the Wi-Fi dropped after the request went
        out, or a proxy gave up waiting): the queue sends it again, against the revision she was looking at. The
        server already holds her value, so that is not a conflict to put to her, and it is stored once."""
        nurse = make_user(session)
        api = Api(live_url, nurse.username)
        screen = api.screen(consent={})
        api.answers(screen["id"], {"phq9_1": 0})  # revision 1, the one she sees
        sign_in(page, nurse.username)
        page.goto(f"/app/questions?id={screen['id']}#section=mental_health&q=phq9_1")
        expect(page.locator("#question")).to_have_attribute("data-item", "phq9_1")
        expect(page.locator("#progress-text")).to_contain_text("1 of")

        lost: list[int] = []

        def lose_the_first_answer(route: Route) -> None:
            if lost:
                route.continue_()
                return
            lost.append(route.fetch().status)  # it reaches the server, which saves it
            route.abort("connectionreset")  # and the tablet hears nothing back

        page.route("**/api/v1/screens/*/answers", lose_the_first_answer)
        page.locator("#question").get_by_label("Nearly every day", exact=True).check()
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"), timeout=15_000)
        assert lost == [200]
        expect(page.locator("#conflicts")).to_be_hidden()
        saved = api.get(screen["id"])
        assert (saved["answers"]["phq9_1"], saved["revisions"]["phq9_1"]) == (3, 2)
        events = session.scalars(select(AnswerEvent.value).where(
            AnswerEvent.screen_id == screen["id"], AnswerEvent.item_id == "phq9_1").order_by(AnswerEvent.id)).all()
        session.rollback()
        assert events == [0, 3], "her answer written once"
        api.close()

    def test_a_send_that_fails_once_while_online_is_tried_again_without_saying_offline(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        """A rolling restart: the instance that took the connection stops, and the request fails at the transport
        while the tablet is online. The queue sends it again after a moment, and the nurse is not told she is
        offline for a blip she cannot act on."""
        api, screen_id = on_the_first_question_watching_the_banner(page, session, live_url)
        refused: list[str] = []

        def refuse_the_first(route: Route) -> None:
            if refused:
                route.continue_()
                return
            refused.append(route.request.method)
            route.abort("connectionrefused")  # never reaches the service

        page.route("**/api/v1/screens/*/answers", refuse_the_first)
        page.locator("#question").get_by_label("Several days", exact=True).check()
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"), timeout=4_000)
        assert refused == ["PATCH"]
        states = banner_states(page)
        assert states and not any("offline" in s.lower() for s in states), states
        assert stored_answers(session, screen_id) == {"phq9_1": 1}
        api.close()

    def test_a_service_out_of_reach_while_online_is_not_called_offline(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        """The tablet is online but its requests do not reach the service (every instance restarting, a proxy down, a
        Wi-Fi portal): after the try again, the banner says the service cannot be reached, not that she is offline,
        which would send her to check a tablet that is fine. The answer goes once the service is back."""
        api, screen_id = on_the_first_question_watching_the_banner(page, session, live_url)
        refused: list[str] = []
        reachable = False

        def refuse_until_reachable(route: Route) -> None:
            if reachable:
                route.continue_()
                return
            refused.append(route.request.method)
            route.abort("connectionrefused")

        page.route("**/api/v1/screens/*/answers", refuse_until_reachable)
        page.locator("#question").get_by_label("Several days", exact=True).check()
        expect(page.locator("#sync-banner")).to_have_text(
            re.compile(r"The service cannot be reached: will sync \(1 answer waiting\)"))
        assert refused[:2] == ["PATCH", "PATCH"]  # the first, then the one sent again a moment later
        assert stored_answers(session, screen_id) == {}
        reachable = True  # no `online` event comes, as none would: the queue's own timer sends it again
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"), timeout=10_000)
        states = banner_states(page)
        assert not any("Offline" in s for s in states), states
        assert stored_answers(session, screen_id) == {"phq9_1": 1}
        api.close()

    def test_pages_call_the_service_out_of_reach_while_online_and_offline_when_not(
        self, page: Page, session: Session
    ) -> None:
        """A request that never reaches the service is put to the nurse as the browser sees it: with a network, the
        service cannot be reached (try again in a moment); with none, she is offline (try again when the network is
        back). The screen she tried to open is opened once, when she can."""
        nurse = make_user(session)
        sign_in(page, nurse.username)
        expect(page.get_by_role("heading", name="Today's screens")).to_be_visible()
        reachable = False

        def refuse_until_reachable(route: Route) -> None:
            if reachable:
                route.continue_()
            else:
                route.abort("connectionrefused")

        page.route(re.compile(r"/api/v1/screens(\?|$)"), refuse_until_reachable)  # the list, and opening a screen
        page.reload()
        expect(page.locator("#screens-error")).to_have_text(
            "The service cannot be reached: today's list cannot be loaded. Open screens still work.")
        page.get_by_role("link", name="Open a new screen").click()
        page.get_by_label("Custody record number").fill("CR/05555/26")
        page.get_by_label("Date of birth").fill("1979-03-04")
        summary = page.locator("#error-summary")
        page.get_by_role("button", name="Open screen").click()
        expect(summary).to_contain_text("The service cannot be reached: the screen was not opened. Try again in a "
                                        "moment. It will not be opened twice.")
        page.context.set_offline(True)
        page.get_by_role("button", name="Open screen").click()
        expect(summary).to_contain_text("Offline: the screen was not opened. Try again when the network is back.")
        page.context.set_offline(False)
        reachable = True
        page.get_by_role("button", name="Open screen").click()
        expect(page.get_by_role("heading", name="Consent and capacity")).to_be_visible()
        opened = session.scalars(select(Screen.id).where(Screen.custody_record == "CR/05555/26")).all()
        session.rollback()
        assert len(opened) == 1

    def test_a_page_opened_with_answers_waiting_online_sends_them_without_saying_offline(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        """A page opened while answers wait on the tablet (the last send did not get through) sends them at once. While
        they go, the banner says it is saving, not that she is offline: on a slow network that took a while to read."""
        api, screen_id = on_the_first_question(page, session, live_url)
        page.route("**/api/v1/screens/*/answers", lambda route: route.abort("connectionrefused"))
        page.locator("#question").get_by_label("Several days", exact=True).check()
        expect(page.locator("#sync-banner")).to_contain_text("The service cannot be reached: will sync")
        page.unroute("**/api/v1/screens/*/answers")
        # Every state the banner takes from the page's start, the first included (app.js sets it as the page loads).
        page.add_init_script("""document.addEventListener("DOMContentLoaded", () => {
            window.bannerStates = [];
            const banner = document.querySelector("#sync-banner");
            new MutationObserver(() => window.bannerStates.push(banner.className + " " + banner.textContent))
                .observe(banner, { attributes: true, childList: true, subtree: true });
        });""")
        page.reload()
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"), timeout=10_000)
        states = banner_states(page)
        assert states and "Saving" in states[0], states
        assert not any("Offline" in s or "offline" in s for s in states), states
        assert stored_answers(session, screen_id) == {"phq9_1": 1}
        api.close()

    def test_answers_wait_while_the_service_answers_503_and_she_is_told_why(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        """The service answers 503 while its database is away: the answers wait on the tablet and go when it is
        back, and the banner says what she is waiting for, not that anything was wrong with them."""
        api, screen_id = on_the_first_question_watching_the_banner(page, session, live_url)
        away: list[str] = []

        def database_away_twice(route: Route) -> None:
            if len(away) == 2:
                route.continue_()
                return
            away.append(route.request.method)
            # What the service's handler sends (screening.errors), without taking its database away.
            route.fulfill(status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS),
                                               "Content-Type": PROBLEM_MEDIA_TYPE},
                          body=json.dumps({"title": "Service unavailable", "status": 503, "detail": UNAVAILABLE_DETAIL}))

        page.route("**/api/v1/screens/*/answers", database_away_twice)
        page.locator("#question").get_by_label("Several days", exact=True).check()
        expect(page.locator("#sync-banner")).to_have_text(
            re.compile(r"Waiting for the service: will sync \(1 answer waiting\)"))
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"), timeout=10_000)
        assert away == ["PATCH", "PATCH"]  # the first, then the one sent again a moment later
        states = banner_states(page)
        assert not any("Not saved" in s or "Offline" in s for s in states), states
        assert stored_answers(session, screen_id) == {"phq9_1": 1}
        api.close()

    def test_a_conflict_shows_both_values_and_her_choice_wins(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        nurse = make_user(session)
        api = Api(live_url, nurse.username)
        screen = api.screen(consent={})
        api.answers(screen["id"], {"phq9_1": 0})
        sign_in(page, nurse.username)
        page.goto(f"/app/questions?id={screen['id']}#section=mental_health&q=phq9_1")
        expect(page.locator("#progress-text")).to_contain_text("1 of")
        expect(page.locator("#question")).to_have_attribute("data-item", "phq9_1")

        page.context.set_offline(True)
        page.locator("#question").get_by_label("Nearly every day", exact=True).check()
        expect(page.locator("#sync-banner")).to_contain_text("Offline: will sync")
        api.answers(screen["id"], {"phq9_1": 1})  # another device, meanwhile
        page.context.set_offline(False)

        conflicts = page.locator("#conflicts")
        expect(conflicts).to_be_visible(timeout=15_000)
        expect(conflicts).to_contain_text("Little interest or pleasure in doing things")
        expect(conflicts.locator("dd").nth(0)).to_have_text("Nearly every day")
        expect(conflicts.locator("dd").nth(1)).to_have_text("Several days")
        check_accessibility(page, "questions with a conflict")
        assert api.get(screen["id"])["answers"]["phq9_1"] == 1  # nothing overwritten without her choice

        conflicts.get_by_role("button", name=re.compile("Keep this device's answer")).click()
        expect(conflicts).to_be_hidden()
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"))
        assert api.get(screen["id"])["answers"]["phq9_1"] == 3
        api.close()


class TestDeclined:
    def test_a_decline_is_recorded_and_screening_stops(self, page: Page, session: Session) -> None:
        nurse = make_user(session)
        sign_in(page, nurse.username)
        page.get_by_role("link", name="Open a new screen").click()
        page.get_by_label("Custody record number").fill("CR/04321/26")
        page.get_by_label("Date of birth").fill("1985-01-02")
        page.get_by_role("button", name="Open screen").click()
        expect(page.locator("#screen-caption")).to_contain_text("CR/04321/26")
        page.get_by_label("No, declines").check()
        expect(page.locator("#share_with_court")).to_be_disabled()  # moot once screening is declined
        page.get_by_label("Has capacity").check()
        page.get_by_role("button", name="Save consent").click()

        declined = page.locator("#declined")
        expect(declined).to_be_visible()
        expect(declined).to_contain_text("Declined: screening stopped")
        check_accessibility(page, "declined")
        screen = session.scalars(select(Screen).where(Screen.custody_record == "CR/04321/26")).one()
        assert screen.status == "declined"
        consent = session.scalars(select(Consent).where(Consent.screen_id == screen.id)).one()
        assert (consent.screening, consent.share_with_health, consent.share_with_court) == (False, False, False)
        screen_id = screen.id
        assert stored_answers(session, screen_id) == {}

        # Opening its questions afterwards asks nothing.
        page.goto(f"/app/questions?id={screen_id}")
        expect(page.locator("#load-error")).to_contain_text("The person declined screening")


class TestPortrait:
    def test_questions_at_768_by_1024(self, page: Page, session: Session, live_url: str) -> None:
        nurse = make_user(session)
        screen = Api(live_url, nurse.username).screen(consent={})
        page.set_viewport_size({"width": 768, "height": 1024})
        sign_in(page, nurse.username)
        page.goto(f"/app/questions?id={screen['id']}")
        option = page.locator("#question .radio").first
        expect(option).to_be_visible()
        box = option.bounding_box()
        assert box is not None and box["height"] >= 44, "touch targets at least 44px high"
        # Keyboard alone: tab to the first answer and choose it with the space bar.
        page.locator("#section-title").focus()
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.type") == "radio":
                break
        page.keyboard.press("Space")
        expect(page.locator("#sync-banner")).to_have_text(re.compile("Saved"))
        check_accessibility(page, "questions, portrait")
