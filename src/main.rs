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
}

fn main() -> std::process::ExitCode {
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
    tracing::info!("shutting down");
    server.shutdown.cancel();
    let _ = server.done.await;
    std::process::ExitCode::SUCCESS
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
