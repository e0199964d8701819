//! A throwaway PostgreSQL server from Debian's packages, for benchmarks that compare with it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
}

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

/// Runs `program args` as the postgres user when we are root (initdb refuses root).
fn run(program: &Path, args: &[&str]) {
    let status = if unsafe { libc::geteuid() } == 0 {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .status()
    } else {
        Command::new(program).args(args).status()
    }
    .expect("PostgreSQL tools run");
    assert!(status.success(), "{} {:?} failed", program.display(), args);
}

impl Postgres {
    pub fn start(dir: &Path, port: u16) -> Postgres {
        std::fs::create_dir_all(dir).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .unwrap();
        }
        let bin = bin_dir();
        let data = dir.join("data");
        let data_s = data.to_str().unwrap().to_string();
        run(
            &bin.join("initdb"),
            &["-D", &data_s, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        let log = dir.join("log").to_str().unwrap().to_string();
        run(
            &bin.join("pg_ctl"),
            &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"],
        );
        Postgres {
            port,
            dir: dir.to_path_buf(),
            bin,
        }
    }

    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        run(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
