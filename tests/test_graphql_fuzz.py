"""Fuzzing /graphql with Schemathesis: whatever a client sends, as an operator or with no token,
the API answers without a server error, every error carries a code a client can act on, and
no recorded fact leaves a view unable to apply it.

Schemathesis generates every query and mutation of the live schema (introspected from the
running app), well typed and ill typed. Bare random values would mostly fail at the first
check, so generation is steered: arguments are, most of the time, given values of the kind
their name asks for (the ids, slugs, workaround keys and regimes of the demo scenario loaded
beforehand; facts' times in the past, ETAs ahead; corrections naming real fields), and the
scalars lean towards the edges (times at the calendar's ends or without an offset, text at the
length limits or with control characters, the largest Ints). Writes go to the test's own
database. Examples are derandomized, so a run is repeatable.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import graphql
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from api import demo
from api.graphql.errors import Code
from api.tokens import Role
from domain.application import RestorationApp
from domain.regulation import REGIMES
from domain.service import Service
from domain.values import LONG_TEXT_LIMIT, SHORT_TEXT_LIMIT, Phase, Provenance, Status, utc_now
from tests.graphql_support import issued_token, served_over_tcp, views_reach

EXAMPLES_PER_OPERATION = {  # (well-typed requests, ill-typed ones)
    Role.OPERATOR: (12, 3),  # operators reach every resolver and the write side
    None: (4, 2),  # anonymous callers mostly meet the door
}
REFUSALS = {
    Code.NOT_FOUND, Code.VALIDATION, Code.CONFLICT, Code.FORBIDDEN, Code.UNAUTHENTICATED,
    Code.INVALID_TRANSITION,
}
"""The codes of a request refused for what it asked. INTERNAL (a masked crash), VIEWS_LAGGING
(a view stuck on a fact) and DATABASE_UNAVAILABLE are the server's failures, not the caller's."""

CLOSED_INCIDENT_ID = uuid5(NAMESPACE_URL, "https://restoration-tracker/tests/fuzz/closed-incident")
SLUGS = [slug for slug, *_ in demo.SERVICES]
SERVICE_IDS = [str(Service.create_id(slug)) for slug in SLUGS]
INCIDENT_IDS = [str(demo.DEMO_INCIDENT_ID), str(CLOSED_INCIDENT_ID)]


def _workaround_keys() -> list[str]:
    """The demo's workaround keys, read from the scenario rather than restated."""
    scenario = RestorationApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    demo.load_demo(scenario)
    return [key for slug in SLUGS for key in scenario.service_by_slug(slug).workarounds]


WORKAROUND_KEYS = _workaround_keys()

# ---- values at the edges, by GraphQL scalar ----------------------------------------------


def _near_now(offset: timedelta, zone: timezone) -> str:
    # Drawn when the example runs, so the clock-skew and "after it was given" rules are met
    # and missed on both sides however long the run takes.
    return (utc_now() + offset).astimezone(zone).isoformat()


def _days(low: int, high: int) -> st.SearchStrategy[timedelta]:
    return st.timedeltas(min_value=timedelta(days=low), max_value=timedelta(days=high))


def mostly(usual: st.SearchStrategy[Any], *unusual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four: values that pass the first check reach the deeper ones."""
    return st.one_of(usual, usual, usual, st.one_of(*unusual))


utc_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
past, future = (st.builds(_near_now, days, utc_offsets) for days in (_days(-400, 0), _days(0, 400)))
odd_times = st.one_of(
    st.builds(_near_now, st.sampled_from([timedelta(minutes=m, seconds=s) for m in (-5, 0, 5) for s in (-1, 1)]),
              utc_offsets),
    st.builds(lambda end, zone: end.replace(tzinfo=zone).isoformat(), st.sampled_from([datetime.min, datetime.max]),
              utc_offsets),
    st.datetimes().map(datetime.isoformat),  # no offset
)
happened = mostly(past, odd_times)  # when a fact was true
promised = mostly(future, odd_times)  # an ETA, the next update
texts = mostly(
    st.text(min_size=1),
    st.sampled_from(["", "  ", "\x00", "a\x01b", "\ufeff"]),
    st.sampled_from([SHORT_TEXT_LIMIT, SHORT_TEXT_LIMIT + 1, LONG_TEXT_LIMIT, LONG_TEXT_LIMIT + 1]).map("x".__mul__),
)
integers = mostly(
    st.integers(min_value=-2, max_value=150),  # the demo's positions, pages and counts
    st.sampled_from([2**31 - 1, -(2**31)]),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
)


def _literal(value: Any) -> graphql.ValueNode:
    """``value`` as a GraphQL literal: generated queries carry every value inline."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([_literal(item) for item in value])
    return nodes.Object([
        graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=_literal(item)) for key, item in value.items()
    ])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts | past,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.from_regex(r"\A[a-z][a-zA-Z]{0,8}\Z"), children, max_size=3),
    max_leaves=6,
)
CORRECTION_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(["occurredAt", "detectedAt", "awareAt"], happened),
    **dict.fromkeys(["expectedAt", "nextUpdateBy"], promised),
    **dict.fromkeys(["residentsAffected", "propertiesAffected", "tier"], st.integers(-1, 10) | st.integers()),
    "status": st.sampled_from([*Status, "BROKEN"]),
    "phase": st.sampled_from([*Phase, "BROKEN"]),
    "confidence": st.sampled_from(["LOW", "HIGH", "SURE"]),
    "kind": st.sampled_from(["CYBER_ATTACK", "OTHER", "ALIENS"]),
    "severity": st.sampled_from(["CRITICAL", "MINOR", "MILD"]),
    "residentFacing": st.booleans(),
    **dict.fromkeys(
        ["note", "publicNote", "name", "category", "description", "owner", "channel", "instructions",
         "contact", "audience", "title", "summary", "message", "reference"],
        texts,
    ),
}
corrections = mostly(
    st.lists(
        st.sampled_from(sorted(CORRECTION_VALUES)).flatmap(
            lambda name: st.tuples(st.just(name), CORRECTION_VALUES[name])
        ),
        min_size=1, max_size=3,
    ).map(dict),
    json_values,
)

