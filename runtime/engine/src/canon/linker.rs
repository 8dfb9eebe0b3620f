//! Host function tables: each entry's core signature is derived from its WIT
//! types, and one trampoline lifts, calls and lowers for every entry.

use wasmi::errors::LinkerError;
use wasmi::{Error, FuncType, Linker, ValType};

use super::abi::{Guest, flat_i32};
use super::{Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, StringEncoding, Ty, Value};

/// One imported function: its name within the interface, its WIT signature,
/// and the host code that implements it on the instance's state `T`.
pub struct HostFn<T> {
    pub name: &'static str,
    pub params: &'static [Ty],
    pub result: Option<Ty>,
    pub call: fn(&mut T, Args) -> Result<Value, Error>,
    /// For a function that waits on the guest itself (a request whose body
    /// the guest is still writing): whether `call` can complete now. An
    /// async-lowered call that cannot starts a subtask, completed when it can.
    pub ready: Option<fn(&mut T, &[Value]) -> bool>,
}

/// The core signature of `f`: flat parameters (one pointer when there are
/// too many), flat results or a trailing return-area pointer.
struct CoreSignature {
    ty: FuncType,
    arg_count: usize,
    return_area: bool,
}

/// An async lowering's parameters beyond this go through memory.
const MAX_FLAT_ASYNC_PARAMS: usize = 4;

/// The core signature of `f` lowered `async`: flat parameters (a pointer
/// when there are more than four), a pointer for the result, a status back.
fn async_core_signature<T>(f: &HostFn<T>) -> CoreSignature {
    let mut params: Vec<Flat> = Ty::Tuple(f.params).flat();
    if params.len() > MAX_FLAT_ASYNC_PARAMS {
        params = vec![Flat::I32];
    }
    let arg_count = params.len();
    if f.result.is_some() {
        params.push(Flat::I32);
    }
    CoreSignature {
        ty: FuncType::new(params.into_iter().map(val_type), [ValType::I32]),
        arg_count,
        return_area: f.result.is_some(),
    }
}

fn core_signature<T>(f: &HostFn<T>) -> CoreSignature {
    let mut params: Vec<Flat> = Ty::Tuple(f.params).flat();
    if params.len() > MAX_FLAT_PARAMS {
        params = vec![Flat::I32];
    }
    let arg_count = params.len();
    let results = f.result.map(|ty| ty.flat()).unwrap_or_default();
    let return_area = results.len() > MAX_FLAT_RESULTS;
    let results = if return_area {
        params.push(Flat::I32);
        Vec::new()
    } else {
        results
    };
    CoreSignature {
        ty: FuncType::new(
            params.into_iter().map(val_type),
            results.into_iter().map(val_type),
        ),
        arg_count,
        return_area,
    }
}

/// What a component's `canon lower` options name.
#[derive(Clone, Copy)]
pub(crate) struct LowerOptions {
    pub memory: Option<wasmi::Memory>,
    pub realloc: Option<wasmi::Func>,
    pub encoding: StringEncoding,
}

fn guest<'c, 'a, T>(
    caller: &'c mut wasmi::Caller<'a, T>,
    options: Option<&LowerOptions>,
) -> Result<Guest<&'c mut wasmi::Caller<'a, T>>, Error> {
    match options {
        Some(o) => Ok(Guest::new(caller, o.memory, o.realloc, o.encoding)),
        None => Guest::from_caller(caller),
    }
}

/// One call of `f`: lift the arguments from `guest`'s memory, run the host
/// code, lower the result (flat, or through the return area).
fn call_host<T>(
    f: &HostFn<T>,
    sig: (usize, bool),
    caller: &mut wasmi::Caller<'_, T>,
    options: Option<&LowerOptions>,
    flat_args: &[wasmi::Val],
    flat_results: &mut [wasmi::Val],
) -> Result<(), Error> {
    let (arg_count, return_area) = sig;
    let args = guest(caller, options)?.lift_params(f.params, &flat_args[..arg_count])?;
    let value = (f.call)(caller.data_mut(), Args(args.into_iter()))?;
    let Some(ty) = &f.result else {
        return Ok(());
    };
    if return_area {
        let addr = flat_i32(flat_args.last())? as u32 as usize;
        guest(caller, options)?.store(ty, &value, addr)
    } else {
        flat_results[0] = Guest::<&mut wasmi::Caller<'_, T>>::lower_flat(ty, &value)?;
        Ok(())
    }
}

