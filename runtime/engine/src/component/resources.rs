//! Resources a component defines itself (`canon resource.new|rep|drop`):
//! per-instance tables of representations, one per resource type. Like the
//! host's tables, handles are checked on every use, so a forged or stale
//! handle traps.

use wasmi::{Caller, Func, FuncType, Store, Val, ValType};

use super::plan::ResourceOp;
use crate::GuestState;

/// Live handles one resource type may have at once.
const MAX_HANDLES: usize = 4096;

#[derive(Default)]
struct Table {
    slots: Vec<Option<u32>>,
    free: Vec<u32>,
}

/// The guest-defined resources of the component instance in a store.
#[derive(Default)]
pub struct GuestResources {
    tables: Vec<Table>,
}

impl GuestResources {
    /// Empty tables for a new instance with `types` resource types.
    pub(crate) fn reset(&mut self, types: usize) {
        self.tables.clear();
        self.tables.resize_with(types, Table::default);
    }

    fn table(&mut self, resource: u32) -> Result<&mut Table, wasmi::Error> {
        self.tables
            .get_mut(resource as usize)
            .ok_or_else(|| wasmi::Error::new("resource type out of range"))
    }

    fn new_handle(&mut self, resource: u32, rep: u32) -> Result<u32, wasmi::Error> {
        let table = self.table(resource)?;
        if let Some(index) = table.free.pop() {
            table.slots[index as usize] = Some(rep);
            return Ok(index + 1);
        }
        if table.slots.len() >= MAX_HANDLES {
            return Err(wasmi::Error::new(format!(
                "more than {MAX_HANDLES} live handles of one resource type"
            )));
        }
        table.slots.push(Some(rep));
        Ok(table.slots.len() as u32)
    }

    fn slot(&mut self, resource: u32, handle: u32) -> Result<&mut Option<u32>, wasmi::Error> {
        let table = self.table(resource)?;
        handle
            .checked_sub(1)
            .and_then(|i| table.slots.get_mut(i as usize))
            .filter(|slot| slot.is_some())
            .ok_or_else(|| wasmi::Error::new(format!("invalid resource handle {handle}")))
    }

    fn rep(&mut self, resource: u32, handle: u32) -> Result<u32, wasmi::Error> {
        Ok(self.slot(resource, handle)?.expect("checked by slot"))
    }

    fn drop_handle(&mut self, resource: u32, handle: u32) -> Result<u32, wasmi::Error> {
        let rep = self
            .slot(resource, handle)?
            .take()
            .expect("checked by slot");
        self.table(resource)?.free.push(handle - 1);
        Ok(rep)
    }
}

fn arg(args: &[Val]) -> Result<u32, wasmi::Error> {
    match args.first() {
        Some(Val::I32(n)) => Ok(*n as u32),
        _ => Err(wasmi::Error::new(
            "resource built-in called without its argument",
        )),
    }
}

/// The core function for `op` on guest resource type `resource`; `dtor` is
/// the type's destructor, called with the representation on drop.
pub(crate) fn builtin<H: 'static>(
    store: &mut Store<GuestState<H>>,
    op: ResourceOp,
    resource: u32,
    dtor: Option<Func>,
) -> Func {
    let i32s = |n| std::iter::repeat_n(ValType::I32, n);
    let results = if op == ResourceOp::Drop { 0 } else { 1 };
    let ty = FuncType::new(i32s(1), i32s(results));
    Func::new(
        store,
        ty,
        move |mut caller: Caller<'_, GuestState<H>>, args, out| {
            let n = arg(args)?;
            let resources = &mut caller.data_mut().guest_resources;
            match op {
                ResourceOp::New => out[0] = Val::I32(resources.new_handle(resource, n)? as i32),
                ResourceOp::Rep => out[0] = Val::I32(resources.rep(resource, n)? as i32),
                ResourceOp::Drop => {
                    let rep = resources.drop_handle(resource, n)?;
                    if let Some(dtor) = dtor {
                        crate::canon::abi::room_for_nested_call(&mut caller)?;
                        dtor.call(&mut caller, &[Val::I32(rep as i32)], &mut [])?;
                    }
                }
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked_per_type() {
        let mut r = GuestResources::default();
        r.reset(2);
        let h = r.new_handle(0, 42).expect("room");
        assert_eq!(r.rep(0, h).expect("live"), 42);
        assert!(r.rep(1, h).is_err(), "another type's table");
        assert!(r.rep(0, 0).is_err() && r.rep(0, 99).is_err(), "forged");
        assert_eq!(r.drop_handle(0, h).expect("live"), 42);
        assert!(r.rep(0, h).is_err(), "stale");
        assert!(r.new_handle(5, 1).is_err(), "no such type");
    }
}
