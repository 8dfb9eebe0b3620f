//! `[application.trigger.mqtt]` and `[[trigger.mqtt]]`: the settings of
//! Spin's MQTT trigger plugin, whose values are strings, and Flint's
//! delivery settings, each checked and given its default.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Component;
use super::component;
use super::schema::{RawAppMqtt, RawMqttTrigger};
use super::setting::{flag, whole};
use super::trigger_ids::TriggerIds;
use super::validate::Context;
use crate::ids;
use crate::mqtt::{
    DeadLetter, MqttAddress, MqttBroker, MqttTrigger, check_filter, check_topic_name, strip_scheme,
};
use crate::source::Problems;

const DEFAULT_KEEP_ALIVE_SECS: u64 = 30;
const DEFAULT_MAX_INFLIGHT: u16 = 32;
const DEFAULT_OUTBOX_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_OUTBOX_MAX_MESSAGES: u64 = 100_000;
const DEFAULT_QOS: u8 = 1;
const DEFAULT_CONCURRENCY: usize = 1;
const DEFAULT_MAX_ATTEMPTS: u32 = 5;
const DEFAULT_RETRY_BACKOFF_MS: u64 = 200;
/// Spin gives every app a key-value store of this label.
const DEFAULT_DEAD_LETTER_STORE: &str = "default";
/// MQTT 3.1.1 servers must accept ids of up to 23 characters; common brokers
/// accept longer ones, and 64 leaves room for a host name in them.
const CLIENT_ID_MAX_CHARS: usize = 64;

/// `[application.trigger.mqtt]`, or `None` if it gives no `address`; every
/// other setting is checked all the same.
pub(super) fn broker(
    raw: Spanned<RawAppMqtt>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> Option<MqttBroker> {
    let location = problems.source().location(&raw.span());
    let raw = raw.into_inner();
    if let Some(address) = &raw.address {
        check_address(address, context, problems);
    }
    for credential in [&raw.username, &raw.password].into_iter().flatten() {
        context.check_template(credential, problems);
    }
    if let Some(client_id) = &raw.client_id {
        check_client_id(client_id, problems);
    }
    let keep_alive_secs = whole(
        raw.keep_alive_interval.as_ref(),
        "keep_alive_interval",
        5,
        Some(65_535),
        problems,
    );
    let clean_session = flag(raw.clean_session.as_ref(), "clean_session", problems);
    let max_inflight = whole(
        raw.max_inflight.as_ref(),
        "max_inflight",
        1,
        Some(u16::MAX),
        problems,
    );
    let max_payload_bytes = whole(
        raw.max_payload_bytes.as_ref(),
        "max_payload_bytes",
        1,
        None,
        problems,
    );
    let outbox_max_bytes = whole(
        raw.outbox_max_bytes.as_ref(),
        "outbox_max_bytes",
        1024,
        None,
        problems,
    );
    let outbox_max_messages = whole(
        raw.outbox_max_messages.as_ref(),
        "outbox_max_messages",
        1,
        None,
        problems,
    );

    let address = raw.address?;
    Some(MqttBroker {
        address_location: problems.source().location(&address.span()),
        address: address.into_inner(),
        username: raw.username.map(Spanned::into_inner).unwrap_or_default(),
        password: raw.password.map(Spanned::into_inner).unwrap_or_default(),
        keep_alive_secs: keep_alive_secs.unwrap_or(DEFAULT_KEEP_ALIVE_SECS),
        client_id: raw.client_id.map(Spanned::into_inner),
        clean_session: clean_session.unwrap_or(false),
        max_inflight: max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT),
        max_payload_bytes,
        outbox_max_bytes: outbox_max_bytes.unwrap_or(DEFAULT_OUTBOX_MAX_BYTES),
        outbox_max_messages: outbox_max_messages.unwrap_or(DEFAULT_OUTBOX_MAX_MESSAGES),
        location,
    })
}

/// A templated address is checked by the runtime once expanded; until then
/// only a literal scheme can be.
fn check_address(address: &Spanned<String>, context: &Context<'_>, problems: &mut Problems<'_>) {
    context.check_template(address, problems);
    let text = address.get_ref();
    let result = if !is_templated(text) {
        MqttAddress::parse(text).map(drop)
    } else if text
        .split("{{")
        .next()
        .is_some_and(|literal| literal.contains("://"))
    {
        strip_scheme(text).map(drop)
    } else {
        Ok(())
    };
    if let Err(error) = result {
        problems.report(
            &address.span(),
            format!("invalid broker address `{text}`: {error}"),
        );
    }
}

