//! Signed bundles and app directories of versions, end to end: `flint
//! bundle`, `flint keygen`, `flint bundle verify`, `flint deploy` and `flint
//! up --app-dir` as real processes on temp dirs. Tampered, unsigned,
//! untrusted and hostile bundles are refused with the reason; a deploy
//! killed (`kill -9`) at every step leaves a complete version selected;
//! old versions are pruned.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use flint_e2e::{EXIT_TIMEOUT, Flint, FlintOutput, TempDir, apps_dir, flint, flint_bin, wasm_path};

const STEPS: [&str; 6] = [
    "unpacked", "synced", "checked", "renamed", "linked", "switched",
];

#[track_caller]
fn ok(out: FlintOutput) -> FlintOutput {
    assert!(out.status.success(), "{out:?}");
    out
}

/// A failing run whose stderr names every one of `reasons`.
#[track_caller]
fn refused(out: FlintOutput, reasons: &[&str]) -> FlintOutput {
    assert!(!out.status.success(), "expected a refusal: {out:?}");
    for reason in reasons {
        assert!(
            out.stderr.contains(reason),
            "stderr lacks {reason:?}: {out:?}"
        );
    }
    out
}

/// The version id `flint bundle` printed.
fn bundled_id(out: &FlintOutput) -> String {
    out.stdout
        .split("version ")
        .nth(1)
        .and_then(|rest| rest.get(..16))
        .unwrap_or_else(|| panic!("no version id in {out:?}"))
        .to_owned()
}

fn current(app_dir: &Path) -> Option<String> {
    fs::read_link(app_dir.join("current")).ok().map(|t| {
        t.to_string_lossy()
            .trim_start_matches("versions/")
            .to_owned()
    })
}