# Registered for the whole process; no other test module uses Schemathesis.
for _name, _strategy in {
    "DateTime": st.one_of(past, future, odd_times),
    "String": texts,
    "Int": integers,
    "JSON": corrections,
}.items():
    schemathesis.graphql.scalar(_name, _strategy.map(_literal))

# ---- values by argument name -------------------------------------------------------------

service_ids = st.sampled_from(SERVICE_IDS)
STEERED: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(["serviceId", "dependsOnId"], service_ids),
    "serviceIds": st.lists(service_ids, max_size=3),
    "id": st.sampled_from([*SERVICE_IDS, *INCIDENT_IDS]),
    "incidentId": st.sampled_from(INCIDENT_IDS),
    "workaroundId": st.sampled_from(WORKAROUND_KEYS),
    "slug": st.one_of(st.sampled_from(SLUGS), st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z")),
    "regime": st.sampled_from(sorted(REGIMES)),
    "regimes": st.lists(st.sampled_from(sorted(REGIMES)), max_size=3),
    **dict.fromkeys(["occurredAt", "detectedAt", "awareAt", "asOf", "knownAt"], happened),
    **dict.fromkeys(["expectedAt", "nextUpdateBy"], promised),
    "position": st.integers(min_value=1, max_value=100),  # the demo's events, and beyond
}


@st.composite
def steered(draw: Any, document: graphql.DocumentNode) -> graphql.DocumentNode:
    """``document`` with four in five arguments named in STEERED given a value of that kind."""

    class Steer(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> graphql.ArgumentNode | None:
            return self.steer(node)

        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> graphql.ObjectFieldNode | None:
            return self.steer(node)

        @staticmethod
        def steer(node: Any) -> Any:
            strategy = STEERED.get(node.name.value)
            if strategy is None or draw(st.integers(min_value=0, max_value=4)) == 4:
                return None  # keep what the fuzzer chose
            return type(node)(name=node.name, value=_literal(draw(strategy)))

    return graphql.visit(document, Steer())


def flatmap_body(context: Any, body: graphql.DocumentNode) -> st.SearchStrategy[graphql.DocumentNode]:
    """The Schemathesis hook (found by its name) that steers every generated document."""
    return steered(body)


# ---- the test ----------------------------------------------------------------------------


def _load_scenario(app: RestorationApp) -> None:
    demo.load_demo(app)
    by = Provenance("fuzz@tests.example")
    app.declare_incident(title="Closed before the fuzzing", kind="OTHER", severity="MINOR",
                         incident_id=CLOSED_INCIDENT_ID, provenance=by)
    app.close_incident(CLOSED_INCIDENT_ID, provenance=by)


def _problems(response: requests.Response) -> list[str]:
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}"]
    try:
        body = response.json()
    except ValueError:
        return ["the body is not JSON"]
    if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
        return ["the body is not a GraphQL response"]
    codes = [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]
    return [f"an error coded {code!r}" for code in codes if code not in REFUSALS]


class _ServerFault(BaseException):
    """Not an Exception, so it passes Hypothesis by: the first failing request is reported as it
    was sent. Hypothesis would replay and shrink it, but the server keeps state: once a fact has
    stopped a view, every later write fails too, and a replayed write may meet a refusal."""


def _fuzz(operation: Any, endpoint: str, session: requests.Session, headers: dict[str, str],
          mode: GenerationMode, examples: int) -> int:
    """Send ``examples`` generated requests for ``operation``; the number actually sent."""
    sent = 0

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=operation.as_strategy(mode))
    def answers_sensibly(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=endpoint, session=session, headers=headers)
        problems = _problems(response)
        if problems:
            raise _ServerFault(
                f"{operation.label}: {', '.join(problems)}\n{case.body}\n-> HTTP {response.status_code} "
                f"{response.text[:3000]}"
            )

    try:
        answers_sensibly()
    except _ServerFault as fault:
        failure = str(fault)  # failed outside the handler, so the report shows it once
    else:
        return sent
    pytest.fail(failure, pytrace=False)


@pytest.mark.slow
@pytest.mark.parametrize("role", [Role.OPERATOR, None], ids=["operator", "anonymous"])
def test_generated_requests_get_no_server_error_and_only_coded_refusals(
    app: RestorationApp, database_url: str, role: Role | None, caplog: pytest.LogCaptureFixture
) -> None:
    # Strawberry logs every refused request with its traceback; hundreds of them hide a failure.
    caplog.set_level(logging.CRITICAL, logger="strawberry.execution")
    _load_scenario(app)
    headers = {"Authorization": f"Bearer {issued_token(database_url, role)}"} if role else {}
    with served_over_tcp(app, database_url) as address, requests.Session() as session:
        endpoint = f"http://{address}/graphql"
        schema = schemathesis.graphql.from_url(endpoint)
        schema.hook(flatmap_body)
        operations = [result.ok() for result in schema.get_all_operations()]
        sent = sum(
            _fuzz(operation, endpoint, session, headers, mode, examples)
            for operation in operations
            for mode, examples in zip([GenerationMode.POSITIVE, GenerationMode.NEGATIVE], EXAMPLES_PER_OPERATION[role])
        )
        assert views_reach(database_url, app.head_position()), "a view is stuck behind the log"
    assert len(operations) >= 25 and sent >= len(operations) * sum(EXAMPLES_PER_OPERATION[role]) // 2
