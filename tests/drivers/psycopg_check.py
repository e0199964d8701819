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

# Grafana's PostgreSQL query builder (grafana-postgresql-datasource): the schemas of its
# dropdown, then its two queries as Grafana writes them, tables on the search path first, then
# the columns of the chosen table with their types.
schemas = [r[0] for r in conn.execute(
    "SELECT quote_ident(schema_name) FROM information_schema.schemata "
    "WHERE schema_name NOT IN ('information_schema', 'pg_catalog') ORDER BY 1").fetchall()]
check("grafana schemas", schemas == ["backstop", "oceanbase", "public"], schemas)
SEARCH_PATH = """
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
"""
tables = [r[0] for r in conn.execute(f"""SELECT
        CASE WHEN
              quote_ident(table_schema) IN ({SEARCH_PATH})
          THEN quote_ident(table_name)
          ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
        END AS "table"
        FROM information_schema.tables
        WHERE quote_ident(table_schema) NOT IN ('information_schema',
                                 'pg_catalog',
                                 '_timescaledb_cache',
                                 '_timescaledb_catalog',
                                 '_timescaledb_internal',
                                 '_timescaledb_config',
                                 'timescaledb_information',
                                 'timescaledb_experimental')
        ORDER BY CASE WHEN
              quote_ident(table_schema) IN ({SEARCH_PATH}) THEN 0 ELSE 1 END, 1""").fetchall()]
check("grafana tables (search path first)",
      "cdb_ob_backup_jobs" in tables and "dba_ob_tenants" in tables
      and "backstop.job" in tables
      and tables.index("cdb_ob_backup_jobs") < tables.index("backstop.job"), tables[:5])


def grafana_columns(table):
    """The query builder's column query for `table`, as Grafana writes it."""
    return dict(conn.execute(f"""SELECT quote_ident(column_name) AS "column", data_type AS "type"
        FROM information_schema.columns
        WHERE
          CASE WHEN array_length(parse_ident(%(t)s),1) = 2
            THEN quote_ident(table_schema) = (parse_ident(%(t)s))[1]
              AND quote_ident(table_name) = (parse_ident(%(t)s))[2]
            ELSE quote_ident(table_name) = %(t)s
              AND
              quote_ident(table_schema) IN ({SEARCH_PATH})
          END""", {"t": table}).fetchall())


columns = grafana_columns("cdb_ob_backup_jobs")
check("grafana columns with types",
      columns.get("job_id") == "bigint"
      and columns.get("start_timestamp") == "timestamp without time zone"
      and columns.get("status") == "character varying", columns)
qualified = grafana_columns("backstop.job")
check("grafana columns of a qualified table", qualified.get("job_kind") == "character varying", qualified)

# Types arrive as Python values.
row = conn.execute("SELECT job_id, start_timestamp, status FROM cdb_ob_backup_jobs WHERE job_id = %s",
                   (slow_job,)).fetchone()
check("typed values", isinstance(row[0], int) and row[1].year >= 2020 and isinstance(row[2], str), row)
conn.close()
print("psycopg: all checks passed")
