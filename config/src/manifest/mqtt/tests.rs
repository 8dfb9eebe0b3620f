use crate::diagnostic::Location;
use crate::manifest::tests::{errors, parse};
use crate::mqtt::{DeadLetter, MqttBroker, MqttTrigger};

/// A manifest with a component `ingest`, a variable `mqtt_password`, and
/// `mqtt` from line 8 on.
fn manifest(mqtt: &str) -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"app\"\n[variables]\n\
         mqtt_password = {{ default = \"pw\", secret = true }}\n\
         [component.ingest]\nsource = \"ingest.wasm\"\n{mqtt}"
    )
}

const BROKER: &str = "[application.trigger.mqtt]\naddress = \"mqtt://localhost:1883\"\n";

/// A manifest with a broker and one trigger, whose keys start at line 12.
fn subscription(keys: &str) -> String {
    manifest(&format!(
        "{BROKER}[[trigger.mqtt]]\ncomponent = \"ingest\"\n{keys}"
    ))
}

fn at(line: usize, column: usize) -> Location {
    Location { line, column }
}

#[test]
fn spin_plugin_strings_and_flint_extensions_parse() {
    let m = parse(&manifest(
        r#"[application.trigger.mqtt]
address = "mqtt://localhost:1883"
username = "admin"
password = "{{ mqtt_password }}"
keep_alive_interval = "30"
client_id = "gateway-1.a_b"
clean_session = "true"
max_inflight = "16"
max_payload_bytes = "1048576"
outbox_max_bytes = "2048"
outbox_max_messages = "10"

[[trigger.mqtt]]
id = "t1"
component = "ingest"
topic = "sensors/+/temp"
qos = "2"
concurrency = "4"
max_attempts = "3"
retry_backoff_ms = "50"
dead_letter_topic = "dead/ingest"
"#,
    ))
    .unwrap();
    assert_eq!(
        m.application.mqtt,
        Some(MqttBroker {
            address: "mqtt://localhost:1883".into(),
            address_location: at(9, 11),
            username: "admin".into(),
            password: "{{ mqtt_password }}".into(),
            keep_alive_secs: 30,
            client_id: Some("gateway-1.a_b".into()),
            clean_session: true,
            max_inflight: 16,
            max_payload_bytes: Some(1_048_576),
            outbox_max_bytes: 2048,
            outbox_max_messages: 10,
            location: at(8, 1),
        })
    );
    assert_eq!(
        m.mqtt_triggers,
        [MqttTrigger {
            id: "t1".into(),
            component: "ingest".into(),
            component_location: at(22, 13),
            topic: "sensors/+/temp".into(),
            topic_location: at(23, 9),
            qos: 2,
            concurrency: 4,
            max_attempts: 3,
            retry_backoff_ms: 50,
            dead_letter: DeadLetter::Topic("dead/ingest".into()),
            location: at(20, 1),
        }]
    );
}

#[test]
fn plain_integers_and_booleans_parse_too() {
    let m = parse(&manifest(
        r#"[application.trigger.mqtt]
address = "mqtt://10.0.0.2"
keep_alive_interval = 65535
clean_session = false
max_inflight = 65535
max_payload_bytes = 1
outbox_max_bytes = 1024
outbox_max_messages = 1
[[trigger.mqtt]]
component = "ingest"
topic = "$share/workers/jobs/#"
qos = 0
concurrency = 8
max_attempts = 1
retry_backoff_ms = 1
dead_letter_store = "failed_jobs"
"#,
    ))
    .unwrap();
    let broker = m.application.mqtt.unwrap();
    assert_eq!(broker.keep_alive_secs, 65_535);
    assert!(!broker.clean_session);
    assert_eq!(broker.max_inflight, u16::MAX);
    assert_eq!(broker.max_payload_bytes, Some(1));
    assert_eq!(broker.outbox_max_bytes, 1024);
    assert_eq!(broker.outbox_max_messages, 1);
    let trigger = &m.mqtt_triggers[0];
    assert_eq!(trigger.qos, 0);
    assert_eq!(trigger.concurrency, 8);
    assert_eq!(trigger.max_attempts, 1);
    assert_eq!(trigger.retry_backoff_ms, 1);
    assert_eq!(trigger.dead_letter, DeadLetter::Store("failed_jobs".into()));
}

