//! `[application.trigger.redis]` and `[[trigger.redis]]`: Spin's Redis
//! trigger, a channel per trigger, on the application's server or the
//! trigger's own.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Component;
use super::component;
use super::schema::{RawAppRedis, RawRedisTrigger};
use super::trigger_ids::TriggerIds;
use super::validate::Context;
use crate::redis::{RedisAddress, RedisServer, RedisTrigger, redacted, strip_scheme};
use crate::source::Problems;

pub(super) fn server(
    raw: RawAppRedis,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> RedisServer {
    check_address(&raw.address, context, problems);
    RedisServer {
        address_location: problems.source().location(&raw.address.span()),
        address: raw.address.into_inner(),
    }
}

/// A templated address is checked by the runtime once expanded; until then
/// only a literal scheme can be.
fn check_address(address: &Spanned<String>, context: &Context<'_>, problems: &mut Problems<'_>) {
    context.check_template(address, problems);
    let text = address.get_ref();
    let result = match text.split_once("{{") {
        None => RedisAddress::parse(text).map(drop),
        Some((literal, _)) if literal.contains("://") => strip_scheme(text).map(drop),
        Some(_) => Ok(()),
    };
    if let Err(error) = result {
        problems.report(
            &address.span(),
            format!("invalid Redis address `{}`: {error}", redacted(text)),
        );
    }
}

/// The `[[trigger.redis]]` entries. Their components are checked against
/// `components`, which must already hold the inline ones of HTTP triggers.
pub(super) fn triggers(
    raw: Vec<Spanned<RawRedisTrigger>>,
    server: Option<&RedisServer>,
    trigger_ids: &mut TriggerIds,
    components: &BTreeMap<String, Component>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> Vec<RedisTrigger> {
    raw.into_iter()
        .map(|raw| {
            let span = raw.span();
            if server.is_none() && raw.get_ref().address.is_none() {
                problems.report(
                    &span,
                    "Redis triggers need a server: add `[application.trigger.redis]` with \
                     `address = \"redis://host:6379\"`, or an `address` to this trigger",
                );
            }
            trigger(raw, trigger_ids, components, context, problems)
        })
        .collect()
}

fn trigger(
    raw: Spanned<RawRedisTrigger>,
    trigger_ids: &mut TriggerIds,
    components: &BTreeMap<String, Component>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> RedisTrigger {
    let location = problems.source().location(&raw.span());
    let raw = raw.into_inner();
    let component_span = raw.component.span();
    let component = component::named_by_trigger("Redis", raw.component, components, problems);
    let id = trigger_ids.assign("redis", raw.id.as_ref(), component.as_deref());
    context.check_template(&raw.channel, problems);
    if let Some(address) = &raw.address {
        check_address(address, context, problems);
    }
    RedisTrigger {
        id,
        component: component.unwrap_or_default(),
        component_location: problems.source().location(&component_span),
        channel_location: problems.source().location(&raw.channel.span()),
        channel: raw.channel.into_inner(),
        address_location: raw
            .address
            .as_ref()
            .map(|a| problems.source().location(&a.span())),
        address: raw.address.map(Spanned::into_inner),
        location,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, parse};

    const APP: &str = r#"spin_manifest_version = 2
[application]
name = "app"
[variables]
redis_host = { default = "localhost" }
[application.trigger.redis]
address = "redis://{{ redis_host }}:6379"
[[trigger.redis]]
channel = "orders"
component = "handler"
[[trigger.redis]]
id = "audit"
channel = "audit"
address = "rediss://:pw@cache.example:6380/2"
component = "handler"
[component.handler]
source = "h.wasm"
"#;

    #[test]
    fn triggers_on_the_application_server_or_their_own() {
        let m = parse(APP).expect("valid");
        let server = m.application.redis.as_ref().expect("server");
        assert_eq!(server.address, "redis://{{ redis_host }}:6379");
        assert_eq!(m.redis_triggers.len(), 2);
        let [first, second] = &m.redis_triggers[..] else {
            panic!("two triggers")
        };
        assert_eq!(
            (
                first.id.as_str(),
                first.channel.as_str(),
                first.address.as_deref()
            ),
            ("handler-redis-trigger", "orders", None)
        );
        assert_eq!(
            (second.id.as_str(), second.address.as_deref()),
            ("audit", Some("rediss://:pw@cache.example:6380/2"))
        );
        assert_eq!(first.component, "handler");
    }

    #[test]
    fn problems_are_reported_where_they_are() {
        let text = APP
            .replace("redis://{{ redis_host }}:6379", "http://x")
            .replace(
                "component = \"handler\"\n[[trigger.redis]]",
                "component = \"nope\"\n[[trigger.redis]]",
            );
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "spin.toml:7:11: invalid Redis address `http://x`: a Redis address must start with"
            ),
            "{e:?}"
        );
        assert!(e[1].contains("`nope`"), "{e:?}");

        let no_server = APP.replace(
            "[application.trigger.redis]\naddress = \"redis://{{ redis_host }}:6379\"\n",
            "",
        );
        let e = errors(&no_server);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("Redis triggers need a server"), "{e:?}");
        assert!(e[0].starts_with("spin.toml:6:1:"), "{e:?}");

        // The password stays out of the message, the address quoted without it.
        let e = errors(&APP.replace(":pw@cache.example:6380/2", ":pw@cache.example:x"));
        assert!(
            e[0].contains("invalid Redis address `rediss://***@cache.example:x`"),
            "{e:?}"
        );
        assert!(!e[0].contains("pw"), "{e:?}");

        let e = errors(&APP.replace("{{ redis_host }}", "{{ nope }}"));
        assert!(e[0].contains("`{{ nope }}` names a variable"), "{e:?}");
        let e = errors(&APP.replace("channel = \"orders\"", "channel = \"o\"\nqos = 1"));
        assert!(e[0].contains("unknown field `qos`"), "{e:?}");
    }
}
