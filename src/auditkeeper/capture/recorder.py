"""The flush hooks: turn what a flush inserted, updated and deleted into audit rows.

``before_flush`` keeps the old values that the flush itself would overwrite (``onupdate``
columns) or that were never loaded; ``after_flush`` builds the documents once primary
keys and server defaults are known, and writes every row of the flush with one
statement on the flush's connection, inside its transaction. An error anywhere raises,
and SQLAlchemy rolls the flush back: no change is saved without its log.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import threading
import warnings
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any

from sqlalchemy import Column, Table, literal_column, select, tuple_
from sqlalchemy.engine import Connection, Dialect, Engine, Result
from sqlalchemy.orm import (
    InstanceState,
    Mapper,
    ORMExecuteState,
    Session,
    UOWTransaction,
    mapperlib,
)
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import NO_VALUE, PASSIVE_NO_INITIALIZE
from sqlalchemy.sql.elements import ClauseElement

from ..errors import (
    ActorError,
    AuditkeeperWarning,
    CaptureError,
    ConfigurationError,
    ReadOnlyLogError,
)
from ..model import values
from ..model.ddl import transaction_id_function
from ..model.sql_values import sqlite_same_value
from ..model.tables import AuditTables
from ..store.catalogue import sync_catalogue
from ..store.writer import driver_insert, write_rows
from . import carried, inserts, merged
from .bulk import capture_bulk_statement
from .context import actor_columns, current_actor
from .document import build_row
from .events import add_annotation_rows, has_annotations
from .health import leading_text_problems
from .plan import ClassPlan, build_plan
from .trigger_state import (
    actor_setting_to_send,
    commit_begun,
    flushing,
    marked_connections,
    note_actor_set,
    take_pending,
    transaction_uuid,
    watch_engine,
)
from .triggers import single_table
from .triggers.common import ACTOR_SETTING, CAPTURED_BY

__all__ = ["KEEPERS_INFO_KEY", "Recorder"]

KEEPERS_INFO_KEY = "auditkeeper.keepers"
"""``MetaData.info`` key listing the ``Auditkeeper`` objects built on that metadata."""

_STASH = "auditkeeper.stash"
_LINKS = "auditkeeper.links"
_MISSING: Any = NO_VALUE

_Values = dict[str, Any]
_Links = dict[str, tuple[list[Any], list[Any]]]
"""Per many-to-many relationship: the related objects before and after the flush."""
_LinkKeys = dict[str, tuple[list[Any], list[Any]]]
"""Per many-to-many relationship: the related records' keys before and after."""