#[test]
fn every_optional_setting_has_its_default() {
    let m = parse(&subscription("topic = \"a/b\"\n")).unwrap();
    assert_eq!(
        m.application.mqtt,
        Some(MqttBroker {
            address: "mqtt://localhost:1883".into(),
            address_location: at(9, 11),
            username: String::new(),
            password: String::new(),
            keep_alive_secs: 30,
            client_id: None,
            clean_session: false,
            max_inflight: 32,
            max_payload_bytes: None,
            outbox_max_bytes: 64 * 1024 * 1024,
            outbox_max_messages: 100_000,
            location: at(8, 1),
        })
    );
    let trigger = &m.mqtt_triggers[0];
    assert_eq!(trigger.id, "ingest-mqtt-trigger");
    assert_eq!(trigger.qos, 1);
    assert_eq!(trigger.concurrency, 1);
    assert_eq!(trigger.max_attempts, 5);
    assert_eq!(trigger.retry_backoff_ms, 200);
    assert_eq!(trigger.dead_letter, DeadLetter::Store("default".into()));
}

#[test]
fn a_broker_without_triggers_is_optional() {
    let http = "[[trigger.http]]\nroute = \"/\"\ncomponent = \"ingest\"\n";
    let m = parse(&manifest(http)).unwrap();
    assert_eq!(m.application.mqtt, None);
    assert!(m.mqtt_triggers.is_empty());
    // Without an address there is no broker, but its settings are checked.
    let table = format!("{http}[application.trigger.mqtt]\nusername = \"u\"\n");
    assert_eq!(parse(&manifest(&table)).unwrap().application.mqtt, None);
    let table = format!("{http}[application.trigger.mqtt]\nmax_inflight = 0\n");
    assert_eq!(
        errors(&manifest(&table)),
        ["spin.toml:12:16: `max_inflight` must be from 1 to 65535, not 0"]
    );
}

#[test]
fn unknown_keys_are_named_with_the_known_ones() {
    let e = errors(&manifest(
        "[application.trigger.mqtt]\naddress = \"mqtt://h\"\nkeepalive = \"30\"\n",
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "spin.toml:10:1: unknown field `keepalive`, expected one of `address`, `username`, \
             `password`, `keep_alive_interval`, `client_id`"
        ),
        "{e:?}"
    );

    let e = errors(&subscription("topic = \"a\"\nqso = \"1\"\n"));
    assert!(
        e[0].starts_with(
            "spin.toml:13:1: unknown field `qso`, expected one of `id`, `component`, `topic`, `qos`"
        ),
        "{e:?}"
    );
}

#[test]
fn bad_values_are_all_reported_where_they_are() {
    let text = manifest(
        r#"[application.trigger.mqtt]
address = "tcp://broker:8883"
keep_alive_interval = "abc"
client_id = "has space"
clean_session = "yes"
max_inflight = 0
outbox_max_bytes = 1023
[[trigger.mqtt]]
component = "ingest"
topic = "a/#/b"
qos = "3"
concurrency = 0
dead_letter_store = "default"
dead_letter_topic = "dead/+"
[[trigger.mqtt]]
component = "ingest"
topic = "a+/b"
max_attempts = "-1"
retry_backoff_ms = "99999999999999999999999"
"#,
    );
    assert_eq!(
        errors(&text),
        [
            "spin.toml:9:11: invalid broker address `tcp://broker:8883`: a broker address must \
             start with `mqtt://` or `mqtts://`",
            "spin.toml:10:23: `keep_alive_interval` must be a whole number, not \"abc\"",
            "spin.toml:11:13: `client_id` must be 1 to 64 characters from `A-Z`, `a-z`, `0-9`, \
             `_`, `-` and `.`, not `has space`",
            "spin.toml:12:17: `clean_session` must be true or false, not \"yes\"",
            "spin.toml:13:16: `max_inflight` must be from 1 to 65535, not 0",
            "spin.toml:14:20: `outbox_max_bytes` must be at least 1024, not 1023",
            "spin.toml:17:9: invalid topic filter `a/#/b`: `#` may only be the whole last \
             level, as in `a/#`",
            "spin.toml:18:7: `qos` must be from 0 to 2, not \"3\"",
            "spin.toml:19:15: `concurrency` must be at least 1, not 0",
            "spin.toml:21:21: invalid `dead_letter_topic` `dead/+`: a topic to publish to must \
             not contain the wildcards `+` or `#`",
            "spin.toml:21:21: set `dead_letter_store` or `dead_letter_topic`, not both",
            "spin.toml:24:9: invalid topic filter `a+/b`: `+` must be a whole level, as in \
             `a/+/b`",
            "spin.toml:25:16: `max_attempts` must be at least 1, not \"-1\"",
            "spin.toml:26:20: `retry_backoff_ms` is too large: \"99999999999999999999999\"",
        ]
    );
}

