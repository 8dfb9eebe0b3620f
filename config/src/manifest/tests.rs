use std::path::{Path, PathBuf};

use super::*;
use crate::route::Route;

pub(super) fn parse(text: &str) -> Result<Manifest, ConfigError> {
    parse_manifest(text, Path::new("spin.toml"))
}

/// Every diagnostic, formatted, for a manifest that must be rejected.
pub(super) fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Err(ConfigError::Invalid(d)) => d.0.iter().map(ToString::to_string).collect(),
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

/// A valid manifest with `extra` appended.
fn with(extra: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "app"
[[trigger.http]]
route = "/"
component = "a"
[component.a]
source = "a.wasm"
{extra}"#
    )
}

const FULL: &str = r#"spin_manifest_version = 2

[application]
name = "edge-app"
version = "0.1.0"
description = "An app at the edge"
authors = ["Ada <ada@example.com>"]
targets = ["spin-up:3.3"]

[application.trigger.http]
base = "/shop"

[application.trigger.mqtt]
address = "mqtt://localhost:1883"

[application.tool.lint]
level = "strict"

[variables]
api_host = { default = "example.com" }
token = { required = true, secret = true, description = "API token" }

[[trigger.http]]
route = "/api/..."
component = "api"

[[trigger.http]]
id = "cgi"
route = "/cgi"
component = "legacy"
executor = { type = "wagi", argv = "${SCRIPT_NAME} -v ${ARGS}", entrypoint = "main" }

[[trigger.http]]
route = "/old"
static_response = { status_code = 301, headers = { location = "/new" }, body = "moved" }

[[trigger.http]]
route = "/inline/:name"
component = { source = "inline.wasm", allowed_outbound_hosts = ["https://{{ api_host }}"] }

[[trigger.http]]
route = { private = true }
component = "api"
executor = { type = "spin" }

[[trigger.http]]
route = "/wagi-defaults"
component = "legacy"
executor = { type = "wagi" }

[[trigger.mqtt]]
component = "api"
topic = "messages-in01"
qos = "1"

[component.api]
source = "api.wasm"
description = "The API"
allowed_outbound_hosts = ["https://{{ api_host }}", "mqtt://broker.local:1883"]
allowed_http_hosts = ["example.com"]
key_value_stores = ["default", "user_data"]
sqlite_databases = ["default"]
ai_models = ["llama2-chat"]
environment = { MODE = "edge" }
files = ["assets/**/*.png", { source = "static", destination = "/static" }]
exclude_files = ["assets/secret.png"]
dependencies_inherit_configuration = true
targets = ["spin-up:3.3"]
[component.api.variables]
api_base = "https://{{ api_host }}/v1"
token = "{{token}}"
[component.api.build]
command = ["cargo build --release", "wasm-opt -Os"]
workdir = "api"
watch = ["src/**/*.rs"]
[component.api.dependencies]
"foo:bar" = ">= 0.1.0"
[component.api.tool.clean]
command = "cargo clean"

[component.legacy]
source = "cgi/legacy.wasm"
build = { command = "make" }
"#;

fn at(line: usize, column: usize) -> Location {
    Location { line, column }
}

