"""pg_restore 17+ against a server before 17: which errors are its SET transaction_timeout alone,
and the in-place SQL that sets it only where it exists."""

import io

from migration_tools.pg.tools import only_timeout_set_errors
from migration_tools.restore.transaction import copy_archive_sql

REFUSED = ('pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter '
           '"transaction_timeout"\nCommand was: SET transaction_timeout = 0;\n')


def test_the_timeout_set_refused_once_per_connection_is_the_only_error():
    assert only_timeout_set_errors("pg_restore: while INITIALIZING:\n" + REFUSED)
    assert only_timeout_set_errors(REFUSED + REFUSED + "pg_restore: warning: errors ignored on restore: 2\n")


def test_any_other_error_or_none_is_not():
    other = 'pg_restore: error: could not execute query: ERROR:  relation "t" already exists\n'
    assert not only_timeout_set_errors(REFUSED + other)
    assert not only_timeout_set_errors("")
    assert not only_timeout_set_errors("pg_restore: warning: something\n")


def test_in_place_sql_sets_the_timeout_only_on_servers_that_have_it():
    sql = (b"--\n-- PostgreSQL database dump\n--\n\nBEGIN;\n\nSET statement_timeout = 0;\n"
           b"SET transaction_timeout = 0;\nSET client_encoding = 'UTF8';\n\nCREATE TABLE t (i int);\n"
           b"\nCOMMIT;\n\n")
    out = io.BytesIO()
    copy_archive_sql(io.BytesIO(sql), out)
    text = out.getvalue().decode()
    assert "SET transaction_timeout" not in text
    assert ("SELECT pg_catalog.set_config('transaction_timeout', '0', false) WHERE "
            "pg_catalog.current_setting('server_version_num')::int >= 170000;") in text
    assert "BEGIN;" not in text and "COMMIT;" not in text and "CREATE TABLE t (i int);" in text
