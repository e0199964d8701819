//! A backstop server for the benchmarks: the release binary as a child process on loopback,
//! and the two query helpers they share.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

pub const PASSWORD: &str = "bench";

pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_backstop"))
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("BACKSTOP_ADMIN_PASSWORD", PASSWORD)
            .env("BACKSTOP_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the release binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port }
    }

    pub async fn client(&self) -> Client {
        let dsn = format!(
            "host=127.0.0.1 port={} user=admin password={PASSWORD} dbname=backstop",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&dsn, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn one(client: &Client, sql: &str) -> String {
    let rows = client.simple_query(sql).await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Polls `sql` every millisecond until `done` accepts its answer, at most `limit`.
pub async fn until(
    client: &Client,
    sql: &str,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let got = one(client, sql).await;
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{sql} still answers {got:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
