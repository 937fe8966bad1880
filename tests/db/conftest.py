"""Fixtures that start real database servers (see servers.py); each test gets fresh ones, stopped by pid."""

from __future__ import annotations

import pytest

from tests.db.servers import MariaDBServer, PostgresServer, remove_templates


@pytest.fixture(scope="session", autouse=True)
def _server_templates():
    yield
    remove_templates()


@pytest.fixture
def mariadb_factory(tmp_path):
    started = []

    def start(name: str = "mariadb") -> MariaDBServer:
        server = MariaDBServer(str(tmp_path / name))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def postgres_factory():
    started = []

    def start() -> PostgresServer:
        server = PostgresServer()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
