//! Mutated components never panic the loader: every corruption of a real
//! toolchain's component (bytes flipped, inserted, removed, the file cut) is
//! either refused with an error or loads, and a loaded one instantiates or
//! fails cleanly.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flint_executor::{SPIN_ROUTE, load_module};
use proptest::prelude::*;

/// The Rust spin-sdk 5 component `scripts/build-components` builds.
fn original() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../apps/components/target/wasm32-wasip2/release/component_hello.wasm");
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-components)", path.display()))
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Cut { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::Flip { at, byte } => bytes[at % len] ^= byte | 1,
        Mutation::Insert { at, byte } => bytes.insert(at % len, byte),
        Mutation::Remove { at } => {
            bytes.remove(at % len);
        }
        Mutation::Cut { at } => bytes.truncate(at % len),
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flint-mutated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mutated_components_are_refused_or_load(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let engine = flint_host::engine(true).expect("engine");
        let mut bytes = original().to_vec();
        for m in &mutations {
            if bytes.is_empty() { break; }
            apply(&mut bytes, m);
        }
        let path = scratch().join(format!("{:?}.wasm", std::thread::current().id()).replace(['(', ')'], ""));
        std::fs::write(&path, &bytes).expect("write");
        // Either outcome is fine; a panic fails the test.
        let _ = load_module(&engine, "mutated", &path, SPIN_ROUTE, 64 << 20);
    }
}