#[test]
fn wrong_types_are_serde_errors_at_the_value() {
    let e = errors(&subscription("topic = \"a\"\nqos = 1.5\n"));
    assert_eq!(
        e,
        [
            "spin.toml:13:7: invalid type: floating point `1.5`, expected a whole number, such as \
          `30` or `\"30\"`"
        ]
    );
    let e = errors(&manifest(
        "[application.trigger.mqtt]\naddress = \"mqtt://h\"\nclean_session = 0\n",
    ));
    assert_eq!(
        e,
        [
            "spin.toml:10:17: invalid type: integer `0`, expected `true` or `false`, or the same \
          in a string"
        ]
    );
}

#[test]
fn triggers_need_the_broker_address() {
    let trigger = "[[trigger.mqtt]]\ncomponent = \"ingest\"\ntopic = \"a\"\n";
    let expected = "spin.toml:8:1: MQTT triggers need a broker: add \
                    `[application.trigger.mqtt]` with `address = \"mqtt://host:1883\"`";
    assert_eq!(
        errors(&manifest(&format!("{trigger}{trigger}"))),
        [expected]
    );
    let no_address = format!("{trigger}[application.trigger.mqtt]\nusername = \"u\"\n");
    assert_eq!(errors(&manifest(&no_address)), [expected]);
}

#[test]
fn components_must_be_defined_and_named() {
    assert_eq!(
        errors(&manifest(&format!(
            "{BROKER}[[trigger.mqtt]]\ncomponent = \"ingets\"\ntopic = \"a\"\n"
        ))),
        [
            "spin.toml:11:13: trigger names component `ingets`, which is not defined; defined: \
          `ingest`"
        ]
    );
    assert_eq!(
        errors(&manifest(&format!(
            "{BROKER}[[trigger.mqtt]]\ncomponent = {{ source = \"x.wasm\" }}\ntopic = \"a\"\n"
        ))),
        [
            "spin.toml:11:13: MQTT triggers do not take inline components; define it as \
          `[component.<id>]` and name that id here"
        ]
    );
}

#[test]
fn templated_values_are_checked_for_variables_only() {
    let text = manifest(
        r#"[application.trigger.mqtt]
address = "mqtt://{{ host }}:{{ port }}"
username = "{{ mqtt_user }}"
password = "{{ mqtt_password }}"
[[trigger.mqtt]]
component = "ingest"
topic = "{{ prefix }}/#/x"
"#,
    );
    let undeclared = |location: &str, name: &str| {
        format!(
            "spin.toml:{location}: `{{{{ {name} }}}}` names a variable that is not declared in \
             [variables]; declared: `mqtt_password`"
        )
    };
    assert_eq!(
        errors(&text),
        [
            undeclared("9:11", "host"),
            undeclared("9:11", "port"),
            undeclared("10:12", "mqtt_user"),
            undeclared("14:9", "prefix"),
        ]
    );

    // A literal scheme is checked even when the host is a template.
    let text = manifest(
        "[application.trigger.mqtt]\naddress = \"ssl://{{ mqtt_password }}\"\n\
         [[trigger.mqtt]]\ncomponent = \"ingest\"\ntopic = \"a\"\n",
    );
    assert_eq!(
        errors(&text),
        [
            "spin.toml:9:11: invalid broker address `ssl://{{ mqtt_password }}`: a broker \
          address must start with `mqtt://` or `mqtts://`"
        ]
    );
}

#[test]
fn trigger_ids_are_generated_and_unique_across_types() {
    let text = manifest(&format!(
        "{BROKER}[[trigger.mqtt]]\ncomponent = \"ingest\"\ntopic = \"a\"\n\
         [[trigger.mqtt]]\ncomponent = \"ingest\"\ntopic = \"b\"\n\
         [[trigger.mqtt]]\nid = \"mqtt-trigger1\"\ncomponent = \"ingest\"\ntopic = \"c\"\n"
    ));
    let m = parse(&text).unwrap();
    let ids: Vec<&str> = m.mqtt_triggers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["ingest-mqtt-trigger", "mqtt-trigger2", "mqtt-trigger1"]
    );

    let text = manifest(&format!(
        "{BROKER}[[trigger.mqtt]]\nid = \"t\"\ncomponent = \"ingest\"\ntopic = \"a\"\n\
         [[trigger.http]]\nid = \"t\"\nroute = \"/\"\ncomponent = \"ingest\"\n"
    ));
    assert_eq!(
        errors(&text),
        ["spin.toml:15:6: duplicate trigger id `t` (also at line 11)"]
    );
}
