"""The 2022 scenario: the cyber attack on a housing association of 350,000 residents.

Built from the seed article (shared/seeds): the attack on Friday 17 June 2022; email, phones and
most IT shut down; residents unable to pay rent by phone and pointed to a standing order, the
online payment portal and a card payment line; four regulators and law enforcement notified;
services back "gradually" over weeks, with ETAs that slipped. Facts are back-dated to when they
happened; they are recorded now, in one transaction, so the demo is either wholly there or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.application import RestorationApp
from domain.dependencies import DependencyGraph
from domain.errors import Conflict, NotFound
from domain.incident import Incident
from domain.service import Service
from domain.values import Provenance

DEMO_INCIDENT_ID = uuid5(NAMESPACE_URL, "https://restoration-tracker/demo/cyber-attack-2022")
BST = timezone(timedelta(hours=1), "BST")

LEAD = "incident.lead@clarion.example"
IT = "it.recovery@clarion.example"
COMMS = "communications@clarion.example"
DPO = "data.protection@clarion.example"
PAYMENTS = "income.team@clarion.example"

SERVICES = [
    # slug, name, category, resident facing, tier, owner, description
    ("email", "Email", "Systems", False, 1, IT, "Staff email and shared mailboxes."),
    ("telephony", "Phone lines and contact centre", "Contact", True, 1, IT,
     "Inbound calls to the customer contact centre and outbound calls to residents."),
    ("housing-management", "Housing management system", "Systems", False, 1, IT,
     "Tenancies, rent accounts and repairs records."),
    ("rent-by-phone", "Paying rent by phone", "Payments", True, 1, PAYMENTS,
     "Residents paying rent over the phone to the contact centre."),
    ("online-payment-portal", "Online payment portal", "Payments", True, 2, PAYMENTS,
     "Card payments of rent through the website."),
    ("card-payment-line", "Card payment phone line", "Payments", True, 2, PAYMENTS,
     "Automated card payment line run by the payment partner, independent of our phones."),
    ("direct-debits", "Rent by direct debit", "Payments", True, 1, PAYMENTS,
     "Collection of rent by direct debit, and new direct debit set-ups."),
    ("website", "Website and updates page", "Contact", True, 1, COMMS,
     "The public website, including the incident updates page."),
    ("repairs-reporting", "Reporting a repair", "Repairs", True, 1, "repairs@clarion.example",
     "Reporting and booking repairs; emergency repairs are always answered."),
]

DEPENDENCIES = [
    ("rent-by-phone", "telephony"),
    ("rent-by-phone", "housing-management"),
    ("repairs-reporting", "housing-management"),
    ("repairs-reporting", "telephony"),
    ("direct-debits", "housing-management"),
    ("online-payment-portal", "website"),
]

REGULATORS = [
    ("LAW_ENFORCEMENT", datetime(2022, 6, 17, 18, 30, tzinfo=BST), "NFRC220617-0412"),
    ("UK_GDPR_ART33", datetime(2022, 6, 20, 11, 5, tzinfo=BST), "ICO/IC-178223-L9Q2"),
    ("RSH_NOTIFIABLE_EVENT", datetime(2022, 6, 20, 15, 0, tzinfo=BST), "RSH-NE-2022-0614"),
    ("HOUSING_OMBUDSMAN", datetime(2022, 6, 22, 10, 0, tzinfo=BST), None),
    ("FCA_PRINCIPLE_11", datetime(2022, 6, 24, 9, 30, tzinfo=BST), "FCA-SUP15-88213"),
]


def when(day: int, hour: int = 9, minute: int = 0, month: int = 6) -> datetime:
    return datetime(2022, month, day, hour, minute, tzinfo=BST)


@dataclass
class Scenario:
    """Collects the events of many aggregates in the order the facts are stated."""

    graph: DependencyGraph
    incident: Incident | None = None
    services: dict[str, Service] = field(default_factory=dict)
    events: list[object] = field(default_factory=list)

    def keep(self, aggregate: Aggregate) -> None:
        self.events.extend(aggregate.collect_events())

    def report(self, slug: str, at: datetime, actor: str = IT, **facts: object) -> None:
        service = self.services[slug]
        reason = facts.pop("reason", None)
        assert self.incident is not None
        if not self.incident.affects(service.id):
            self.incident.affect_service(service_id=service.id, provenance=Provenance(actor, occurred_at=at))
            self.keep(self.incident)
        service.report_status(
            provenance=Provenance(actor, reason=reason, occurred_at=at),
            incident_id=DEMO_INCIDENT_ID,
            **facts,
        )
        self.keep(service)

    def eta(self, slug: str, at: datetime, expected: datetime, confidence: str, reason: str) -> None:
        service = self.services[slug]
        service.set_eta(
            expected_at=expected,
            confidence=confidence,
            provenance=Provenance(LEAD, reason=reason, occurred_at=at),
        )
        self.keep(service)

    def workaround(self, slug: str, at: datetime, key: str, channel: str, instructions: str,
                   contact: str | None, audience: str) -> None:
        service = self.services[slug]
        service.publish_workaround(
            workaround_id=key,
            channel=channel,
            instructions=instructions,
            contact=contact,
            audience=audience,
            provenance=Provenance(COMMS, occurred_at=at),
        )
        self.keep(service)


def load_demo(app: RestorationApp) -> bool:
    """Record the scenario; False (and nothing recorded) when it is already there."""
    try:
        app.incident(DEMO_INCIDENT_ID)
        return False
    except NotFound:
        pass
    scenario = Scenario(graph=app.dependency_graph(starting=Provenance(IT, occurred_at=when(1, 10, month=4))))
    _build(scenario)
    try:
        app.save(*scenario.events)
    except IntegrityError:
        if _exists(app):
            return False
        raise Conflict(
            "The demo could not be loaded: services with the demo's slugs already exist, "
            "or the dependency graph changed meanwhile. Load it into an empty database."
        ) from None
    return True


def _exists(app: RestorationApp) -> bool:
    try:
        app.incident(DEMO_INCIDENT_ID)
        return True
    except NotFound:
        return False


def _build(s: Scenario) -> None:
    for slug, name, category, resident_facing, tier, owner, description in SERVICES:
        service = Service.register(
            slug=slug, name=name, category=category, resident_facing=resident_facing,
            tier=tier, owner=owner, description=description,
            provenance=Provenance(IT, occurred_at=when(1, 9, month=4)),
        )
        s.services[slug] = service
        s.keep(service)
    for dependent, dependency in DEPENDENCIES:
        s.graph.add(
            service_id=s.services[dependent].id,
            depends_on_id=s.services[dependency].id,
            provenance=Provenance(IT, occurred_at=when(1, 10, month=4)),
        )
    s.keep(s.graph)

    incident = Incident.declare(
        incident_id=DEMO_INCIDENT_ID,
        title="Cyber attack, June 2022",
        kind="CYBER_ATTACK",
        severity="CRITICAL",
        summary=(
            "A cyber attack affected email, phones and IT systems. Systems were taken offline "
            "to contain it; we are working with our cyber security partner and other experts "
            "to restore them safely, and services will return gradually."
        ),
        detected_at=when(17, 7, 40),
        provenance=Provenance(LEAD, reason="Ransomware indicators on file servers", occurred_at=when(17, 9, 15)),
    )
    say = _Updates(s, incident)
    s.incident = incident
    s.keep(incident)

    # Friday 17 June: contain by isolating everything that could be reached.
    for slug in ("email", "telephony", "housing-management", "rent-by-phone", "repairs-reporting"):
        s.report(slug, when(17, 10), status="MAJOR_OUTAGE", phase="ISOLATED",
                 note="Taken offline to contain the attack.",
                 public_note="Unavailable while we deal with a cyber attack.")
    s.report("direct-debits", when(17, 10, 30), status="PARTIAL_OUTAGE", phase="ISOLATED",
             note="Collections run by the bank continue; new set-ups and changes paused.",
             public_note="Existing direct debits are collected as normal; we cannot set up new ones yet.")
    s.report("website", when(17, 11), status="PARTIAL_OUTAGE", phase="ASSESSING",
             public_note="Our website is up with an updates page; account features are offline.")
    s.report("online-payment-portal", when(17, 12), status="DEGRADED_PERFORMANCE", phase="ASSESSING",
             public_note="You can pay rent online; payments may take a few days to show on your account.")
    incident.record_impact(residents_affected=350_000, properties_affected=125_000,
                           provenance=Provenance(LEAD, occurred_at=when(17, 12)))
    s.keep(incident)
    say.public(when(17, 13), "We are dealing with a cyber attack affecting our email, phones and "
               "IT systems. Emergency repairs are still being attended. We will post updates here.",
               next_by=when(20, 17))

    s.workaround("rent-by-phone", when(17, 14), "standing-order", "Standing order",
                 "Set up a standing order with your bank using your rent reference as the payment "
                 "reference. Sort code 20-00-00, account 55779911.", None,
                 "Residents who usually pay rent by phone")
    s.workaround("rent-by-phone", when(17, 14, 5), "online-portal", "Online payment portal",
                 "Pay by debit or credit card at https://www.clarionhg.com/pay with your rent reference.",
                 "https://www.clarionhg.com/pay", "Residents who usually pay rent by phone")
    s.workaround("rent-by-phone", when(17, 14, 10), "card-line", "Card payment phone line",
                 "Call the automated card payment line any time; have your payment card and rent "
                 "reference ready.", "020 7946 0123", "Residents who cannot pay online")
    s.workaround("telephony", when(17, 15), "emergency-repairs", "Emergency repairs line",
                 "For emergencies only (no heating, flooding, unsafe electrics, insecure doors).",
                 "020 7946 0456", "All residents")
    s.workaround("repairs-reporting", when(17, 15, 5), "web-repairs", "Repairs web form",
                 "Report non-urgent repairs with the form on our updates page; we will book them "
                 "in as systems return.", "https://www.clarionhg.com/updates", "All residents")
    _notify(s, incident, *REGULATORS[0])

    # Saturday 18 June: personal data may have been taken; the ICO clock starts.
    incident.record_awareness(
        aware_at=when(18, 16, 30),
        regimes=["UK_GDPR_ART33", "RSH_NOTIFIABLE_EVENT", "HOUSING_OMBUDSMAN"],
        provenance=Provenance(DPO, reason="Forensic partner found evidence of data access",
                              occurred_at=when(18, 16, 45)),
    )
    s.keep(incident)
    incident.record_notification_decision(
        regime_code="FCA_PRINCIPLE_11", required=True,
        provenance=Provenance(DPO, reason="Regulated consumer credit activity affected", occurred_at=when(19, 11)),
    )
    s.keep(incident)
    for notification in REGULATORS[1:]:
        _notify(s, incident, *notification)

    s.report("email", when(20, 10), phase="ASSESSING", note="Forensic imaging of mail servers.")
    s.report("housing-management", when(20, 10), phase="ASSESSING")
    s.eta("email", when(20, 12), when(24, 17), "LOW", "Depends on the forensic review finishing this week.")
    s.eta("telephony", when(20, 12), when(1, 17, month=7), "LOW", "Replacement telephony platform being provisioned.")
    say.public(when(20, 17), "Our phone lines are still down. You can pay rent by standing order, "
               "online or on the card payment line. Emergency repairs: 020 7946 0456.",
               next_by=when(24, 17))
    say.internal(when(20, 18), "Board briefed. Forensic partner confirms containment.")

    s.report("website", when(21, 9), status="OPERATIONAL", phase="RESTORING")
    s.report("online-payment-portal", when(22, 9), status="OPERATIONAL", phase="RESTORED",
             public_note="Online payments are working normally.")
    s.eta("email", when(23, 15), when(1, 17, month=7), "LOW", "Forensic review found more affected servers.")
    say.public(when(24, 17), "Email is taking longer than hoped to restore safely. "
               "Online payments are working normally again.", next_by=when(1, 17, month=7))

    s.report("email", when(27, 9), phase="RESTORING", status="MAJOR_OUTAGE")
    s.report("website", when(28, 10), phase="RESTORED", status="OPERATIONAL")
    s.report("telephony", when(29, 9), phase="ASSESSING")
    s.eta("telephony", when(30, 16), when(8, 17, month=7), "LOW", "Carrier needs to re-route numbers.")
    s.eta("email", when(1, 11, month=7), when(15, 17, month=7), "MEDIUM", "Rebuilding on clean infrastructure.")
    say.public(when(1, 17, month=7), "Two weeks on: we are restoring systems on clean infrastructure. "
               "We know how hard it is not to reach us by phone.", next_by=when(8, 17, month=7))

    s.report("housing-management", when(4, 9, month=7), phase="RESTORING", status="MAJOR_OUTAGE")
    s.report("direct-debits", when(6, 9, month=7), phase="RESTORING")
    s.report("telephony", when(6, 14, month=7), phase="RESTORING", status="PARTIAL_OUTAGE",
             public_note="Some calls are getting through; please only call about emergencies.")
    s.eta("telephony", when(7, 16, month=7), when(22, 17, month=7), "MEDIUM", "Number porting delayed by the carrier.")
    s.report("email", when(8, 9, month=7), phase="VALIDATING", status="PARTIAL_OUTAGE")
    s.report("direct-debits", when(8, 15, month=7), phase="RESTORED", status="OPERATIONAL",
             public_note="You can set up and change direct debits again.")
    say.public(when(8, 17, month=7), "You can set up direct debits again. Phones are partly back "
               "for emergencies.", next_by=when(15, 17, month=7))

    s.report("email", when(12, 9, month=7), phase="RESTORED", status="OPERATIONAL")
    s.report("email", when(14, 8, 30, month=7), phase="ISOLATED", status="MAJOR_OUTAGE",
             reason="Suspicious sign-ins seen during post-restore monitoring; taken offline again.",
             note="Regression: isolated again pending investigation.")
    s.report("email", when(15, 11, month=7), phase="RESTORING")
    s.eta("email", when(15, 12, month=7), when(20, 17, month=7), "MEDIUM", "Credentials reset; rebuilding mail gateway.")
    say.public(when(15, 17, month=7), "Our email had to be taken offline again as a precaution. "
               "Please keep using the web form.", next_by=when(22, 17, month=7))
    s.report("email", when(19, 16, month=7), phase="RESTORED", status="OPERATIONAL")
    s.eta("telephony", when(21, 15, month=7), when(5, 17, month=8), "LOW", "New platform failed acceptance testing.")
    say.public(when(22, 17, month=7), "Email is back. Phones will take longer: we now expect early "
               "August.", next_by=when(29, 17, month=7))
    s.report("housing-management", when(25, 9, month=7), phase="VALIDATING", status="PARTIAL_OUTAGE")
    s.eta("rent-by-phone", when(29, 12, month=7), when(12, 17, month=8), "LOW",
          "Needs phones and the housing management system; first date we can give.")
    s.eta("repairs-reporting", when(29, 12, month=7), when(12, 17, month=8), "LOW",
          "Follows the housing management system.")
    say.public(when(29, 17, month=7), "We can now give a first date for paying rent by phone: "
               "we expect 12 August. Other ways to pay are listed below.", next_by=when(5, 17, month=8))
    s.report("repairs-reporting", when(2, 10, month=8), phase="RESTORING", status="PARTIAL_OUTAGE",
             public_note="You can report repairs by web form; booking by phone is not back yet.")
    say.public(when(3, 17, month=8), "Services are returning gradually. Thank you for your patience.",
               next_by=when(10, 17, month=8))


@dataclass
class _Updates:
    scenario: Scenario
    incident: Incident

    def public(self, at: datetime, message: str, next_by: datetime | None = None) -> None:
        self._post("PUBLIC", at, message, next_by)

    def internal(self, at: datetime, message: str) -> None:
        self._post("INTERNAL", at, message, None)

    def _post(self, audience: str, at: datetime, message: str, next_by: datetime | None) -> None:
        self.incident.post_update(
            audience=audience, message=message, next_update_by=next_by,
            provenance=Provenance(COMMS, occurred_at=at),
        )
        self.scenario.keep(self.incident)


def _notify(s: Scenario, incident: Incident, regime: str, at: datetime, reference: str | None) -> None:
    incident.record_regulator_notification(
        regime_code=regime, reference=reference, provenance=Provenance(DPO, occurred_at=at)
    )
    s.keep(incident)
