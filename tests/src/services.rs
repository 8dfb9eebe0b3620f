//! Real services for Flint to talk to: a mosquitto broker, an HTTP and an
//! HTTPS upstream (with a CA made per test), each on a free loopback port
//! and stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::{TempDir, poll_until};

/// A port that was free a moment ago (the listener is closed before use).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// A mosquitto broker on a free port, with persistence in a temp dir.
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// Extra lines for mosquitto.conf.
    extra: String,
}

impl Mosquitto {
    pub fn start() -> Self {
        Self::launch(free_port(), "")
    }

    /// On a given port (one a test reserved earlier).
    pub fn start_on(port: u16) -> Self {
        Self::launch(port, "")
    }

    /// With extra mosquitto.conf lines (e.g. `allow_anonymous false`).
    pub fn start_with(extra: &str) -> Self {
        Self::launch(free_port(), extra)
    }

    fn launch(port: u16, extra: &str) -> Self {
        let mut broker = Self {
            child: None,
            port,
            dir: TempDir::new("mosquitto"),
            extra: extra.to_owned(),
        };
        broker.restart();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts (again) on the same port and persistence directory.
    pub fn restart(&mut self) {
        self.stop();
        let config = format!(
            // mosquitto drops QoS 1 messages queued for a client beyond 1000 by
            // default; a gateway's broker must hold a whole outage's worth.
            // Started as root it would switch to user `mosquitto`, which cannot
            // write the persistence file here: sessions would not survive a restart.
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {dir}/\nmax_queued_messages 0\nuser root\n{extra}\n",
            port = self.port,
            dir = self.dir.path().display(),
            extra = if self.extra.is_empty() {
                "allow_anonymous true"
            } else {
                &self.extra
            },
        );
        let config = self.dir.write("mosquitto.conf", config);
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto (is it installed? scripts/setup.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        assert!(
            poll_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "mosquitto did not listen on {port}"
        );
    }

    /// Kills the broker (SIGKILL): what it had not saved is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker with SIGTERM, so it saves its sessions and queued
    /// messages, as a broker restart for maintenance does.
    pub fn stop_gracefully(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Publishes each line as one message (one connection, in order).
    pub fn publish_lines(&self, topic: &str, lines: &[String], qos: u8) {
        let mut child = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                &qos.to_string(),
                "-t",
                topic,
                "-l",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mosquitto_pub");
        let mut stdin = child.stdin.take().expect("piped stdin");
        for line in lines {
            writeln!(stdin, "{line}").expect("writing to mosquitto_pub");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("mosquitto_pub");
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Publishes one message whose payload is `payload`, byte for byte.
    pub fn publish_bytes(&self, topic: &str, payload: &[u8], qos: u8) {
        let file = self.dir.write("payload.bin", payload);
        let mut args = vec![
            "-h".to_owned(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-q".into(),
            qos.to_string(),
            "-t".into(),
            topic.into(),
        ];
        if payload.is_empty() {
            args.push("-n".into());
        } else {
            args.extend(["-f".into(), file.display().to_string()]);
        }
        let out = Command::new("mosquitto_pub")
            .args(&args)
            .output()
            .expect("mosquitto_pub");
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A `mosquitto_sub` on `topic` (QoS 1), subscribed when this returns.
    pub fn subscribe(&self, topic: &str) -> Subscriber {
        self.subscribe_as(topic, None)
    }

    /// With `Some(id)`, a persistent session under that client id, which
    /// reconnects and gets what the broker kept for it while it was away.
    pub fn subscribe_as(&self, topic: &str, session: Option<&str>) -> Subscriber {
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe, which would
        // hold back both the SUBACK notice and the messages.
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-v",
                "-d",
                "-t",
                topic,
            ])
            .args(session.map(|id| vec!["-c", "-i", id]).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto_sub");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(Mutex::new(false));
        let stdout = child.stdout.take().expect("piped stdout");
        let (l, s) = (lines.clone(), subscribed.clone());
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("received SUBACK") {
                    *s.lock().unwrap() = true;
                } else if !line.starts_with("Client ") && !line.starts_with("Subscribed") {
                    l.lock().unwrap().push(line);
                }
            }
        });
        assert!(
            poll_until(Duration::from_secs(10), || *subscribed.lock().unwrap()),
            "mosquitto_sub did not subscribe to {topic}"
        );
        Subscriber { child, lines }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Messages a `mosquitto_sub` received, as `topic payload` lines.
pub struct Subscriber {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Subscriber {
    /// Waits until `count` messages have arrived (or the timeout) and returns them all.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        poll_until(timeout, || self.lines.lock().unwrap().len() >= count);
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request the upstream received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the upstream answers: status, content type, body.
pub type Answer = (u16, &'static str, Vec<u8>);

/// An HTTP/1.1 server that records every request and answers with `respond`.
pub struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Upstream {
    pub fn start(respond: fn(&Recorded) -> Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let recorded = recorded.clone();
                thread::spawn(move || {
                    if let Some(request) = read_request(&stream) {
                        recorded.lock().unwrap().push(request.clone());
                        let (status, content_type, body) = respond(&request);
                        let mut stream = stream;
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(&body);
                    }
                });
            }
        });
        Self { addr, requests }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

impl Subscriber {
    /// Distinct payloads received (a redelivered message counts once).
    pub fn distinct_payloads(&self) -> std::collections::BTreeSet<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| line.split_once(' ').map(|(_, payload)| payload.to_owned()))
            .collect()
    }
}

/// A certificate authority made for one test (scripts/test-ca): a server
/// certificate for `localhost` only, and a client (device) certificate.
pub struct TestCa {
    pub dir: crate::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = crate::TempDir::new("test-ca");
        let status = Command::new(crate::workspace_root().join("scripts/test-ca"))
            .arg(dir.path())
            .status()
            .expect("scripts/test-ca (needs openssl)");
        assert!(status.success(), "scripts/test-ca failed");
        Self { dir }
    }

    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// scripts/https-test-server with the test CA's `localhost` certificate:
/// every GET answers `tls saw <path>` (and the ALPN protocol chosen); with
/// `require_client_cert` it refuses clients without a certificate from the CA.
pub struct HttpsUpstream {
    child: Child,
    port: u16,
}

impl HttpsUpstream {
    pub fn start(ca: &TestCa, require_client_cert: bool) -> Self {
        let port = free_port();
        let child = Command::new(crate::workspace_root().join("scripts/https-test-server"))
            .arg(port.to_string())
            .arg(ca.file("server.pem"))
            .arg(ca.file("server.key"))
            .arg(ca.file("ca.pem"))
            .arg(if require_client_cert { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("scripts/https-test-server (needs python3)");
        assert!(
            poll_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "the HTTPS upstream did not listen on {port}"
        );
        Self { child, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for HttpsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