fn versions(app_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(app_dir.join("versions"))
        .expect("versions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

fn staging_is_empty(app_dir: &Path) -> bool {
    fs::read_dir(app_dir.join("staging")).map_or(true, |mut d| d.next().is_none())
}

/// An app whose every part says which version it is: a WAGI `/hello`, and
/// `/static/...` serving a directory mount, a glob (which must not pick up
/// `assets/skip.bin`) and a single-file placement. Modules are named by
/// absolute paths outside the app's directory.
fn versioned_app(dir: &TempDir, n: u32) -> PathBuf {
    let app = format!("app-v{n}");
    dir.write(&format!("{app}/static/version.txt"), format!("v{n}\n"));
    dir.write(&format!("{app}/assets/a.txt"), format!("a{n}\n"));
    dir.write(&format!("{app}/assets/skip.bin"), "not mounted");
    dir.write(&format!("{app}/one.txt"), format!("one{n}\n"));
    dir.write(
        &format!("{app}/spin.toml"),
        format!(
            r#"spin_manifest_version = 2
[application]
name = "versioned"
version = "{n}.0.0"

[[trigger.http]]
route = "/hello"
component = "hello"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/static/..."
component = "static"
executor = {{ type = "wagi" }}

[component.hello]
source = "{hello}"

[component.static]
source = "{showcase}"
files = [
    {{ source = "static", destination = "/d" }},
    "assets/*.txt",
    {{ source = "one.txt", destination = "/single/one.txt" }},
]
"#,
            hello = wasm_path("hello").display(),
            showcase = wasm_path("showcase").display(),
        ),
    )
}

/// `flint bundle` of version `n` (unsigned unless `key`); returns the file and its id.
fn bundle_version(dir: &TempDir, n: u32, key: Option<&Path>) -> (PathBuf, String) {
    let manifest = versioned_app(dir, n);
    let signed = if key.is_some() { "-signed" } else { "" };
    let out_file = dir.path().join(format!("v{n}{signed}.flint"));
    let out = match key {
        Some(key) => flint!("bundle", &manifest, "-o", &out_file, "--sign", key),
        None => flint!("bundle", &manifest, "-o", &out_file),
    };
    let id = bundled_id(&ok(out));
    (out_file, id)
}

fn deploy(bundle: &Path, app_dir: &Path) -> FlintOutput {
    flint!("deploy", bundle, "--app-dir", app_dir)
}

/// `flint up --app-dir` serves version `n`, every part of it.
#[track_caller]
fn assert_serves_version(app_dir: &Path, n: u32) {
    let flint = Flint::builder_app_dir(app_dir).start();
    let hello = flint.get("/hello");
    hello.assert_status(200);
    assert_eq!(hello.text(), "Hello, Flint!\n");
    for (path, expected) in [
        ("/static/d/version.txt", format!("v{n}\n")),
        ("/static/assets/a.txt", format!("a{n}\n")),
        ("/static/single/one.txt", format!("one{n}\n")),
    ] {
        let resp = flint.get(path);
        resp.assert_status(200);
        assert_eq!(resp.text(), expected, "{path} of version {n}");
    }
    flint.get("/static/assets/skip.bin").assert_status(404);
}

/// Keys `name` (a key pair) and a directory trusting it.
fn keys(dir: &TempDir, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let base = dir.path().join(name);
    ok(flint!("keygen", "-o", &base));
    let trusted = dir.path().join(format!("{name}-trusted"));
    fs::create_dir_all(&trusted).expect("mkdir");
    let public = base.with_extension("pub");
    fs::copy(&public, trusted.join(format!("{name}.pub"))).expect("copy key");
    (base.with_extension("key"), public, trusted)
}

#[test]
fn a_signed_bundle_round_trips_to_an_app_dir_and_serves_like_the_original() {
    let dir = TempDir::new("bundle-roundtrip");
    let (key, public, trusted) = keys(&dir, "release");
    let mode = fs::metadata(&key).expect("key").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(&public)
            .expect("pub")
            .starts_with("ed25519 ")
    );

    let bundle = dir.path().join("showcase.flint");
    let showcase = apps_dir().join("showcase");
    let out = ok(flint!("bundle", &showcase, "-o", &bundle, "--sign", &key));
    let id = bundled_id(&out);
    let out = ok(flint!(
        "bundle",
        "verify",
        &bundle,
        "--trusted-key",
        &public
    ));
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(
        out.stdout.contains("ok") && out.stdout.contains(&id),
        "{out:?}"
    );
    assert!(out.stdout.contains("release"), "names the key: {out:?}");

    let app_dir = dir.path().join("device");
    ok(flint!(
        "deploy",
        &bundle,
        "--app-dir",
        &app_dir,
        "--trusted-keys",
        &trusted
    ));
    assert_eq!(current(&app_dir).as_deref(), Some(id.as_str()));
    // The unpacked version is a self-contained app `flint check` accepts.
    ok(flint!("check", &app_dir.join("current")));

    let original = Flint::showcase();
    let deployed = Flint::builder_app_dir(&app_dir).start();
    assert!(deployed.stdout().contains(&id), "{}", deployed.stdout());
    for path in [
        "/hello",
        "/greet/ada",
        "/static/index.html",
        "/static/hello.txt",
        "/static-response",
    ] {
        let (want, got) = (original.get(path), deployed.get(path));
        assert_eq!(got.status, want.status, "{path}: {got:?}");
        assert_eq!(got.body, want.body, "{path}");
    }
    assert_eq!(deployed.get("/hello").text(), "Hello, Flint!\n");
    // State lives beside the versions, not inside one.
    assert_eq!(deployed.state_dir(), app_dir.join("state"));
    assert!(app_dir.join("state").is_dir());
}

#[test]
fn a_bundled_runtime_config_is_used_and_state_outlives_versions() {
    let dir = TempDir::new("bundle-kv");
    let app = dir.path().join("kv");
    fs::create_dir_all(&app).expect("mkdir");
    let manifest = fs::read_to_string(apps_dir().join("spin-kv/spin.toml")).expect("manifest");
    let manifest = manifest.replace(
        "../target/wasm32-wasip1/release/spin_kv.wasm",
        &wasm_path("spin_kv").display().to_string(),
    );
    fs::write(app.join("spin.toml"), &manifest).expect("write");
    let config = dir.write(
        "runtime-config.toml",
        "[key_value_store.other]\ntype = \"spin\"\n\n[key_value_store.elsewhere]\ntype = \"spin\"\n",
    );
    let app_dir = dir.path().join("device");
    for (n, expected) in [(1, "1\n"), (2, "2\n")] {
        // A different manifest is a different version.
        fs::write(app.join("spin.toml"), format!("{manifest}\n# build {n}\n")).expect("write");
        let bundle = dir.path().join(format!("kv{n}.flint"));
        let out = ok(flint!(
            "bundle",
            "-f",
            &app,
            "-o",
            &bundle,
            "--runtime-config-file",
            &config
        ));
        ok(deploy(&bundle, &app_dir));
        assert_eq!(
            current(&app_dir).as_deref(),
            Some(bundled_id(&out).as_str())
        );
        assert!(app_dir.join("current/runtime-config.toml").is_file());
        // Without the bundled runtime config, `other` would be undefined.
        let flint = Flint::builder_app_dir(&app_dir).start();
        assert_eq!(flint.get("/counter").text(), expected);
    }
    // Without a bundled runtime config the check refuses the version.
    let bare = dir.path().join("bare.flint");
    ok(flint!("bundle", "-f", &app, "-o", &bare));
    refused(deploy(&bare, &app_dir), &["failed the check", "other"]);
}

#[test]
fn tampered_bundles_are_refused_naming_what_failed() {
    let dir = TempDir::new("bundle-tamper");
    let (key, public, trusted) = keys(&dir, "release");
    let (good, good_id) = bundle_version(&dir, 1, Some(&key));
    let (unsigned, _) = bundle_version(&dir, 1, None);
    let app_dir = dir.path().join("device");
    ok(flint!(
        "deploy",
        &good,
        "--app-dir",
        &app_dir,
        "--trusted-keys",
        &trusted
    ));
    let (v2, _) = bundle_version(&dir, 2, Some(&key));

    // Each case flips one byte of one member's data.
    let cases: [(&Path, &str, usize, &[&str]); 4] = [
        (
            &v2,
            "components/showcase.wasm",
            100,
            &["digest", "components/showcase.wasm"],
        ),
        (&v2, "flint-bundle.sha256", 30, &["signature"]),
        (&v2, "flint-bundle.sig", 150, &["signature"]),
        (&unsigned, "flint-bundle.sha256", 30, &["digest"]),
    ];
    for (i, (source, member, offset, reasons)) in cases.into_iter().enumerate() {
        let mut bytes = fs::read(source).expect("bundle");
        let at = data_offset(source, member) + offset;
        bytes[at] ^= 0x20;
        let tampered = dir.path().join(format!("tampered-{i}.flint"));
        fs::write(&tampered, bytes).expect("write");
        let out = if source == unsigned.as_path() {
            flint!("bundle", "verify", &tampered)
        } else {
            flint!("bundle", "verify", &tampered, "--trusted-key", &public)
        };
        refused(out, reasons);
        let out = flint!("deploy", &tampered, "--app-dir", &app_dir);
        refused(out, reasons);
        assert_eq!(
            current(&app_dir).as_deref(),
            Some(good_id.as_str()),
            "{member}"
        );
        assert!(staging_is_empty(&app_dir));
    }
    assert_serves_version(&app_dir, 1);
}

#[test]
fn unsigned_and_untrusted_bundles_are_refused_when_keys_are_trusted() {
    let dir = TempDir::new("bundle-trust");
    let (_, public, trusted) = keys(&dir, "release");
    let (stranger, _, _) = keys(&dir, "stranger");
    let (unsigned, _) = bundle_version(&dir, 1, None);
    let (foreign, _) = bundle_version(&dir, 2, Some(&stranger));
    let app_dir = dir.path().join("device");

    refused(
        flint!("bundle", "verify", &unsigned, "--trusted-key", &public),
        &["unsigned"],
    );
    refused(
        flint!(
            "deploy",
            &unsigned,
            "--app-dir",
            &app_dir,
            "--trusted-keys",
            &trusted
        ),
        &["unsigned"],
    );
    refused(
        flint!("bundle", "verify", &foreign, "--trusted-key", &public),
        &["unknown key", "release"],
    );
    refused(
        flint!(
            "deploy",
            &foreign,
            "--app-dir",
            &app_dir,
            "--trusted-keys",
            &trusted
        ),
        &["unknown key"],
    );
    assert_eq!(current(&app_dir), None);
    // Without trusted keys both verify (the signature against its own key).
    ok(flint!("bundle", "verify", &unsigned));
    ok(flint!("bundle", "verify", &foreign));
}

/// Where `member`'s data starts in `bundle`.
fn data_offset(bundle: &Path, member: &str) -> usize {
    let mut archive = tar::Archive::new(fs::File::open(bundle).expect("open"));
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        if entry.path().expect("path").to_str() == Some(member) {
            return usize::try_from(entry.raw_file_position()).expect("offset");
        }
    }
    panic!("no {member} in {}", bundle.display())
}

