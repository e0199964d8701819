//! The `backstop` command: the server, and the shell tools that talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "backstop",
    version,
    about = "A backup server driven by SQL over the PostgreSQL wire protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Server {
        /// Address to listen on. Anything but loopback needs an admin password on first start.
        #[arg(long, default_value = "127.0.0.1:5433", env = "BACKSTOP_LISTEN")]
        listen: SocketAddr,
        /// Where the catalog and the generated admin password are kept.
        #[arg(long, default_value = "./backstop-data", env = "BACKSTOP_DATA_DIR")]
        data_dir: PathBuf,
        /// Password of the `admin` user created on first start (else generated and printed once).
        #[arg(long, env = "BACKSTOP_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// PEM certificate chain for TLS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for TLS.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Archive one log segment: PostgreSQL's `archive_command = 'backstop archive-push --tenant
    /// t %p'`. Exits 0 only once the segment is durable in the archive (or, under
    /// BINDING=OPTIONAL, when archiving is off and the source may go on).
    ArchivePush {
        #[arg(long)]
        tenant: String,
        /// The segment file (relative paths are taken from the current directory).
        path: PathBuf,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Fetch one archived log segment: PostgreSQL's `restore_command = 'backstop archive-get
    /// --tenant t %f %p'`. Exits non-zero when the archive does not hold it.
    ArchiveGet {
        #[arg(long)]
        tenant: String,
        /// The segment's name.
        name: String,
        /// Where to write it.
        path: PathBuf,
        #[command(flatten)]
        server: ServerAddress,
    },
}

/// How the shell tools reach a running server (on the same host: the paths they send are
/// opened by the server).
#[derive(clap::Args)]
struct ServerAddress {
    #[arg(long, default_value = "127.0.0.1", env = "BACKSTOP_HOST")]
    host: String,
    #[arg(long, default_value_t = 5433, env = "BACKSTOP_PORT")]
    port: u16,
    #[arg(long, default_value = "admin", env = "BACKSTOP_USER")]
    user: String,
    /// The user's password; PGPASSWORD is read too.
    #[arg(long, env = "BACKSTOP_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// glibc's malloc raises its mmap threshold each time a large block is freed, after which the
/// backup's multi-MiB buffers come from per-thread arenas that keep their pages: the server's
/// peak memory then grows with the number of threads that ever held a buffer. A fixed threshold
/// keeps large buffers in their own mappings, returned when freed, and two arenas per core are
/// plenty for a server whose heavy work runs on a few threads.
fn tune_allocator() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // SAFETY: mallopt only changes allocator parameters; main calls it before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_ARENA_MAX, (2 * cores) as libc::c_int);
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BACKSTOP_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match cli.command {
        Command::Server {
            listen,
            data_dir,
            admin_password,
            tls_cert,
            tls_key,
        } => {
            let config = backstop::server::ServerConfig {
                listen,
                data_dir,
                admin_password,
                tls_cert,
                tls_key,
            };
            runtime.block_on(run_server(config))
        }
        Command::ArchivePush {
            tenant,
            path,
            server,
        } => {
            let path = match std::path::absolute(&path) {
                Ok(path) => path,
                Err(e) => return fail("archive-push", &format!("{}: {e}", path.display())),
            };
            let sql = format!(
                "ALTER SYSTEM PUSH ARCHIVELOG {} TENANT = {}",
                literal(&path.to_string_lossy()),
                ident(&tenant)
            );
            runtime.block_on(run_tool("archive-push", &server, &sql))
        }
        Command::ArchiveGet {
            tenant,
            name,
            path,
            server,
        } => {
            let path = match std::path::absolute(&path) {
                Ok(path) => path,
                Err(e) => return fail("archive-get", &format!("{}: {e}", path.display())),
            };
            let sql = format!(
                "ALTER SYSTEM GET ARCHIVELOG {} TENANT = {} TO {}",
                literal(&name),
                ident(&tenant),
                literal(&path.to_string_lossy())
            );
            runtime.block_on(run_tool("archive-get", &server, &sql))
        }
    }
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn fail(tool: &str, message: &str) -> std::process::ExitCode {
    eprintln!("backstop {tool}: {message}");
    std::process::ExitCode::FAILURE
}

/// Sends one statement to the server; prints what a non-archived segment means on stderr.
async fn run_tool(tool: &str, server: &ServerAddress, sql: &str) -> std::process::ExitCode {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&server.host)
        .port(server.port)
        .user(&server.user)
        .dbname("backstop")
        .application_name(format!("backstop {tool}"))
        .connect_timeout(std::time::Duration::from_secs(10));
    if let Some(password) = server
        .password
        .clone()
        .or_else(|| std::env::var("PGPASSWORD").ok())
    {
        config.password(password);
    }
    let client = match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) => {
            return fail(
                tool,
                &format!(
                    "cannot reach the server at {}:{}: {e}",
                    server.host, server.port
                ),
            );
        }
    };
    match client.simple_query(sql).await {
        Ok(messages) => {
            for message in messages {
                if let tokio_postgres::SimpleQueryMessage::Row(row) = message
                    && let Some(detail) = row.get("detail")
                {
                    eprintln!(
                        "backstop {tool}: {}: {detail}",
                        row.get("segment").unwrap_or("")
                    );
                }
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => match e.as_db_error() {
            Some(db) => fail(tool, &format!("{} ({})", db.message(), db.code().code())),
            None => fail(tool, &e.to_string()),
        },
    }
}

async fn run_server(config: backstop::server::ServerConfig) -> std::process::ExitCode {
    let server = match backstop::server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("backstop: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("backstop: listening on {}", server.addr);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    tracing::info!("shutting down: suspending running jobs; a second signal exits at once");
    tokio::select! {
        _ = server.stop(SHUTDOWN_GRACE) => {
            tracing::info!("shut down");
            std::process::ExitCode::SUCCESS
        }
        _ = tokio::signal::ctrl_c() => second_signal(),
        _ = terminate() => second_signal(),
    }
}

/// How long a clean shutdown waits for running jobs to suspend; the process exits within
/// about this and the time to close connections (the limit is 10 s).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// A second SIGTERM or SIGINT during the shutdown: exit now. Every catalog write is committed
/// already; jobs not yet suspended are recovered at the next start (SERVER_RESTART).
fn second_signal() -> std::process::ExitCode {
    tracing::warn!("second signal: exiting at once");
    std::process::ExitCode::from(1)
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
