// pgjdbc against backstop: what a Java service, DBeaver and DataGrip do through JDBC.
//
// Run by tests/drivers.rs (java JdbcCheck.java, with Debian's postgresql.jar on the class path)
// with BACKSTOP_PORT, BACKSTOP_PASSWORD and BACKSTOP_SLOW_JOB; prints one line per check and
// exits non-zero on the first failure.
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static void check(String name, boolean ok, Object detail) {
        System.out.println((ok ? "ok   " : "FAIL ") + name + (ok ? "" : ": " + detail));
        if (!ok) System.exit(1);
    }

    static void refused(Connection c, String sql, String code, String name) {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
            check(name, false, "no error");
        } catch (SQLException e) {
            check(name + " with " + code, code.equals(e.getSQLState()), e.getSQLState() + " " + e.getMessage());
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("BACKSTOP_PORT") + "/backstop";
        Properties props = new Properties();
        props.setProperty("user", "admin");
        props.setProperty("password", System.getenv("BACKSTOP_PASSWORD"));
        // Server-side prepared statements from the first execution.
        props.setProperty("prepareThreshold", "1");
        long slowJob = Long.parseLong(System.getenv("BACKSTOP_SLOW_JOB"));
        try (Connection c = DriverManager.getConnection(url, props)) {
            check("connect", c.getMetaData().getDatabaseMajorVersion() >= 12, c.getMetaData().getDatabaseProductVersion());

            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT tenant_name FROM dba_ob_tenants ORDER BY tenant_name")) {
                List<String> names = new ArrayList<>();
                while (rs.next()) names.add(rs.getString(1));
                check("simple query", names.contains("app"), names);
            }
            try (PreparedStatement p = c.prepareStatement("SELECT tenant_name, tenant_id FROM oceanbase.dba_ob_tenants WHERE tenant_name = ?")) {
                for (String name : new String[] {"app", "nobody", "app"}) {
                    p.setString(1, name);
                    try (ResultSet rs = p.executeQuery()) {
                        boolean found = rs.next();
                        check("prepared statement (" + name + ")", found == name.equals("app") && (!found || rs.getLong(2) > 0), name);
                    }
                }
            }

            refused(c, "SELECT * FROM oceanbase.no_such_view", "42P01", "unknown view refused");
            refused(c, "ALTER SYSTEM FROB", "42601", "syntax error refused");

            try (Statement s = c.createStatement()) {
                s.execute("ALTER SYSTEM BACKUP BACKUPPIECE ALL");
                SQLWarning w = s.getWarnings();
                check("notice received", w != null && w.getMessage().contains("no backup piece needs a copy"), w);
            }

            // Query cancel: a statement timeout sends a CancelRequest.
            try (Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                s.execute("ALTER SYSTEM WAIT JOB " + slowJob);
                check("wait canceled", false, "the wait ended by itself");
            } catch (SQLException e) {
                check("wait canceled with 57014", "57014".equals(e.getSQLState()), e.getSQLState() + " " + e.getMessage());
            }

            DatabaseMetaData md = c.getMetaData();
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            check("getSchemas", schemas.containsAll(List.of("backstop", "oceanbase", "public")), schemas);

            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "oceanbase", "cdb_ob_backup_%", new String[] {"VIEW"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME") + ":" + rs.getString("TABLE_TYPE"));
            }
            check("getTables", tables.contains("cdb_ob_backup_jobs:VIEW") && tables.contains("cdb_ob_backup_set_files:VIEW"), tables);

            Map<String, String> columns = new LinkedHashMap<>();
            try (ResultSet rs = md.getColumns(null, "oceanbase", "cdb_ob_backup_jobs", null)) {
                while (rs.next()) columns.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME") + "/" + rs.getInt("DATA_TYPE"));
            }
            check("getColumns with real types",
                    ("int8/" + Types.BIGINT).equals(columns.get("job_id"))
                            && ("timestamp/" + Types.TIMESTAMP).equals(columns.get("start_timestamp"))
                            && ("varchar/" + Types.VARCHAR).equals(columns.get("status"))
                            && columns.keySet().iterator().next().equals("tenant_id"), columns);

            try (ResultSet rs = md.getPrimaryKeys(null, "oceanbase", "cdb_ob_backup_jobs")) {
                check("getPrimaryKeys (views have none)", !rs.next(), "a key");
            }

            try (PreparedStatement p = c.prepareStatement("SELECT job_id, start_timestamp, status FROM cdb_ob_backup_jobs WHERE job_id = ?")) {
                p.setLong(1, slowJob);
                try (ResultSet rs = p.executeQuery()) {
                    check("typed values", rs.next() && rs.getLong(1) == slowJob && rs.getTimestamp(2) != null && rs.getString(3) != null, "no row");
                }
            }
        }
        System.out.println("pgjdbc: all checks passed");
    }
}
