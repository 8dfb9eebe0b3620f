//! The host calling a guest export with WIT-typed arguments: the other
//! direction of the canonical ABI (arguments lowered into guest allocations,
//! the result lifted back, then `cabi_post_<name>` so the guest can free it).

use wasmi::{Error, Func, Instance, Store, Val};

use super::abi::{FlatValues, Guest};
use super::{Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, Ty, Value};

/// How the host runs guest code (so the caller can meter it).
pub type Invoke<T> = fn(&mut Store<T>, &Func, &[Val], &mut [Val]) -> Result<(), Error>;

/// Calls export `name` of `instance` through `invoke`. `params` and `result`
/// are its WIT types.
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
    if Ty::Tuple(params).flat().len() > MAX_FLAT_PARAMS {
        return Err(Error::new(format!(
            "`{name}`: arguments passed in memory are not supported"
        )));
    }
    let mut flat_args = Vec::new();
    {
        let mut guest = Guest::from_instance(store, instance)?;
        for (ty, value) in params.iter().zip(args) {
            guest.lower_args(ty, value, &mut flat_args)?;
        }
    }
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
            })
            .collect()
    };
    invoke(store, &func, &flat_args, &mut results)?;
    let value = match &result {
        None => None,
        Some(ty) => {
            let mut guest = Guest::from_instance(store, instance)?;
            Some(if result_flat.len() > MAX_FLAT_RESULTS {
                let addr = super::abi::flat_i32(results.first())? as u32 as usize;
                guest.load(ty, addr)?
            } else {
                guest.lift_flat(ty, &mut FlatValues::new(&results))?
            })
        }
    };
    if let Some(post) = instance.get_func(&*store, &format!("cabi_post_{name}")) {
        invoke(store, &post, &results, &mut [])?;
    }
    Ok(value)
}