/// What async-lowered host calls need of the store's data: the instance's
/// async state, where a call that cannot complete yet becomes a subtask.
pub trait HasTasks {
    fn tasks_mut(&mut self) -> &mut crate::component::Tasks;
}

/// One call of `f` lowered `async`. Flint's host functions finish before
/// they return, so the call is `RETURNED` (its result stored through its
/// pointer) unless it waits on the guest itself (`HostFn::ready`): then it
/// is a subtask, completed when the guest has done what it waits for.
fn call_host_async<T: HasTasks + 'static>(
    f: &'static HostFn<T>,
    arg_count: usize,
    caller: &mut wasmi::Caller<'_, T>,
    options: Option<&LowerOptions>,
    flat_args: &[wasmi::Val],
    flat_results: &mut [wasmi::Val],
) -> Result<(), Error> {
    let params = Ty::Tuple(f.params);
    let args = if params.flat_count() > MAX_FLAT_ASYNC_PARAMS {
        let addr = flat_i32(flat_args.first())? as u32 as usize;
        guest(caller, options)?.load(&params, addr)?.into_tuple()?
    } else {
        guest(caller, options)?.lift_params(f.params, &flat_args[..arg_count])?
    };
    let retptr = match f.result {
        Some(_) => Some(flat_i32(flat_args.last())? as u32),
        None => None,
    };
    if let Some(ready) = f.ready
        && !ready(caller.data_mut(), &args)
        && let Some(options) = options
    {
        let call = PendingCall {
            f,
            args,
            retptr,
            options: *options,
        };
        let status = caller
            .data_mut()
            .tasks_mut()
            .start_subtask(Box::new(call))?;
        flat_results[0] = wasmi::Val::I32(status as i32);
        return Ok(());
    }
    let value = (f.call)(caller.data_mut(), Args(args.into_iter()))?;
    if let (Some(ty), Some(addr)) = (&f.result, retptr) {
        guest(caller, options)?.store(ty, &value, addr as usize)?;
    }
    flat_results[0] = wasmi::Val::I32(crate::component::SUBTASK_RETURNED as i32);
    Ok(())
}

/// An async-lowered host call waiting until it can complete (a subtask).
pub(crate) struct PendingCall<T: 'static> {
    pub f: &'static HostFn<T>,
    pub args: Vec<Value>,
    pub retptr: Option<u32>,
    pub options: LowerOptions,
}

impl<T: 'static> PendingCall<T> {
    /// Completes the call if it can: runs it and stores its result.
    pub(crate) fn try_complete(&mut self, store: &mut wasmi::Store<T>) -> Result<bool, Error> {
        let ready = self
            .f
            .ready
            .is_none_or(|ready| ready(store.data_mut(), &self.args));
        if !ready {
            return Ok(false);
        }
        let args = std::mem::take(&mut self.args);
        let value = (self.f.call)(store.data_mut(), Args(args.into_iter()))?;
        if let (Some(ty), Some(addr)) = (&self.f.result, self.retptr) {
            let o = &self.options;
            Guest::new(&mut *store, o.memory, o.realloc, o.encoding).store(
                ty,
                &value,
                addr as usize,
            )?;
        }
        Ok(true)
    }
}

/// Registers every function of one interface (`module` is the import module
/// name, e.g. `wasi:http/types@0.2.0`) for core modules, which pass their
/// own `memory` and `cabi_realloc` exports.
pub fn register<T: 'static>(
    linker: &mut Linker<T>,
    module: &str,
    functions: &'static [HostFn<T>],
) -> Result<(), LinkerError> {
    for f in functions {
        let sig = core_signature(f);
        let shape = (sig.arg_count, sig.return_area);
        linker.func_new(module, f.name, sig.ty, move |mut caller, args, results| {
            call_host(f, shape, &mut caller, None, args, results)
        })?;
    }
    Ok(())
}

/// A host function prepared for a component's `canon lower`: its core
/// type, computed once per component rather than per instance.
pub struct Lowering<T: 'static> {
    f: &'static HostFn<T>,
    sig: CoreSignature,
    async_: bool,
}

