//! Pulls against a scripted registry on a loopback socket (the Bearer token
//! flow, redirects to another origin, hostile answers), and the locked app
//! → spin.toml conversion checked by Flint's own manifest parser. The e2e
//! tests (tests/tests/oci.rs) run the real registry.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::cache::Cache;
use super::json::Blob;
use super::locked::LockedApp;
use super::pull::Pulled;
use super::*;

/// What the scripted registry answers for a path: status, extra headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Each request's line and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A registry that answers from a table, recording what it was asked.
struct Scripted {
    port: u16,
    seen: Seen,
}

impl Scripted {
    fn start(answer: impl Fn(&str, Option<&str>, u16) -> Answer + Send + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut authorization = None;
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap_or((&header, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "authorization" => authorization = Some(value.trim().to_owned()),
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                log.lock()
                    .expect("log")
                    .push((line.trim().to_owned(), authorization.clone()));
                let (status, headers, body) = answer(&target, authorization.as_deref(), port);
                let mut head = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
                let mut has_length = false;
                for (name, value) in headers {
                    has_length |= name.eq_ignore_ascii_case("content-length");
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                if !has_length {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Scripted { port, seen }
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().expect("log").clone()
    }
}

fn temp(label: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "flint-oci-{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The smallest valid module.
const WASM: &[u8] = b"\0asm\x01\0\0\0";

/// A locked app in Spin's old layout (the config *is* the locked app) with
/// one Wasm layer; returns (manifest, blobs by digest, the Wasm digest).
fn artifact() -> (Vec<u8>, BTreeMap<String, Vec<u8>>, Digest) {
    let wasm = Digest::of(WASM);
    let locked = serde_json::json!({
        "spin_lock_version": 1,
        "metadata": {"name": "scripted"},
        "triggers": [{"id": "t", "trigger_type": "http",
                      "trigger_config": {"route": "/...", "component": "c"}}],
        "components": [{"id": "c", "source": {"content_type": "application/wasm",
                                               "digest": wasm.to_string()}}]
    });
    let locked = serde_json::to_vec(&locked).expect("json");
    let locked_digest = Digest::of(&locked);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": SPIN_APPLICATION_MEDIA_TYPE,
                   "digest": locked_digest.to_string(), "size": locked.len()},
        "layers": [{"mediaType": WASM_LAYER_MEDIA_TYPE,
                    "digest": wasm.to_string(), "size": WASM.len()}]
    });
    let blobs = BTreeMap::from([
        (locked_digest.to_string(), locked),
        (wasm.to_string(), WASM.to_vec()),
    ]);
    (serde_json::to_vec(&manifest).expect("json"), blobs, wasm)
}

#[test]
fn the_bearer_challenge_is_answered_and_redirects_get_no_credentials() {
    let (manifest, blobs, wasm) = artifact();
    // The "CDN" a blob download is redirected to.
    let cdn_blob = WASM.to_vec();
    let cdn = Scripted::start(move |_, _, _| (200, Vec::new(), cdn_blob.clone()));
    let cdn_port = cdn.port;
    let wasm_path = format!("/v2/team/app/blobs/{wasm}");
    let registry = Scripted::start(move |target, authorization, port| {
        if target.starts_with("/token?") {
            assert!(target.contains("service=registry.test"), "{target}");
            assert!(
                target.contains("scope=repository%3Ateam%2Fapp%3Apull"),
                "{target}"
            );
            return (200, Vec::new(), br#"{"token":"t0k3n"}"#.to_vec());
        }
        if authorization != Some("Bearer t0k3n") {
            let challenge = format!(
                "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"registry.test\",scope=\"repository:team/app:pull\""
            );
            return (
                401,
                vec![("www-authenticate".into(), challenge)],
                Vec::new(),
            );
        }
        if target == "/v2/team/app/manifests/v1" {
            return (200, Vec::new(), manifest.clone());
        }
        if target == wasm_path {
            let location = format!("http://127.0.0.1:{cdn_port}/signed/blob?sig=1");
            return (307, vec![("location".into(), location)], Vec::new());
        }
        match target
            .strip_prefix("/v2/team/app/blobs/")
            .and_then(|d| blobs.get(d))
        {
            Some(blob) => (200, Vec::new(), blob.clone()),
            None => (
                404,
                Vec::new(),
                br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_vec(),
            ),
        }
    });
    let reference =
        Reference::parse(&format!("127.0.0.1:{}/team/app:v1", registry.port)).expect("reference");
    let state = temp("bearer");
    let cache = Cache::open(&state).expect("cache");
    let pulled = pull(
        &reference,
        &cache,
        Connect { insecure: true },
        &Limits::default(),
    )
    .expect("pulled");
    assert_eq!(pulled.downloaded, 2);
    assert_eq!(pulled.locked.components[0].id, "c");
    let seen = registry.seen();
    assert!(
        seen.iter()
            .any(|(line, auth)| line.starts_with("GET /token?") && auth.is_none()),
        "anonymous token request: {seen:?}"
    );
    let cdn_seen = cdn.seen();
    assert_eq!(cdn_seen.len(), 1, "{cdn_seen:?}");
    assert_eq!(cdn_seen[0].1, None, "no credentials for another origin");

    let made = materialize_pulled(&pulled, &Limits::default()).expect("materialized");
    let text = std::fs::read_to_string(made.dir.join("spin.toml")).expect("spin.toml");
    let parsed = flint_config::parse_manifest(&text, &made.dir.join("spin.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(parsed.application.name, "scripted");
    assert_eq!(
        std::fs::read(&parsed.components["c"].source).expect("wasm"),
        WASM
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn hostile_answers_are_refused_without_downloading_too_much() {
    let (manifest, blobs, wasm) = artifact();
    let oversized = {
        let mut m: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
        m["layers"][0]["size"] = serde_json::json!(1u64 << 40);
        serde_json::to_vec(&m).expect("json")
    };
    let many = {
        let mut m: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
        let layer = m["layers"][0].clone();
        m["layers"] = serde_json::Value::Array(vec![layer; MAX_LAYERS + 1]);
        serde_json::to_vec(&m).expect("json")
    };
    let wasm_path = format!("/v2/x/blobs/{wasm}");
    let registry = Scripted::start(move |target, _, _| {
        let body = match target {
            "/v2/x/manifests/huge-blob" => oversized.clone(),
            "/v2/x/manifests/many-layers" => many.clone(),
            "/v2/x/manifests/huge-manifest" => vec![b' '; 5 << 20],
            "/v2/x/manifests/junk" => b"\xff\xfe not json".to_vec(),
            "/v2/x/manifests/ok" => manifest.clone(),
            // A blob longer than declared: the body bound stops it.
            path if path == wasm_path => vec![0; 4096],
            path => match path.strip_prefix("/v2/x/blobs/").and_then(|d| blobs.get(d)) {
                Some(blob) => blob.clone(),
                None => return (404, Vec::new(), Vec::new()),
            },
        };
        (200, Vec::new(), body)
    });
    let state = temp("hostile");
    let cache = Cache::open(&state).expect("cache");
    let pull_tag = |tag: &str| {
        let reference =
            Reference::parse(&format!("127.0.0.1:{}/x:{tag}", registry.port)).expect("reference");
        pull(
            &reference,
            &cache,
            Connect { insecure: true },
            &Limits::default(),
        )
        .expect_err("refused")
    };
    assert!(matches!(pull_tag("huge-blob"), Error::Limit(_)));
    assert!(matches!(pull_tag("many-layers"), Error::Limit(_)));
    assert!(matches!(pull_tag("huge-manifest"), Error::Limit(_)));
    assert!(matches!(pull_tag("junk"), Error::Format(_)));
    let err = pull_tag("ok");
    assert!(
        matches!(err, Error::Limit(_) | Error::Digest { .. }),
        "{err}"
    );
    assert!(!cache.contains(&wasm), "nothing unverified is cached");
    let only_blob_requests = registry
        .seen()
        .iter()
        .filter(|(line, _)| line.contains("/blobs/"))
        .count();
    assert!(
        only_blob_requests <= 2,
        "no blob of a refused manifest is fetched"
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// A locked app as Spin's loader writes one for an app with MQTT, variables,
/// files and permissions becomes a manifest Flint's parser accepts, with
/// every setting in place.
#[test]
fn a_full_locked_app_converts_to_a_manifest_flint_accepts() {
    let state = temp("convert");
    let cache = Cache::open(&state).expect("cache");
    let wasm = Digest::of(WASM);
    cache.write(&wasm, WASM).expect("write");
    let page = vec![b'x'; 300];
    let page_digest = Digest::of(&page);
    cache.write(&page_digest, &page).expect("write");
    let locked: LockedApp = serde_json::from_value(serde_json::json!({
        "spin_lock_version": 0,
        "metadata": {
            "name": "full", "version": "2.0.0", "description": "all of it",
            "authors": ["A <a@example.com>"],
            "triggers": {"mqtt": {"address": "mqtt://broker:1883", "username": "u",
                                  "password": "p", "keep_alive_interval": 30}},
            "origin": "file:///somewhere/spin.toml"
        },
        "variables": {"secret_token": {"secret": true}, "greeting": {"default": "hi"}},
        "triggers": [
            {"id": "web", "trigger_type": "http",
             "trigger_config": {"route": "/api/...", "component": "api",
                                "executor": {"type": "wagi", "argv": "${SCRIPT_NAME}"}}},
            {"id": "sensors", "trigger_type": "mqtt",
             "trigger_config": {"component": "ingest", "topic": "sensors/+/t", "qos": 1}}
        ],
        "components": [
            {"id": "api",
             "metadata": {"description": "the API",
                          "allowed_outbound_hosts": ["https://example.com"],
                          "key_value_stores": ["default"],
                          "build": {"command": "cargo build"}},
             "source": {"content_type": "application/wasm", "digest": wasm.to_string()},
             "env": {"MODE": "edge \"quoted\""},
             "config": {"token": "{{ secret_token }}"},
             "files": [
                 {"digest": page_digest.to_string(), "path": "static/page.html"},
                 {"inline": "aGk", "path": "small.txt"}
             ]},
            {"id": "ingest",
             "source": {"content_type": "application/wasm", "digest": wasm.to_string()}}
        ]
    }))
    .expect("locked app");
    let blob = |media_type: &str, digest: &Digest| Blob {
        media_type: media_type.into(),
        digest: digest.clone(),
        size: 0,
    };
    let pulled = Pulled {
        reference: Reference::parse("registry.test/full:2").expect("reference"),
        manifest_digest: Digest::of(b"manifest"),
        from_cache: None,
        downloaded: 0,
        cache: cache.clone(),
        layers: vec![
            blob(WASM_LAYER_MEDIA_TYPE, &wasm),
            blob(DATA_MEDIA_TYPE, &page_digest),
        ],
        locked,
    };
    let made = materialize_pulled(&pulled, &Limits::default()).expect("materialized");
    let path = made.dir.join("spin.toml");
    let text = std::fs::read_to_string(&path).expect("spin.toml");
    let manifest =
        flint_config::parse_manifest(&text, &path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(manifest.application.version.as_deref(), Some("2.0.0"));
    assert_eq!(manifest.application.authors, ["A <a@example.com>"]);
    let broker = manifest.application.mqtt.as_ref().expect("broker");
    assert_eq!(
        (broker.address.as_str(), broker.keep_alive_secs),
        ("mqtt://broker:1883", 30)
    );
    assert!(
        manifest.variables["secret_token"].required && manifest.variables["secret_token"].secret
    );
    assert_eq!(
        manifest.variables["greeting"].default.as_deref(),
        Some("hi")
    );
    let web = &manifest.http_triggers[0];
    assert_eq!(
        (web.id.as_str(), web.component.as_deref()),
        ("web", Some("api"))
    );
    let mqtt = &manifest.mqtt_triggers[0];
    assert_eq!((mqtt.topic.as_str(), mqtt.qos), ("sensors/+/t", 1));
    let api = &manifest.components["api"];
    assert_eq!(api.description.as_deref(), Some("the API"));
    assert_eq!(api.environment["MODE"], "edge \"quoted\"");
    assert_eq!(api.variables["token"], "{{ secret_token }}");
    assert_eq!(api.allowed_outbound_hosts, ["https://example.com"]);
    assert_eq!(api.key_value_stores, ["default"]);
    assert_eq!(
        std::fs::read(made.dir.join("files/api/static/page.html")).expect("page"),
        page
    );
    assert_eq!(
        std::fs::read(made.dir.join("files/api/small.txt")).expect("small"),
        b"hi"
    );

    // Unsafe paths and requirements Flint cannot meet are refused by name.
    let mut escaping = pulled.locked.clone();
    escaping.components[0].files[0].path = "../../etc/passwd".into();
    let mut needs = pulled.locked.clone();
    needs.host_requirements.insert(
        "local_service_chaining".into(),
        serde_json::json!("required"),
    );
    for (locked, expected) in [
        (escaping, "leaves its mount"),
        (needs, "local_service_chaining"),
    ] {
        let other = Pulled {
            manifest_digest: Digest::of(expected.as_bytes()),
            reference: pulled.reference.clone(),
            from_cache: None,
            downloaded: 0,
            cache: cache.clone(),
            layers: pulled.layers.clone(),
            locked,
        };
        let err = materialize_pulled(&other, &Limits::default()).expect_err("refused");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(
            !cache.apps_dir().join(other.manifest_digest.hex()).exists(),
            "nothing half-made is left"
        );
    }
    let _ = std::fs::remove_dir_all(&state);
}