/// An archive member: its header and data, as stored.
type Member = (tar::Header, Vec<u8>);

/// Every member of `bundle`.
fn members(bundle: &Path) -> Vec<Member> {
    let mut archive = tar::Archive::new(fs::File::open(bundle).expect("open"));
    let entries = archive.entries().expect("entries").raw(true);
    entries
        .map(|entry| {
            let mut entry = entry.expect("entry");
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).expect("read");
            (entry.header().clone(), data)
        })
        .collect()
}

/// A header with `name` written as is (the crate's setters refuse `..` and
/// absolute paths, which is the point here).
fn raw_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    header
}

fn write_members(path: &Path, members: &[Member]) {
    let mut builder = tar::Builder::new(fs::File::create(path).expect("create"));
    for (header, data) in members {
        builder.append(header, &data[..]).expect("append");
    }
    builder.finish().expect("finish");
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    let dir = TempDir::new("bundle-hostile");
    let (v1, v1_id) = bundle_version(&dir, 1, None);
    let (v2, _) = bundle_version(&dir, 2, None);
    let app_dir = dir.path().join("device");
    ok(deploy(&v1, &app_dir));
    let good = members(&v2);
    let absolute = dir.path().join("abs-escape");
    let mut symlink = raw_header("files/static/link", tar::EntryType::Symlink, 0);
    symlink.as_old_mut().linkname[..11].copy_from_slice(b"/etc/passwd");
    symlink.set_cksum();
    let mut hardlink = raw_header("files/static/hard", tar::EntryType::Link, 0);
    hardlink.as_old_mut().linkname[..9].copy_from_slice(b"spin.toml");
    hardlink.set_cksum();
    let spin_toml = good
        .iter()
        .find(|(h, _)| &*h.path_bytes() == b"spin.toml")
        .expect("spin.toml")
        .clone();

    let cases: Vec<(&str, Member, Vec<&str>)> = vec![
        (
            "dotdot",
            (
                raw_header("../x", tar::EntryType::Regular, 1),
                b"x".to_vec(),
            ),
            vec!["`../x`", "`..`"],
        ),
        (
            "absolute",
            (
                raw_header(
                    absolute.to_str().expect("utf-8"),
                    tar::EntryType::Regular,
                    1,
                ),
                b"x".to_vec(),
            ),
            vec!["absolute path"],
        ),
        (
            "symlink",
            (symlink, Vec::new()),
            vec!["files/static/link", "symbolic link"],
        ),
        (
            "hardlink",
            (hardlink, Vec::new()),
            vec!["files/static/hard", "hard link"],
        ),
        (
            "device",
            (raw_header("files/dev", tar::EntryType::Char, 0), Vec::new()),
            vec!["files/dev", "character device"],
        ),
        ("duplicate", spin_toml, vec!["spin.toml", "appears twice"]),
        (
            "unlisted",
            (
                raw_header("files/static/extra.txt", tar::EntryType::Regular, 2),
                b"hi".to_vec(),
            ),
            vec!["files/static/extra.txt", "not listed"],
        ),
    ];
    for (name, hostile, reasons) in cases {
        let mut crafted = good.clone();
        // After the digest manifest, so it is read before the real files.
        crafted.insert(1, hostile);
        let path = dir.path().join(format!("{name}.flint"));
        write_members(&path, &crafted);
        refused(flint!("bundle", "verify", &path), &reasons);
        refused(deploy(&path, &app_dir), &reasons);
        assert_eq!(current(&app_dir).as_deref(), Some(v1_id.as_str()), "{name}");
        assert!(staging_is_empty(&app_dir), "{name}");
        assert!(!absolute.exists(), "{name}");
        assert!(
            !app_dir.join("staging/x").exists() && !app_dir.join("x").exists(),
            "{name}"
        );
    }
    // A member missing from the archive, and a truncated one.
    let mut short = good.clone();
    short.retain(|(h, _)| !h.path_bytes().ends_with(b"a.txt"));
    let path = dir.path().join("missing.flint");
    write_members(&path, &short);
    refused(deploy(&path, &app_dir), &["files/assets/a.txt", "missing"]);
    let bytes = fs::read(&v2).expect("bundle");
    let path = dir.path().join("truncated.flint");
    fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    refused(flint!("bundle", "verify", &path), &["truncated.flint"]);
    assert_serves_version(&app_dir, 1);
}