#[test]
fn a_manifest_using_every_field_parses() {
    let m = parse_manifest(FULL, Path::new("/apps/edge/spin.toml")).unwrap();
    assert_eq!(m.path, PathBuf::from("/apps/edge/spin.toml"));
    assert_eq!(m.dir, PathBuf::from("/apps/edge"));

    let app = &m.application;
    assert_eq!(app.name, "edge-app");
    assert_eq!(app.version.as_deref(), Some("0.1.0"));
    assert_eq!(app.description.as_deref(), Some("An app at the edge"));
    assert_eq!(app.authors, ["Ada <ada@example.com>"]);
    assert_eq!(app.targets, ["spin-up:3.3"]);
    assert_eq!(app.http_base.as_deref(), Some("/shop"));
    let broker = app.mqtt.as_ref().unwrap();
    assert_eq!(broker.address, "mqtt://localhost:1883");
    assert_eq!(broker.address_location, at(14, 11));

    assert_eq!(
        m.variables["api_host"],
        Variable {
            description: None,
            default: Some("example.com".into()),
            required: false,
            secret: false,
        }
    );
    assert_eq!(
        m.variables["token"],
        Variable {
            description: Some("API token".into()),
            default: None,
            required: true,
            secret: true,
        }
    );

    let ids: Vec<&str> = m.http_triggers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "api-http-trigger",
            "cgi",
            "http-trigger1",
            "http-trigger2",
            "http-trigger3",
            "legacy-http-trigger"
        ]
    );

    let api = &m.http_triggers[0];
    let Route::Pattern(route) = &api.route else {
        panic!("expected a pattern: {:?}", api.route);
    };
    assert_eq!(route.raw(), "/api/...");
    assert_eq!(api.route_location, at(24, 9));
    assert_eq!(api.component.as_deref(), Some("api"));
    assert_eq!(api.component_location, Some(at(25, 13)));
    assert_eq!(api.executor, Executor::Spin);
    assert_eq!(api.static_response, None);

    assert_eq!(
        m.http_triggers[1].executor,
        Executor::Wagi {
            argv: "${SCRIPT_NAME} -v ${ARGS}".into(),
            entrypoint: Some("main".into()),
        }
    );
    assert_eq!(
        m.http_triggers[5].executor,
        Executor::Wagi {
            argv: "${SCRIPT_NAME} ${ARGS}".into(),
            entrypoint: None,
        }
    );

    let moved = &m.http_triggers[2];
    assert_eq!(moved.component, None);
    assert_eq!(
        moved.static_response,
        Some(StaticResponse {
            status_code: 301,
            headers: [("location".to_owned(), "/new".to_owned())].into(),
            body: Some("moved".into()),
        })
    );

    let inline = &m.http_triggers[3];
    assert_eq!(inline.component.as_deref(), Some("http-trigger2-component"));
    let inline_component = &m.components["http-trigger2-component"];
    assert_eq!(
        inline_component.source,
        PathBuf::from("/apps/edge/inline.wasm")
    );
    assert_eq!(inline_component.location, at(39, 13));
    assert_eq!(
        inline_component.allowed_outbound_hosts,
        ["https://{{ api_host }}"]
    );

    assert_eq!(m.http_triggers[4].route, Route::Private);
    assert_eq!(m.http_triggers[4].executor, Executor::Spin);

    assert_eq!(m.mqtt_triggers.len(), 1);
    let subscription = &m.mqtt_triggers[0];
    assert_eq!(subscription.id, "api-mqtt-trigger");
    assert_eq!(subscription.topic, "messages-in01");
    assert_eq!(subscription.qos, 1);

    let api = &m.components["api"];
    assert_eq!(api.id, "api");
    assert_eq!(api.location, at(56, 12));
    assert_eq!(api.source, PathBuf::from("/apps/edge/api.wasm"));
    assert_eq!(api.source_location, at(57, 10));
    assert_eq!(api.description.as_deref(), Some("The API"));
    assert_eq!(
        api.allowed_outbound_hosts,
        ["https://{{ api_host }}", "mqtt://broker.local:1883"]
    );
    assert_eq!(api.allowed_http_hosts, ["example.com"]);
    assert_eq!(api.key_value_stores, ["default", "user_data"]);
    assert_eq!(api.sqlite_databases, ["default"]);
    assert_eq!(api.ai_models, ["llama2-chat"]);
    assert_eq!(api.environment["MODE"], "edge");
    assert_eq!(
        api.files,
        [
            FilesMount::Pattern {
                glob: "assets/**/*.png".into(),
                location: at(65, 10),
            },
            FilesMount::Placement {
                source: "static".into(),
                destination: "/static".into(),
                location: at(65, 29),
            },
        ]
    );
    assert_eq!(api.exclude_files, ["assets/secret.png"]);
    assert!(api.dependencies_inherit_configuration);
    assert_eq!(api.targets, ["spin-up:3.3"]);
    assert_eq!(api.variables["api_base"], "https://{{ api_host }}/v1");
    assert_eq!(api.variables["token"], "{{token}}");
    assert_eq!(
        api.build,
        Some(BuildConfig {
            commands: vec!["cargo build --release".into(), "wasm-opt -Os".into()],
            workdir: Some("api".into()),
            watch: vec!["src/**/*.rs".into()],
        })
    );
    assert_eq!(api.dependencies["foo:bar"].as_str(), Some(">= 0.1.0"));
    assert!(api.tool.contains_key("clean"));

    let legacy = &m.components["legacy"];
    assert_eq!(legacy.source, PathBuf::from("/apps/edge/cgi/legacy.wasm"));
    assert_eq!(legacy.build.as_ref().unwrap().commands, ["make"]);
    assert_eq!(m.components.len(), 3);
}

