//! Component value types read from a component's type sections, as the
//! `&'static` [`Ty`]s the canonical ABI layer works with. They are interned:
//! each distinct type is allocated once per process, however many times
//! components using it are loaded (an app reloaded on a device for months
//! must not grow), and the set is bounded by the distinct types ever seen.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

use crate::canon::Ty;

struct Interned {
    types: HashSet<&'static Ty>,
    fields: HashSet<&'static [Ty]>,
    cases: HashSet<&'static [Option<Ty>]>,
}

static INTERNED: Mutex<Option<Interned>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Interned) -> R) -> R {
    let mut guard = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let interned = guard.get_or_insert_with(|| Interned {
        types: HashSet::new(),
        fields: HashSet::new(),
        cases: HashSet::new(),
    });
    f(interned)
}

fn get_or_leak<T: ?Sized + Eq + Hash>(
    set: &mut HashSet<&'static T>,
    value: &T,
    leak: impl FnOnce() -> &'static T,
) -> &'static T {
    if let Some(found) = set.get(value) {
        return found;
    }
    let leaked = leak();
    set.insert(leaked);
    leaked
}

pub(crate) fn intern(ty: Ty) -> &'static Ty {
    with(|i| get_or_leak(&mut i.types, &ty, || Box::leak(Box::new(ty))))
}

pub(crate) fn intern_fields(fields: Vec<Ty>) -> &'static [Ty] {
    with(|i| get_or_leak(&mut i.fields, &fields[..], || fields.clone().leak()))
}

pub(crate) fn intern_cases(cases: Vec<Option<Ty>>) -> &'static [Option<Ty>] {
    with(|i| get_or_leak(&mut i.cases, &cases[..], || cases.clone().leak()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_types_are_allocated_once() {
        let a = intern(Ty::List(intern(Ty::String)));
        let b = intern(Ty::List(intern(Ty::String)));
        assert!(std::ptr::eq(a, b));
        let f = intern_fields(vec![Ty::U8, Ty::String]);
        let g = intern_fields(vec![Ty::U8, Ty::String]);
        assert!(std::ptr::eq(f, g));
    }
}