/// Runs `flint deploy` with `FLINT_DEPLOY_PAUSE_AT=step`, waits for `paused at
/// <step>` and kills it with SIGKILL.
fn deploy_killed_at(bundle: &Path, app_dir: &Path, step: &str) {
    let mut child = Command::new(flint_bin())
        .arg("deploy")
        .arg(bundle)
        .arg("--app-dir")
        .arg(app_dir)
        .env("FLINT_DEPLOY_PAUSE_AT", step)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flint deploy");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wanted = format!("paused at {step}");
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(EXIT_TIMEOUT) {
            Ok(line) if line == wanted => break,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no `{wanted}` from flint deploy ({e}); stderr: {seen:#?}");
            }
        }
    }
    // std's kill is SIGKILL on Unix: no chance to clean up.
    child.kill().expect("kill -9");
    child.wait().expect("wait");
}

#[test]
fn a_deploy_killed_at_any_step_leaves_a_complete_version() {
    let dir = TempDir::new("bundle-kill");
    let (v1, v1_id) = bundle_version(&dir, 1, None);
    let (v2, v2_id) = bundle_version(&dir, 2, None);
    for step in STEPS {
        let app_dir = dir.path().join(format!("device-{step}"));
        ok(deploy(&v1, &app_dir));
        deploy_killed_at(&v2, &app_dir, step);
        let (expected, n) = if step == "switched" {
            (&v2_id, 2)
        } else {
            (&v1_id, 1)
        };
        assert_eq!(
            current(&app_dir).as_ref(),
            Some(expected),
            "killed at {step}"
        );
        assert_serves_version(&app_dir, n);
        // The next deploy cleans up after the killed one and completes.
        let out = ok(deploy(&v2, &app_dir));
        assert!(staging_is_empty(&app_dir), "after {step}: {out:?}");
        assert!(!app_dir.join("current.new").exists(), "after {step}");
        assert_eq!(current(&app_dir).as_ref(), Some(&v2_id), "after {step}");
        assert_serves_version(&app_dir, 2);
    }
    refused(
        run_flint_env(&v2, &dir.path().join("device-bad"), "nonsense"),
        &["FLINT_DEPLOY_PAUSE_AT", "unpacked"],
    );
}