class Recorder:
    """Session event handlers bound to one audit log's tables and enums."""

    event_action: int | None = None
    """The default action of custom history events (set by ``Auditkeeper``)."""

    def __init__(
        self,
        tables: AuditTables,
        *,
        actions: type[IntEnum],
        entity_types: type[IntEnum],
        require_actor: bool,
        entry_mapper: Mapper[Any],
        leading_comments: bool = False,
    ) -> None:
        self.tables = tables
        self.leading_comments = leading_comments
        """PostgreSQL: the capture triggers read the marks behind a tracer's comments."""
        self.actions = actions
        self.entity_types = entity_types
        self.require_actor = require_actor
        self.entry_mapper = entry_mapper
        self._plans: dict[Mapper[Any], ClassPlan | None] = {}
        self._entity_type_owners: dict[int, Mapper[Any]] = {}
        """Each entity type's class hierarchy (its base mapper): one per entity type."""
        self._verified: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._probed: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._computed_by_dialect: weakref.WeakKeyDictionary[Dialect, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    # -- declarations -------------------------------------------------------------

    def plan_for(self, mapper: Mapper[Any]) -> ClassPlan | None:
        """The (cached) plan of a mapper's class; None when it is not audited."""
        try:
            return self._plans[mapper]
        except KeyError:
            pass
        plan = None
        if self._may_audit(mapper):
            plan = build_plan(mapper, actions=self.actions, entity_types=self.entity_types)
        with self._lock:
            if plan is not None:
                self._claim_entity_type(mapper, plan)
            self._plans[mapper] = plan
        return plan

    def _claim_entity_type(self, mapper: Mapper[Any], plan: ClassPlan) -> None:
        """Refuse a second class hierarchy declaring an entity type already declared: a
        record is its entity type and key, so their records' histories would mix."""
        owner = self._entity_type_owners.setdefault(plan.entity_type, mapper.base_mapper)
        if owner is not mapper.base_mapper:
            name = self.entity_types(plan.entity_type).name
            raise ConfigurationError(
                f"entity type {self.entity_types.__name__}.{name} is declared by both "
                f"{owner.class_.__name__} and {mapper.class_.__name__}: give each audited "
                "class (or inheritance hierarchy) an entity type of its own, or the log "
                "would mix their records"
            )

    def _may_audit(self, mapper: Mapper[Any]) -> bool:
        """Whether this log may record ``mapper``'s class: not when its table's MetaData
        belongs to other audit logs only (a session can see classes of several logs)."""
        owners = _owners(mapper)
        return not owners or any(owner._recorder is self for owner in owners)

    def enums(self) -> dict[str, type[IntEnum]]:
        return {"action": self.actions, "entity_type": self.entity_types}

    # -- hooks ----------------------------------------------------------------------

    def before_flush(self, session: Session, flush_context: UOWTransaction, instances: Any) -> None:
        flushing.set(True)
        # The session builds these lists anew at each access: once per flush.
        new = [instance_state(obj) for obj in session.new]
        dirty = [instance_state(obj) for obj in session.dirty]
        deleted = [instance_state(obj) for obj in session.deleted]
        stash: dict[InstanceState[Any], _Values] = {}
        to_load: dict[Mapper[Any], list[InstanceState[Any]]] = defaultdict(list)
        for state in itertools.chain(dirty, deleted):
            plan = self.plan_for(state.mapper)
            if plan is None:
                continue
            saved = {c.key: state.dict[c.key] for c in plan.volatile if c.key in state.dict}
            committed = state.committed_state
            changed = plan.keys & committed.keys()
            # An SQL expression the flush runs (``n = Model.n + 1``) is expired after
            # it, and its old value with it.
            saved.update(
                (key, committed[key])
                for key in changed
                if committed[key] is not NO_VALUE and _is_sql(state.dict.get(key))
            )
            if saved:
                stash[state] = saved
            if not plan.keys <= state.dict.keys() or any(
                committed[key] is NO_VALUE for key in changed
            ):
                to_load[state.mapper].append(state)
        for mapper, states in to_load.items():
            plan = self.plan_for(mapper)
            if plan is not None:
                connection = session.connection(bind_arguments={"mapper": mapper})
                loaded = _load_columns(connection, plan, states, stored_key=True)
                for state, row in loaded.items():
                    stash.setdefault(state, {}).update(
                        {k: v for k, v in row.items() if k not in stash.get(state, {})}
                    )
        session.info[_STASH] = stash
        session.info[_LINKS] = links = self._collect_links(itertools.chain(dirty, new))
        inserts.choose(self, session, new)
        merged.choose(self, session, new, dirty, deleted)
        carried.forget()
        if not links:
            self._expect_carried(session, stash, new + dirty, deleted)

    def _collect_links(
        self, states: Iterable[InstanceState[Any]]
    ) -> dict[InstanceState[Any], _Links]:
        """Many-to-many changes, read before the flush: both sides of a link are dirty
        now, while the flush itself visits only the side that writes the link row."""
        links: dict[InstanceState[Any], _Links] = {}
        for state in states:
            plan = self.plan_for(state.mapper)
            if plan is None or not plan.collections:
                continue
            changed = {}
            for key in plan.collections:
                history = state.get_history(key, PASSIVE_NO_INITIALIZE)
                if history.added or history.deleted:
                    unchanged = list(history.unchanged or ())
                    changed[key] = (
                        unchanged + list(history.deleted or ()),
                        unchanged + list(history.added or ()),
                    )
            if changed:
                links[state] = changed
        return links

    def after_flush(self, session: Session, flush_context: UOWTransaction) -> None:
        stash: dict[InstanceState[Any], _Values] = session.info.pop(_STASH, {})
        tracked: dict[InstanceState[Any], _Links] = session.info.pop(_LINKS, {})
        # Keys are read now: records created by this flush have theirs only now.
        links = {state: _link_keys(changed) for state, changed in tracked.items()}
        links.update(self._other_sides(session, links))
        changes: list[tuple[ClassPlan, InstanceState[Any], str]] = []
        flushed = {
            state: is_delete
            for state, (is_delete, list_only) in flush_context.states.items()
            if not list_only
        }
        flushed.update({state: False for state in links if state not in flushed})
        created_by_trigger = inserts.announced()  # tables whose new rows a trigger logged
        merged_table, merged_verb, merged_keys = merged.logged_by_trigger()
        logged_by_statement = carried.carried()
        for state, is_delete in flushed.items():
            plan = self.plan_for(state.mapper)
            if plan is None or state is logged_by_statement:
                continue
            if is_delete:
                verb = "delete"
            elif state.key is None:
                verb = "create"
            else:
                verb = "update"
            if verb == "create" and state.mapper.local_table in created_by_trigger:
                continue
            if (
                verb == merged_verb
                and state.mapper.local_table is merged_table
                and state.key is not None
                and state.key[1][0] in merged_keys
            ):
                continue
            if getattr(plan, verb) is None and not (verb == "update" and plan.on_change):
                continue
            changes.append((plan, state, verb))
        changes.sort(key=_flush_order)
        rows_by_mapper: dict[Mapper[Any], list[dict[str, Any]]] = defaultdict(list)
        built: dict[InstanceState[Any], dict[str, Any]] = {}
        if changes:
            loaded_after = self._load_unloaded(session, changes)
            databases: dict[Mapper[Any], tuple[str, dt.tzinfo | None]] = {}
            for plan, state, verb in changes:
                mapper = state.mapper
                if mapper not in databases:
                    connection = session.connection(bind_arguments={"mapper": mapper})
                    databases[mapper] = (connection.dialect.name, inserts.session_zone(connection))
                dialect, zone = databases[mapper]
                row = _row(
                    plan,
                    state,
                    verb,
                    stash.get(state, {}),
                    loaded_after.get(state, {}),
                    links.get(state, {}),
                    dialect=dialect,
                    zone=zone,
                )
                if row is not None:
                    rows_by_mapper[state.mapper].append(row)
                    built[state] = row
        # Custom history events and property texts (capture/events.py) join the same write.
        add_annotation_rows(self, flush_context, built, rows_by_mapper)
        self.write(session, rows_by_mapper)  # even without rows: SQLite's pending ones
        # The flush's rows are written: what runs after this (the application's own
        # after_flush hooks) is not the flush's, and is logged as any other change is.
        flushing.set(False)

    def after_flush_postexec(self, session: Session, flush_context: UOWTransaction) -> None:
        inserts.forget()
        merged.forget()
        carried.forget()

    def after_soft_rollback(self, session: Session, previous_transaction: Any) -> None:
        flushing.set(False)  # a failed flush ends here, without after_flush_postexec
        inserts.forget()
        merged.forget()
        carried.forget()
        marked_connections()

    def after_begin(self, session: Session, transaction: Any, connection: Connection) -> None:
        watch_engine(connection.engine)

    def _expect_carried(
        self,
        session: Session,
        stash: dict[InstanceState[Any], _Values],
        saved: list[InstanceState[Any]],
        deleted: list[InstanceState[Any]],
    ) -> None:
        """Before a flush that updates or deletes one audited record, creates none and
        changes no link: let that record's statement carry its row (capture/carried.py),
        where the row cannot differ from the one the flush would build after it.
        ``saved``: the flush's new and changed records; ``deleted``: its deletions."""
        found = self._only_changed_record(saved, deleted)
        if found is None:
            return
        state, plan, is_update = found
        if (
            state.key is None
            or (plan.update is None and not plan.on_change if is_update else plan.delete is None)
            or has_annotations(state)
            or not _carriable(state.mapper, plan)
        ):
            return
        connection = session.connection(bind_arguments={"mapper": state.mapper})
        if connection.dialect.name != "postgresql":
            return
        actor = current_actor()
        if actor is None and self.require_actor:
            return  # the flush refuses
        self.verify_engine(connection)  # as before the flush's own rows
        where = {
            # The bind names SQLAlchemy's persistence gives the key in its UPDATE and
            # DELETE statements; another name only means the row is not carried.
            str(column.column._label if is_update else column.column.key): value
            for column, value in zip(plan.primary_key, _stored_key(state), strict=True)
        }
        verb = "update" if is_update else "delete"

        def build(connection: Connection) -> tuple[str, dict[str, Any]] | None:
            if is_update and not _all_plain(plan, state):
                return None
            stashed = stash.get(state, {})
            dialect, zone = connection.dialect.name, inserts.session_zone(connection)
            row = _row(plan, state, verb, stashed, {}, {}, dialect=dialect, zone=zone)
            if row is None:
                return None
            row.update(_stamp(actor))
            settings = _actor_settings(connection, actor)
            insert = driver_insert(
                connection.dialect,
                self.tables.log,
                [row],
                computed=self._computed(connection.dialect),
                settings=settings,
            )
            if settings is not None:
                note_actor_set(connection, actor)
            return insert

        table = state.mapper.local_table
        assert isinstance(table, Table)  # _carriable
        carried.expect(carried.Expected(state, connection, table, is_update, where, build))

    def _only_changed_record(
        self, saved: list[InstanceState[Any]], deleted: list[InstanceState[Any]]
    ) -> tuple[InstanceState[Any], ClassPlan, bool] | None:
        """The one audited record a flush creates, updates or deletes, with its plan and
        whether it is an update (or a creation); None when there are several or none."""
        found = None
        for state, is_update in itertools.chain(
            ((state, True) for state in saved), ((state, False) for state in deleted)
        ):
            plan = self.plan_for(state.mapper)
            if plan is None:
                continue
            if found is not None:
                return None
            found = (state, plan, is_update)
        return found

    def write(
        self, session: Session, rows_by_mapper: dict[Mapper[Any], list[dict[str, Any]]]
    ) -> None:
        """Stamp rows with the actor, the transaction and the time, and write them: one
        statement per connection (one per flush, unless classes live in several databases).

        On SQLite, the rows the capture triggers left pending during the flush join them,
        except those the flush logs itself (database cascades are the rest). On a
        connection in AUTOCOMMIT, the transaction begun for the flush's changes commits
        with their rows (capture/trigger_state.py)."""
        self._write(session, rows_by_mapper)
        commit_begun()

    def _write(
        self, session: Session, rows_by_mapper: dict[Mapper[Any], list[dict[str, Any]]]
    ) -> None:
        by_connection: dict[Connection, list[dict[str, Any]]] = {}
        for mapper, rows in rows_by_mapper.items():
            connection = session.connection(bind_arguments={"mapper": mapper})
            by_connection.setdefault(connection, []).extend(rows)
        for connection in marked_connections():
            by_connection.setdefault(connection, [])
        if not by_connection:
            return
        actor = current_actor()
        for connection, rows in by_connection.items():
            # SQLite's trigger rows only: PostgreSQL's flush has none, and skips this.
            pending = take_pending(connection, self.tables.log.name)
            cascaded = (
                _not_covered(pending, rows, self._compared(rows_by_mapper)) if pending else []
            )
            if not rows and not cascaded:
                continue
            if actor is None:
                self.require_an_actor(list(rows_by_mapper))
            stamp = _stamp(actor)
            for row in rows:
                row.update(stamp)
            for row in cascaded:
                row.update(stamp)
                row["context"] = {**(row["context"] or {}), CAPTURED_BY: "database trigger"}
            settings = _actor_settings(connection, actor)
            self.insert_rows(connection, rows + cascaded, settings=settings)
            if settings is not None:
                note_actor_set(connection, actor)

    def _compared(self, mappers: Iterable[Mapper[Any]]) -> dict[int, _Compared]:
        """How the flush's rows of each entity type are compared with stored values."""
        plans = (self.plan_for(mapper) for mapper in mappers)
        return {plan.entity_type: _compared_fields(plan) for plan in plans if plan is not None}

    def require_an_actor(self, mappers: list[Mapper[Any]]) -> None:
        """Raise ``ActorError`` if this log requires an actor (there is none)."""
        if not self.require_actor:
            return
        classes = sorted({m.class_.__name__ for m in mappers}) or ["the database"]
        raise ActorError(
            f"no actor is set for changes to {', '.join(classes)}, and this audit log "
            "requires one (require_actor=True): wrap the work in "
            "auditkeeper.acting_as(...) or auditkeeper.acting_as_system(...)"
        )

    def insert_rows(
        self,
        connection: Connection,
        rows: list[dict[str, Any]],
        *,
        settings: dict[str, str] | None = None,
    ) -> None:
        """Write finished rows in one statement, stamped with the connection's transaction
        id: the database's own on PostgreSQL (``transaction_id_function``), one per
        transaction of the connection on SQLite. Rows written by triggers and procedures
        in the same transaction carry the same id. ``settings``: PostgreSQL
        transaction-local settings the same statement sets."""
        self.verify_engine(connection)
        if connection.dialect.name == "postgresql":
            computed = self._computed(connection.dialect)
            write_rows(connection, self.tables.log, rows, computed=computed, settings=settings)
            return
        transaction_id = transaction_uuid(connection)
        for row in rows:
            row["transaction_id"] = transaction_id
        write_rows(connection, self.tables.log, rows)

    def _computed(self, dialect: Dialect) -> dict[str, Any]:
        """PostgreSQL: the columns of the flush's rows that the database computes (the
        same expression objects every time, whose SQL the writer keeps)."""
        found = self._computed_by_dialect.get(dialect)
        if found is None:
            function = transaction_id_function(self.tables, dialect)
            found = {"transaction_id": literal_column(f"{function}()")}
            self._computed_by_dialect[dialect] = found
        return found

    def on_execute(self, state: ORMExecuteState) -> Result[Any] | None:
        """``do_orm_execute``: refuse bulk writes to the log; capture bulk writes to
        audited classes, which the flush hooks never see."""
        if (state.is_update or state.is_delete) and state.bind_mapper is self.entry_mapper:
            verb = "UPDATE" if state.is_update else "DELETE"
            raise ReadOnlyLogError(f"{verb} of audit log entries is refused: logs are append-only")
        return capture_bulk_statement(self, state)

    def mapper_for_table(self, table: Table) -> Mapper[Any] | None:
        """The audited mapper whose own table is ``table`` (for Core statements)."""
        for mapper in _all_mappers():
            if mapper.local_table is table and self.plan_for(mapper) is not None:
                return mapper
        return None

    def owned_mappers(self) -> list[Mapper[Any]]:
        """The audited classes of the MetaData this log was built on (the capture
        triggers' tables): not those of other logs, nor of MetaData no log owns."""
        return [
            mapper
            for mapper in _all_mappers()
            if any(owner._recorder is self for owner in _owners(mapper))
            and self.plan_for(mapper) is not None
        ]

    # -- helpers ----------------------------------------------------------------------

    def _other_sides(
        self, session: Session, links: dict[InstanceState[Any], _LinkKeys]
    ) -> dict[InstanceState[Any], _LinkKeys]:
        """The far side of each link change whose collection SQLAlchemy did not track
        (it was never loaded): its keys after the flush come from the association table,
        its keys before are those minus this flush's links and plus its unlinks."""
        deltas: dict[tuple[Any, str, Any], tuple[set[Any], set[Any]]] = {}
        reverse_of: dict[tuple[Any, str], Any] = {}
        for state, changed in links.items():
            owner = _single_key(state)
            for name, (before, after) in changed.items():
                reverse = _reverse(state.mapper.relationships[name])
                if owner is None or reverse is None:
                    continue
                related_plan = self.plan_for(reverse.parent)
                if related_plan is None or reverse.key not in related_plan.collections:
                    continue
                reverse_of[(reverse.parent, reverse.key)] = reverse
                for related in set(map(repr, after)) ^ set(map(repr, before)):
                    value = next(k for k in (*after, *before) if repr(k) == related)
                    added, removed = deltas.setdefault(
                        (reverse.parent, reverse.key, value), (set(), set())
                    )
                    (added if related in map(repr, after) else removed).add(owner)
        found: dict[InstanceState[Any], _LinkKeys] = {}
        for (mapper, name), reverse in reverse_of.items():
            wanted = {
                related: delta
                for (m, n, related), delta in deltas.items()
                if m is mapper and n == name
            }
            current = _current_links(session, reverse, list(wanted))
            for related, (added, removed) in wanted.items():
                related_state = _state_of(session, mapper, related)
                if related_state is None or name in links.get(related_state, {}):
                    continue  # not in this session, or already tracked
                after = sorted(current.get(related, []), key=_sort_key)
                before = sorted((set(after) - added) | removed, key=_sort_key)
                if before != after:
                    found.setdefault(related_state, {})[name] = (before, after)
        return found

    def verify_engine(self, connection: Connection) -> None:
        """Once per engine, before its first rows: the enums against the catalogue
        (CatalogueConflictError); and, on PostgreSQL, that the statements reach the
        server with auditkeeper's marks first, which a tracer's comment may hide from
        the capture triggers (``AuditkeeperWarning``: each flushed change would be
        logged twice)."""
        engine = connection.engine
        if engine in self._verified:
            return
        if engine not in self._probed:
            self._probed.add(engine)
            if connection.dialect.name == "postgresql":
                problems = leading_text_problems(connection, leading_comments=self.leading_comments)
                for problem in problems:
                    warnings.warn(problem.message, AuditkeeperWarning, stacklevel=2)
        if sync_catalogue(connection, self.tables, self.enums()) == 0:
            # Only once nothing had to be added: added rows commit with this transaction,
            # or not at all, and must then be added again.
            self._verified.add(engine)

    def _load_unloaded(
        self, session: Session, changes: list[tuple[ClassPlan, InstanceState[Any], str]]
    ) -> dict[InstanceState[Any], _Values]:
        """Columns the database filled in (server defaults) and did not hand back."""
        pending: dict[Mapper[Any], list[InstanceState[Any]]] = defaultdict(list)
        for plan, state, verb in changes:
            if verb != "delete" and not plan.keys <= state.dict.keys():
                pending[state.mapper].append(state)
        loaded: dict[InstanceState[Any], _Values] = {}
        for mapper, states in pending.items():
            mapper_plan = self.plan_for(mapper)
            if mapper_plan is not None:
                connection = session.connection(bind_arguments={"mapper": mapper})
                loaded.update(_load_columns(connection, mapper_plan, states, stored_key=False))
        return loaded


def _all_mappers() -> list[Mapper[Any]]:
    # SQLAlchemy keeps no public table -> mapper index; its registries know them all.
    return [mapper for registry in mapperlib._all_registries() for mapper in registry.mappers]


def _owners(mapper: Mapper[Any]) -> list[Any]:
    """The audit logs built on the MetaData of ``mapper``'s table."""
    metadata = getattr(mapper.local_table, "metadata", None)
    return [] if metadata is None else list(metadata.info.get(KEEPERS_INFO_KEY, []))


def _not_covered(
    pending: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    compared: dict[int, _Compared],
) -> list[dict[str, Any]]:
    """The pending trigger rows (SQLite) that the flush's own rows do not log: a row
    covers a change of the same record and kind (and, for an update, a common field)
    whose stored values are the row's (``_same_values``), as on PostgreSQL."""
    by_record: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        record = (row["entity_type"], row["number_identifier"], row["entity_key"])
        by_record[record].append(row["changed_objects"])
    kept = []
    for change in pending:
        record = (change["entity_type"], change["number_identifier"], change["entity_key"])
        documents = by_record.get(record)
        stored = values.loads(change["changed_objects"])
        fields = compared.get(change["entity_type"], {})
        if documents and any(_covers(doc, change, stored, fields) for doc in documents):
            continue
        kept.append(
            {
                "action": change["action"],
                "entity_type": change["entity_type"],
                "number_identifier": change["number_identifier"],
                "entity_key": change["entity_key"],
                "changed_objects": stored,
            }
        )
    return kept


def _covers(
    document: dict[str, Any], change: dict[str, Any], stored: Any, fields: _Compared
) -> bool:
    """Whether the flush's row ``document`` logs the trigger's ``change``, whose documents
    (``stored``) say what the database holds."""
    kind = change["kind"]
    if kind == "LINK":
        return not set(document.get("difference") or {}).isdisjoint(change["changed"])
    previous, current = document.get("previous"), document.get("current")
    if kind == "INSERT":
        return previous is None and _same_values(current, stored["current"], fields)
    if kind == "DELETE":
        return current is None and _same_values(previous, stored["previous"], fields)
    if previous is None or current is None:
        return False
    difference = document.get("difference") or {}
    changed = set(change["changed"])
    if changed.isdisjoint(difference):
        return False
    # Every field but those the flush changed in another statement of its own (a
    # ``post_update``): the ones this statement left alone must be stored as the row
    # says, or the session's copy was older than the record.
    elsewhere = difference.keys() - changed
    before = {n: same for n, same in fields.items() if n not in elsewhere} if elsewhere else fields
    after = {name: fields[name] for name in changed if name in fields}
    return _same_values(previous, stored["previous"], before) and _same_values(
        current, stored["current"], after
    )


def _same_values(document: Any, stored: dict[str, Any], fields: _Compared) -> bool:
    """Whether ``document`` holds the stored values of ``fields``, each compared by its
    column's test where the two differ in form; a null only as a null."""
    if document == stored:  # the usual answer, at the speed of one dict comparison
        return True
    if document is None:
        return False
    for name, same in fields.items():
        value, mine = stored.get(name), document.get(name)
        if mine == value:
            continue
        if mine is None or value is None or not same(mine, value):
            return False
    return True


_Compared = dict[str, Callable[[Any, Any], bool]]


@functools.lru_cache(maxsize=512)
def _compared_fields(plan: ClassPlan) -> _Compared:
    """The fields of ``plan`` a flush row is compared on with the stored values, and
    how (``sqlite_same_value``): not redacted ones, nor those it cannot tell apart."""
    tests = {c.name: sqlite_same_value(c.column) for c in plan.columns if not c.redact}
    return {name: same for name, same in tests.items() if same is not None}


def _flush_order(change: tuple[ClassPlan, InstanceState[Any], str]) -> tuple[Any, ...]:
    """Rows of one flush in a stable order: creations in the order the objects were added
    to the session, then updates and deletions by class and key (the flush's own sets
    have no meaningful order)."""
    plan, state, verb = change
    if verb == "create":
        return (0, state.insert_order or 0, "", "")
    return (1 if verb == "update" else 2, 0, plan.class_name, repr(state.key))


def _load_columns(
    connection: Connection,
    plan: ClassPlan,
    states: list[InstanceState[Any]],
    *,
    stored_key: bool,
) -> dict[InstanceState[Any], _Values]:
    """One SELECT of every audited column of ``states``, by primary key: the key the
    row had before the flush (``stored_key``) or the one it has after it."""
    pk_columns: list[Column[Any]] = [c.column for c in plan.primary_key]
    by_key: dict[tuple[Any, ...], InstanceState[Any]] = {}
    for state in states:
        key = _stored_key(state) if stored_key else _new_key(plan, state)
        by_key[key] = state
    columns = [c.column for c in plan.columns]
    if len(pk_columns) == 1:
        condition = pk_columns[0].in_([k[0] for k in by_key])
    else:
        condition = tuple_(*pk_columns).in_(list(by_key))
    statement = select(*pk_columns, *columns).where(condition)
    result: dict[InstanceState[Any], _Values] = {}
    width = len(pk_columns)
    for row in connection.execute(statement):
        found = by_key.get(tuple(row[:width]))
        if found is not None:
            result[found] = {
                c.key: value for c, value in zip(plan.columns, row[width:], strict=True)
            }
    return result


def _stored_key(state: InstanceState[Any]) -> tuple[Any, ...]:
    """The primary key of the row as the database had it before this flush."""
    identity = state.key
    if identity is None:  # pragma: no cover - only persistent states are looked up
        raise CaptureError(f"{state.class_.__name__} instance has no identity to look up")
    return tuple(identity[1])


def _new_key(plan: ClassPlan, state: InstanceState[Any]) -> tuple[Any, ...]:
    """The primary key after this flush (a new row's, or a changed key)."""
    stored = state.key[1] if state.key is not None else (None,) * len(plan.primary_key)
    return tuple(
        state.dict.get(column.key, old)
        for column, old in zip(plan.primary_key, stored, strict=True)
    )


def _row(
    plan: ClassPlan,
    state: InstanceState[Any],
    verb: str,
    stashed: _Values,
    loaded: _Values,
    links: _LinkKeys,
    *,
    dialect: str,
    zone: dt.tzinfo | None = None,
) -> dict[str, Any] | None:
    """The audit row of one instance's change, or None when nothing audited changed."""
    current_values = state.dict
    committed = state.committed_state
    old: _Values = {}
    new: _Values = {}
    for column in plan.columns:
        key = column.key
        value = current_values.get(key, _MISSING)
        if value is _MISSING:
            value = loaded.get(key, stashed.get(key))
        new[key] = value
        before = committed.get(key, _MISSING)
        if before is _MISSING:
            before = stashed.get(key, value)
        elif before is NO_VALUE:
            before = stashed.get(key)
        old[key] = before
    key_values = _stored_key(state) if verb == "delete" else _new_key(plan, state)
    links_now = links if verb != "delete" else None
    return build_row(plan, verb, old, new, key_values, links_now, dialect=dialect, zone=zone)


def _stamp(actor: Any) -> dict[str, Any]:
    """The columns every row of the running flush shares: who acted, and when."""
    return actor_columns(actor) | {"created_at": inserts.stamp() or dt.datetime.now(dt.UTC)}


def _actor_settings(connection: Connection, actor: Any) -> dict[str, str] | None:
    """The setting that the flush's rows set on PostgreSQL: its triggers log the
    database's cascades of this flush at commit, in the name the setting gives then.
    None when this transaction's setting names this actor already."""
    setting = actor_setting_to_send(connection, actor)
    return None if setting is None else {ACTOR_SETTING: setting}


@functools.lru_cache(maxsize=512)
def _carriable(mapper: Mapper[Any], plan: ClassPlan) -> bool:
    """Whether one statement of ``mapper``'s own table writes a record's change, with
    values known before it runs: no ``onupdate``, server-side update value or version
    counter among the audited columns, no second UPDATE of a ``post_update``."""
    return (
        isinstance(mapper.local_table, Table)
        and single_table(mapper, plan)
        and not plan.volatile
        and not any(r.post_update for r in mapper.relationships)
    )


def _all_plain(plan: ClassPlan, state: InstanceState[Any]) -> bool:
    """Whether every audited value of ``state`` is loaded and not an SQL expression,
    which the database evaluates (the flush reads it back after the statement)."""
    given = state.dict
    return plan.keys <= given.keys() and not any(_is_sql(given[key]) for key in plan.keys)


def _is_sql(value: Any) -> bool:
    return isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")


def _link_keys(changed: _Links) -> _LinkKeys:
    """The related records' keys before and after, for the relationships that changed."""
    keys = {}
    for name, (before, after) in changed.items():
        old_keys, new_keys = _related_keys(before), _related_keys(after)
        if old_keys != new_keys:
            keys[name] = (old_keys, new_keys)
    return keys


def _related_keys(objects: list[Any]) -> list[Any]:
    """The related records' primary keys as JSON (one value, or a list for composite
    keys), sorted so that the same set always reads the same."""
    keys = []
    for obj in objects:
        related = instance_state(obj)
        identity = related.mapper.primary_key_from_instance(obj)
        keys.append(values.to_json_value(identity[0] if len(identity) == 1 else list(identity)))
    return sorted(keys, key=_sort_key)


def _single_key(state: InstanceState[Any]) -> Any:
    """A record's single-column key as JSON, or None for composite keys."""
    identity = state.mapper.primary_key_from_instance(state.obj())
    return values.to_json_value(identity[0]) if len(identity) == 1 else None


def _reverse(relationship: Any) -> Any:
    """The relationship on the other class through the same association table."""
    for candidate in relationship.mapper.relationships:
        if (
            candidate.secondary is relationship.secondary
            and candidate is not relationship
            and relationship.parent.isa(candidate.mapper)
            and len(candidate.synchronize_pairs) == 1
            and len(candidate.secondary_synchronize_pairs) == 1
        ):
            return candidate
    return None


def _current_links(session: Session, reverse: Any, related: list[Any]) -> dict[Any, list[Any]]:
    """``{related key: [owner keys]}`` as the association table holds them now."""
    ((_, related_column),) = reverse.synchronize_pairs
    ((_, owner_column),) = reverse.secondary_synchronize_pairs
    connection = session.connection(bind_arguments={"mapper": reverse.parent})
    statement = select(related_column, owner_column).where(related_column.in_(related))
    current: dict[Any, list[Any]] = {}
    for related_key, owner_key in connection.execute(statement):
        current.setdefault(values.to_json_value(related_key), []).append(
            values.to_json_value(owner_key)
        )
    return current


def _state_of(session: Session, mapper: Mapper[Any], key: Any) -> InstanceState[Any] | None:
    obj = session.identity_map.get(mapper.identity_key_from_primary_key((key,)))
    return None if obj is None else instance_state(obj)


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (not isinstance(value, int), value if isinstance(value, int) else repr(value))
