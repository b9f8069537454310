"""``model.statements.as_sent``: a ``%`` that SQLAlchemy doubled in a quoted name is
single again, and nothing else in the statement changes."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from auditkeeper.model.statements import as_sent

PERCENT_DOUBLING = postgresql.dialect()  # psycopg2's %(name)s placeholders


def test_a_quoted_name_takes_its_single_percent_back() -> None:
    statement = 'CREATE TABLE "a%%b" ("c%%d""e" int)'
    assert as_sent(statement, PERCENT_DOUBLING) == 'CREATE TABLE "a%b" ("c%d""e" int)'


def test_literals_and_comments_keep_their_text() -> None:
    """An apostrophe in a comment starts no string; a string's "%%" is its own."""
    statement = (
        "SELECT '50%% \"x%%\"', format('%I.%I', a, b) -- it's \"c%%\"\n"
        '/* don\'t "d%%" */ FROM "t%%"'
    )
    assert as_sent(statement, PERCENT_DOUBLING) == (
        "SELECT '50%% \"x%%\"', format('%I.%I', a, b) -- it's \"c%%\"\n"
        '/* don\'t "d%%" */ FROM "t%"'
    )


def test_a_dialect_that_doubles_nothing_gets_the_statement_as_it_is() -> None:
    statement = 'CREATE TABLE "a%%b" (x int)'
    assert as_sent(statement, sqlite.dialect()) == statement
