//! The `backstop` command: the server, and the shell tools that talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
        /// Refuse clients that do not use TLS (28000); needs --tls-cert and --tls-key.
        #[arg(long, requires = "tls_cert", env = "BACKSTOP_TLS_REQUIRED")]
        tls_required: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics (for example 127.0.0.1:9187).
        #[arg(long, env = "BACKSTOP_METRICS")]
        metrics: Option<SocketAddr>,
    },
    /// Archive one log segment: PostgreSQL's `archive_command = 'backstop archive-push --tenant
    /// t %p'`. The segment's bytes go over the connection, so PostgreSQL may run under another
    /// account or on another host. Exits 0 only once the segment is durable in the archive (or,
    /// under BINDING=OPTIONAL, when archiving is off and the source may go on).
    ArchivePush {
        #[arg(long)]
        tenant: String,
        /// The segment file (relative paths are taken from the current directory).
        path: PathBuf,
        /// Send the path instead of the bytes: the server, on the same host, reads the file.
        #[arg(long)]
        server_reads_path: bool,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Fetch one archived log segment: PostgreSQL's `restore_command = 'backstop archive-get
    /// --tenant t %f %p'`. The bytes come over the connection and are written here, durably.
    /// Exits non-zero when the archive does not hold the segment.
    ArchiveGet {
        #[arg(long)]
        tenant: String,
        /// The segment's name.
        name: String,
        /// Where to write it.
        path: PathBuf,
        /// Let the server write the file itself (same host, its own account).
        #[arg(long)]
        server_writes_path: bool,
        /// Read the segment from these destinations (comma-separated URIs), for a restore on
        /// a server whose catalog does not know the tenant.
        #[arg(long)]
        at: Option<String>,
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
    /// The user's password; PGPASSWORD is read too. Prefer --password-file or the
    /// environment: a command line is visible to every user of the host.
    #[arg(long, env = "BACKSTOP_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A file whose first line is the user's password (for archive_command and
    /// restore_command, which run under PostgreSQL's account).
    #[arg(long, env = "BACKSTOP_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

impl ServerAddress {
    fn password(&self) -> Result<Option<String>, String> {
        if let Some(file) = &self.password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the password file {}: {e}", file.display()))?;
            return Ok(Some(text.lines().next().unwrap_or_default().to_string()));
        }
        Ok(self
            .password
            .clone()
            .or_else(|| std::env::var("PGPASSWORD").ok()))
    }
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

/// Logs go to stderr, as text, or with `BACKSTOP_LOG_FORMAT=json` one JSON object per line
/// (for log shippers): the event's fields (job_id, task_id, tenant, ...) at the top level and
/// the spans it ran in.
fn init_logging() {
    let filter = EnvFilter::try_from_env("BACKSTOP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BACKSTOP_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        builder.init();
    }
}

/// The command line, with a version that names the repository format this build writes.
fn parse_command_line() -> Cli {
    let version: &'static str = Box::leak(
        format!(
            "{} (repository format {})",
            env!("CARGO_PKG_VERSION"),
            backstop::engine::format::FORMAT_VERSION
        )
        .into_boxed_str(),
    );
    let matches = Cli::command().version(version).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    init_logging();
    let cli = parse_command_line();
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
            tls_required,
            metrics,
        } => {
            let config = backstop::server::ServerConfig {
                listen,
                data_dir,
                admin_password,
                tls_cert,
                tls_key,
                tls_required,
            };
            runtime.block_on(run_server(config, metrics))
        }
        Command::ArchivePush {
            tenant,
            path,
            server_reads_path,
            server,
        } => {
            let path = match std::path::absolute(&path) {
                Ok(path) => path,
                Err(e) => return fail("archive-push", &format!("{}: {e}", path.display())),
            };
            if server_reads_path {
                let sql = format!(
                    "ALTER SYSTEM PUSH ARCHIVELOG {} TENANT = {}",
                    literal(&path.to_string_lossy()),
                    ident(&tenant)
                );
                return runtime.block_on(run_tool("archive-push", &server, Tool::Statement(sql)));
            }
            let name = match path.file_name().and_then(|n| n.to_str()) {
                Some(name) => name.to_string(),
                None => return fail("archive-push", &format!("{} names no file", path.display())),
            };
            let data = match std::fs::read(&path) {
                Ok(data) => data,
                Err(e) => {
                    return fail(
                        "archive-push",
                        &format!("cannot read {}: {e}", path.display()),
                    );
                }
            };
            let sql = format!(
                "ALTER SYSTEM PUSH ARCHIVELOG {} TENANT = {} DATA $1",
                literal(&name),
                ident(&tenant)
            );
            runtime.block_on(run_tool("archive-push", &server, Tool::Push(sql, data)))
        }
        Command::ArchiveGet {
            tenant,
            name,
            path,
            server_writes_path,
            at,
            server,
        } => {
            let path = match std::path::absolute(&path) {
                Ok(path) => path,
                Err(e) => return fail("archive-get", &format!("{}: {e}", path.display())),
            };
            if server_writes_path {
                let sql = format!(
                    "ALTER SYSTEM GET ARCHIVELOG {} TENANT = {} TO {}",
                    literal(&name),
                    ident(&tenant),
                    literal(&path.to_string_lossy())
                );
                return runtime.block_on(run_tool("archive-get", &server, Tool::Statement(sql)));
            }
            let mut sql = format!(
                "ALTER SYSTEM GET ARCHIVELOG {} TENANT = {}",
                literal(&name),
                ident(&tenant)
            );
            if let Some(at) = at {
                sql.push_str(&format!(" AT {}", literal(&at)));
            }
            runtime.block_on(run_tool("archive-get", &server, Tool::Get(sql, path)))
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

/// What a shell tool asks of the server.
enum Tool {
    /// A statement whose rows (if any) say what happened.
    Statement(String),
    /// `PUSH ARCHIVELOG ... DATA $1` with the segment's bytes.
    Push(String, Vec<u8>),
    /// `GET ARCHIVELOG` whose row carries the bytes, written to the path durably.
    Get(String, PathBuf),
}

/// Runs one tool's request; prints what a non-archived segment means on stderr.
async fn run_tool(tool: &str, server: &ServerAddress, request: Tool) -> std::process::ExitCode {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&server.host)
        .port(server.port)
        .user(&server.user)
        .dbname("backstop")
        .application_name(format!("backstop {tool}"))
        .connect_timeout(std::time::Duration::from_secs(10));
    match server.password() {
        Ok(Some(password)) => {
            config.password(password);
        }
        Ok(None) => {}
        Err(e) => return fail(tool, &e),
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
    let db_fail = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => fail(tool, &format!("{} ({})", db.message(), db.code().code())),
        None => fail(tool, &e.to_string()),
    };
    let report = |segment: Option<&str>, detail: Option<&str>| {
        if let Some(detail) = detail {
            eprintln!("backstop {tool}: {}: {detail}", segment.unwrap_or(""));
        }
    };
    match request {
        Tool::Statement(sql) => match client.simple_query(&sql).await {
            Ok(messages) => {
                for message in messages {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                        report(row.get("segment"), row.get("detail"));
                    }
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => db_fail(e),
        },
        Tool::Push(sql, data) => match client.query(&sql, &[&data]).await {
            Ok(rows) => {
                for row in rows {
                    report(row.get("segment"), row.get("detail"));
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => db_fail(e),
        },
        Tool::Get(sql, path) => match client.query_one(&sql, &[]).await {
            Ok(row) => {
                let data: Vec<u8> = row.get("data");
                match write_durably(&path, &data) {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => fail(tool, &format!("cannot write {}: {e}", path.display())),
                }
            }
            Err(e) => db_fail(e),
        },
    }
}

/// Writes `data` to `path` through a temporary file in the same folder, fsynced, then renamed:
/// PostgreSQL never sees half a segment.
fn write_durably(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    backstop::executor::archive::write_durably(path, data)?;
    match path.parent() {
        Some(parent) => std::fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

async fn run_server(
    config: backstop::server::ServerConfig,
    metrics: Option<SocketAddr>,
) -> std::process::ExitCode {
    let server = match backstop::server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("backstop: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("backstop: listening on {}", server.addr);
    if let Some(addr) = metrics {
        match server.serve_metrics(addr).await {
            Ok(bound) => println!("backstop: metrics at http://{bound}/metrics"),
            Err(e) => {
                eprintln!("backstop: cannot serve metrics on {addr}: {e}");
                server.stop(SHUTDOWN_GRACE).await;
                return std::process::ExitCode::FAILURE;
            }
        }
    }
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
