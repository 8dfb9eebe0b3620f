//! Apps over an OCI registry, against a real one (Debian's `docker-registry`,
//! the CNCF distribution registry): `flint registry push` in Spin's format,
//! `flint up --from REF` on a fresh state directory, the same from the cache
//! with the registry stopped, a tampered blob refused by digest, and
//! credentials (`flint registry login`, Docker's config.json) against a
//! registry that requires htpasswd logins over TLS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use flint_e2e::services::{TestCa, free_port};
use flint_e2e::{Flint, TempDir, apps_dir, flint_bin, poll_until, showcase_manifest};

/// The registry binary of Debian's `docker-registry` package.
const REGISTRY_BIN: &str = "docker-registry";

/// A registry on a free port with its storage in a temp dir.
struct Registry {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    config: PathBuf,
}

struct RegistryOptions<'a> {
    tls: Option<&'a TestCa>,
    /// `user:password` pairs for an htpasswd file (bcrypt, via `htpasswd -B`).
    users: &'a [(&'a str, &'a str)],
}

impl Registry {
    fn start() -> Registry {
        Self::start_with(RegistryOptions {
            tls: None,
            users: &[],
        })
    }

    fn start_with(options: RegistryOptions<'_>) -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        if let Some(ca) = options.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.file("server.pem").display(),
                ca.file("server.key").display()
            ));
        }
        if !options.users.is_empty() {
            let htpasswd = dir.path().join("htpasswd");
            for (i, (user, password)) in options.users.iter().enumerate() {
                let mut cmd = Command::new("htpasswd");
                if i == 0 {
                    cmd.arg("-c");
                }
                let status = cmd
                    .args(["-B", "-b"])
                    .arg(&htpasswd)
                    .args([user, password])
                    .stderr(Stdio::null())
                    .status()
                    .expect("running htpasswd (scripts/test installs apache2-utils)");
                assert!(status.success(), "htpasswd failed");
            }
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: flint-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.write("config.yml", config);
        let mut registry = Registry {
            child: None,
            port,
            dir,
            config: config_path,
        };
        registry.restart();
        registry
    }

    fn restart(&mut self) {
        self.stop();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running docker-registry (scripts/test installs it)");
        self.child = Some(child);
        let port = self.port;
        assert!(
            poll_until(Duration::from_secs(20), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "the registry did not listen on {port}"
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `127.0.0.1:PORT/<repository>` (or `localhost:PORT/…` for TLS, whose
    /// certificate names `localhost` only).
    fn reference(&self, host: &str, repository: &str) -> String {
        format!("{host}:{}/{repository}", self.port)
    }

    /// The file where the registry keeps a blob.
    fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// Every blob the registry holds: (hex digest, size).
    fn blobs(&self) -> Vec<(String, u64)> {
        let root = self
            .dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256");
        let mut out = Vec::new();
        for prefix in std::fs::read_dir(&root).expect("blob dir") {
            for blob in std::fs::read_dir(prefix.expect("entry").path()).expect("blob dir") {
                let blob = blob.expect("entry").path();
                let size = std::fs::metadata(blob.join("data")).map_or(0, |m| m.len());
                let hex = blob
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                out.push((hex, size));
            }
        }
        out
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a test's flint processes keep (and look for) credentials: never
/// the real home directory.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: TempDir::new("oci-home"),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let path = |p: &str| self.dir.path().join(p).display().to_string();
        vec![
            ("HOME".into(), path("home")),
            ("XDG_CONFIG_HOME".into(), path("xdg")),
            ("DOCKER_CONFIG".into(), path("docker")),
        ]
    }

    fn auth_file(&self) -> PathBuf {
        self.dir.path().join("xdg/flint/registry-auth.json")
    }
}

/// Runs `flint ARGS` to completion with `env`, feeding `stdin`.
fn flint(args: &[&str], env: &[(String, String)], stdin: &str) -> Output {
    let scratch = TempDir::new("oci-run");
    let mut child = Command::new(flint_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("SSL_CERT_DIR")
        .current_dir(scratch.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning flint");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("writing stdin");
    let out = child.wait_with_output().expect("waiting for flint");
    eprintln!(
        "flint {args:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "flint failed (output above)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "flint should have failed (output above)"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `flint up --from REF --insecure` with `state_dir` and `env`.
fn up_from(reference: &str, state_dir: &Path, env: &[(String, String)], insecure: bool) -> Flint {
    let mut builder = Flint::builder(reference).state_dir(state_dir);
    if insecure {
        builder = builder.arg("--insecure");
    }
    for (k, v) in env {
        builder = builder.process_env(k, v);
    }
    builder.start()
}

/// The digest `flint registry push` printed.
fn pushed_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Pushed with digest "))
        .unwrap_or_else(|| panic!("no digest in {stdout:?}"))
        .trim()
        .to_owned()
}

/// The showcase routes a pulled copy must answer exactly as the original does.
const SHOWCASE_PATHS: [&str; 5] = [
    "/hello",
    "/greet/ada",
    "/static/index.html",
    "/static/hello.txt",
    "/static-response",
];

#[test]
fn a_pushed_app_runs_from_the_registry_and_then_from_the_cache_offline() {
    let home = Home::new();
    let env = home.env();
    let mut registry = Registry::start();
    let reference = registry.reference("127.0.0.1", "flint/showcase:v1");
    let manifest = showcase_manifest();
    let manifest = manifest.to_str().expect("utf-8 path");
    let out = flint(
        &["registry", "push", &reference, "-f", manifest, "--insecure"],
        &env,
        "",
    );
    let digest = pushed_digest(&ok(&out));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // Spin's layout: Wasm and data layers, small files inlined, the locked
    // app as a layer. showcase has two Wasm modules and one 137-byte file (a
    // layer; the 25-byte one is inlined); then the locked app, the config and
    // the manifest (which the registry keeps as a blob too).
    let blobs = registry.blobs();
    assert_eq!(blobs.len(), 2 + 1 + 1 + 1 + 1, "{blobs:?}");

    let original = Flint::showcase();
    let state = TempDir::new("oci-state");
    let state_dir = state.path().join("state");
    {
        let pulled = up_from(&reference, &state_dir, &env, true);
        for path in SHOWCASE_PATHS {
            let (want, got) = (original.get(path), pulled.get(path));
            assert_eq!(got.status, want.status, "{path}");
            assert_eq!(got.text(), want.text(), "{path}");
        }
        let env_page = pulled.get("/env/x").text();
        assert!(
            env_page.contains("SHOWCASE_GREETING=from-the-manifest"),
            "{env_page}"
        );
        pulled.wait_for_log_line(&["flint::oci", "pulled", &reference]);
    }
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        state_dir.join("oci/blobs/sha256").join(hex).is_file(),
        "manifest cached"
    );
    assert!(
        state_dir
            .join("oci/apps")
            .join(hex)
            .join("spin.toml")
            .is_file(),
        "materialized app"
    );

    // No uplink: the cached manifest and blobs serve, and the log says so.
    registry.stop();
    let offline = up_from(&reference, &state_dir, &env, true);
    for path in SHOWCASE_PATHS {
        assert_eq!(
            offline.get(path).text(),
            original.get(path).text(),
            "{path}"
        );
    }
    offline.wait_for_log_line(&[
        "flint::oci",
        "unreachable",
        "using the cached manifest",
        &digest,
    ]);

    // A fresh state directory has nothing to fall back on.
    let fresh = TempDir::new("oci-fresh");
    let fresh_state = fresh.path().join("state");
    let fresh_state = fresh_state.to_str().expect("utf-8");
    let stderr = failed(&flint(
        &[
            "up",
            "--from",
            &reference,
            "--insecure",
            "--state-dir",
            fresh_state,
        ],
        &env,
        "",
    ));
    assert!(
        stderr.contains("unreachable") && stderr.contains("holds no manifest"),
        "{stderr}"
    );
}

#[test]
fn deploy_from_a_registry_makes_the_pulled_app_current() {
    let home = Home::new();
    let env = home.env();
    let mut registry = Registry::start();
    let reference = registry.reference("127.0.0.1", "flint/deployed:v1");
    let manifest = showcase_manifest();
    ok(&flint(
        &[
            "registry",
            "push",
            &reference,
            "-f",
            manifest.to_str().expect("utf-8"),
            "-k",
        ],
        &env,
        "",
    ));
    let apps = TempDir::new("oci-app-dir");
    let app_dir = apps.path().join("app");
    let app_dir_arg = app_dir.to_str().expect("utf-8");
    let stdout = ok(&flint(
        &[
            "deploy",
            "--from",
            &reference,
            "-k",
            "--app-dir",
            app_dir_arg,
        ],
        &env,
        "",
    ));
    assert!(stdout.contains("is current"), "{stdout}");
    assert!(
        app_dir.join("state/oci/blobs/sha256").is_dir(),
        "the cache is the app's state"
    );
    {
        let served = Flint::builder_app_dir(&app_dir).start();
        assert_eq!(
            served.get("/static/hello.txt").text(),
            "hello from a static file\n"
        );
    }
    // Offline, the same reference deploys from the cache: nothing changes.
    registry.stop();
    let stdout = ok(&flint(
        &[
            "deploy",
            "--from",
            &reference,
            "-k",
            "--app-dir",
            app_dir_arg,
        ],
        &env,
        "",
    ));
    assert!(stdout.contains("already current"), "{stdout}");
}

#[test]
fn a_tampered_blob_is_refused_naming_its_digest() {
    let home = Home::new();
    let env = home.env();
    let registry = Registry::start();
    let reference = registry.reference("127.0.0.1", "flint/tampered:v1");
    let manifest = showcase_manifest();
    ok(&flint(
        &[
            "registry",
            "push",
            &reference,
            manifest.to_str().expect("utf-8"),
            "-k",
        ],
        &env,
        "",
    ));
    // The largest blob is a Wasm layer: change one byte of it in the
    // registry's storage, keeping its size.
    let (hex, _) = registry
        .blobs()
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .expect("blobs");
    let file = registry.blob_file(&hex);
    let mut bytes = std::fs::read(&file).expect("blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&file, bytes).expect("tamper");

    let state = TempDir::new("oci-tampered");
    let state_dir = state.path().join("state");
    let stderr = failed(&flint(
        &[
            "up",
            "--from",
            &reference,
            "-k",
            "--state-dir",
            state_dir.to_str().expect("utf-8"),
        ],
        &env,
        "",
    ));
    assert!(
        stderr.contains("digest mismatch") && stderr.contains(&format!("sha256:{hex}")),
        "{stderr}"
    );
    assert!(
        !state_dir.join("oci/blobs/sha256").join(&hex).exists(),
        "the altered blob must not be cached"
    );
}

#[test]
fn key_value_stores_and_variables_survive_the_round_trip() {
    let home = Home::new();
    let env = home.env();
    let registry = Registry::start();
    let reference = registry.reference("127.0.0.1", "flint/spin-kv:0.1.0");
    let app = apps_dir().join("spin-kv");
    ok(&flint(
        &[
            "registry",
            "push",
            &reference,
            app.to_str().expect("utf-8"),
            "--insecure",
        ],
        &env,
        "",
    ));
    // `flint registry pull` fills the cache of a state directory.
    let state = TempDir::new("oci-kv");
    let state_dir = state.path().join("state");
    let stdout = ok(&flint(
        &[
            "registry",
            "pull",
            &reference,
            "--insecure",
            "--state-dir",
            state_dir.to_str().expect("utf-8"),
        ],
        &env,
        "",
    ));
    assert!(stdout.contains("Pulled"), "{stdout}");
    let spin_toml = std::fs::read_to_string(
        std::fs::read_dir(state_dir.join("oci/apps"))
            .expect("apps")
            .map(|e| e.expect("entry").path().join("spin.toml"))
            .find(|p| p.is_file())
            .expect("a materialized app"),
    )
    .expect("spin.toml");
    assert!(
        spin_toml.contains(r#"key_value_stores = ["default", "other"]"#),
        "{spin_toml}"
    );

    let mut builder = Flint::builder(&reference)
        .state_dir(&state_dir)
        .arg("--insecure")
        .runtime_config("[key_value_store.other]\ntype = \"spin\"\n");
    for (k, v) in &env {
        builder = builder.process_env(k, v);
    }
    let flint = builder.start();
    let first = flint.get("/counter");
    first.assert_status(200);
    let second = flint.get("/counter");
    assert_ne!(first.text(), second.text(), "the counter counts");
}

#[test]
fn credentials_from_login_and_from_docker_config_reach_an_htpasswd_registry_over_tls() {
    let ca = TestCa::new();
    let registry = Registry::start_with(RegistryOptions {
        tls: Some(&ca),
        users: &[("ada", "lovelace")],
    });
    let home = Home::new();
    let mut env = home.env();
    let server = format!("localhost:{}", registry.port);
    let reference = registry.reference("localhost", "flint/private:v1");
    let manifest = showcase_manifest();
    let manifest = manifest.to_str().expect("utf-8");

    // The device's CA store does not know the test CA.
    let stderr = failed(&flint(
        &["registry", "push", &reference, manifest],
        &env,
        "",
    ));
    assert!(stderr.contains("certificate"), "{stderr}");

    // rustls-native-certs reads SSL_CERT_FILE, so the test CA can be trusted.
    env.push((
        "SSL_CERT_FILE".into(),
        ca.file("ca.pem").display().to_string(),
    ));
    let stderr = failed(&flint(
        &["registry", "push", &reference, manifest],
        &env,
        "",
    ));
    assert!(stderr.contains("flint registry login"), "{stderr}");

    let stderr = failed(&flint(
        &["registry", "login", &server, "-u", "ada", "-p", "wrong"],
        &env,
        "",
    ));
    assert!(stderr.contains("cannot log in"), "{stderr}");
    assert!(
        !home.auth_file().exists(),
        "nothing stored for refused credentials"
    );

    let stdout = ok(&flint(
        &[
            "registry",
            "login",
            &server,
            "-u",
            "ada",
            "--password-stdin",
        ],
        &env,
        "lovelace\n",
    ));
    assert!(stdout.contains("Successfully logged in as ada"), "{stdout}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.auth_file())
            .expect("auth file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the credentials file is private");
    let stored = std::fs::read_to_string(home.auth_file()).expect("auth file");
    assert!(
        stored.contains(&server) && !stored.contains("lovelace"),
        "{stored}"
    );

    ok(&flint(
        &["registry", "push", &reference, manifest],
        &env,
        "",
    ));
    let state = TempDir::new("oci-tls");
    {
        let served = up_from(&reference, &state.path().join("a"), &env, false);
        served.get("/hello").assert_status(200);
    }

    // Docker's config.json alone: a fresh Flint config, the same secret.
    let other = Home::new();
    let mut docker_env = other.env();
    docker_env.push((
        "SSL_CERT_FILE".into(),
        ca.file("ca.pem").display().to_string(),
    ));
    let stderr = failed(&flint(
        &[
            "registry",
            "pull",
            &reference,
            "--state-dir",
            &state.path().join("b").display().to_string(),
        ],
        &docker_env,
        "",
    ));
    assert!(stderr.contains("authentication required"), "{stderr}");
    let docker_dir = other.dir.path().join("docker");
    std::fs::create_dir_all(&docker_dir).expect("docker dir");
    std::fs::write(
        docker_dir.join("config.json"),
        format!(
            r#"{{"auths":{{"{server}":{{"auth":"{}"}}}}}}"#,
            base64(b"ada:lovelace")
        ),
    )
    .expect("docker config");
    let served = up_from(&reference, &state.path().join("c"), &docker_env, false);
    served.get("/hello").assert_status(200);
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
