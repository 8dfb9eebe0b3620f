//! MQTT 3.1.1 topic names and filters (section 4.7), plus MQTT 5's shared
//! subscriptions (`$share/<group>/<filter>`), which brokers also accept from
//! 3.1.1 clients.

/// MQTT strings carry a 16-bit length.
const MAX_TOPIC_BYTES: usize = 65_535;

const SHARE_PREFIX: &str = "$share/";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic must not be empty")]
    Empty,
    #[error("a topic must not contain the NUL character")]
    Nul,
    #[error("a topic must be at most {MAX_TOPIC_BYTES} bytes")]
    TooLong,
    #[error("`#` may only be the whole last level, as in `a/#`")]
    MultiLevelWildcard,
    #[error("`+` must be a whole level, as in `a/+/b`")]
    SingleLevelWildcard,
    #[error("`$share/` must be followed by a group name without `+` or `#`, then `/` and a filter")]
    ShareGroup,
    #[error("a topic to publish to must not contain the wildcards `+` or `#`")]
    Wildcard,
}

/// Checks a subscription's topic filter.
pub fn check_filter(filter: &str) -> Result<(), TopicError> {
    check_string(filter)?;
    let filter = match filter.strip_prefix(SHARE_PREFIX) {
        Some(shared) => {
            let (group, filter) = shared.split_once('/').ok_or(TopicError::ShareGroup)?;
            if group.is_empty() || group.contains(['+', '#']) {
                return Err(TopicError::ShareGroup);
            }
            check_string(filter)?;
            filter
        }
        None => filter,
    };
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "+" => {}
            "#" if last => {}
            _ if level.contains('#') => return Err(TopicError::MultiLevelWildcard),
            _ if level.contains('+') => return Err(TopicError::SingleLevelWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Checks the name of a topic to publish to.
pub fn check_topic_name(topic: &str) -> Result<(), TopicError> {
    check_string(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

fn check_string(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        Err(TopicError::Empty)
    } else if topic.contains('\0') {
        Err(TopicError::Nul)
    } else if topic.len() > MAX_TOPIC_BYTES {
        Err(TopicError::TooLong)
    } else {
        Ok(())
    }
}

/// Whether a message published to `topic` is delivered to a subscription to
/// `filter`, a filter [`check_filter`] accepts.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    // The group only chooses which subscriber gets the message.
    let filter = filter
        .strip_prefix(SHARE_PREFIX)
        .and_then(|shared| shared.split_once('/'))
        .map_or(filter, |(_group, filter)| filter);
    // Keeps `#` from delivering broker internals such as `$SYS/...`.
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            // `#` also matches the parent level: `a/#` matches `a`.
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(wanted), Some(level)) if wanted == level => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_filters_are_accepted() {
        for filter in [
            "a",
            "/",
            "a/b/c",
            "#",
            "+",
            "a/#",
            "+/+",
            "a/+/b/#",
            "/finance",
            "$SYS/#",
            "$share/group/a/+/b",
            "$share/g/#",
            "sensors/{temp}",
        ] {
            assert_eq!(check_filter(filter), Ok(()), "{filter}");
        }
    }

    #[test]
    fn invalid_filters_say_why() {
        let cases = [
            ("", TopicError::Empty),
            ("a/\0", TopicError::Nul),
            ("a/#/b", TopicError::MultiLevelWildcard),
            ("a#", TopicError::MultiLevelWildcard),
            ("a/b#", TopicError::MultiLevelWildcard),
            ("a+/b", TopicError::SingleLevelWildcard),
            ("a/+b", TopicError::SingleLevelWildcard),
            ("$share/g", TopicError::ShareGroup),
            ("$share//a", TopicError::ShareGroup),
            ("$share/g+/a", TopicError::ShareGroup),
            ("$share/#/a", TopicError::ShareGroup),
            ("$share/g/", TopicError::Empty),
            ("$share/g/a/#/b", TopicError::MultiLevelWildcard),
        ];
        for (filter, error) in cases {
            assert_eq!(check_filter(filter), Err(error), "{filter:?}");
        }
        assert_eq!(
            check_filter(&"a".repeat(MAX_TOPIC_BYTES + 1)),
            Err(TopicError::TooLong)
        );
    }

    #[test]
    fn topic_names_have_no_wildcards() {
        assert_eq!(check_topic_name("dead/ingest"), Ok(()));
        assert_eq!(check_topic_name("a/+"), Err(TopicError::Wildcard));
        assert_eq!(check_topic_name("#"), Err(TopicError::Wildcard));
        assert_eq!(check_topic_name(""), Err(TopicError::Empty));
    }

    #[test]
    fn filters_match_as_mqtt_specifies() {
        let matching = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/+", "a/"),
            ("+/b", "/b"),
            ("+/+", "/finance"),
            ("/+", "/finance"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("#", "a/b"),
            ("#", "/"),
            ("sensors/+/temp", "sensors/kitchen/temp"),
            ("$SYS/#", "$SYS/broker/load"),
            ("$SYS/+", "$SYS/uptime"),
            ("$share/workers/a/+", "a/b"),
            ("$share/g/#", "x"),
        ];
        for (filter, topic) in matching {
            assert!(
                filter_matches(filter, topic),
                "{filter} should match {topic}"
            );
        }
        let not_matching = [
            ("a/b", "a/c"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("+", "/finance"),
            ("a/#", "b"),
            ("A", "a"),
            ("#", "$SYS/broker"),
            ("+/broker", "$SYS/broker"),
            ("$share/g/#", "$SYS/x"),
            ("$share/g/a", "$share/g/a"),
        ];
        for (filter, topic) in not_matching {
            assert!(
                !filter_matches(filter, topic),
                "{filter} should not match {topic}"
            );
        }
    }
}
