//! Trigger ids. Explicit ones must be unique across trigger types; the rest
//! are generated as Spin does it (crates/manifest/src/normalize.rs):
//! `<component>-<type>-trigger` if the trigger names a component and that id
//! is free, else the first free `<type>-trigger<n>`, counting per type.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};

use toml::Spanned;

use crate::source::Problems;

pub(super) struct TriggerIds {
    taken: HashSet<String>,
    counters: BTreeMap<&'static str, usize>,
}

impl TriggerIds {
    /// Takes every explicit id, reporting duplicates.
    pub fn new<'a>(
        explicit: impl IntoIterator<Item = &'a Spanned<String>>,
        problems: &mut Problems<'_>,
    ) -> Self {
        // In file order, so that a duplicate points back at the first one.
        let mut explicit: Vec<_> = explicit.into_iter().collect();
        explicit.sort_by_key(|id| id.span().start);
        let mut first_lines = BTreeMap::new();
        for id in explicit {
            let line = problems.source().location(&id.span()).line;
            match first_lines.entry(id.get_ref().clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(line);
                }
                Entry::Occupied(entry) => problems.report(
                    &id.span(),
                    format!(
                        "duplicate trigger id `{}` (also at line {})",
                        id.get_ref(),
                        entry.get()
                    ),
                ),
            }
        }
        Self {
            taken: first_lines.into_keys().collect(),
            counters: BTreeMap::new(),
        }
    }

    /// The id of a trigger of type `kind` that names `component` by id.
    pub fn assign(
        &mut self,
        kind: &'static str,
        explicit: Option<&Spanned<String>>,
        component: Option<&str>,
    ) -> String {
        if let Some(id) = explicit {
            return id.get_ref().clone();
        }
        if let Some(component) = component {
            let natural = format!("{component}-{kind}-trigger");
            if self.taken.insert(natural.clone()) {
                return natural;
            }
        }
        let counter = self.counters.entry(kind).or_insert(1);
        loop {
            let id = format!("{kind}-trigger{counter}");
            *counter += 1;
            if self.taken.insert(id.clone()) {
                return id;
            }
        }
    }
}
