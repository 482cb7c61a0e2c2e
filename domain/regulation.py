"""Regulatory obligations: who must be told, by when, and whether they were told in time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from domain.errors import ValidationError
from domain.values import Immutable


@dataclass(frozen=True)
class Regime(Immutable):
    """A notification duty. ``deadline`` is None where the law sets no fixed period:
    that is recorded as such, never invented."""

    code: str
    regulator: str
    title: str
    deadline: timedelta | None


REGIMES: dict[str, Regime] = {
    regime.code: regime
    for regime in (
        Regime(
            "UK_GDPR_ART33",
            "ICO",
            "UK GDPR Article 33: personal data breach, 72 hours after becoming aware",
            timedelta(hours=72),
        ),
        Regime(
            "RSH_NOTIFIABLE_EVENT",
            "Regulator of Social Housing",
            "Notifiable event under the regulatory standards (promptly; no fixed period)",
            None,
        ),
        Regime(
            "HOUSING_OMBUDSMAN",
            "Housing Ombudsman",
            "Service failure affecting residents' complaints handling (no fixed period)",
            None,
        ),
        Regime(
            "FCA_PRINCIPLE_11",
            "FCA",
            "Principle 11 / SUP 15.3: matters the FCA would expect notice of (no fixed period)",
            None,
        ),
        Regime(
            "LAW_ENFORCEMENT",
            "Action Fraud / National Crime Agency",
            "Report of the crime to law enforcement (no fixed period)",
            None,
        ),
    )
}


def regime(code: str) -> Regime:
    try:
        return REGIMES[code]
    except KeyError:
        raise ValidationError(
            f"Unknown regulatory regime {code!r}; known regimes are {', '.join(REGIMES)}."
        ) from None


class ObligationState(StrEnum):
    PENDING = "PENDING"
    FILED_ON_TIME = "FILED_ON_TIME"
    FILED_LATE = "FILED_LATE"
    OVERDUE = "OVERDUE"
    NOT_REQUIRED = "NOT_REQUIRED"


@dataclass(frozen=True)
class Obligation(Immutable):
    """One regime's clock for one incident."""

    regime: str
    anchor_at: datetime | None = None
    filed_at: datetime | None = None
    reference: str | None = None
    filed_late: bool | None = None
    """Fixed at the first filing: correcting the anchor later does not un-breach it."""
    not_required: bool = False
    decided_by: str | None = None
    decision_reason: str | None = None

    @property
    def regulator(self) -> str:
        return REGIMES[self.regime].regulator

    @property
    def due_at(self) -> datetime | None:
        deadline = REGIMES[self.regime].deadline
        if deadline is None or self.anchor_at is None:
            return None
        return self.anchor_at + deadline

    def filed(self, filed_at: datetime, reference: str | None) -> Obligation:
        """This obligation after a filing; only the first filing decides lateness."""
        if self.filed_at is not None:
            return replace(self, reference=reference or self.reference)
        due = self.due_at
        return replace(
            self,
            filed_at=filed_at,
            reference=reference,
            filed_late=due is not None and filed_at > due,
            not_required=False,
        )

    def state(self, now: datetime) -> ObligationState:
        if self.filed_at is not None:
            return ObligationState.FILED_LATE if self.filed_late else ObligationState.FILED_ON_TIME
        if self.not_required:
            return ObligationState.NOT_REQUIRED
        due = self.due_at
        if due is not None and now > due:
            return ObligationState.OVERDUE
        return ObligationState.PENDING
