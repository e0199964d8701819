"""psycopg 3 against backstop: what a Python script and Grafana's PostgreSQL data source do.

Run by tests/drivers.rs with BACKSTOP_PORT, BACKSTOP_PASSWORD and BACKSTOP_SLOW_JOB (a running
job to wait on and cancel). Prints one line per check and exits non-zero on the first failure.
"""
import os
import sys
import threading

import psycopg
from psycopg import errors

port = int(os.environ["BACKSTOP_PORT"])
password = os.environ["BACKSTOP_PASSWORD"]
slow_job = int(os.environ["BACKSTOP_SLOW_JOB"])


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        sys.exit(1)


conn = psycopg.connect(host="127.0.0.1", port=port, user="admin", password=password,
                       dbname="backstop", autocommit=True)
check("connect", conn.info.server_version >= 120000, conn.info.server_version)

# Simple protocol (no parameters) and extended protocol (server-side parameters).
rows = conn.execute("SELECT tenant_name FROM dba_ob_tenants ORDER BY tenant_name").fetchall()
check("simple query", ("app",) in rows, rows)
cur = conn.execute("SELECT tenant_name, tenant_id FROM oceanbase.dba_ob_tenants WHERE tenant_name = %s",
                   ("app",))
row = cur.fetchone()
check("extended query with a parameter", row is not None and row[0] == "app" and isinstance(row[1], int), row)

# A prepared statement, executed again with other values.
with conn.cursor() as c:
    for name in ("app", "nobody"):
        c.execute("SELECT count(*) FROM oceanbase.dba_ob_tenants WHERE tenant_name = %s", (name,),
                  prepare=True)
        check(f"prepared statement ({name})", c.fetchone()[0] == (1 if name == "app" else 0))

# Errors carry their SQLSTATE.
try:
    conn.execute("SELECT * FROM oceanbase.no_such_view")
    check("unknown view refused", False, "no error")
except psycopg.Error as e:
    check("unknown view refused with 42P01", e.sqlstate == "42P01", e.sqlstate)
try:
    conn.execute("ALTER SYSTEM FROB")
    check("syntax error refused", False, "no error")
except psycopg.Error as e:
    check("syntax error refused with 42601", e.sqlstate == "42601", e.sqlstate)

# NOTICE messages reach the application.
notices = []
conn.add_notice_handler(lambda d: notices.append(d.message_primary))
conn.execute("ALTER SYSTEM BACKUP BACKUPPIECE ALL")
check("notice received", any("no backup piece needs a copy" in n for n in notices), notices)

# Query cancel: a WAIT on a running job ends with 57014; the job goes on.
timer = threading.Timer(1.0, conn.cancel)
timer.start()
try:
    conn.execute(f"ALTER SYSTEM WAIT JOB {slow_job}")
    check("wait canceled", False, "the wait ended by itself")
except errors.QueryCanceled as e:
    check("wait canceled with 57014", e.sqlstate == "57014", e.sqlstate)
status = conn.execute("SELECT status FROM cdb_ob_backup_jobs WHERE job_id = %s", (slow_job,)).fetchone()
check("the job goes on after the cancel", status is not None and status[0] in ("INIT", "DOING"), status)

# Grafana's query builder: schemas, tables, then columns with their types.
schemas = [r[0] for r in conn.execute(
    "SELECT quote_ident(schema_name) FROM information_schema.schemata "
    "WHERE schema_name NOT IN ('information_schema', 'pg_catalog') ORDER BY 1").fetchall()]
check("grafana schemas", schemas == ["backstop", "oceanbase", "public"], schemas)
tables = [r[0] for r in conn.execute(
    "SELECT quote_ident(table_name) AS table FROM information_schema.tables "
    "WHERE quote_ident(table_schema) = current_schema() ORDER BY table_name").fetchall()]
check("grafana tables", "cdb_ob_backup_jobs" in tables and "dba_ob_tenants" in tables, tables[:5])
columns = dict(conn.execute(
    "SELECT quote_ident(column_name) AS column, data_type AS type FROM information_schema.columns "
    "WHERE quote_ident(table_name) = %s AND table_schema = current_schema()",
    ("cdb_ob_backup_jobs",)).fetchall())
check("grafana columns with types",
      columns.get("job_id") == "bigint"
      and columns.get("start_timestamp") == "timestamp without time zone"
      and columns.get("status") == "character varying", columns)

# Types arrive as Python values.
row = conn.execute("SELECT job_id, start_timestamp, status FROM cdb_ob_backup_jobs WHERE job_id = %s",
                   (slow_job,)).fetchone()
check("typed values", isinstance(row[0], int) and row[1].year >= 2020 and isinstance(row[2], str), row)
conn.close()
print("psycopg: all checks passed")
