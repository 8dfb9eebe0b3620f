//! The host calling a guest export with WIT-typed arguments: the other
//! direction of the canonical ABI (arguments lowered into guest allocations,
//! the result lifted back, then `cabi_post_<name>` so the guest can free it).

use wasmi::{Error, Func, Instance, Memory, Store, Val};

use super::abi::{FlatValues, Guest};
use super::{Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, StringEncoding, Ty, Value};

/// How the host runs guest code (so the caller can meter it).
pub type Invoke<T> = fn(&mut Store<T>, &Func, &[Val], &mut [Val]) -> Result<(), Error>;

/// A guest function with what its `canon lift` names: the memory and
/// realloc that arguments and results use, and the post-return to call.
#[derive(Clone, Copy)]
pub struct Lifted {
    pub func: Func,
    pub memory: Option<Memory>,
    pub realloc: Option<Func>,
    pub post_return: Option<Func>,
    pub encoding: StringEncoding,
}

/// Calls export `name` of core module `instance` through `invoke`: its
/// memory is the module's `memory`, its post-return `cabi_post_<name>`.
/// `params` and `result` are its WIT types.
pub fn call_export<T>(
    store: &mut Store<T>,
    instance: &Instance,
    name: &str,
    params: &'static [Ty],
    args: &[Value],
    result: Option<Ty>,
    invoke: Invoke<T>,
) -> Result<Option<Value>, Error> {
    let func = instance
        .get_func(&*store, name)
        .ok_or_else(|| Error::new(format!("the module does not export `{name}`")))?;
    let lifted = Lifted {
        func,
        memory: instance.get_memory(&*store, "memory"),
        realloc: instance.get_func(&*store, "cabi_realloc"),
        post_return: instance.get_func(&*store, &format!("cabi_post_{name}")),
        encoding: StringEncoding::Utf8,
    };
    call_lifted(store, &lifted, name, params, args, result, invoke)
}

/// The flat core arguments of a call to `lifted`: strings and lists are
/// copied into guest allocations.
pub(crate) fn lower_args<T>(
    store: &mut Store<T>,
    lifted: &Lifted,
    name: &str,
    params: &'static [Ty],
    args: &[Value],
) -> Result<Vec<Val>, Error> {
    if Ty::Tuple(params).flat_count() > MAX_FLAT_PARAMS {
        return Err(Error::new(format!(
            "`{name}`: arguments passed in memory are not supported"
        )));
    }
    let mut flat_args = Vec::new();
    let mut guest = Guest::new(&mut *store, lifted.memory, lifted.realloc, lifted.encoding);
    for (ty, value) in params.iter().zip(args) {
        guest.lower_args(ty, value, &mut flat_args)?;
    }
    Ok(flat_args)
}

/// Calls a lifted function (`name` is for errors).
pub fn call_lifted<T>(
    store: &mut Store<T>,
    lifted: &Lifted,
    name: &str,
    params: &'static [Ty],
    args: &[Value],
    result: Option<Ty>,
    invoke: Invoke<T>,
) -> Result<Option<Value>, Error> {
    let flat_args = lower_args(store, lifted, name, params, args)?;
    let result_flat = result.map(|ty| ty.flat()).unwrap_or_default();
    // A result too large for one core value comes back as a pointer to it.
    let mut results: Vec<Val> = if result_flat.len() > MAX_FLAT_RESULTS {
        vec![Val::I32(0)]
    } else {
        result_flat
            .iter()
            .map(|f| match f {
                Flat::I32 => Val::I32(0),
                Flat::I64 => Val::I64(0),
                Flat::F32 => Val::F32(wasmi::F32::from_bits(0)),
                Flat::F64 => Val::F64(wasmi::F64::from_bits(0)),
            })
            .collect()
    };
    invoke(store, &lifted.func, &flat_args, &mut results)?;
    let value = match &result {
        None => None,
        Some(ty) => {
            let mut guest = Guest::new(&mut *store, lifted.memory, lifted.realloc, lifted.encoding);
            Some(if result_flat.len() > MAX_FLAT_RESULTS {
                let addr = super::abi::flat_i32(results.first())? as u32 as usize;
                guest.load(ty, addr)?
            } else {
                guest.lift_flat(ty, &mut FlatValues::new(&results))?
            })
        }
    };
    if let Some(post) = &lifted.post_return {
        invoke(store, post, &results, &mut [])?;
    }
    Ok(value)
}
