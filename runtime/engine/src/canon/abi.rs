//! Lifting arguments from, and lowering results into, a guest's linear memory.
//! Every pointer, length and discriminant from the guest is checked; a bad one
//! is a trap for that invocation.

use wasmi::{AsContextMut, Caller, Error, Func, Memory, Val};

use super::{StringEncoding, Ty, Value, align_to, discriminant_size, payload_offset};

/// The tag on a `latin1+utf16` string's length that marks it as UTF-16.
const UTF16_TAG: u32 = 1 << 31;

fn trap(message: impl Into<String>) -> Error {
    Error::new(message.into())
}

/// A call from the host into the guest (`cabi_realloc`, a resource
/// destructor) cannot be resumed when it runs out of fuel, so it must not be
/// what ends a metered slice: it gets a whole slice of room (an allocator's
/// first call can set up its arena; CPython's, through componentize-py,
/// took more than a million). The invocation's deadline still bounds what
/// these top-ups allow.
pub(crate) fn room_for_nested_call(mut ctx: impl AsContextMut) -> Result<(), Error> {
    if let Ok(fuel) = ctx.as_context().get_fuel()
        && fuel < crate::invoke::FUEL_SLICE
    {
        ctx.as_context_mut().set_fuel(crate::invoke::FUEL_SLICE)?;
    }
    Ok(())
}

/// Bytes of host memory one lifted list element may cost at least (its `Value`).
const VALUE_COST: usize = std::mem::size_of::<Value>();

/// A guest's memory, seen from a host call (`C` is its `Caller`) or from the
/// host calling an export (`C` is the `Store`).
pub(crate) struct Guest<C> {
    ctx: C,
    /// `None` for a component lowering without a `memory` option, which the
    /// validator allows only when nothing goes through memory.
    memory: Option<Memory>,
    realloc: Option<Func>,
    encoding: StringEncoding,
    /// Host bytes that lifting may still allocate. Without it, a list of
    /// a million references to one large string would be copied a million times.
    budget: usize,
}

fn no_memory_option() -> Error {
    trap("the lowering has no `memory` option, which this call needs")
}

fn no_memory() -> Error {
    trap("the module exports no `memory`, which host calls need")
}

impl<'c, 'a, T> Guest<&'c mut Caller<'a, T>> {
    pub(super) fn from_caller(caller: &'c mut Caller<'a, T>) -> Result<Self, Error> {
        let memory = caller
            .get_export("memory")
            .and_then(wasmi::Extern::into_memory)
            .ok_or_else(no_memory)?;
        let realloc = caller
            .get_export("cabi_realloc")
            .and_then(wasmi::Extern::into_func);
        Ok(Self::new(
            caller,
            Some(memory),
            realloc,
            StringEncoding::Utf8,
        ))
    }
}

