// node-postgres against backstop: what a Node.js service and pgAdmin/DBeaver's object browsers do.
//
// Run by tests/drivers.rs with BACKSTOP_PORT, BACKSTOP_PASSWORD and BACKSTOP_SLOW_JOB; prints
// one line per check and exits non-zero on the first failure.
const { Client } = require('pg');

const config = {
  host: '127.0.0.1',
  port: Number(process.env.BACKSTOP_PORT),
  user: 'admin',
  password: process.env.BACKSTOP_PASSWORD,
  database: 'backstop',
};
const slowJob = Number(process.env.BACKSTOP_SLOW_JOB);

function check(name, ok, detail) {
  console.log((ok ? 'ok   ' : 'FAIL ') + name + (ok ? '' : `: ${JSON.stringify(detail)}`));
  if (!ok) process.exit(1);
}

async function refused(client, sql, code, name) {
  try {
    await client.query(sql);
    check(name, false, 'no error');
  } catch (e) {
    check(`${name} with ${code}`, e.code === code, e.code);
  }
}

async function main() {
  const client = new Client(config);
  await client.connect();
  check('connect', true);

  const simple = await client.query('SELECT tenant_name FROM dba_ob_tenants ORDER BY tenant_name');
  check('simple query', simple.rows.some((r) => r.tenant_name === 'app'), simple.rows);
  const extended = await client.query(
    'SELECT tenant_name, tenant_id FROM oceanbase.dba_ob_tenants WHERE tenant_name = $1', ['app']);
  check('extended query with a parameter', extended.rows.length === 1 && extended.rows[0].tenant_name === 'app', extended.rows);

  // A named prepared statement, executed twice.
  for (const name of ['app', 'nobody']) {
    const r = await client.query({
      name: 'tenant_count',
      text: 'SELECT count(*) AS n FROM oceanbase.dba_ob_tenants WHERE tenant_name = $1',
      values: [name],
    });
    check(`prepared statement (${name})`, Number(r.rows[0].n) === (name === 'app' ? 1 : 0), r.rows);
  }

  await refused(client, 'SELECT * FROM oceanbase.no_such_view', '42P01', 'unknown view refused');
  await refused(client, 'ALTER SYSTEM FROB', '42601', 'syntax error refused');

  const notices = [];
  client.on('notice', (n) => notices.push(n.message));
  await client.query('ALTER SYSTEM BACKUP BACKUPPIECE ALL');
  check('notice received', notices.some((n) => n.includes('no backup piece needs a copy')), notices);

  // Query cancel from a second connection, as node-postgres does it (a CancelRequest).
  const waiting = client.query(`ALTER SYSTEM WAIT JOB ${slowJob}`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const canceller = new Client(config);
  canceller.cancel(client, client.activeQuery);
  try {
    await waiting;
    check('wait canceled', false, 'the wait ended by itself');
  } catch (e) {
    check('wait canceled with 57014', e.code === '57014', e.code);
  }

  // What DBeaver asks at connect, and its database list.
  const who = await client.query('SELECT current_schema(), session_user, current_user');
  check('connect-time session queries', who.rows[0].current_schema === 'oceanbase'
    && who.rows[0].session_user === 'admin', who.rows);
  const databases = await client.query(
    "SELECT db.oid, db.* FROM pg_catalog.pg_database db WHERE datallowconn AND NOT datistemplate OR db.datname = $1",
    ['backstop']);
  check('database list', databases.rows.length === 1 && databases.rows[0].datname === 'backstop', databases.rows);

  // DBeaver's and pgAdmin's object browsers: schemas, relations, columns, with descriptions.
  const schemas = await client.query(
    "SELECT n.oid, n.nspname, d.description FROM pg_catalog.pg_namespace n " +
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0 " +
    "AND d.classoid = 'pg_namespace'::regclass ORDER BY nspname");
  const oceanbase = schemas.rows.find((r) => r.nspname === 'oceanbase');
  check('browser schemas', oceanbase && oceanbase.description, schemas.rows);
  const relations = await client.query(
    'SELECT c.oid, c.*, t.relname AS tabrelname, rt.relnamespace AS refnamespace, d.description, ' +
    "CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) ELSE NULL END AS partition_expr, " +
    "CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) ELSE NULL END AS partition_key " +
    'FROM pg_catalog.pg_class c LEFT OUTER JOIN pg_catalog.pg_class t ON c.reltoastrelid = t.oid ' +
    'LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid = c.reltoastrelid ' +
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass " +
    "AND d.objsubid = 0 WHERE c.relnamespace = $1 AND c.relkind NOT IN ('i', 'I', 'c') ORDER BY c.relname",
    [oceanbase.oid]);
  const jobs = relations.rows.find((r) => r.relname === 'cdb_ob_backup_jobs');
  check('browser relations', jobs && jobs.relkind === 'v' && jobs.description.includes('CDB_OB_BACKUP_JOBS'), relations.rows.slice(0, 3));
  const columns = await client.query(
    'SELECT c.relname, a.attname, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, ' +
    'pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value, dsc.description ' +
    'FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid = c.oid) ' +
    'LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid = ad.adrelid AND a.attnum = ad.adnum) ' +
    'LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid) ' +
    'WHERE NOT a.attisdropped AND c.oid = $1 ORDER BY a.attnum', [jobs.oid]);
  const byName = Object.fromEntries(columns.rows.map((r) => [r.attname, r.type]));
  check('browser columns with types', byName.job_id === 'bigint' && byName.start_timestamp === 'timestamp without time zone'
    && byName.status === 'character varying' && Number(columns.rows[0].attnum) === 1, columns.rows.slice(0, 3));
  const definition = await client.query('SELECT pg_catalog.pg_get_viewdef($1::oid, true) AS def', [jobs.oid]);
  check('view definition', /SELECT/i.test(definition.rows[0].def || ''), definition.rows);

  await client.end();
  console.log('node-postgres: all checks passed');
}

main().catch((e) => {
  console.log(`FAIL unexpected error: ${e.stack || e}`);
  process.exit(1);
});
