//! Hostile bundles: whatever bytes a bundle holds, reading it ends in `Ok`
//! or an error, never a panic, and unpacking writes only inside its directory.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;

use crate::unpack::{Trust, read_head, unpack, verify};
use crate::{BundleSpec, Limits, bundle};

/// A small app bundled once per test process: a module, a directory mount
/// and a glob.
fn fixture() -> &'static (PathBuf, Vec<u8>) {
    static FIXTURE: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("flint-deploy-prop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let app = dir.join("app");
        for (path, contents) in [
            ("m.wasm", &b"\0asm\x01\0\0\0 not really a module"[..]),
            ("static/index.html", b"<p>hi</p>"),
            ("static/sub/a.txt", b"a"),
            ("assets/x.txt", b"x"),
            // Over ustar's 100-byte name field: stored with its prefix field.
            (
                "static/a-directory-name-long-enough-to-need-the-prefix-field/and-a-file-name-that-is-long-as-well-too.txt",
                b"long",
            ),
        ] {
            let path = app.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, contents).expect("write");
        }
        std::fs::create_dir_all(app.join("static/empty")).expect("mkdir");
        let manifest = app.join("spin.toml");
        std::fs::write(
            &manifest,
            "spin_manifest_version = 2\n[application]\nname = \"p\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\nexecutor = { type = \"wagi\" }\n\
             [component.c]\nsource = \"m.wasm\"\n\
             files = [{ source = \"static\", destination = \"/\" }, \"assets/*.txt\"]\n",
        )
        .expect("manifest");
        let output = dir.join("app.flint");
        bundle(&BundleSpec {
            manifest: &manifest,
            runtime_config: None,
            signing_key: None,
            output: &output,
            limits: Limits::default(),
        })
        .expect("bundle");
        let bytes = std::fs::read(&output).expect("read bundle");
        (dir, bytes)
    })
}

#[test]
fn the_fixture_verifies_and_unpacks() {
    let (dir, bytes) = fixture();
    let path = dir.join("ok.flint");
    std::fs::write(&path, bytes).expect("write");
    let (head, _, verified) = verify(&path, &Trust::Any, &Limits::default()).expect("verify");
    assert_eq!(verified.files, 6, "{head:?}");
    let into = dir.join("ok-unpacked");
    let _ = std::fs::remove_dir_all(&into);
    std::fs::create_dir_all(&into).expect("mkdir");
    unpack(&path, &head, &Limits::default(), Some(&into)).expect("unpack");
    assert!(into.join("files/static/empty").is_dir());
    assert_eq!(
        std::fs::read(into.join("files/assets/x.txt")).expect("x"),
        b"x"
    );
    let toml = std::fs::read_to_string(into.join("spin.toml")).expect("manifest");
    assert!(toml.contains("source = \"components/m.wasm\""), "{toml}");
    assert!(
        toml.contains("{ source = \"files/assets/x.txt\", destination = \"/assets/x.txt\" }"),
        "{toml}"
    );
}

#[test]
fn limits_are_enforced_from_the_headers() {
    let (dir, bytes) = fixture();
    let path = dir.join("limits.flint");
    std::fs::write(&path, bytes).expect("write");
    let cases = [
        (
            Limits {
                max_file_bytes: 4,
                ..Limits::default()
            },
            "per file",
        ),
        (
            Limits {
                max_total_bytes: 64,
                ..Limits::default()
            },
            "add up to more than",
        ),
        (
            Limits {
                max_entries: 3,
                ..Limits::default()
            },
            "more than 3",
        ),
    ];
    for (limits, expected) in cases {
        let err = verify(&path, &Trust::Any, &limits).expect_err(expected);
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
}

/// Reads `bytes` as a bundle both ways; must not panic, and may only write
/// under its own directory.
fn read_hostile(bytes: &[u8], case: &str) {
    let (dir, _) = fixture();
    let root = dir.join(format!(
        "case-{case}-{}",
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace(':', "_")
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("mkdir");
    let path = root.join("hostile.flint");
    std::fs::write(&path, bytes).expect("write");
    let limits = Limits {
        max_entries: 64,
        max_total_bytes: 1 << 20,
        max_file_bytes: 1 << 19,
    };
    let _ = verify(&path, &Trust::Any, &limits);
    if let Ok(head) = read_head(&path, &limits) {
        let into = root.join("into");
        std::fs::create_dir_all(&into).expect("mkdir");
        let _ = unpack(&path, &head, &limits, Some(&into));
        let names: Vec<_> = std::fs::read_dir(&root)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            names.iter().all(|n| n == "hostile.flint" || n == "into"),
            "unpack wrote outside its directory: {names:?}"
        );
    }
    std::fs::remove_dir_all(&root).expect("cleanup");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (_, good) = fixture();
        let mut bytes = good.clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        read_hostile(&bytes, "flip");
    }

    #[test]
    fn truncated_or_spliced_never_panics(cut in any::<prop::sample::Index>(), from in any::<prop::sample::Index>(), len in 0usize..2048) {
        let (_, good) = fixture();
        let cut = cut.index(good.len());
        read_hostile(&good[..cut], "cut");
        // A run of the bundle's own bytes (often whole headers) spliced in.
        let from = from.index(good.len());
        let end = (from + len).min(good.len());
        let mut spliced = good[..cut].to_vec();
        spliced.extend_from_slice(&good[from..end]);
        spliced.extend_from_slice(&good[cut..]);
        read_hostile(&spliced, "splice");
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_hostile(&bytes, "noise");
    }
}
