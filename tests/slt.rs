//! Runs every `tests/slt/*.slt` file over the wire against a fresh real server, one server and
//! data directory per file.

mod common;

use std::path::PathBuf;

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::{Client, SimpleQueryMessage};

struct Wire {
    client: Client,
}

#[derive(Debug)]
struct WireError(String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

fn describe(e: tokio_postgres::Error) -> WireError {
    match e.as_db_error() {
        Some(db) => WireError(format!(
            "{}: {}{}",
            db.code().code(),
            db.message(),
            db.detail()
                .map(|d| format!(" DETAIL: {d}"))
                .unwrap_or_default()
        )),
        None => WireError(e.to_string()),
    }
}

#[async_trait::async_trait]
impl AsyncDB for Wire {
    type Error = WireError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, WireError> {
        let messages = self.client.simple_query(sql).await.map_err(describe)?;
        let mut rows = Vec::new();
        let mut columns = 0;
        let mut is_query = false;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => {
                    is_query = true;
                    columns = desc.len();
                }
                SimpleQueryMessage::Row(row) => {
                    is_query = true;
                    columns = row.len();
                    rows.push(
                        (0..row.len())
                            .map(|i| {
                                row.get(i).map_or("NULL".to_string(), |v| {
                                    if v.is_empty() {
                                        "(empty)".into()
                                    } else {
                                        v.to_string()
                                    }
                                })
                            })
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        if is_query {
            Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; columns],
                rows,
            })
        } else {
            Ok(DBOutput::StatementComplete(0))
        }
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }

    async fn run_command(command: std::process::Command) -> std::io::Result<std::process::Output> {
        tokio::process::Command::from(command).output().await
    }
}

#[tokio::main]
async fn main() {
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/slt"))
            .expect("tests/slt exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "slt"))
            .filter(|p| {
                filter
                    .as_ref()
                    .is_none_or(|f| p.to_string_lossy().contains(f.as_str()))
            })
            .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let server = common::TestServer::start().await;
        let port = server.port();
        let mut runner = sqllogictest::Runner::new(move || async move {
            Ok::<_, WireError>(Wire {
                client: common::connect_as(port, "admin", common::ADMIN_PASSWORD).await,
            })
        });
        runner.set_var("PORT".into(), port.to_string());
        let result = if std::env::var_os("SLT_COMPLETE").is_some() {
            // Rewrites the expected results with what the server answers; review the diff.
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .map_err(|e| e.to_string())
        } else {
            runner
                .run_file_async(&file)
                .await
                .map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                passed += 1;
                println!("ok   {}", file.display());
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}\n{e}", file.display());
            }
        }
        server.server.shutdown.cancel();
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