fn run_flint_env(bundle: &Path, app_dir: &Path, pause: &str) -> FlintOutput {
    let out = Command::new(flint_bin())
        .arg("deploy")
        .arg(bundle)
        .arg("--app-dir")
        .arg(app_dir)
        .env("FLINT_DEPLOY_PAUSE_AT", pause)
        .stdin(Stdio::null())
        .output()
        .expect("run flint deploy");
    FlintOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn old_versions_are_pruned_keeping_current_and_previous() {
    let dir = TempDir::new("bundle-prune");
    let app_dir = dir.path().join("device");
    let mut ids = Vec::new();
    for n in 1..=5 {
        let (bundle, id) = bundle_version(&dir, n, None);
        ok(flint!(
            "deploy",
            &bundle,
            "--app-dir",
            &app_dir,
            "--keep-versions",
            "2"
        ));
        ids.push(id);
        let mut kept: Vec<String> = ids.iter().rev().take(2).cloned().collect();
        kept.sort();
        assert_eq!(versions(&app_dir), kept, "after version {n}");
    }
    assert_eq!(current(&app_dir).as_ref(), ids.last());
    // The default keeps three; keep 0 still keeps the current and previous.
    let (b6, id6) = bundle_version(&dir, 6, None);
    ok(deploy(&b6, &app_dir));
    assert_eq!(versions(&app_dir).len(), 3);
    let (b7, id7) = bundle_version(&dir, 7, None);
    ok(flint!(
        "deploy",
        &b7,
        "--app-dir",
        &app_dir,
        "--keep-versions",
        "0"
    ));
    let mut both = vec![id6, id7];
    both.sort();
    assert_eq!(versions(&app_dir), both);
    assert_serves_version(&app_dir, 7);
}

#[test]
fn failed_and_broken_versions_are_not_deployed() {
    let dir = TempDir::new("bundle-failed");
    let app_dir = dir.path().join("device");
    let (v1, v1_id) = bundle_version(&dir, 1, None);
    let (v2, v2_id) = bundle_version(&dir, 2, None);
    ok(deploy(&v1, &app_dir));
    fs::write(app_dir.join("failed"), format!("{v2_id}\n")).expect("write failed");
    refused(deploy(&v2, &app_dir), &[&v2_id, "failed"]);
    assert_eq!(current(&app_dir).as_ref(), Some(&v1_id));

    // A module that is not Wasm fails the same check `flint check` runs.
    let broken = dir.write("broken/not.wasm", "not wasm");
    let manifest = dir.one_component_manifest("broken/spin.toml", &broken, "", "");
    let bundle = dir.path().join("broken.flint");
    ok(flint!("bundle", &manifest, "-o", &bundle));
    refused(deploy(&bundle, &app_dir), &["failed the check", "not.wasm"]);
    assert_eq!(current(&app_dir).as_ref(), Some(&v1_id));
    assert!(staging_is_empty(&app_dir));
    assert_eq!(versions(&app_dir), [v1_id]);

    // No current version yet: `flint up --app-dir` says so.
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    refused(
        flint!("up", "--app-dir", &empty),
        &["no current version", "flint deploy"],
    );
}
