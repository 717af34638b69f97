"""The refresh path's statements, compiled once per engine and run on the DBAPI cursor.

A rotation runs five short statements. Through ``Connection.execute`` each pays for
SQLAlchemy's per-execution machinery (the statement's cache key, the compiled-cache
lookup, an execution context, a result object), which on SQLite costs several times the
statement itself: the store's writer thread spent more of the GIL on it than the event
loop spent on HTTP (bench/http_refresh.py, py-spy). A :class:`Prepared` statement is
still written in Core, and compiled by SQLAlchemy for the connection's dialect — the SQL
text, the parameter order of its paramstyle, and its types' bind and result processors
(JSON, booleans on SQLite) — once; each call then only orders the parameters and runs
the text on the connection's own DBAPI cursor, inside the transaction the runner opened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Prepared"]

Processor = Callable[[Any], Any]


@dataclass(slots=True)
class _Form:
    """One dialect's compiled form of a statement."""

    sql: str
    names: tuple[str, ...] | None  # positional paramstyles: the order; None: named
    defaults: dict[str, Any]  # values bound in the statement itself (``.values(state=...)``)
    required: frozenset[str]  # bindparam()s without a value: the caller must give them
    binds: dict[str, Processor]  # name -> bind processor, where the type has one
    columns: tuple[sa.types.TypeEngine[Any], ...]  # a SELECT's result column types
    # per result column, from the types and the driver's type codes (cursor.description,
    # which some dialects need: PostgreSQL's numerics); found on the first fetch
    results: tuple[Processor | None, ...] | None = None

    def process(self, dialect: Dialect, cursor: Any, row: Sequence[Any]) -> tuple[Any, ...]:
        if self.results is None:
            codes = [d[1] for d in cursor.description]
            self.results = tuple(
                t.dialect_impl(dialect).result_processor(dialect, code)
                for t, code in zip(self.columns, codes, strict=True)
            )
        return tuple(v if p is None else p(v) for p, v in zip(self.results, row, strict=True))


def _compile(stmt: sa.ClauseElement, keys: Sequence[str] | None, dialect: Dialect) -> _Form:
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
    assert isinstance(compiled, SQLCompiler)  # a statement's compiler, not DDL's
    binds: dict[str, Processor] = {}
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            binds[name] = processor
        if bind.required:  # a bindparam() without a value, or a column an INSERT sets
            required.add(name)
        else:
            defaults[name] = bind.effective_value
    columns = tuple(c.type for c in getattr(stmt, "selected_columns", ()))
    names = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Form(compiled.string, names, defaults, frozenset(required), binds, columns)


def _wrapped(conn: sa.Connection, sql: str, exc: Any) -> sa.exc.StatementError:
    """The driver's error as Connection.execute raises it (IntegrityError, OperationalError,
    ...: what the store maps to Conflict or StoreUnavailable); a lost connection is
    invalidated, so the runner opens a new one. The parameters stay out (secrets' hashes)."""
    dialect = conn.dialect
    if dialect.is_disconnect(exc, conn.connection.dbapi_connection, None):
        conn.invalidate(exc)
    error: sa.exc.StatementError = sa.exc.DBAPIError.instance(
        sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )
    return error


class Prepared:
    """A Core statement run without ``Connection.execute`` (module docstring).

    ``keys``: for an INSERT of some columns only, the columns it sets (as
    ``compile(column_keys=...)``); every call must then give all of them.
    """

    __slots__ = ("_forms", "_keys", "_stmt")

    def __init__(self, stmt: sa.ClauseElement, keys: Sequence[str] | None = None) -> None:
        self._stmt, self._keys = stmt, tuple(keys) if keys else None
        self._forms: dict[Dialect, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect)
        if form is None:
            form = self._forms[dialect] = _compile(self._stmt, self._keys, dialect)
        return form

    def _run(self, conn: sa.Connection, params: Mapping[str, Any]) -> tuple[_Form, Any]:
        form = self._form(conn.dialect)
        if not form.required <= params.keys():
            missing = sorted(form.required - params.keys())
            raise TypeError(f"missing parameters: {', '.join(missing)}")
        values = {**form.defaults, **params}
        for name, process in form.binds.items():
            values[name] = process(values[name])
        args = values if form.names is None else tuple(values[n] for n in form.names)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(form.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise _wrapped(conn, form.sql, exc) from exc
        return form, cursor

    def rowcount(self, conn: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run an INSERT, UPDATE or DELETE; the number of rows it matched."""
        _, cursor = self._run(conn, params)
        try:
            count: int = cursor.rowcount
            return count
        finally:
            cursor.close()

    def first(self, conn: sa.Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a SELECT; its first row, with the column types' result processing."""
        form, cursor = self._run(conn, params)
        try:
            row = cursor.fetchone()
            return None if row is None else form.process(conn.dialect, cursor, row)
        finally:
            cursor.close()
