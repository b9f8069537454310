"""The User column: the application's full names, else the stored e-mail, else the id.

Names come from an application-supplied resolver, called once per trail with every user
id the trail shows (never once per row): either a mapped attribute such as
``User.full_name`` (read with one query by the users' primary key) or a function
``(ids) -> {id: name}``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import QueryableAttribute, Session

from ..errors import ConfigurationError

__all__ = ["UserNames", "resolve_users", "user_text"]

UserNames = QueryableAttribute[Any] | Callable[[Collection[Any]], Mapping[Any, str]]
"""How the trail names users: a mapped attribute (``User.full_name``) or a function."""

SYSTEM = "System"


def resolve_users(
    session: Session, resolver: UserNames | None, ids: Collection[Any]
) -> Mapping[Any, str]:
    """``{user id: name}`` for ``ids``: one call of the resolver."""
    wanted = [i for i in ids if i is not None]
    if resolver is None or not wanted:
        return {}
    if isinstance(resolver, QueryableAttribute):
        owner = resolver.class_
        mapper = inspect(owner)
        primary = mapper.primary_key
        if len(primary) != 1:
            raise ConfigurationError(
                f"user_names={owner.__name__}.{resolver.key} needs a single-column key"
            )
        key = mapper.get_property_by_column(primary[0]).class_attribute
        statement = select(key, resolver).where(key.in_(sorted(set(wanted), key=str)))
        return {
            user_id: "" if name is None else str(name)
            for user_id, name in session.execute(statement)
        }
    if callable(resolver):
        found = resolver(sorted(set(wanted), key=str))
        if not isinstance(found, Mapping):
            raise ConfigurationError(
                f"user_names={resolver!r} returned {found!r}; it must return a mapping "
                "{user id: full name}"
            )
        return found
    raise ConfigurationError(
        f"user_names must be a mapped attribute (User.full_name) or a function of the ids, "
        f"got {resolver!r}"
    )


def user_text(user_id: Any, email: str | None, names: Mapping[Any, str]) -> str:
    """The user's name, else the stored e-mail, else ``User {id}``; ``System`` for none."""
    if user_id is not None:
        name = names.get(user_id)
        if name:
            return name
    if email:
        return email
    if user_id is not None:
        return f"User {user_id}"
    return SYSTEM
