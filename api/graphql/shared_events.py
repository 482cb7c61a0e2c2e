"""One execution of a live event for every subscriber who asked the same of it.

With hundreds of subscriptions open, each new timeline entry used to be executed against the
subscription's selection once per subscriber: the same work, with the same answer, hundreds
of times, before the last subscriber heard of it. The shared tail hands every subscriber the
same entry object, so an execution can be keyed by that object and reused by every other
subscriber whose answer must be the same: the same schema, the same operation (documents
come from the parser cache, so the same text is the same object), the same values of the
variables the event's selection uses, and the same role (resolvers may answer by role).
The subscription field's own arguments (``after``, filters) only decide which events a
subscriber gets, not what an event looks like, so they are left out of the key.

Only complete, error-free answers computed without awaiting are shared; anything else is
executed per subscriber as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from graphql import ExecutionResult, FieldNode, Node, OperationDefinitionNode, Visitor, visit

from api.graphql.plain_fields import PlainFieldExecutor

SHARED_ANSWERS = 4096
"""Recent (event, question) answers kept; a few per subscription shape per recent event."""


class _Answered:
    """Stands in for a per-event executor when the answer is already known."""

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self.result


class _Answers:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, tuple[object, ExecutionResult]] = OrderedDict()

    def get(self, key: Hashable, event: object) -> ExecutionResult | None:
        entry = self._entries.get(key)
        # Keys hold the event's id(); holding the event too means an id reused by a later
        # object can never be mistaken for it.
        return entry[1] if entry is not None and entry[0] is event else None

    def put(self, key: Hashable, event: object, result: ExecutionResult) -> None:
        self._entries[key] = (event, result)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


_answers = _Answers(SHARED_ANSWERS)
_selection_variables: dict[int, tuple[OperationDefinitionNode, frozenset[str]]] = {}


class SharedEventExecutor(PlainFieldExecutor):
    """The executor the schema uses, sharing the per-event executions of subscriptions."""

    def build_per_event_executor(self, payload: Any) -> Any:
        key = self._question(payload)
        answer = _answers.get(key, payload)
        if answer is not None:
            return _Answered(answer)
        executor = super().build_per_event_executor(payload)
        # graphql-core's per-event executor is a shallow copy sharing the subscription's memo
        # of collected sub-fields, which gains an entry for every event and is never emptied
        # while the subscription lives (~1 KiB per event per subscriber; found by the soak).
        executor._relevant_sub_fields = {}
        executor._shared_as = (key, payload)  # type: ignore[attr-defined]
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = super().execute_operation(serially)
        shared_as = getattr(self, "_shared_as", None)
        if shared_as is not None and isinstance(result, ExecutionResult) and not result.errors:
            _answers.put(shared_as[0], shared_as[1], result)
        return result

    def _question(self, payload: Any) -> Hashable:
        principal = getattr(self.context_value, "principal", None)
        coerced = self.variable_values.coerced
        variables = tuple(sorted((name, repr(coerced.get(name))) for name in self._used_variables()))
        return id(self.schema), id(self.operation), id(payload), getattr(principal, "role", None), variables

    def _used_variables(self) -> frozenset[str]:
        known = _selection_variables.get(id(self.operation))
        if known is not None and known[0] is self.operation:
            return known[1]
        names = _variables_below_root_fields(self.operation, self.fragment_definitions.values())
        if len(_selection_variables) > SHARED_ANSWERS:
            _selection_variables.clear()
        _selection_variables[id(self.operation)] = (self.operation, names)
        return names


def _variables_below_root_fields(operation: OperationDefinitionNode, fragments: Any) -> frozenset[str]:
    """Every variable the operation uses except in its root fields' own arguments."""
    parts: list[Node] = [*(operation.directives or ()), *fragments]
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode):
            parts.extend(selection.directives or ())
            if selection.selection_set is not None:
                parts.append(selection.selection_set)
        else:
            parts.append(selection)
    names: set[str] = set()

    class Variables(Visitor):
        def enter_variable(self, node: Any, *_: Any) -> None:
            names.add(node.name.value)

    for part in parts:
        visit(part, Variables())
    return frozenset(names)
