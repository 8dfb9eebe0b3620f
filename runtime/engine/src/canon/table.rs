//! Per-instance resource handle tables. Handles are never reused while live
//! and are checked for existence and type on every use, so a forged or stale
//! handle traps instead of reaching another resource.

use wasmi::Error;

/// A resource type stored in a table of `R` (an enum of all resource types).
pub trait TableEntry<R>: Sized {
    /// The WIT resource name, for error messages.
    const NAME: &'static str;
    fn wrap(self) -> R;
    fn peek(entry: &mut R) -> Option<&mut Self>;
    fn unwrap(entry: R) -> Option<Self>;
}

pub struct HandleTable<R> {
    slots: Vec<Option<R>>,
    free: Vec<u32>,
    limit: usize,
}

impl<R> HandleTable<R> {
    /// `limit` bounds the live handles, so a guest cannot grow host memory
    /// by creating resources in a loop.
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            limit,
        }
    }

    pub fn push<K: TableEntry<R>>(&mut self, value: K) -> Result<u32, Error> {
        if let Some(index) = self.free.pop() {
            self.slots[index as usize] = Some(value.wrap());
            return Ok(index + 1);
        }
        if self.slots.len() >= self.limit {
            return Err(Error::new(format!(
                "more than {} live resource handles",
                self.limit
            )));
        }
        self.slots.push(Some(value.wrap()));
        Ok(self.slots.len() as u32)
    }

    pub fn get<K: TableEntry<R>>(&mut self, handle: u32) -> Result<&mut K, Error> {
        handle
            .checked_sub(1)
            .and_then(|i| self.slots.get_mut(i as usize))
            .and_then(Option::as_mut)
            .and_then(K::peek)
            .ok_or_else(|| invalid::<K, R>(handle))
    }

    /// Removes a resource whose ownership the guest hands over (or drops).
    pub fn take<K: TableEntry<R>>(&mut self, handle: u32) -> Result<K, Error> {
        self.get::<K>(handle)?;
        let index = handle - 1;
        let entry = self.slots[index as usize].take().expect("checked above");
        self.free.push(index);
        Ok(K::unwrap(entry).expect("checked above"))
    }
}

fn invalid<K: TableEntry<R>, R>(handle: u32) -> Error {
    Error::new(format!("invalid `{}` handle {handle}", K::NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Entry {
        A(u8),
        B,
    }
    struct A(u8);
    impl TableEntry<Entry> for A {
        const NAME: &'static str = "a";
        fn wrap(self) -> Entry {
            Entry::A(self.0)
        }
        fn peek(_: &mut Entry) -> Option<&mut Self> {
            None
        }
        fn unwrap(entry: Entry) -> Option<Self> {
            match entry {
                Entry::A(n) => Some(A(n)),
                Entry::B => None,
            }
        }
    }

    #[test]
    fn forged_stale_and_mistyped_handles_are_refused() {
        let mut table: HandleTable<Entry> = HandleTable::new(2);
        table.slots.push(Some(Entry::B));
        assert!(table.get::<A>(1).is_err(), "wrong type");
        assert!(table.get::<A>(0).is_err(), "zero");
        assert!(table.get::<A>(99).is_err(), "forged");
        table.push(A(1)).expect("room for a second");
        assert!(table.push(A(2)).is_err(), "limit");
    }
}
