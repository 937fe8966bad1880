"""Fixtures that start real database servers (drill/dbservers.py); each test gets fresh ones, stopped by pid."""

from __future__ import annotations

import glob
import os

import pytest

from drill.dbservers import MARIADB_TOOLS, POSTGRES_TOOLS, MariaDBServer, PostgresServer, remove_templates
from tests.support import need, need_tool


@pytest.fixture(scope="session", autouse=True)
def _server_templates():
    yield
    remove_templates()


@pytest.fixture
def mariadb_factory(tmp_path):
    started = []

    def start(name: str = "mariadb") -> MariaDBServer:
        need_tool(*MARIADB_TOOLS)
        need(os.geteuid() == 0, "the database servers are started as root")
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
        need(os.geteuid() == 0, "the database servers are started as root")
        need(
            bool(glob.glob("/usr/lib/postgresql/*/bin")),
            "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) missing",
        )
        need_tool(*POSTGRES_TOOLS)
        server = PostgresServer()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