impl<T: HasTasks + 'static> Lowering<T> {
    /// `async_`: lowered with the `async` option (WASI 0.3).
    pub fn new(f: &'static HostFn<T>, async_: bool) -> Self {
        let sig = if async_ {
            async_core_signature(f)
        } else {
            core_signature(f)
        };
        Self { f, sig, async_ }
    }

    /// Whether a core import of type `ty` can take this function.
    pub fn has_type(&self, ty: &FuncType) -> bool {
        ty.params() == self.sig.ty.params() && ty.results() == self.sig.ty.results()
    }

    /// The function for one component instance, bound to the memory,
    /// realloc and string encoding its lowering's options name.
    pub fn func(
        &self,
        store: &mut wasmi::Store<T>,
        memory: Option<wasmi::Memory>,
        realloc: Option<wasmi::Func>,
        encoding: StringEncoding,
    ) -> wasmi::Func {
        let f = self.f;
        let shape = (self.sig.arg_count, self.sig.return_area);
        let options = LowerOptions {
            memory,
            realloc,
            encoding,
        };
        if self.async_ {
            return wasmi::Func::new(
                store,
                self.sig.ty.clone(),
                move |mut caller, args, results| {
                    call_host_async(f, shape.0, &mut caller, Some(&options), args, results)
                },
            );
        }
        wasmi::Func::new(
            store,
            self.sig.ty.clone(),
            move |mut caller, args, results| {
                call_host(f, shape, &mut caller, Some(&options), args, results)
            },
        )
    }
}

fn val_type(flat: Flat) -> ValType {
    match flat {
        Flat::I32 => ValType::I32,
        Flat::I64 => ValType::I64,
        Flat::F32 => ValType::F32,
        Flat::F64 => ValType::F64,
    }
}

fn bug(expected: &str, got: Option<Value>) -> Error {
    Error::new(format!("host bug: expected {expected}, got {got:?}"))
}

/// The lifted arguments of one call, taken in order. The types are already
/// checked against the table, so a mismatch here is a bug in Flint (a trap).
pub struct Args(std::vec::IntoIter<Value>);

impl Args {
    pub fn value(&mut self) -> Result<Value, Error> {
        self.0.next().ok_or_else(|| bug("an argument", None))
    }
    pub fn handle(&mut self) -> Result<u32, Error> {
        self.value()?.into_handle()
    }
    pub fn string(&mut self) -> Result<String, Error> {
        self.value()?.into_string()
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        self.value()?.into_bytes()
    }
    pub fn u16(&mut self) -> Result<u16, Error> {
        match self.value()? {
            Value::U16(n) => Ok(n),
            other => Err(bug("u16", Some(other))),
        }
    }
    pub fn u64(&mut self) -> Result<u64, Error> {
        match self.value()? {
            Value::U64(n) => Ok(n),
            other => Err(bug("u64", Some(other))),
        }
    }
    pub fn variant(&mut self) -> Result<(u32, Option<Value>), Error> {
        self.value()?.into_variant()
    }
    pub fn option(&mut self) -> Result<Option<Value>, Error> {
        self.value()?.into_option()
    }
    pub fn list(&mut self) -> Result<Vec<Value>, Error> {
        match self.value()? {
            Value::List(items) => Ok(items),
            other => Err(bug("a list", Some(other))),
        }
    }
}

impl Value {
    pub fn unit() -> Self {
        Value::Tuple(Vec::new())
    }
    pub fn into_handle(self) -> Result<u32, Error> {
        match self {
            Value::Handle(h) => Ok(h),
            other => Err(bug("a handle", Some(other))),
        }
    }
    pub fn into_string(self) -> Result<String, Error> {
        match self {
            Value::String(s) => Ok(s),
            other => Err(bug("a string", Some(other))),
        }
    }
    pub fn into_bytes(self) -> Result<Vec<u8>, Error> {
        match self {
            Value::Bytes(b) => Ok(b),
            other => Err(bug("bytes", Some(other))),
        }
    }
    pub fn into_tuple(self) -> Result<Vec<Value>, Error> {
        match self {
            Value::Tuple(t) => Ok(t),
            other => Err(bug("a tuple", Some(other))),
        }
    }
    pub fn into_variant(self) -> Result<(u32, Option<Value>), Error> {
        match self {
            Value::Variant(disc, payload) => Ok((disc, payload.map(|p| *p))),
            other => Err(bug("a variant", Some(other))),
        }
    }
    pub fn into_option(self) -> Result<Option<Value>, Error> {
        Ok(self.into_variant()?.1)
    }
}
