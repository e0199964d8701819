//! A real PostgreSQL cluster for the tests (Debian's `postgresql` package, installed by
//! scripts/setup-test-env.sh): initdb into a temporary folder, started on a free loopback port,
//! run as the `postgres` account when the tests run as root (PostgreSQL refuses root).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::{ADMIN_PASSWORD, free_port};

fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/setup-test-env.sh)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server version is installed")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args` as the postgres account when the tests run as root.
pub fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Gives `path` (recursively) to the postgres account when the tests run as root.
pub fn give_to_postgres(path: &Path) {
    if is_root() {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(path);
        run(chown, "chown");
    }
}

/// The backstop executable where the postgres account can run it (the build folder may be
/// under a home only root can enter), and a password file it can read.
pub fn tool() -> (PathBuf, PathBuf) {
    static TOOL: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TOOL.get_or_init(|| {
        // One folder per build of the executable, shared by every test process of that build:
        // a folder per process kept a hard link to each replaced build alive, half a gigabyte
        // of disk apiece. Folders of earlier builds are removed.
        let built = Path::new(env!("CARGO_BIN_EXE_backstop"));
        let build = std::fs::metadata(built)
            .map(|m| m.ino())
            .unwrap_or_default();
        let name = format!("backstop-tool-{build}");
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for entry in entries.flatten() {
                let other = entry.file_name().to_string_lossy().to_string();
                if other.starts_with("backstop-tool-") && other != name {
                    // Another build's folder: garbage, and harmless to leave if it will not go.
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("backstop");
        if !exe.exists() && std::fs::hard_link(built, &exe).is_err() && !exe.exists() {
            std::fs::copy(built, &exe).unwrap();
        }
        let password = dir.join("password");
        std::fs::write(&password, format!("{ADMIN_PASSWORD}\n")).unwrap();
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
        (exe, password)
    })
    .clone()
}

/// The `archive_command` that pushes to `tenant` on the backstop server at `port`.
pub fn archive_command(port: u16, tenant: &str) -> String {
    let (exe, password) = tool();
    format!(
        "{} archive-push --tenant {tenant} --port {port} --password-file {} %p",
        exe.display(),
        password.display()
    )
}

/// A PostgreSQL cluster in a folder of its own.
pub struct Cluster {
    /// The folder holding the data directory, the socket and the log (mode 0755).
    pub root: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    bin: PathBuf,
    running: bool,
    _tmp: Option<tempfile::TempDir>,
}

impl Cluster {
    /// initdb (with data checksums when asked) into a new temporary folder; not started.
    pub fn init(checksums: bool) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("backstop-pg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = tmp.path().to_path_buf();
        give_to_postgres(&root);
        let data = root.join("data");
        let bin = bin_dir();
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        if checksums {
            initdb.arg("--data-checksums");
        }
        run(initdb, "initdb");
        Cluster {
            root,
            data,
            port: free_port(),
            bin,
            running: false,
            _tmp: Some(tmp),
        }
    }

    /// A cluster on a data directory that is already there (a restored one), in `root`.
    pub fn on(root: &Path, data: &Path) -> Cluster {
        give_to_postgres(root);
        Cluster {
            root: root.to_path_buf(),
            data: data.to_path_buf(),
            port: free_port(),
            bin: bin_dir(),
            running: false,
            _tmp: None,
        }
    }

    /// Starts PostgreSQL on a restored data directory and waits until it has recovered and
    /// promoted.
    pub async fn recovered(root: &Path, data: &Path) -> Cluster {
        let mut cluster = Cluster::on(root, data);
        cluster.start();
        cluster.until_promoted().await;
        cluster
    }

    /// Appends settings to postgresql.conf.
    pub fn configure(&self, lines: &str) {
        use std::io::Write;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        writeln!(conf, "\n{lines}").unwrap();
    }

    /// Archiving to `tenant` on the backstop server at `backstop_port`, and WAL settings a
    /// backup needs.
    pub fn archive_to(&self, backstop_port: u16, tenant: &str) {
        self.configure(&format!(
            "wal_level = replica\narchive_mode = on\narchive_command = '{}'\n\
             fsync = off\nmax_wal_size = 256MB",
            archive_command(backstop_port, tenant)
        ));
    }

    pub fn start(&mut self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.root.display()
        );
        let mut start = as_postgres(&self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.root.join("log"))
            .args(["-w", "-t", "120", "start"]);
        let output = start.output().expect("pg_ctl runs");
        assert!(
            output.status.success(),
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        self.running = true;
    }

    /// A fast shutdown (a checkpoint, then exit).
    pub fn stop(&mut self) {
        let mut stop = as_postgres(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        run(stop, "pg_ctl stop");
        self.running = false;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
    }

    pub fn uri(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn client(&self) -> Client {
        let dsn = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&dsn, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connects to PostgreSQL: {e}\n{}", self.log()));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Runs pgbench with `args` against the cluster.
    pub fn pgbench(&self, args: &[&str]) {
        let mut pgbench = Command::new("pgbench");
        pgbench
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(args)
            .arg("postgres");
        run(pgbench, "pgbench");
    }

    /// Waits until the cluster has left recovery (a restored one promoted), at most 120 s.
    pub async fn until_promoted(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let dsn = format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            );
            if let Ok((client, connection)) = tokio_postgres::connect(&dsn, NoTls).await {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                if let Ok(row) = client.query_one("SELECT pg_is_in_recovery()", &[]).await
                    && !row.get::<_, bool>(0)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the restored cluster was not promoted within 120 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sessions of backstop's backups open on the cluster (each holds a backup mode).
    pub async fn backup_sessions(&self) -> i64 {
        let client = self.client().await;
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backstop backup'",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Checks every B-tree index of the current database with amcheck.
    pub async fn amcheck(&self) {
        let client = self.client().await;
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            .await
            .unwrap();
        let checked: i64 = client
            .query_one(
                "SELECT count(bt_index_check(c.oid)) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_am a ON a.oid = c.relam \
                 WHERE a.amname = 'btree' AND c.relpersistence <> 't'",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("amcheck finds corruption: {e:?}"))
            .get(0);
        assert!(checked > 10, "amcheck checked {checked} indexes");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let mut stop = as_postgres(&self.bin.join("pg_ctl"));
            stop.arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = stop.output();
        }
    }
}
