//! A real MariaDB server for the MySQL tests: a fresh data directory in a
//! temp dir, `mariadbd` on a free loopback port (and a Unix socket for the
//! `mariadb` client that sets it up), killed on drop. With TLS when it is
//! given a certificate.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::services::free_port;
use crate::{TempDir, poll_until};

/// The database and the user with a password that tests connect as.
pub const DATABASE: &str = "spin";
pub const USER: &str = "spin";
pub const PASSWORD: &str = "sp1n-pass";

pub struct Mariadb {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// Options for both the bootstrap (`mariadb-install-db` passes them on) and
/// the server: no my.cnf from the machine, small InnoDB files and buffers.
const SMALL: [&str; 3] = [
    "--innodb-log-file-size=4M",
    "--innodb-buffer-pool-size=16M",
    "--skip-log-bin",
];

/// `--user=root` when running as root: mariadbd refuses root without it,
/// and anyone else may not switch users.
fn user_args() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    if root { vec!["--user=root"] } else { vec![] }
}

impl Mariadb {
    /// Installs the system tables, starts the server and creates
    /// [`DATABASE`] and [`USER`] (from any host, with [`PASSWORD`]).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With more `mariadbd` options (`--ssl-cert=...`).
    pub fn start_with(extra: &[String]) -> Self {
        let dir = TempDir::new("mariadb");
        let data = dir.path().join("data");
        // A temporary directory of its own: servers bootstrapping at once in
        // /tmp collide on their temporary tables' names.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("the server's tmpdir");
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let install = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(user_args())
            .args(SMALL)
            .output()
            .expect("running mariadb-install-db (package mariadb-server)");
        assert!(
            install.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let port = free_port();
        let socket = dir.path().join("sock");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .arg("--skip-name-resolve")
            .args(user_args())
            .args(SMALL)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mariadbd (package mariadb-server)");
        let server = Self { child, port, dir };
        assert!(
            poll_until(Duration::from_secs(60), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()
                && socket.exists()),
            "mariadbd did not listen on {port}: {}",
            std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default()
        );
        server.sql(&format!(
            "CREATE DATABASE {DATABASE}; \
             CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
        ));
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://spin:sp1n-pass@127.0.0.1:<port>/spin`.
    pub fn address(&self) -> String {
        self.address_with(PASSWORD)
    }

    /// The address with another password.
    pub fn address_with(&self, password: &str) -> String {
        format!(
            "mysql://{USER}:{password}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// Runs `statements` as root over the Unix socket with the `mariadb`
    /// client, and returns what it printed (tab-separated, no headers).
    pub fn sql(&self, statements: &str) -> String {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", statements])
            .output()
            .expect("running the mariadb client (package mariadb-client)");
        assert!(
            out.status.success(),
            "mariadb -e {statements:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
