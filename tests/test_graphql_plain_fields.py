"""The executor's shortcut for plain fields answers exactly as graphql-core would: the same
data in the same order, the same errors at the same paths, nulls propagated alike."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any, NewType

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql.plain_fields import PlainFieldExecutor


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


# A scalar that represents anything, so only the shortcut's own checks keep an awaitable from it.
Text = NewType("Text", str)
TEXT = strawberry.scalar(name="Text", serialize=str, parse_value=str)


@strawberry.type
class Part:
    name: str
    colour: Colour | None


class NotAColour:
    value = "green"


async def _later() -> str:
    return "later"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    note: str | None
    count: int
    colour: Colour
    at: datetime
    text: Text
    parts: list[Part]
    anything: strawberry.Private[Any] = None

    @strawberry.field
    def label(self) -> str:
        return f"{self.name}!"

    @strawberry.field
    async def slow(self) -> str:
        return "slow"

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError("broken resolver")


def item(n: int, **changes: Any) -> Item:
    fields: dict[str, Any] = dict(
        id=strawberry.ID(f"i{n}"), name=f"item {n}", note=None if n % 2 else "noted", count=n,
        colour=Colour.RED if n % 2 else Colour.BLUE, at=datetime(2026, 1, n + 1, tzinfo=timezone.utc),
        text=Text(f"text {n}"), parts=[Part(name=f"part {n}", colour=None)],
    )
    return Item(**{**fields, **changes})


@dataclass
class Sources:
    items: list[Any]


@strawberry.type
class Query:
    @strawberry.field
    def items(self, info: strawberry.Info) -> list[Item]:
        return info.context.items

    @strawberry.field
    def maybe_items(self, info: strawberry.Info) -> list[Item | None] | None:
        return info.context.items


def schema(executor: type) -> strawberry.Schema:
    return strawberry.Schema(query=Query, execution_context_class=executor,
                             config=StrawberryConfig(scalar_map={Text: TEXT}))


QUERIES = [
    "{ items { id name note count colour at text parts { name colour } } }",
    "{ items { label b: name a: id slow name __typename broken count } }",
    "{ items { name parts { name } slow } }",
    "{ maybeItems { name note colour parts { colour } } }",
    "{ items { ...F } } fragment F on Item { name count @skip(if: true) id @include(if: true) }",
]

# Each makes its values afresh: an iterator is used up by the first execution.
ODD_VALUES: list[Callable[[], dict[str, Any]]] = [
    lambda: {},
    lambda: {"name": None},  # null in a non-null field: the item, then the list, become null
    lambda: {"note": 42},  # an Int where a String is expected: coerced as graphql-core coerces it
    lambda: {"count": "many"},  # a value the scalar cannot represent
    lambda: {"colour": NotAColour()},  # not a member of the enum
    lambda: {"colour": None},
    lambda: {"name": _later},  # a callable attribute, not a value
    lambda: {"parts": None},
    lambda: {"parts": [None]},
    lambda: {"parts": (Part(name="in a tuple", colour=Colour.BLUE),)},
    lambda: {"parts": iter([Part(name="from an iterator", colour=None)])},
    lambda: {"parts": iter([Part(name=None, colour=None)])},  # type: ignore[arg-type]
    lambda: {"parts": "not a list"},
    lambda: {"parts": [Part(name=None, colour=Colour.RED)]},  # type: ignore[arg-type]
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("changes", ODD_VALUES)
async def test_plain_fields_answer_as_graphql_core_does(query: str, changes: Callable[[], dict[str, Any]]) -> None:
    def sources() -> Sources:
        return Sources([item(1), item(2, **changes()), item(3)])

    expected = await schema(StrawberryGraphQLCoreExecutionContext).execute(query, context_value=sources())
    answered = await schema(PlainFieldExecutor).execute(query, context_value=sources())
    assert list(_keys(answered.data)) == list(_keys(expected.data))
    assert answered.data == expected.data
    assert [e.formatted for e in answered.errors or []] == [e.formatted for e in expected.errors or []]


async def test_an_awaitable_in_a_plain_field_is_left_to_graphql_core() -> None:
    awaitable = _later()
    sources = Sources([item(1, text=awaitable)])
    answered = await schema(PlainFieldExecutor).execute("{ items { text } }", context_value=sources)
    assert answered.data == {"items": [{"text": "later"}]}


def _keys(data: Any) -> Any:
    """Every key of the answer, in order, depth first."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _keys(value)
    elif isinstance(data, list):
        for value in data:
            yield from _keys(value)