#[test]
fn a_relative_manifest_path_resolves_against_the_current_directory() {
    let m = parse(&with("")).unwrap();
    assert_eq!(m.dir, PathBuf::from("."));
    assert_eq!(m.components["a"].source, PathBuf::from("./a.wasm"));
}

#[test]
fn runtime_errors_can_cite_manifest_locations() {
    let m = parse(&with("")).unwrap();
    let a = &m.components["a"];
    assert_eq!(
        m.diagnostic(a.source_location, "cannot read a.wasm")
            .to_string(),
        "spin.toml:8:10: cannot read a.wasm"
    );
}

#[test]
fn unknown_keys_are_reported_at_the_key() {
    let e = errors(&with("sauce = \"b.wasm\"\n"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("spin.toml:9:1: unknown field `sauce`, expected one of"),
        "{e:?}"
    );

    // Unknown keys inside inline tables, too.
    let e = errors(&with(
        "[[trigger.http]]\nroute = \"/b\"\ncomponent = { source = \"b.wasm\", sorce = 1 }\n",
    ));
    assert!(
        e[0].starts_with("spin.toml:11:34: unknown field `sorce`"),
        "{e:?}"
    );

    let e = errors(&with("[application.trigger.cron]\naddress = \"x\"\n"));
    assert!(
        e[0].starts_with("spin.toml:9:22: unknown field `cron`"),
        "{e:?}"
    );
}

#[test]
fn type_errors_are_reported_at_the_value() {
    let text = with("").replace("route = \"/\"", "route = 5");
    assert_eq!(
        errors(&text),
        [
            "spin.toml:5:9: invalid type: integer `5`, expected a route string or \
          `{ private = true }`"
        ]
    );

    let text = with("").replace("component = \"a\"", "component = [\"a\"]");
    let e = errors(&text);
    assert!(
        e[0].starts_with("spin.toml:6:13: invalid type: sequence, expected a component id"),
        "{e:?}"
    );

    let e = errors(&with("files = [5]\n"));
    assert!(
        e[0].starts_with("spin.toml:9:10: invalid type: integer `5`"),
        "{e:?}"
    );

    let e = errors(&with("build = { command = 5 }\n"));
    assert!(
        e[0].starts_with("spin.toml:9:21: invalid type: integer `5`"),
        "{e:?}"
    );

    let e = errors(&with(
        "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"a\"\nexecutor = { type = \"cgi\" }\n",
    ));
    assert!(
        e[0].starts_with("spin.toml:12:21: unknown variant `cgi`"),
        "{e:?}"
    );
}

#[test]
fn syntax_errors_are_located() {
    let e = errors("spin_manifest_version = 2\n[application\nname = \"x\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("spin.toml:2:"), "{e:?}");
}

#[test]
fn only_manifest_version_2_is_read() {
    let v1 = "spin_manifest_version = \"1\"\nname = \"old\"\ntrigger = { type = \"http\" }\n";
    assert_eq!(
        errors(v1),
        ["spin.toml:1:25: unsupported spin_manifest_version \"1\": Flint reads manifest version 2"]
    );
    assert_eq!(
        errors(&with("").replace("version = 2", "version = 3")),
        ["spin.toml:1:25: unsupported spin_manifest_version 3: Flint reads manifest version 2"]
    );
    assert_eq!(
        errors("[application]\nname = \"x\"\n"),
        ["spin.toml:1:1: missing `spin_manifest_version = 2`"]
    );
}

#[test]
fn all_validation_problems_are_reported_together() {
    let text = r#"spin_manifest_version = 2
[application]
name = "app"
[variables]
token = { required = true, default = "x" }
[[trigger.http]]
route = "a/b"
component = "api"
[[trigger.http]]
route = "/c"
component = "missing"
[component.api]
source = "api.wasm"
allowed_outbound_hosts = ["https://{{ api_host }}"]
"#;
    assert_eq!(
        errors(text),
        [
            "spin.toml:5:38: variable `token` is required, so it cannot have a default",
            "spin.toml:7:9: invalid route `a/b`: a route must start with `/`",
            "spin.toml:11:13: trigger names component `missing`, which is not defined; \
             defined: `api`",
            "spin.toml:14:27: `{{ api_host }}` names a variable that is not declared in \
             [variables]; declared: `token`",
        ]
    );
}

#[test]
fn duplicate_routes_name_both_locations() {
    let e = errors(&with(
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n\
         [[trigger.http]]\nroute = \"/x/*\"\ncomponent = \"a\"\n\
         [[trigger.http]]\nroute = \"/x/...\"\ncomponent = \"a\"\n",
    ));
    assert_eq!(
        e,
        [
            "spin.toml:10:9: duplicate route `/` (also at line 5)",
            "spin.toml:16:9: duplicate route `/x/...`: `/x/*` at line 13 matches the same paths",
        ]
    );
}

#[test]
fn bad_routes_are_rejected() {
    let cases = [
        ("a/b", "a route must start with `/`"),
        ("/a b", "a route must not contain whitespace"),
        (
            "/a/.../b",
            "the wildcard `...` may only be the last segment",
        ),
        ("/a/:", "`:` is not a valid parameter"),
        ("/a?x", "a route must not contain `?`"),
    ];
    for (route, reason) in cases {
        let text = with("").replace("route = \"/\"", &format!("route = \"{route}\""));
        let e = errors(&text);
        let expected = format!("spin.toml:5:9: invalid route `{route}`: {reason}");
        assert!(
            e.len() == 1 && e[0].starts_with(&expected),
            "{route}: {e:?}"
        );
    }
    let text = with("").replace("route = \"/\"", "route = { private = false }");
    assert_eq!(
        errors(&text),
        ["spin.toml:5:9: a route must be a string pattern or `{ private = true }`"]
    );
}

#[test]
fn components_must_exist_and_have_kebab_case_ids() {
    let e = errors(&with("[component.My_Comp]\nsource = \"b.wasm\"\n"));
    assert_eq!(
        e,
        [
            "spin.toml:9:12: invalid component id `My_Comp`: words must be separated with `-`, \
          not `_`"
        ]
    );

    let text = with("").replace("component = \"a\"", "component = \"b\"");
    assert_eq!(
        errors(&text),
        ["spin.toml:6:13: trigger names component `b`, which is not defined; defined: `a`"]
    );

    // Unused components are fine.
    parse(&with("[component.unused]\nsource = \"u.wasm\"\n")).unwrap();
}

#[test]
fn triggers_need_exactly_one_handler() {
    let e = errors(&with("[[trigger.http]]\nroute = \"/x\"\n"));
    assert_eq!(
        e,
        ["spin.toml:9:1: trigger `http-trigger1` needs a `component` or a `static_response`"]
    );
    let e = errors(&with(
        "[[trigger.http]]\nid = \"t\"\nroute = \"/x\"\ncomponent = \"a\"\nstatic_response = {}\n",
    ));
    assert_eq!(
        e,
        ["spin.toml:9:1: trigger `t` has both `component` and `static_response`; keep one"]
    );
}

#[test]
fn static_responses_default_to_200_and_are_checked() {
    let m = parse(&with(
        "[[trigger.http]]\nroute = \"/x\"\nstatic_response = {}\n",
    ))
    .unwrap();
    assert_eq!(
        m.http_triggers[1].static_response,
        Some(StaticResponse {
            status_code: 200,
            headers: BTreeMap::new(),
            body: None,
        })
    );
    let e = errors(&with(
        "[[trigger.http]]\nroute = \"/x\"\n\
         static_response = { status_code = 42, headers = { \"bad name\" = \"a\\nb\" } }\n",
    ));
    assert_eq!(
        e,
        [
            "spin.toml:11:35: `status_code` 42 is not an HTTP status (100-599)",
            "spin.toml:11:51: `bad name` is not a valid header name",
            "spin.toml:11:64: the value of header `bad name` contains a control character",
        ]
    );
}

#[test]
fn variables_are_checked() {
    let text = r#"spin_manifest_version = 2
[application]
name = "app"
[variables]
both = { required = true, default = "x" }
neither = {}
Bad-Name = { default = "x" }
fine = { default = "x", secret = true }
[[trigger.http]]
route = "/"
component = "a"
[component.a]
source = "a.wasm"
[component.a.variables]
ok = "{{ fine }}"
unclosed = "https://{{ fine"
undeclared = "{{ nope }}"
Upper = "x"
"#;
    assert_eq!(
        errors(text),
        [
            "spin.toml:5:37: variable `both` is required, so it cannot have a default",
            "spin.toml:6:1: variable `neither` needs a `default` or `required = true`",
            "spin.toml:7:1: invalid variable name `Bad-Name`: words must be separated with `_`, \
             not `-`",
            "spin.toml:16:12: invalid template: unclosed `{{` in template",
            "spin.toml:17:14: `{{ nope }}` names a variable that is not declared in [variables]; \
             declared: `Bad-Name`, `both`, `fine`, `neither`",
            "spin.toml:18:1: invalid component variable name `Upper`: words must be all \
             lowercase or all UPPERCASE; got `Upper`",
        ]
    );
}

#[test]
fn other_trigger_types_are_rejected_where_they_are() {
    let e = errors(&with(
        "[[trigger.cron]]\ncron_expression = \"* * * * *\"\ncomponent = \"a\"\n",
    ));
    assert_eq!(
        e,
        ["spin.toml:9:11: Flint does not support trigger type `cron`"]
    );
}

#[test]
fn remote_sources_and_relative_destinations_are_rejected() {
    let text = with("files = [{ source = \"s\", destination = \"rel\" }]\n").replace(
        "source = \"a.wasm\"",
        "source = { url = \"https://x/a.wasm\", digest = \"sha256:00\" }",
    );
    assert_eq!(
        errors(&text),
        [
            "spin.toml:8:10: remote component sources are not supported offline; download it \
             and use a path",
            "spin.toml:9:10: files destination `rel` must be an absolute path (start with `/`)",
        ]
    );
    let text = with("").replace(
        "source = \"a.wasm\"",
        "source = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }",
    );
    assert_eq!(
        errors(&text),
        [
            "spin.toml:8:10: registry component sources are not supported offline; fetch it and \
          use a path"
        ]
    );
}

#[test]
fn generated_ids_avoid_taken_ones() {
    let text = with(
        "[[trigger.http]]\nid = \"http-trigger1\"\nroute = \"/b\"\ncomponent = \"a\"\n\
         [[trigger.http]]\nroute = \"/c\"\ncomponent = { source = \"c.wasm\" }\n\
         [component.http-trigger2-component]\nsource = \"taken.wasm\"\n",
    );
    let m = parse(&text).unwrap();
    let ids: Vec<&str> = m.http_triggers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a-http-trigger", "http-trigger1", "http-trigger2"]);
    assert_eq!(
        m.http_triggers[2].component.as_deref(),
        Some("inline-component1")
    );
    assert_eq!(
        m.components["inline-component1"].source,
        PathBuf::from("./c.wasm")
    );
}

#[test]
fn inline_components_may_be_written_as_sub_tables() {
    let m = parse(&with(
        "[[trigger.http]]\nid = \"sub\"\nroute = \"/s\"\n\
         [trigger.http.component]\nsource = \"s.wasm\"\nkey_value_stores = [\"default\"]\n",
    ))
    .unwrap();
    assert_eq!(
        m.http_triggers[1].component.as_deref(),
        Some("sub-component")
    );
    assert_eq!(m.components["sub-component"].key_value_stores, ["default"]);
}
