"""``parse_log_filter``: the ``LogFilter`` of a request's query parameters, as text.

The API's list and the page's log table take the same filters; both parse them here,
each parameter on its own, so that a malformed one is a ``BadInputError`` naming it.
"""

from __future__ import annotations

from typing import Any

from ..query import LogFilter
from ..query.resolve import resolve_code
from .params import BadInputError, check_text, parse_instant, parse_key, parse_user_id
from .service import LogReader, _param_of

__all__ = ["parse_log_filter"]


def parse_log_filter(
    reader: LogReader,
    *,
    entity_type: str | None,
    action: str | None,
    record: str | None,
    user_id: str | None,
    user_email: str | None,
    since: str | None,
    until: str | None,
    field: str | None,
    text: str | None,
    oldest_first: bool,
) -> LogFilter:
    """The ``LogFilter`` of the list's query parameters, each checked on its own."""
    keeper = reader.keeper
    entity_code = None if not entity_type else reader.entity_type_code("entity_type", entity_type)
    action_code = None
    if action:
        given = check_text("action", action).strip()
        try:
            action_code = resolve_code(
                "action",
                keeper.actions,
                given,
            )
        except Exception as error:
            raise BadInputError("action", f"action: {error}") from None
    key: Any = None
    if record:
        if entity_code is None:
            raise BadInputError("record", "record needs entity_type: keys are per entity type")
        entity = reader.entity_classes().get(entity_code)
        key = (
            check_text("record", record)
            if entity is None
            else parse_key("record", entity.cls, record)
        )
    try:
        return LogFilter(
            entity_type=entity_code,
            action=action_code,
            record=key,
            user_id=None
            if not user_id
            else parse_user_id("user_id", user_id, keeper.table.c.user_id.type),
            user_email=None if not user_email else check_text("user_email", user_email),
            since=None if not since else parse_instant("since", since),
            until=None if not until else parse_instant("until", until),
            field=None if not field else check_text("field", field),
            text=None if not text else check_text("text", text),
            newest_first=not oldest_first,
        )
    except BadInputError:
        raise
    except Exception as error:
        raise BadInputError(_param_of(str(error)), str(error)) from None
