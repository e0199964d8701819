//! What a hostile or careless client cannot take from the server: connections beyond
//! `max_connections`, a handshake longer than `authentication_timeout`, an idle session longer
//! than `idle_session_timeout`, a statement longer than `max_statement_size`; and a thousand
//! connections dropped at random stages of the handshake leave no connection and no task
//! behind, and the server serving.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, TestServer, sqlstate, value};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("admin")
        .password(ADMIN_PASSWORD)
        .dbname("backstop")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_limit_and_statement_size_are_enforced() {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    admin
        .batch_execute(
            "ALTER SYSTEM SET max_connections = 3; ALTER SYSTEM SET max_statement_size = '2KB'",
        )
        .await
        .unwrap();
    let second = connect(server.port()).await.unwrap();
    let third = connect(server.port()).await.unwrap();
    let refused = connect(server.port())
        .await
        .err()
        .expect("a fourth is refused");
    assert_eq!(sqlstate(&refused), "53300", "{refused:?}");
    let said = refused
        .as_db_error()
        .map(|e| e.message())
        .unwrap_or_default();
    assert!(said.contains("max_connections is 3"), "{said}");
    drop(third);
    eventually(Duration::from_secs(10), "a freed slot", || {
        server.server.open_connections() < 3
    })
    .await;
    let again = connect(server.port()).await.unwrap();
    assert_eq!(value(&again, "SELECT 1").await, "1");

    let long = format!("SELECT '{}'", "x".repeat(3000));
    let err = second.simple_query(&long).await.unwrap_err();
    assert_eq!(sqlstate(&err), "54000", "{err:?}");
    let said = err.as_db_error().map(|e| e.message()).unwrap_or_default();
    assert!(said.contains("max_statement_size"), "{said}");
    // The extended protocol's Parse is held to the same size.
    let err = second.prepare(&long).await.unwrap_err();
    assert_eq!(sqlstate(&err), "54000", "{err:?}");
    // The session goes on.
    assert_eq!(value(&second, "SELECT 2").await, "2");
    let fits = format!("SELECT '{}'", "x".repeat(1000));
    second.simple_query(&fits).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_handshakes_and_idle_sessions_are_disconnected() {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    admin
        .batch_execute(
            "ALTER SYSTEM SET authentication_timeout = '1s'; \
             ALTER SYSTEM SET idle_session_timeout = '1s'",
        )
        .await
        .unwrap();
    // A client that connects and says nothing is closed after the timeout.
    let mut silent = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("the server closes a silent client");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A session that goes idle is told 57P05 and closed.
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(server.port())
        .user("admin")
        .password(ADMIN_PASSWORD)
        .dbname("backstop")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(connection);
    assert_eq!(value(&client, "SELECT 1").await, "1");
    let ended = tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("an idle session is closed")
        .unwrap();
    let err = ended.expect_err("closed with an error");
    assert_eq!(sqlstate(&err), "57P05", "{err:?}");
    assert!(client.simple_query("SELECT 1").await.is_err());
}

/// One connection that stops at a random stage of the startup: before any byte, in the middle
/// of the startup packet, after an SSLRequest, after the startup message, in the middle of
/// SCRAM, or right after logging in.
async fn drop_at_random_stage(port: u16, rng: &mut rand::rngs::StdRng) {
    let stage = rng.random_range(0..6);
    if stage == 5 {
        let client = connect(port).await.unwrap();
        drop(client);
        return;
    }
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let mut startup = Vec::new();
    let params = b"user\0admin\0database\0backstop\0\0";
    startup.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
    startup.extend_from_slice(&196608u32.to_be_bytes());
    startup.extend_from_slice(params);
    let written = match stage {
        0 => Ok(()),
        1 => {
            let cut = rng.random_range(1..startup.len());
            tcp.write_all(&startup[..cut]).await
        }
        2 => tcp.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await,
        3 => tcp.write_all(&startup).await,
        _ => {
            // The startup, then a truncated SASLInitialResponse.
            let mut bytes = startup.clone();
            bytes.extend_from_slice(b"p\0\0\0\x40SCRAM-SHA-256\0");
            tcp.write_all(&bytes).await
        }
    };
    if written.is_ok() && rng.random_bool(0.5) {
        // Sometimes wait for what the server answers before leaving.
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut buf)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_dropped_handshakes_leave_no_connection_or_task_behind() {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    assert_eq!(value(&admin, "SELECT 1").await, "1");
    let metrics = tokio::runtime::Handle::current().metrics();
    // Let the server's background tasks settle, then count what is alive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tasks_before = metrics.num_alive_tasks();
    let connections_before = server.server.open_connections();
    assert_eq!(connections_before, 1);

    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    for batch in 0..50 {
        let mut handshakes = Vec::new();
        for i in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(rng.random::<u64>() ^ (batch * 20 + i));
            let port = server.port();
            handshakes.push(tokio::spawn(async move {
                drop_at_random_stage(port, &mut rng).await;
            }));
        }
        for handshake in handshakes {
            handshake.await.unwrap();
        }
    }
    eventually(
        Duration::from_secs(30),
        "every dropped connection forgotten",
        || server.server.open_connections() == connections_before,
    )
    .await;
    eventually(Duration::from_secs(30), "no task left behind", || {
        metrics.num_alive_tasks() <= tasks_before
    })
    .await;
    // The server still serves, old sessions and new ones.
    assert_eq!(value(&admin, "SELECT 2").await, "2");
    let fresh = connect(server.port()).await.unwrap();
    assert_eq!(value(&fresh, "SELECT 3").await, "3");
}

/// Found by the `wire` fuzz target: pgwire's decoder panics on a Parse message that declares
/// more parameter types than it holds, even before the client has logged in. The panic ends
/// that connection only, and the connection is forgotten: 150 of them (more than
/// max_connections) leave the server serving.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_messages_that_panic_the_decoder_do_not_leak_connections() {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    let params = b"user\0admin\0database\0backstop\0\0";
    let mut startup = Vec::new();
    startup.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
    startup.extend_from_slice(&196608u32.to_be_bytes());
    startup.extend_from_slice(params);
    let body = b"\0SELECT 1\0\0\x05";
    let mut parse = vec![b'P'];
    parse.extend_from_slice(&((4 + body.len()) as u32).to_be_bytes());
    parse.extend_from_slice(body);
    for _ in 0..150 {
        let mut tcp = TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .unwrap();
        tcp.write_all(&startup).await.unwrap();
        tcp.write_all(&parse).await.unwrap();
        // The server closes the connection (or answers): it does not keep it.
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) if Instant::now() < deadline => continue,
                _ => panic!("the server kept a connection a malformed Parse broke"),
            }
        }
    }
    eventually(
        Duration::from_secs(30),
        "every broken connection forgotten",
        || server.server.open_connections() == 1,
    )
    .await;
    assert_eq!(value(&admin, "SELECT 1").await, "1");
    let fresh = connect(server.port()).await.unwrap();
    assert_eq!(value(&fresh, "SELECT 2").await, "2");
}
