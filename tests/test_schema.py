"""The schema CLI (python -m data_access.schema): creates the contract's tables with their natural primary keys
and the query-pattern indexes on DuckDB, PostgreSQL and MariaDB, idempotently; prints DDL for a DBA."""
from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from data_access import schema

pytestmark = pytest.mark.engine_free   # its own files and server URLs: one run of CI is enough

ENGINES = [("duckdb", None), ("postgresql", "COCKPIT_TEST_PG_URL"), ("mysql", "COCKPIT_TEST_MYSQL_URL")]


@pytest.fixture(params=ENGINES, ids=[e[0] for e in ENGINES])
def empty_db(request, tmp_path):
    kind, env = request.param
    if env is None:
        yield f"duckdb:///{tmp_path / 'empty.duckdb'}"
        return
    server = os.environ.get(env)
    if not server:
        pytest.skip(f"{env} not set")
    name = f"cockpit_schema_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def test_cli_creates_every_table_with_its_key_and_indexes(empty_db, capsys):
    assert schema.main(["--url", empty_db]) == 0
    assert "warehouse tables ready" in capsys.readouterr().out
    assert schema.main(["--url", empty_db]) == 0          # again: nothing to do, no error
    engine = sa.create_engine(empty_db)
    try:
        insp = sa.inspect(engine)
        tables = set(insp.get_table_names())
        assert set(schema.CONTRACT_TABLES) | set(schema.DERIVED_TABLES) <= tables
        if engine.dialect.name != "duckdb":     # DuckDB: reading tables stay without keys (schema.create_all)
            assert insp.get_pk_constraint("fact_meter_reading")["constrained_columns"] == ["meter_id", "ts"]
            assert insp.get_pk_constraint("fact_dining_check")["constrained_columns"] == [
                "facility_id", "check_date", "meal", "check_type"]
            indexes = {i["name"]: i["column_names"] for i in insp.get_indexes("fact_work_order")}
            assert indexes["ix_work_order_school_created"] == ["school_id", "created_at"]
            assert insp.get_pk_constraint("dim_school")["constrained_columns"] == ["school_id"]
    finally:
        engine.dispose()


def test_print_sql_names_every_table_and_index():
    text = schema.ddl("postgresql")
    for table in schema.metadata.sorted_tables:
        assert f"CREATE TABLE {table.name} (" in text
        for index in table.indexes:
            assert f"CREATE INDEX {index.name} ON {table.name}" in text
    assert "PRIMARY KEY (meter_id, ts)" in text


def test_unreachable_server_is_a_clear_error(capsys):
    assert schema.main(["--url", "postgresql+psycopg://nobody@127.0.0.1:1/none"]) == 3
    assert "could not create the tables" in capsys.readouterr().err
