//! Board profiles and service-manager integration.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use flint_e2e::{Flint, Signal, TempDir, run_flint, showcase_manifest};

#[test]
fn flint_boards_lists_every_profile_with_its_limits() {
    let out = run_flint(["boards"]);
    assert!(out.status.success(), "{out:?}");
    for (name, target) in [
        ("rpi-zero-2w", "aarch64-unknown-linux-musl"),
        ("rpi-4", "aarch64-unknown-linux-musl"),
        ("armv7", "armv7-unknown-linux-gnueabihf"),
        ("riscv64", "riscv64gc-unknown-linux-gnu"),
        ("vm-x86_64", "x86_64-unknown-linux-musl"),
        ("vm-aarch64", "aarch64-unknown-linux-musl"),
    ] {
        assert!(out.stdout.contains(name), "{name} missing:\n{}", out.stdout);
        assert!(
            out.stdout.contains(target),
            "{target} missing:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("guest memory budget"), "{}", out.stdout);
}

#[test]
fn the_runtime_config_and_the_flag_select_a_board() {
    let flint = Flint::builder(showcase_manifest())
        .runtime_config("board = \"rpi-zero-2w\"\n")
        .start();
    flint.wait_for_log_line(&["serving", "board=rpi-zero-2w", "workers=2"]);
    let out = run_flint([
        "check".into(),
        "--board".into(),
        "toaster".into(),
        showcase_manifest().into_os_string(),
    ]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("unknown board `toaster`"), "{out:?}");
    assert!(out.stderr.contains("rpi-zero-2w"), "{out:?}");
}

/// `Type=notify`: READY=1 once serving, STOPPING=1 on SIGTERM.
#[test]
fn systemd_hears_ready_and_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut flint = Flint::builder(showcase_manifest())
        .process_env("NOTIFY_SOCKET", path.to_str().expect("utf-8 path"))
        .start();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("READY=1 from flint");
    assert_eq!(&buf[..n], b"READY=1");
    flint.get("/hello").assert_status(200);
    flint.signal(Signal::Term);
    let n = socket.recv(&mut buf).expect("STOPPING=1 from flint");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(flint.wait_exit(Duration::from_secs(30)).success());
}