fn check_client_id(client_id: &Spanned<String>, problems: &mut Problems<'_>) {
    let id = client_id.get_ref();
    let length = id.chars().count();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if !(1..=CLIENT_ID_MAX_CHARS).contains(&length) || !id.chars().all(allowed) {
        problems.report(
            &client_id.span(),
            format!(
                "`client_id` must be 1 to {CLIENT_ID_MAX_CHARS} characters from `A-Z`, `a-z`, \
                 `0-9`, `_`, `-` and `.`, not `{id}`"
            ),
        );
    }
}

/// The `[[trigger.mqtt]]` entries. Their components are checked against
/// `components`, which must already hold the inline ones of HTTP triggers.
pub(super) fn triggers(
    raw: Vec<Spanned<RawMqttTrigger>>,
    broker: Option<&MqttBroker>,
    trigger_ids: &mut TriggerIds,
    components: &BTreeMap<String, Component>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> Vec<MqttTrigger> {
    if broker.is_none()
        && let Some(first) = raw.first()
    {
        problems.report(
            &first.span(),
            "MQTT triggers need a broker: add `[application.trigger.mqtt]` with \
             `address = \"mqtt://host:1883\"`",
        );
    }
    raw.into_iter()
        .map(|raw| trigger(raw, trigger_ids, components, context, problems))
        .collect()
}

fn trigger(
    raw: Spanned<RawMqttTrigger>,
    trigger_ids: &mut TriggerIds,
    components: &BTreeMap<String, Component>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> MqttTrigger {
    let location = problems.source().location(&raw.span());
    let raw = raw.into_inner();

    let component_span = raw.component.span();
    let component = component::named_by_trigger("MQTT", raw.component, components, problems);
    let id = trigger_ids.assign("mqtt", raw.id.as_ref(), component.as_deref());

    context.check_template(&raw.topic, problems);
    let topic = raw.topic.get_ref();
    if !is_templated(topic)
        && let Err(error) = check_filter(topic)
    {
        problems.report(
            &raw.topic.span(),
            format!("invalid topic filter `{topic}`: {error}"),
        );
    }

    let qos = whole(raw.qos.as_ref(), "qos", 0, Some(2), problems);
    let concurrency = whole(raw.concurrency.as_ref(), "concurrency", 1, None, problems);
    let max_attempts = whole(raw.max_attempts.as_ref(), "max_attempts", 1, None, problems);
    let retry_backoff_ms = whole(
        raw.retry_backoff_ms.as_ref(),
        "retry_backoff_ms",
        1,
        None,
        problems,
    );

    MqttTrigger {
        id,
        component: component.unwrap_or_default(),
        component_location: problems.source().location(&component_span),
        topic_location: problems.source().location(&raw.topic.span()),
        topic: raw.topic.into_inner(),
        qos: qos.unwrap_or(DEFAULT_QOS),
        concurrency: concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        max_attempts: max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        retry_backoff_ms: retry_backoff_ms.unwrap_or(DEFAULT_RETRY_BACKOFF_MS),
        dead_letter: dead_letter(raw.dead_letter_store, raw.dead_letter_topic, problems),
        location,
    }
}

fn dead_letter(
    store: Option<Spanned<String>>,
    topic: Option<Spanned<String>>,
    problems: &mut Problems<'_>,
) -> DeadLetter {
    if let Some(store) = &store
        && let Err(why) = ids::check_label(store.get_ref())
    {
        problems.report(
            &store.span(),
            format!(
                "invalid `dead_letter_store` label `{}`: {why}",
                store.get_ref()
            ),
        );
    }
    if let Some(topic) = &topic
        && let Err(error) = check_topic_name(topic.get_ref())
    {
        problems.report(
            &topic.span(),
            format!("invalid `dead_letter_topic` `{}`: {error}", topic.get_ref()),
        );
    }
    match (store, topic) {
        (Some(_), Some(topic)) => {
            problems.report(
                &topic.span(),
                "set `dead_letter_store` or `dead_letter_topic`, not both",
            );
            DeadLetter::Topic(topic.into_inner())
        }
        (Some(store), None) => DeadLetter::Store(store.into_inner()),
        (None, Some(topic)) => DeadLetter::Topic(topic.into_inner()),
        (None, None) => DeadLetter::Store(DEFAULT_DEAD_LETTER_STORE.to_owned()),
    }
}

fn is_templated(text: &str) -> bool {
    text.contains("{{")
}

#[cfg(test)]
mod tests;
