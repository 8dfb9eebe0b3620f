//! `fermyon:spin/key-value@2.0.0` on sled, through the unmodified Spin SDK
//! app in apps/spin-kv: every operation, every error case, and durability
//! across `kill -9`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use flint_e2e::{Flint, FlintBuilder, Request, Signal, TempDir, apps_dir, poll_until, run_flint};

fn kv_app() -> FlintBuilder {
    Flint::builder(apps_dir().join("spin-kv")).runtime_config(
        "[key_value_store.other]\ntype = \"spin\"\n\n[key_value_store.elsewhere]\ntype = \"spin\"\n",
    )
}

#[test]
fn every_operation_round_trips() {
    let flint = kv_app().start();
    flint.get("/kv/a").assert_status(404);
    flint.request("HEAD", "/kv/a", &[], []).assert_status(404);
    let value: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    flint
        .request("PUT", "/kv/a", &[], &value)
        .assert_status(200);
    flint.request("PUT", "/kv/b", &[], "two").assert_status(200);
    let got = flint.get("/kv/a");
    got.assert_status(200);
    assert!(got.body == value, "binary value changed");
    flint.request("HEAD", "/kv/a", &[], []).assert_status(200);
    assert_eq!(flint.get("/kv").text(), "a\nb\n");
    flint.request("DELETE", "/kv/a", &[], []).assert_status(200);
    flint.get("/kv/a").assert_status(404);
    assert_eq!(flint.get("/kv").text(), "b\n");
    // Deleting a missing key is not an error (Spin's semantics).
    flint.request("DELETE", "/kv/a", &[], []).assert_status(200);
}

#[test]
fn the_counter_counts() {
    let flint = kv_app().start();
    for expected in 1..=5 {
        assert_eq!(flint.get("/counter").text(), format!("{expected}\n"));
    }
}

#[test]
fn stores_are_separate_and_permissions_enforced() {
    let flint = kv_app().start();
    flint
        .request("PUT", "/kv/k?store=other", &[], "in other")
        .assert_status(200);
    flint.get("/kv/k").assert_status(404);
    assert_eq!(flint.get("/kv/k?store=other").text(), "in other");
    // Defined in the runtime config but not in the component's key_value_stores.
    let denied = flint.get("/kv/k?store=elsewhere");
    denied.assert_status(500);
    assert!(denied.text().contains("AccessDenied"), "{denied:?}");
    flint.wait_for_log_line(&["access denied", "spin-kv", "elsewhere"]);
}

#[test]
fn undefined_store_labels_stop_startup() {
    // spin-kv lists `other`, which only the runtime config defines.
    let out = run_flint(["check".into(), apps_dir().join("spin-kv").into_os_string()]);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("spin-kv"), "{out:?}");
    assert!(out.stderr.contains("`other`"), "{out:?}");
    assert!(out.stderr.contains("[key_value_store.other]"), "{out:?}");
}

/// Every `set` acknowledged before a `kill -9` is there after a restart.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let state = TempDir::new("kv-durable");
    let flint = kv_app().state_dir(state.path()).start();
    let mut conn = flint.connect();
    let written = 300;
    for i in 0..written {
        conn.request("PUT", &format!("/kv/key{i:04}"), &[], format!("value {i}"))
            .assert_status(200);
    }
    flint.signal(Signal::Kill);
    drop(flint);

    let flint = kv_app().state_dir(state.path()).start();
    let keys = flint.get("/kv").text();
    assert_eq!(keys.lines().count(), written, "keys after restart:\n{keys}");
    let mut conn = flint.connect();
    for i in (0..written).step_by(37) {
        let resp = conn.request("GET", &format!("/kv/key{i:04}"), &[], []);
        assert_eq!(resp.text(), format!("value {i}"));
    }
}

/// Concurrent writers share flushes (group commit), and still every `set`
/// acknowledged to any of them before a `kill -9` mid-load is there after
/// a restart.
#[test]
fn concurrent_acknowledged_writes_survive_kill_9_mid_load() {
    let state = TempDir::new("kv-concurrent");
    let flint = kv_app().state_dir(state.path()).start();
    let clients = 8;
    let acknowledged: Vec<Mutex<Vec<usize>>> = (0..clients).map(|_| Mutex::default()).collect();
    let total = AtomicUsize::new(0);
    thread::scope(|s| {
        for (client, acked) in acknowledged.iter().enumerate() {
            let (addr, total) = (flint.addr(), &total);
            // Writes until flint is gone.
            s.spawn(move || {
                for i in 0.. {
                    let (path, value) = (format!("/kv/c{client}-{i:06}"), format!("v{client}-{i}"));
                    if !put_acknowledged(addr, &path, &value) {
                        break;
                    }
                    acked.lock().unwrap().push(i);
                    total.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // The clients are still writing when flint dies.
        let loaded = poll_until(Duration::from_secs(60), || {
            total.load(Ordering::SeqCst) >= 50 * clients
        });
        flint.signal(Signal::Kill);
        assert!(
            loaded,
            "{} writes acknowledged",
            total.load(Ordering::SeqCst)
        );
    });
    drop(flint);

    let flint = kv_app().state_dir(state.path()).start();
    let keys = flint.get("/kv").text();
    let keys: std::collections::BTreeSet<&str> = keys.lines().collect();
    let mut conn = flint.connect();
    for (client, acked) in acknowledged.iter().enumerate() {
        let acked = acked.lock().unwrap();
        for i in acked.iter() {
            let key = format!("c{client}-{i:06}");
            assert!(keys.contains(key.as_str()), "acknowledged {key} lost");
        }
        let last = acked.last().expect("every client had a write acknowledged");
        let resp = conn.request("GET", &format!("/kv/c{client}-{last:06}"), &[], []);
        assert_eq!(resp.text(), format!("v{client}-{last}"));
    }
}

/// PUTs `value` at `path` on a connection of its own: whether flint answered
/// 200 (acknowledged the write), which stops being so once it is killed.
fn put_acknowledged(addr: SocketAddr, path: &str, value: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let request = Request::new("PUT", path, &[], value).to_bytes(&addr.to_string());
    if stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .is_err()
        || stream.write_all(&request).is_err()
    {
        return false;
    }
    // The status line is the acknowledgement; the rest is not needed.
    let mut head = Vec::new();
    let mut chunk = [0; 256];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => head.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    head.starts_with(b"HTTP/1.1 200 ")
}

/// A WAGI module (no SDK) reaches the same store and its variables through the
/// raw `fermyon:spin` imports.
#[test]
fn wagi_modules_use_key_value_and_variables_too() {
    let flint = Flint::start(apps_dir().join("wagi-spin"));
    flint.get("/wagi-kv/greeting").assert_status(404);
    flint
        .request("PUT", "/wagi-kv/greeting", &[], "hello from WAGI")
        .assert_status(200);
    assert_eq!(flint.get("/wagi-kv/greeting").text(), "hello from WAGI");
    assert_eq!(flint.get("/wagi-var/site_name").text(), "edge-gateway");
    flint.get("/wagi-var/nope").assert_status(404);
}
