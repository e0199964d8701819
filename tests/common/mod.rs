//! Shared by the integration tests: a real backstop server on 127.0.0.1 and real clients.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backstop::server::{RunningServer, ServerConfig};
use tokio_postgres::{Client, NoTls};

pub const ADMIN_PASSWORD: &str = "admin-secret";

/// A server running inside the test process.
pub struct TestServer {
    pub server: RunningServer,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut server = TestServer::start_in(tmp.path().join("data")).await;
        server._tmp = Some(tmp);
        server
    }

    pub async fn start_in(data_dir: PathBuf) -> TestServer {
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            tls_cert: None,
            tls_key: None,
            tls_required: false,
        };
        let server = backstop::server::start(config)
            .await
            .expect("server starts");
        TestServer {
            server,
            data_dir,
            _tmp: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }

    pub async fn connect(&self) -> Client {
        connect_as(self.port(), "admin", ADMIN_PASSWORD).await
    }
}

/// A client whose NOTICE messages are collected, in the order they arrive.
pub async fn noticing_client(port: u16) -> (Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use futures::StreamExt;
    let dsn =
        format!("host=127.0.0.1 port={port} user=admin password={ADMIN_PASSWORD} dbname=backstop");
    let (client, mut connection) = tokio_postgres::connect(&dsn, NoTls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notice(n) = message
                && tx.send(n.message().to_string()).is_err()
            {
                break;
            }
        }
    });
    (client, rx)
}

/// Every NOTICE received so far.
pub fn drain(notices: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(n) = notices.try_recv() {
        out.push(n);
    }
    out
}

/// Connects, trying again for a while on transport errors: a server that has just bound its
/// port may still drop the first connections (or a probe may have met a port still in use).
pub async fn connect_as(port: u16, user: &str, password: &str) -> Client {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_connect_as(port, user, password).await {
            Ok(client) => return client,
            Err(e) if e.as_db_error().is_none() && attempts < 100 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("connects: {e:?}"),
        }
    }
}

pub async fn try_connect_as(
    port: u16,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let dsn = format!("host=127.0.0.1 port={port} user={user} password={password} dbname=backstop");
    let (client, connection) = tokio_postgres::connect(&dsn, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a db error: {e}"))
}

/// Runs `sql`, which must be refused with SQLSTATE `code` and a message that names `mention`.
pub async fn assert_refused(client: &Client, sql: &str, code: &str, mention: &str) {
    let err = client.batch_execute(sql).await.unwrap_err();
    assert_eq!(sqlstate(&err), code, "{sql}: {err:?}");
    let message = err.as_db_error().map(|d| d.message()).unwrap_or_default();
    assert!(message.contains(mention), "{sql}: {message}");
}

/// Every row `sql` answers, each column as text (`NULL` for null).
pub async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The first column of the first row `sql` answers, as text (`NULL` for null).
pub async fn value(client: &Client, sql: &str) -> String {
    let rows = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(r.get(0).unwrap_or("NULL").to_string())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row from {sql}"))
}

/// Polls `sql` until it answers `expected`, at most `limit`.
pub async fn until(client: &Client, sql: &str, expected: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got = value(client, sql).await;
        if got == expected {
            return;
        }
        if Instant::now() >= deadline {
            let jobs = dump(
                client,
                "SELECT job_id, job_kind, status, comment FROM backstop.job ORDER BY job_id",
            )
            .await;
            let tasks = dump(
                client,
                "SELECT task_id, job_id, status, input_bytes, bytes_read, checkpoint_bytes, \
                 comment FROM backstop.task ORDER BY task_id",
            )
            .await;
            panic!("{sql} still answers {got}, not {expected}\njobs:\n{jobs}\ntasks:\n{tasks}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every row of `sql`, one line each, for a failure message.
async fn dump(client: &Client, sql: &str) -> String {
    let Ok(rows) = client.simple_query(sql).await else {
        return String::from("(unreadable)");
    };
    rows.iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A backstop server as a child process, for tests that kill it.
pub struct ChildServer {
    pub child: Child,
    pub port: u16,
}

impl ChildServer {
    pub fn start(data_dir: &Path) -> ChildServer {
        ChildServer::start_with_env(data_dir, &[])
    }

    /// Starts the server with extra environment variables (fault injection, for one).
    pub fn start_with_env(data_dir: &Path, env: &[(&str, &str)]) -> ChildServer {
        ChildServer::spawn(data_dir, env, Stdio::inherit())
    }

    /// Starts the server logging at debug level into `log`, for a test that reads the log.
    pub fn start_logging_to(data_dir: &Path, log: &Path) -> ChildServer {
        let file = std::fs::File::create(log).expect("log file");
        ChildServer::spawn(data_dir, &[("BACKSTOP_LOG", "debug")], Stdio::from(file))
    }

    /// Starts the server logging JSON lines (BACKSTOP_LOG_FORMAT=json) into `log`.
    pub fn start_logging_json_to(data_dir: &Path, log: &Path) -> ChildServer {
        let file = std::fs::File::create(log).expect("log file");
        ChildServer::spawn(
            data_dir,
            &[("BACKSTOP_LOG", "info"), ("BACKSTOP_LOG_FORMAT", "json")],
            Stdio::from(file),
        )
    }

    /// Starts the server on `port` (a restarted server keeps its address).
    pub fn start_at(data_dir: &Path, port: u16) -> ChildServer {
        ChildServer::spawn_at(data_dir, &[], Stdio::inherit(), port)
    }

    fn spawn(data_dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> ChildServer {
        ChildServer::spawn_at(data_dir, env, stderr, free_port())
    }

    fn spawn_at(data_dir: &Path, env: &[(&str, &str)], stderr: Stdio, port: u16) -> ChildServer {
        let child = Command::new(env!("CARGO_BIN_EXE_backstop"))
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("BACKSTOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BACKSTOP_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("backstop binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ChildServer { child, port }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The psql client, installed by scripts/setup-test-env.sh.
pub fn psql(port: u16, args: &[&str]) -> std::process::Output {
    Command::new("psql")
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "admin",
            "-d",
            "backstop",
        ])
        .args(args)
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql is installed (run scripts/setup-test-env.sh)")
}
pub mod pg;
pub mod repo;
pub mod tree;