impl<C: AsContextMut> Guest<C> {
    /// The guest memory a call works on: a core module's own `memory`, or
    /// the memory a component's `canon lower`/`lift` names in its options.
    pub(crate) fn new(
        ctx: C,
        memory: Option<Memory>,
        realloc: Option<Func>,
        encoding: StringEncoding,
    ) -> Self {
        let size = memory.map_or(0, |m| m.data_size(&ctx));
        let budget = size.max(64 * 1024);
        Self {
            ctx,
            memory,
            realloc,
            encoding,
            budget,
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        self.budget = self
            .budget
            .checked_sub(bytes)
            .ok_or_else(|| trap("arguments are larger than the guest's memory"))?;
        Ok(())
    }

    pub(crate) fn slice(&self, addr: usize, len: usize) -> Result<&[u8], Error> {
        let end = addr
            .checked_add(len)
            .ok_or_else(|| trap("pointer + length overflows"))?;
        self.memory
            .ok_or_else(no_memory_option)?
            .data(&self.ctx)
            .get(addr..end)
            .ok_or_else(|| trap(format!("out-of-bounds pointer {addr:#x} (length {len})")))
    }

    pub(crate) fn write(&mut self, addr: usize, bytes: &[u8]) -> Result<(), Error> {
        let end = addr
            .checked_add(bytes.len())
            .ok_or_else(|| trap("pointer + length overflows"))?;
        self.memory
            .ok_or_else(no_memory_option)?
            .data_mut(&mut self.ctx)
            .get_mut(addr..end)
            .ok_or_else(|| trap(format!("out-of-bounds return pointer {addr:#x}")))?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn load_u32(&self, addr: usize) -> Result<u32, Error> {
        let b = self.slice(addr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn load_u64(&self, addr: usize) -> Result<u64, Error> {
        let b = self.slice(addr, 8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn check_align(addr: usize, align: usize) -> Result<(), Error> {
        if !addr.is_multiple_of(align) {
            return Err(trap(format!(
                "misaligned pointer {addr:#x} (needs {align}-byte alignment)"
            )));
        }
        Ok(())
    }

    // ---- lifting ----

    /// The arguments of a call, from its flat core values.
    pub(crate) fn lift_params(
        &mut self,
        params: &'static [Ty],
        flat: &[Val],
    ) -> Result<Vec<Value>, Error> {
        let tuple = Ty::Tuple(params);
        if tuple.flat_count() > super::MAX_FLAT_PARAMS {
            let addr = flat_i32(flat.first())? as u32 as usize;
            return match self.load(&tuple, addr)? {
                Value::Tuple(values) => Ok(values),
                _ => unreachable!("a tuple type loads as a tuple"),
            };
        }
        let mut values = FlatValues {
            values: flat,
            pos: 0,
        };
        params
            .iter()
            .map(|ty| self.lift_flat(ty, &mut values))
            .collect()
    }

    /// A value from the flat core values that carry it (arguments of a host
    /// call, or the single result of an export).
    pub(super) fn lift_flat(&mut self, ty: &Ty, flat: &mut FlatValues<'_>) -> Result<Value, Error> {
        Ok(match ty {
            Ty::Bool => Value::Bool(flat.i32()? != 0),
            Ty::U8 => Value::U8(flat.i32()? as u8),
            Ty::U16 => Value::U16(flat.i32()? as u16),
            Ty::U32 => Value::U32(flat.i32()? as u32),
            Ty::S8 => Value::S8(flat.i32()? as i8),
            Ty::S16 => Value::S16(flat.i32()? as i16),
            Ty::S32 => Value::S32(flat.i32()?),
            Ty::Char => Value::Char(char_from(flat.i32()? as u32)?),
            Ty::Flags(n) => Value::Flags(flat.i32()? as u32 & flags_mask(*n)),
            Ty::Handle => Value::Handle(flat.i32()? as u32),
            Ty::U64 => Value::U64(flat.i64()? as u64),
            Ty::S64 => Value::S64(flat.i64()?),
            Ty::F32 => Value::F32(flat.bits32()?),
            Ty::F64 => Value::F64(flat.bits64()?),
            Ty::String | Ty::List(_) => {
                let addr = flat.i32()? as u32 as usize;
                let len = flat.i32()? as u32 as usize;
                self.lift_sequence(ty, addr, len)?
            }
            Ty::Tuple(fields) => Value::Tuple(
                fields
                    .iter()
                    .map(|f| self.lift_flat(f, flat))
                    .collect::<Result<_, _>>()?,
            ),
            Ty::Variant(cases) => {
                let width = ty.flat_count() - 1;
                let disc = flat.i32()? as u32;
                let case = cases
                    .get(disc as usize)
                    .ok_or_else(|| trap(format!("invalid variant discriminant {disc}")))?;
                let start = flat.pos;
                let payload = match case {
                    Some(case_ty) => Some(Box::new(self.lift_flat(case_ty, flat)?)),
                    None => None,
                };
                flat.pos = start + width;
                Value::Variant(disc, payload)
            }
        })
    }

    fn lift_sequence(&mut self, ty: &Ty, addr: usize, len: usize) -> Result<Value, Error> {
        match ty {
            Ty::String => self.lift_string(addr, len).map(Value::String),
            Ty::List(Ty::U8) => {
                self.charge(len)?;
                Ok(Value::Bytes(self.slice(addr, len)?.to_vec()))
            }
            Ty::List(elem) => {
                let size = elem.size();
                Self::check_align(addr, elem.align())?;
                let bytes = len
                    .checked_mul(size)
                    .ok_or_else(|| trap("list length overflows"))?;
                self.slice(addr, bytes)?;
                self.charge(len.saturating_mul(size.max(VALUE_COST)))?;
                (0..len)
                    .map(|i| self.load(elem, addr + i * size))
                    .collect::<Result<_, _>>()
                    .map(Value::List)
            }
            _ => unreachable!("only strings and lists are sequences"),
        }
    }

    fn lift_string(&mut self, addr: usize, len: usize) -> Result<String, Error> {
        let utf16_units = match self.encoding {
            StringEncoding::Utf8 => None,
            StringEncoding::Utf16 => Some(len),
            StringEncoding::CompactUtf16 if len as u32 & UTF16_TAG != 0 => {
                Some((len as u32 & !UTF16_TAG) as usize)
            }
            StringEncoding::CompactUtf16 => {
                self.charge(len.saturating_mul(2))?;
                return Ok(self
                    .slice(addr, len)?
                    .iter()
                    .map(|&b| char::from(b))
                    .collect());
            }
        };
        match utf16_units {
            None => {
                self.charge(len)?;
                let bytes = self.slice(addr, len)?.to_vec();
                String::from_utf8(bytes).map_err(|_| trap("a string argument is not valid UTF-8"))
            }
            Some(units) => {
                Self::check_align(addr, 2)?;
                let bytes = units
                    .checked_mul(2)
                    .ok_or_else(|| trap("string length overflows"))?;
                self.charge(bytes.saturating_mul(2))?;
                let raw = self.slice(addr, bytes)?;
                let units = raw
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]));
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .map_err(|_| trap("a string argument is not valid UTF-16"))
            }
        }
    }

    pub(crate) fn load(&mut self, ty: &Ty, addr: usize) -> Result<Value, Error> {
        Self::check_align(addr, ty.align())?;
        Ok(match ty {
            Ty::Bool => Value::Bool(self.slice(addr, 1)?[0] != 0),
            Ty::U8 => Value::U8(self.slice(addr, 1)?[0]),
            Ty::U16 => {
                let b = self.slice(addr, 2)?;
                Value::U16(u16::from_le_bytes([b[0], b[1]]))
            }
            Ty::U32 => Value::U32(self.load_u32(addr)?),
            Ty::S8 => Value::S8(self.slice(addr, 1)?[0] as i8),
            Ty::S16 => {
                let b = self.slice(addr, 2)?;
                Value::S16(i16::from_le_bytes([b[0], b[1]]))
            }
            Ty::S32 => Value::S32(self.load_u32(addr)? as i32),
            Ty::F32 => Value::F32(self.load_u32(addr)?),
            Ty::Char => Value::Char(char_from(self.load_u32(addr)?)?),
            Ty::Flags(n) => {
                let b = self.slice(addr, ty.size())?;
                let mut bits = [0u8; 4];
                bits[..b.len()].copy_from_slice(b);
                Value::Flags(u32::from_le_bytes(bits) & flags_mask(*n))
            }
            Ty::Handle => Value::Handle(self.load_u32(addr)?),
            Ty::U64 => Value::U64(self.load_u64(addr)?),
            Ty::S64 => Value::S64(self.load_u64(addr)? as i64),
            Ty::F64 => Value::F64(self.load_u64(addr)?),
            Ty::String | Ty::List(_) => {
                let ptr = self.load_u32(addr)? as usize;
                let len = self.load_u32(addr + 4)? as usize;
                self.lift_sequence(ty, ptr, len)?
            }
            Ty::Tuple(fields) => {
                let mut offset = 0;
                let mut values = Vec::with_capacity(fields.len());
                for field in *fields {
                    offset = align_to(offset, field.align());
                    values.push(self.load(field, addr + offset)?);
                    offset += field.size();
                }
                Value::Tuple(values)
            }
            Ty::Variant(cases) => {
                let b = self.slice(addr, discriminant_size(cases.len()))?;
                let disc = match b.len() {
                    1 => u32::from(b[0]),
                    2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
                    _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                };
                let case = cases
                    .get(disc as usize)
                    .ok_or_else(|| trap(format!("invalid variant discriminant {disc}")))?;
                let payload = match case {
                    Some(case_ty) => {
                        Some(Box::new(self.load(case_ty, addr + payload_offset(cases))?))
                    }
                    None => None,
                };
                Value::Variant(disc, payload)
            }
        })
    }

    // ---- lowering ----

    /// A result that flattens to one core value.
    pub(super) fn lower_flat(ty: &Ty, value: &Value) -> Result<Val, Error> {
        Ok(match (ty, value) {
            (Ty::Bool, Value::Bool(b)) => Val::I32(i32::from(*b)),
            (Ty::U8, Value::U8(n)) => Val::I32(i32::from(*n)),
            (Ty::U16, Value::U16(n)) => Val::I32(i32::from(*n)),
            (Ty::U32, Value::U32(n)) | (Ty::Handle, Value::Handle(n)) => Val::I32(*n as i32),
            (Ty::U64, Value::U64(n)) => Val::I64(*n as i64),
            (Ty::S8, Value::S8(n)) => Val::I32(i32::from(*n)),
            (Ty::S16, Value::S16(n)) => Val::I32(i32::from(*n)),
            (Ty::S32, Value::S32(n)) => Val::I32(*n),
            (Ty::S64, Value::S64(n)) => Val::I64(*n),
            (Ty::F32, Value::F32(bits)) => Val::F32(wasmi::F32::from_bits(*bits)),
            (Ty::F64, Value::F64(bits)) => Val::F64(wasmi::F64::from_bits(*bits)),
            (Ty::Char, Value::Char(c)) => Val::I32(*c as i32),
            (Ty::Flags(_), Value::Flags(bits)) => Val::I32(*bits as i32),
            (Ty::Variant(cases), Value::Variant(disc, None))
                if cases.iter().all(Option::is_none) =>
            {
                Val::I32(*disc as i32)
            }
            _ => return Err(mismatch(ty, value)),
        })
    }

    /// Allocates `size` bytes in the guest with its `cabi_realloc`.
    /// Even a zero-sized list or string is allocated with a call, as the
    /// canonical ABI says (`realloc(0, 0, align, 0)`): a guest whose
    /// allocator hands out real pointers for it (CPython's, through
    /// componentize-py) frees what it gets back. A module without a
    /// `cabi_realloc` gets the alignment as the pointer of nothing.
    fn alloc(&mut self, size: usize, align: usize) -> Result<usize, Error> {
        if size == 0 && self.realloc.is_none() {
            return Ok(align);
        }
        let realloc = self
            .realloc
            .ok_or_else(|| trap("the module exports no `cabi_realloc`"))?
            .typed::<(i32, i32, i32, i32), i32>(&self.ctx)?;
        room_for_nested_call(&mut self.ctx)?;
        let size_i32 = i32::try_from(size)
            .map_err(|_| trap(format!("cannot hand {size} bytes to a guest")))?;
        let ptr = realloc.call(&mut self.ctx, (0, 0, align as i32, size_i32))? as u32 as usize;
        Self::check_align(ptr, align)?;
        // Bounds are checked by the writes that follow.
        Ok(ptr)
    }

    pub(crate) fn store(&mut self, ty: &Ty, value: &Value, addr: usize) -> Result<(), Error> {
        Self::check_align(addr, ty.align())?;
        match (ty, value) {
            (Ty::Bool, Value::Bool(b)) => self.write(addr, &[u8::from(*b)]),
            (Ty::U8, Value::U8(n)) => self.write(addr, &[*n]),
            (Ty::U16, Value::U16(n)) => self.write(addr, &n.to_le_bytes()),
            (Ty::U32, Value::U32(n)) | (Ty::Handle, Value::Handle(n)) => {
                self.write(addr, &n.to_le_bytes())
            }
            (Ty::U64, Value::U64(n)) => self.write(addr, &n.to_le_bytes()),
            (Ty::S8, Value::S8(n)) => self.write(addr, &n.to_le_bytes()),
            (Ty::S16, Value::S16(n)) => self.write(addr, &n.to_le_bytes()),
            (Ty::S32, Value::S32(n)) => self.write(addr, &n.to_le_bytes()),
            (Ty::S64, Value::S64(n)) => self.write(addr, &n.to_le_bytes()),
            (Ty::F32, Value::F32(bits)) => self.write(addr, &bits.to_le_bytes()),
            (Ty::F64, Value::F64(bits)) => self.write(addr, &bits.to_le_bytes()),
            (Ty::Char, Value::Char(c)) => self.write(addr, &(*c as u32).to_le_bytes()),
            (Ty::Flags(_), Value::Flags(bits)) => {
                self.write(addr, &bits.to_le_bytes()[..ty.size()])
            }
            (Ty::String, Value::String(s)) => self.store_string(addr, s),
            (Ty::List(Ty::U8), Value::Bytes(b)) => self.store_bytes(addr, b),
            (Ty::List(elem), Value::List(items)) => {
                let size = elem.size();
                let total = items
                    .len()
                    .checked_mul(size)
                    .ok_or_else(|| trap("list too large"))?;
                let ptr = self.alloc(total, elem.align())?;
                for (i, item) in items.iter().enumerate() {
                    self.store(elem, item, ptr + i * size)?;
                }
                self.store_pointer_pair(addr, ptr, items.len())
            }
            (Ty::Tuple(fields), Value::Tuple(values)) if fields.len() == values.len() => {
                let mut offset = 0;
                for (field, value) in fields.iter().zip(values) {
                    offset = align_to(offset, field.align());
                    self.store(field, value, addr + offset)?;
                    offset += field.size();
                }
                Ok(())
            }
            (Ty::Variant(cases), Value::Variant(disc, payload)) => {
                let case = cases
                    .get(*disc as usize)
                    .ok_or_else(|| mismatch(ty, value))?;
                let disc_bytes = disc.to_le_bytes();
                self.write(addr, &disc_bytes[..discriminant_size(cases.len())])?;
                match (case, payload) {
                    (Some(case_ty), Some(payload)) => {
                        self.store(case_ty, payload, addr + payload_offset(cases))
                    }
                    (None, None) => Ok(()),
                    _ => Err(mismatch(ty, value)),
                }
            }
            _ => Err(mismatch(ty, value)),
        }
    }

    /// Copies bytes into a fresh guest allocation; returns its address.
    fn alloc_bytes(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let ptr = self.alloc(bytes.len(), 1)?;
        self.write(ptr, bytes)?;
        Ok(ptr)
    }

    /// A string in the guest's encoding: its address and its length field.
    fn alloc_string(&mut self, s: &str) -> Result<(usize, u32), Error> {
        let latin1 = |s: &str| s.chars().all(|c| u32::from(c) <= 0xff);
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let too_long = || trap("string too long for a guest");
        match self.encoding {
            StringEncoding::Utf8 => {
                let len = u32::try_from(s.len()).map_err(|_| too_long())?;
                Ok((self.alloc_bytes(s.as_bytes())?, len))
            }
            StringEncoding::CompactUtf16 if latin1(s) => {
                let bytes: Vec<u8> = s.chars().map(|c| c as u8).collect();
                let len = u32::try_from(bytes.len()).map_err(|_| too_long())?;
                Ok((self.alloc_bytes(&bytes)?, len))
            }
            encoding => {
                let bytes = utf16(s);
                let units = u32::try_from(bytes.len() / 2)
                    .ok()
                    .filter(|n| n & UTF16_TAG == 0)
                    .ok_or_else(too_long)?;
                let ptr = self.alloc(bytes.len(), 2)?;
                self.write(ptr, &bytes)?;
                let tag = match encoding {
                    StringEncoding::CompactUtf16 => UTF16_TAG,
                    _ => 0,
                };
                Ok((ptr, units | tag))
            }
        }
    }

    fn store_string(&mut self, addr: usize, s: &str) -> Result<(), Error> {
        let (ptr, len) = self.alloc_string(s)?;
        self.write(addr, &(ptr as u32).to_le_bytes())?;
        self.write(addr + 4, &len.to_le_bytes())
    }

    fn store_bytes(&mut self, addr: usize, bytes: &[u8]) -> Result<(), Error> {
        let ptr = self.alloc_bytes(bytes)?;
        self.store_pointer_pair(addr, ptr, bytes.len())
    }

    /// Arguments for an export: flat core values, strings and lists copied
    /// into guest allocations. Variants are not needed by any export Flint calls.
    pub(super) fn lower_args(
        &mut self,
        ty: &Ty,
        value: &Value,
        out: &mut Vec<Val>,
    ) -> Result<(), Error> {
        match (ty, value) {
            (Ty::String, Value::String(s)) => {
                let (ptr, len) = self.alloc_string(s)?;
                out.extend([Val::I32(ptr as i32), Val::I32(len as i32)]);
            }
            (Ty::List(Ty::U8), Value::Bytes(b)) => {
                let ptr = self.alloc_bytes(b)?;
                out.extend([Val::I32(ptr as i32), Val::I32(b.len() as i32)]);
            }
            (Ty::Tuple(fields), Value::Tuple(values)) if fields.len() == values.len() => {
                for (field, value) in fields.iter().zip(values) {
                    self.lower_args(field, value, out)?;
                }
            }
            _ => out.push(Self::lower_flat(ty, value)?),
        }
        Ok(())
    }

    fn store_pointer_pair(&mut self, addr: usize, ptr: usize, len: usize) -> Result<(), Error> {
        self.write(addr, &(ptr as u32).to_le_bytes())?;
        self.write(addr + 4, &(len as u32).to_le_bytes())
    }
}

fn char_from(n: u32) -> Result<char, Error> {
    char::from_u32(n).ok_or_else(|| trap(format!("{n:#x} is not a Unicode scalar value")))
}

fn flags_mask(members: u8) -> u32 {
    match members {
        32.. => u32::MAX,
        n => (1u32 << n) - 1,
    }
}

/// A host function returned a value that does not fit its declared type: a
/// bug in Flint, reported as a trap rather than a panic.
fn mismatch(ty: &Ty, value: &Value) -> Error {
    trap(format!("host bug: {value:?} does not match {ty:?}"))
}

pub(super) fn flat_i32(value: Option<&Val>) -> Result<i32, Error> {
    match value {
        Some(Val::I32(n)) => Ok(*n),
        Some(Val::I64(n)) => Ok(*n as i32),
        _ => Err(trap("host bug: missing flat argument")),
    }
}

pub(super) struct FlatValues<'v> {
    values: &'v [Val],
    pos: usize,
}

impl<'v> FlatValues<'v> {
    pub(crate) fn new(values: &'v [Val]) -> Self {
        Self { values, pos: 0 }
    }

    fn next(&mut self) -> Option<&Val> {
        let v = self.values.get(self.pos);
        self.pos += 1;
        v
    }
    fn i32(&mut self) -> Result<i32, Error> {
        flat_i32(self.next())
    }
    fn bits32(&mut self) -> Result<u32, Error> {
        match self.next() {
            Some(Val::F32(f)) => Ok(f.to_bits()),
            Some(Val::I32(n)) => Ok(*n as u32),
            Some(Val::I64(n)) => Ok(*n as u32),
            _ => Err(trap("host bug: missing flat argument")),
        }
    }
    fn bits64(&mut self) -> Result<u64, Error> {
        match self.next() {
            Some(Val::F64(f)) => Ok(f.to_bits()),
            Some(Val::I64(n)) => Ok(*n as u64),
            _ => Err(trap("host bug: missing flat argument")),
        }
    }
    fn i64(&mut self) -> Result<i64, Error> {
        match self.next() {
            Some(Val::I64(n)) => Ok(*n),
            Some(Val::I32(n)) => Ok(i64::from(*n)),
            _ => Err(trap("host bug: missing flat argument")),
        }
    }
}
