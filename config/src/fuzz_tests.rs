//! Property tests: whatever bytes a manifest, runtime-config file or board
//! profile holds, parsing returns a value or diagnostics, never a panic.
//! Inputs are random text and random edits of valid files, which reach far
//! deeper into validation than random text alone.

use std::path::Path;

use proptest::prelude::*;

const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "fuzz"
[variables]
host = { default = "example.com" }
token = { required = true, secret = true }
[application.trigger.mqtt]
address = "mqtt://{{ host }}:1883"
keep_alive_interval = "30"
[[trigger.http]]
route = "/users/:id/..."
component = "a"
executor = { type = "wagi", argv = "${SCRIPT_NAME} ${ARGS}" }
[[trigger.http]]
route = "/static"
static_response = { status_code = 200, headers = { "x" = "y" }, body = "hi" }
[[trigger.mqtt]]
component = "a"
topic = "$share/g/sensors/+/temp"
qos = "1"
dead_letter_topic = "dead/x"
[component.a]
source = "a.wasm"
files = ["assets/**/*", { source = "static", destination = "/" }]
allowed_outbound_hosts = ["https://{{ host }}", "mqtt://*:*"]
key_value_stores = ["default"]
environment = { A = "b" }
[component.a.variables]
api = "https://{{ host }}/v1"
[component.a.build]
command = "cargo build"
"#;

const RUNTIME_CONFIG: &str = r#"[key_value_store.other]
type = "spin"
path = "data/other"
[limits]
workers = 2
max_request_body_bytes = 1024
"#;

/// A valid file with `edits` applied: (position, replacement) pairs, each
/// replacing one byte with 0 to 3 others.
fn mutated(base: &str, edits: &[(usize, Vec<u8>)]) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for (at, with) in edits {
        let at = at % (bytes.len() + 1);
        let end = (at + 1).min(bytes.len());
        bytes.splice(at..end, with.iter().copied());
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    let interesting = prop_oneof![
        any::<u8>(),
        Just(b'"'),
        Just(b'['),
        Just(b']'),
        Just(b'{'),
        Just(b'='),
        Just(b'\n'),
        Just(b':'),
        Just(b'/'),
        Just(b'.'),
        Just(b'*'),
        Just(b'#'),
        Just(b'+'),
        Just(b'0'),
    ];
    proptest::collection::vec(
        (any::<usize>(), proptest::collection::vec(interesting, 0..4)),
        1..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn manifests_never_panic(text in ".{0,400}") {
        let _ = crate::parse_manifest(&text, Path::new("/app/spin.toml"));
    }

    #[test]
    fn edited_manifests_never_panic(edits in edits()) {
        let _ = crate::parse_manifest(&mutated(MANIFEST, &edits), Path::new("/app/spin.toml"));
    }

    #[test]
    fn edited_runtime_configs_never_panic(edits in edits()) {
        let _ = crate::parse_runtime_config(&mutated(RUNTIME_CONFIG, &edits), Path::new("/app/rc.toml"));
    }

    #[test]
    fn edited_board_profiles_never_panic(edits in edits()) {
        let board = include_str!("../../boards/rpi-4.toml");
        let _ = crate::parse_board(&mutated(board, &edits), Path::new("/boards/x.toml"));
    }

    #[test]
    fn routes_and_templates_never_panic(text in ".{0,80}", path in "[/a-z%.:]{0,40}") {
        if let Ok(route) = crate::RoutePattern::parse(&text) {
            let _ = route.matches(&path);
        }
        let _ = crate::expand_template(&text, |_| Some("v".into()));
        let _ = crate::filter_matches(&text, &path);
    }
}
