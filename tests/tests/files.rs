//! `files` preopens: served read-only from apps/showcase/static at guest `/`.

use flint_e2e::{Flint, apps_dir};

#[test]
fn static_files_are_served_with_their_type() {
    let flint = Flint::showcase();
    let dir = apps_dir().join("showcase/static");
    for (file, content_type) in [
        ("index.html", "text/html; charset=utf-8"),
        ("hello.txt", "text/plain; charset=utf-8"),
    ] {
        let resp = flint.get(&format!("/static/{file}"));
        resp.assert_status(200);
        assert_eq!(
            resp.body,
            std::fs::read(dir.join(file)).unwrap(),
            "/static/{file}: {resp:?}"
        );
        assert_eq!(
            resp.header("content-type"),
            Some(content_type),
            "/static/{file}"
        );
    }
    flint.get("/static/missing.txt").assert_status(404);
    // Only the preopen is visible, not the manifest next to it. With `%2F` the
    // router cannot normalise the path away, so the guest really asks WASI for
    // `/../spin.toml` and the host's sandbox must refuse (the guest has no `..`
    // check of its own). A host may also reject dot-segments itself with a 400.
    for path in ["/static/..%2Fspin.toml", "/static/../spin.toml"] {
        let resp = flint.get(path);
        assert!(matches!(resp.status, 400 | 404), "{path}: {resp:?}");
        assert!(
            !resp.text().contains("spin_manifest_version"),
            "{path} escaped the preopen: {resp:?}"
        );
    }
}

#[test]
fn preopened_files_are_read_only() {
    let flint = Flint::showcase();
    let dir = apps_dir().join("showcase/static");
    let before = std::fs::read(dir.join("hello.txt")).unwrap();
    let resp = flint.get("/static-write");
    resp.assert_status(200);
    let created = dir.join("new.txt");
    let leaked = created.exists();
    // Clean up before asserting, so a broken host does not leave the repo dirty.
    let _ = std::fs::remove_file(&created);
    assert!(resp.text().starts_with("write denied: "), "{resp:?}");
    assert!(!leaked, "guest created {}", created.display());
    assert_eq!(
        std::fs::read(dir.join("hello.txt")).unwrap(),
        before,
        "hello.txt was modified"
    );
}
