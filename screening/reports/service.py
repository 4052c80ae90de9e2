"""The court information report: consent gate, view-model, rendering to HTML and PDF, and its record.

Only what the nurse confirmed reaches a court: needs she confirmed, routes she accepted, referrals made.
Consent gates everything (NHS England L&D guidance; MDU guidance on disclosure to courts):
- no report at all unless the screen is final and the consent in force includes `share_with_court`;
- when the person agreed to share with the court but NOT with health services, we read that as a
  refusal to have their health information passed on. The report then carries no health need, no
  health referral and no health-based option (MHTR, DRR, ATR, psychiatric report); it keeps who was
  seen, the consent, non-health needs and referrals (housing, domestic abuse, veterans, age-based), and
  functional adjustments the court must know to run a fair hearing (an appropriate adult was needed),
  stated without the reason behind them. It says plainly that health information was withheld.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.auth.models import User
from screening.auth.schemas import Principal
from screening.db import utcnow
from screening.errors import Conflict, Forbidden
from screening.instruments.registry import Registry
from screening.reports.schemas import CourtReportView, NeedView, OptionView, ReferralView, ReportFormat
from screening.routes.models import CourtReport, Decision, ReferralStatus
from screening.routes.rulebook import RouteKind, Rulebook
from screening.routes.service import need_decisions, referrals, route_decisions
from screening.screens.models import Screen, ScreenStatus
from screening.screens.service import age_on, answer_values, latest_consent

# Bump when the template or the view-model changes what a court sees.
REPORT_VERSION = "1.0.0"
TEMPLATES = Path(__file__).parent / "templates"

_STATUS_WORDS = {
    ReferralStatus.made: "Referral made on {on}",
    ReferralStatus.attended: "They went to the first appointment on {on}",
    ReferralStatus.engaged: "They were taking part in support by {on}",
    ReferralStatus.declined: "They turned down the referral on {on}",
    ReferralStatus.not_known: "The outcome was not known on {on}",
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Autoescape on: free text (a suite name, a practitioner's name) can never become markup.
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                       trim_blocks=True, lstrip_blocks=True)


def _long_date(d: date) -> str:
    return f"{d.day} {d.strftime('%B %Y')}"


def ensure_reportable(session: Session, screen: Screen) -> None:
    """409 unless final; 403 unless the consent in force includes sharing with the court."""
    if screen.status != ScreenStatus.final:
        raise Conflict("A court report exists only for a final screen.")
    consent = latest_consent(session, screen.id)
    if consent is None or not consent.share_with_court:
        raise Forbidden("The person did not agree to share information with the court.")


def build_view(session: Session, registry: Registry, book: Rulebook, screen: Screen) -> CourtReportView:
    """What the court may see, decided here: confirmed items only, gated by consent."""
    consent = latest_consent(session, screen.id)
    health = bool(consent and consent.share_with_health)
    answers = answer_values(session, screen.id)

    def present(item_id: str) -> bool:
        item = registry.items.get(item_id)
        return item is not None and item_id in answers and item.present(answers[item_id])

    needs_decided = need_decisions(session, screen.id)
    confirmed = [d for d, nd in needs_decided.items() if nd.need and d in book.rules.needs]
    shown = [d for d in confirmed if health or not book.rules.needs[d].health]
    needs = [
        NeedView(title=book.rules.needs[d].title, text=book.rules.needs[d].court_text,
                 answers=[text for item, text in book.rules.needs[d].answers.items() if present(item)])
        for d in shown
    ]
    participation = [p for d in shown if (p := book.rules.needs[d].participation)]
    accepted = {r: rd for r, rd in route_decisions(session, screen.id).items()
                if rd.decision == Decision.accept and r in book.rules.routes}

    def allowed(route: str) -> bool:
        return health or not book.rules.routes[route].health

    participation += [book.rules.routes[r].court_text for r in accepted
                      if book.rules.routes[r].kind is RouteKind.custody and allowed(r)]
    support = [s.text for s in book.rules.support if s.need in shown and present(s.item)]
    referral_views = [
        ReferralView(title=book.rules.routes[r.route].title, text=book.rules.routes[r.route].court_text,
                     service=r.service_name,
                     status=_STATUS_WORDS[ReferralStatus(r.status)].format(on=_long_date(r.outcome_on or r.made_on)))
        for r in referrals(session, screen.id)
        if r.route in accepted and allowed(r.route)
    ]
    options = [OptionView(title=book.rules.routes[r].title, text=book.rules.routes[r].court_text)
               for r in accepted if book.rules.routes[r].kind is RouteKind.court_option and allowed(r)]

    not_known = ["This is a screen, not a full assessment or a diagnosis. A full assessment may find more."]
    if not health:
        not_known.append("The person did not agree to share health information. Any health needs are left out.")
    not_known.append("Only needs and referrals the nurse checked are in this report.")
    pending = [v.service or v.title for v in referral_views if v.status.startswith("Referral made")]
    if pending:
        not_known.append("We do not yet know if they went to: " + "; ".join(pending) + ".")

    lines = ["They agreed to share this report with the police, the prosecutor and the court."]
    lines.append("They agreed to share health information with health services." if health else
                 "They did not agree to share health information. None is given here.")
    finaliser = screen.finalised_by_id or screen.created_by_id
    user = session.get(User, finaliser)
    return CourtReportView(
        report_version=REPORT_VERSION, rules_version=book.rules_version, generated_at=utcnow(),
        custody_record=screen.custody_record, date_of_birth=screen.date_of_birth,
        age=age_on(screen.date_of_birth, screen.created_at.date()), seen_on=screen.created_at,
        custody_suite=screen.custody_suite, practitioner=(user.full_name or user.username) if user else "unknown",
        consent=lines, health_shared=health, needs=needs, participation=participation, support=support,
        referrals=referral_views, options=options, not_known=not_known,
    )


def render_html(view: CourtReportView) -> str:
    return _environment().get_template("court_report.html.j2").render(r=view)


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported late: WeasyPrint loads Pango, which few requests need

    pdf: bytes = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    return pdf


def court_report(
    session: Session, registry: Registry, book: Rulebook, user: Principal, screen: Screen, fmt: ReportFormat
) -> bytes:
    """Render the report and record its SHA-256, version and author with the screen."""
    ensure_reportable(session, screen)
    view = build_view(session, registry, book, screen)
    html = render_html(view)
    document = render_pdf(html) if fmt is ReportFormat.pdf else html.encode("utf-8")
    digest = hashlib.sha256(document).hexdigest()
    row = CourtReport(screen_id=screen.id, format=fmt.value, report_version=REPORT_VERSION,
                      rules_version=book.rules_version, sha256=digest, practitioner=view.practitioner,
                      generated_by_id=user.id, generated_at=view.generated_at)
    session.add(row)
    session.flush()
    audit.record(session, user.actor, "court_report.read", "screen", screen.id,
                 {"format": fmt.value, "report_id": row.id, "sha256": digest, "report_version": REPORT_VERSION})
    return document
