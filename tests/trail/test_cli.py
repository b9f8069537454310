"""``auditkeeper trail ENTITY ID``: the trail as a table, for the demo CRM or an app."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import auditkeeper
from auditkeeper.cli.commands import cli
from auditkeeper.demo.crm import build_crm


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    path = tmp_path / "demo.sqlite3"
    crm = build_crm()
    engine = auditkeeper.configure_sqlite(create_engine(f"sqlite:///{path}"))
    crm.Base.metadata.create_all(engine)
    crm.keeper.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    crm.keeper.install(factory)
    with factory() as session:
        alice = crm.User(email="alice@example.com", full_name="Alice Adams")
        session.add(alice)
        session.commit()
        with auditkeeper.acting_as(alice.id, email=alice.email):
            business = crm.Business(name="Acme")
            session.add(business)
            session.commit()
            business.name = "Acme Ltd"
            session.commit()
    engine.dispose()
    return path


def test_trail_of_the_demo_crm(demo_db: Path) -> None:
    result = CliRunner().invoke(cli, ["trail", "Business", "1", "--db", str(demo_db)])
    assert result.exit_code == 0, result.output
    assert "Type of event" in result.output
    assert '"name" was changed from "Acme" to "Acme Ltd"' in result.output
    assert "Alice Adams" in result.output
    assert result.output.index("Updated") < result.output.index("Created")
    assert "2 rows" in result.output


def test_options_and_errors(demo_db: Path) -> None:
    runner = CliRunner()
    limited = runner.invoke(cli, ["trail", "Business", "1", "--db", str(demo_db), "--limit", "1"])
    assert "1 of 2 rows" in limited.output
    unknown = runner.invoke(cli, ["trail", "Invoice", "1", "--db", str(demo_db)])
    assert unknown.exit_code == 2
    assert "no audited class is named 'Invoice'; audited: Business, Comment, Lead" in unknown.output
    bad_id = runner.invoke(cli, ["trail", "Business", "one", "--db", str(demo_db)])
    assert "'one' is not an integer key" in bad_id.output
    bad_app = runner.invoke(cli, ["trail", "Business", "1", "--app", "nowhere"])
    assert "--app 'nowhere' must be MODULE:ATTRIBUTE" in bad_app.output


def test_an_application_named_by_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_audit.py").write_text(
        textwrap.dedent(
            """
            import enum
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
            import auditkeeper

            class Action(enum.IntEnum):
                CREATE = 1

            class Kind(enum.IntEnum):
                ORDER = 1

            class Base(DeclarativeBase):
                pass

            keeper = auditkeeper.Auditkeeper(Base.metadata, actions=Action, entity_types=Kind)

            @auditkeeper.audited(entity_type=Kind.ORDER, create=Action.CREATE)
            class Order(Base):
                __tablename__ = "orders"
                id: Mapped[int] = mapped_column(primary_key=True)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import shop_audit

    engine = auditkeeper.configure_sqlite(create_engine("sqlite:///shop.sqlite3"))
    shop_audit.Base.metadata.create_all(engine)
    shop_audit.keeper.create_all(engine)
    factory = sessionmaker(engine)
    shop_audit.keeper.install(factory)
    with factory() as session:
        session.add(shop_audit.Order())
        session.commit()
    engine.dispose()
    result = CliRunner().invoke(
        cli, ["trail", "Order", "1", "--app", "shop_audit:keeper", "--db", "shop.sqlite3"]
    )
    assert result.exit_code == 0, result.output
    assert "Created" in result.output and "System" in result.output
    wrong = CliRunner().invoke(cli, ["trail", "Order", "1", "--app", "shop_audit:Base"])
    assert "is Base, not an Auditkeeper" in wrong.output
