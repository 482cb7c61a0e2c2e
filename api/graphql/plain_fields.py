"""Fields that only read an attribute, completed without graphql-core's per-field machinery.

A list of a hundred services asks for a thousand fields, and most of them (``id``, ``name``,
``status``, ``eta { expectedAt }``, ``workarounds { channel }``…) only read an attribute:
strawberry gives them no resolver of ours. For each of them graphql-core makes a response path
and a resolve info, calls strawberry's resolver wrapper and walks its ``complete_value`` layers;
that bookkeeping, not reading the attributes, was most of a dashboard query's time.

Here a value whose type and selection are plain (leaves, lists, and object types whose selected
fields are all plain attribute reads, without ``@stream``, ``@defer``, abstract types or
``is_type_of``) is completed by reading and coercing, as strawberry's resolver and graphql-core's
completion would. Anything out of the ordinary (a missing attribute, null where the type says
non-null, an awaitable, a value a scalar cannot represent) makes the shortcut give up, and the
general path completes that value instead, reads it again, and reports it exactly as before.
That is safe because the shortcut has no effects: it reads, coerces and builds its answer, and
records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

NOT_ORDINARY: Any = object()
"""What a completer answers when only the general path may complete the value."""

Completer = Callable[[Any], Any]
"""A value of one type for one selection, completed; or NOT_ORDINARY."""


class PlainField(NamedTuple):
    """A selected field that strawberry resolves by reading an attribute."""

    response_name: str
    read: Callable[[Any, str], Any]
    attribute: str
    complete: Completer


class Selection(NamedTuple):
    """An object type's selection: its plain fields, and the rest, for graphql-core."""

    plain: list[PlainField]
    others: GroupedFieldSet


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, completing plain values directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed by ids of field lists and selections that graphql-core keeps for the whole
        # operation, and holding them, so no id can be reused while its entry lives.
        self._completers: dict[tuple[GraphQLOutputType, int], tuple[FieldDetailsList, Completer | None]] = {}
        self._selections: dict[int, tuple[GroupedFieldSet, Selection]] = {}
        # Middleware must see every field resolved, and exception handlers may turn a field's
        # error into an answer: with either, every field keeps its resolver.
        strawberry_schema = (self.schema.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        self._fields_may_be_read = (self.middleware_manager is None or not self.middleware_manager.middlewares) \
            and not getattr(strawberry_schema, "exception_handlers", ())

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # Each event collects its selections anew (see shared_events), so entries would pile up.
        executor._completers = {}
        executor._selections = {}
        return executor

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # A position context means deferred or streamed delivery: left to graphql-core.
        if position_context is None:
            complete = self._completer(return_type, field_details_list)
            if complete is not None:
                completed = complete(result)
                if completed is not NOT_ORDINARY:
                    return completed
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        selection = self._selection(parent_type, grouped_field_set) if position_context is None else None
        if selection is None or not selection.plain:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        # Every key in the selection's order first, so the answer keeps that order.
        results = dict.fromkeys(grouped_field_set)
        others = selection.others
        for field in selection.plain:
            value = complete_field(field, source_value)
            if value is NOT_ORDINARY:
                others = {name: grouped_field_set[name] for name in grouped_field_set
                          if name in others or name == field.response_name}
            else:
                results[field.response_name] = value
        if not others:
            return results
        completed = super().execute_fields(parent_type, source_value, path, others, position_context)
        if self.is_awaitable(completed):
            return _merged_when_awaited(results, completed, others)
        return _merged(results, completed, others)

    def _completer(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList) -> Completer | None:
        key = (return_type, id(field_details_list))
        known = self._completers.get(key)
        if known is None:
            known = self._completers[key] = (field_details_list, self._compile(return_type, field_details_list))
        return known[1]

    def _compile(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList) -> Completer | None:
        """A completer of values of this type for this selection, if they can be plain."""
        is_awaitable = self.is_awaitable
        if isinstance(return_type, GraphQLNonNull):
            inner = self._completer(return_type.of_type, field_details_list)
            return None if inner is None else _non_null(inner)
        if isinstance(return_type, GraphQLList):
            if any(d.node.directives and any(n.name.value == "stream" for n in d.node.directives)
                   for d in field_details_list):
                return None
            item = self._completer(return_type.of_type, field_details_list)
            return None if item is None else _list(item)
        if is_leaf_type(return_type):
            return _leaf(return_type.coerce_output_value, is_awaitable)  # type: ignore[union-attr]
        if isinstance(return_type, GraphQLObjectType) and return_type.is_type_of is None:
            return self._object(return_type, field_details_list)
        return None

    def _object(self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> Completer:
        is_awaitable = self.is_awaitable
        # Collected on the first value, as graphql-core collects them; the same ever after.
        plain: list[PlainField] | None = None

        def complete(value: Any) -> Any:
            nonlocal plain
            if value is None or value is Undefined:
                return None
            if is_awaitable(value) or isinstance(value, Exception):
                return NOT_ORDINARY
            if plain is None:
                try:
                    grouped_field_set, defer_usages, _ = self.collect_subfields(object_type, field_details_list)
                except Exception:  # the general path collects them again and reports it
                    return NOT_ORDINARY
                selection = self._selection(object_type, grouped_field_set)
                plain = selection.plain if not defer_usages and not selection.others else []
            if not plain:
                return NOT_ORDINARY
            completed = {}
            for field in plain:
                field_value = complete_field(field, value)
                if field_value is NOT_ORDINARY:
                    return NOT_ORDINARY
                completed[field.response_name] = field_value
            return completed

        return complete

    def _selection(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> Selection:
        known = self._selections.get(id(grouped_field_set))
        if known is None or known[0] is not grouped_field_set:
            known = self._selections[id(grouped_field_set)] = (grouped_field_set, self._split(parent_type, grouped_field_set))
        return known[1]

    def _split(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> Selection:
        plain = []
        others = {}
        for response_name, field_details_list in grouped_field_set.items():
            field_def = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
            attribute = plain_attribute(field_def) if field_def is not None and self._fields_may_be_read else None
            complete = self._completer(field_def.type, field_details_list) if attribute else None
            if attribute is None or complete is None:
                others[response_name] = field_details_list
            else:
                plain.append(PlainField(response_name, attribute[0], attribute[1], complete))
        return Selection(plain, others)


def plain_attribute(field_def: GraphQLField) -> tuple[Callable[[Any, str], Any], str] | None:
    """How strawberry reads the field, if all its resolver does is read an attribute (no
    resolver of ours, no field extensions): its getter and the attribute's name."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field or definition.is_subscription:
        return None
    return definition.default_resolver, definition.python_name


def complete_field(field: PlainField, source: Any) -> Any:
    try:
        value = field.read(source, field.attribute)
    except Exception:  # the general path reads it again and reports it
        return NOT_ORDINARY
    return field.complete(value)


def _non_null(inner: Completer) -> Completer:
    def complete(value: Any) -> Any:
        return NOT_ORDINARY if value is None or value is Undefined else inner(value)

    return complete


def _list(item: Completer) -> Completer:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if type(value) is not list and type(value) is not tuple:  # other iterables: the general path
            return NOT_ORDINARY
        completed = []
        for each in value:
            each_completed = item(each)
            if each_completed is NOT_ORDINARY:
                return NOT_ORDINARY
            completed.append(each_completed)
        return completed

    return complete


def _leaf(coerce: Callable[[Any], Any], is_awaitable: Callable[[Any], bool]) -> Completer:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if is_awaitable(value) or isinstance(value, Exception):
            return NOT_ORDINARY
        try:
            coerced = coerce(value)
        except Exception:  # the general path coerces it again and reports it
            return NOT_ORDINARY
        return NOT_ORDINARY if coerced is None or coerced is Undefined else coerced

    return complete


def _merged(results: dict[str, Any], completed: dict[str, Any], others: GroupedFieldSet) -> dict[str, Any]:
    for name in others:
        if name in completed:
            results[name] = completed[name]
        else:  # graphql-core leaves out a field the schema does not have
            del results[name]
    return results


async def _merged_when_awaited(results: dict[str, Any], completed: Any, others: GroupedFieldSet) -> dict[str, Any]:
    return _merged(results, await completed, others)
