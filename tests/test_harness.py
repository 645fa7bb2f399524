import os
import stat

import psycopg
import pytest

from devtools.pg_server import Server, find_bindir


def test_server_requires_the_password_over_tcp(pg: Server):
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname="postgres"
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        method = conn.execute("SHOW password_encryption").fetchone()
    assert method == ("scram-sha-256",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=pg.port, user="postgres", password="wrong", dbname="postgres"
        )


def test_server_listens_on_loopback_only_and_runs_unprivileged(pg: Server):
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname="postgres"
    ) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    pid = int((pg.datadir / "postmaster.pid").read_text().split()[0]) if os.geteuid() == 0 else 0
    if pid:
        assert os.stat(f"/proc/{pid}").st_uid != 0


def test_password_file_is_owner_only_and_never_in_postmaster_argv(pg: Server):
    assert stat.S_IMODE(pg.password_file.stat().st_mode) == 0o600
    opts = (pg.datadir / "postmaster.opts").read_text() if os.access(pg.datadir, os.R_OK) else ""
    assert pg.password not in opts


def test_start_twice_reuses_the_running_server(pg: Server):
    port = pg.port
    Server(pg.root).start()
    assert pg.port == port


def test_pg_bin_overrides_binary_discovery(monkeypatch, tmp_path):
    monkeypatch.setenv("PG_BIN", str(tmp_path))
    with pytest.raises(RuntimeError, match="has no postgres binary"):
        find_bindir()
    monkeypatch.delenv("PG_BIN")
    assert (find_bindir() / "pg_ctl").exists()
