//! The component model's canonical ABI at the core-module level, as one
//! table-driven layer: each host interface lists its functions with their WIT
//! parameter and result types ([`Ty`]), and this module derives the core
//! signature, lifts arguments out of guest memory, and lowers results back
//! (allocating with the guest's `cabi_realloc`). Interfaces only ever see
//! [`Value`]s, so no interface does pointer arithmetic of its own.
//!
//! Reference: the component model's `design/mvp/CanonicalABI.md`.

pub(crate) mod abi;
mod export;
mod linker;
mod table;

pub(crate) use export::lower_args;
pub use export::{Invoke, Lifted, call_export, call_lifted};
pub(crate) use linker::PendingCall;
pub(crate) use linker::register;
pub use linker::{Args, HasTasks, HostFn, Lowering};
pub use table::{HandleTable, TableEntry};

/// A WIT type, reduced to what decides its layout. Records are tuples; enums,
/// options and results are variants whose cases may have no payload.
/// `stream<T>`, `future<T>` and `error-context` are [`Ty::Handle`]s: indices
/// into the instance's table of waitables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
    F32,
    F64,
    Char,
    /// `flags` with this many members (at most 32: what WIT allows).
    Flags(u8),
    String,
    List(&'static Ty),
    Tuple(&'static [Ty]),
    Variant(&'static [Option<Ty>]),
    /// `own<T>` or `borrow<T>`: an index into the instance's handle table.
    Handle,
}

/// How a component's core code represents strings (`string-encoding=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StringEncoding {
    #[default]
    Utf8,
    Utf16,
    /// `latin1+utf16`: Latin-1 unless the length carries the UTF-16 tag.
    CompactUtf16,
}

/// `option<T>`.
#[macro_export]
macro_rules! option_ty {
    ($t:expr) => {
        $crate::canon::Ty::Variant(&[None, Some($t)])
    };
}

/// `result<T, E>`; `_` for a case without a payload.
#[macro_export]
macro_rules! result_ty {
    (_, _) => {
        $crate::canon::Ty::Variant(&[None, None])
    };
    (_, $e:expr) => {
        $crate::canon::Ty::Variant(&[None, Some($e)])
    };
    ($t:expr, _) => {
        $crate::canon::Ty::Variant(&[Some($t), None])
    };
    ($t:expr, $e:expr) => {
        $crate::canon::Ty::Variant(&[Some($t), Some($e)])
    };
}

/// A WIT value. `list<u8>` is [`Value::Bytes`] rather than a list of `U8`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    S8(i8),
    S16(i16),
    S32(i32),
    S64(i64),
    /// Floats by their bits, so that values stay comparable.
    F32(u32),
    F64(u64),
    Char(char),
    /// The set members of a `flags`, bit `i` for member `i`.
    Flags(u32),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Variant(u32, Option<Box<Value>>),
    Handle(u32),
}

impl Value {
    pub fn case(discriminant: u32, payload: Option<Value>) -> Self {
        Self::Variant(discriminant, payload.map(Box::new))
    }
    pub fn ok(payload: Value) -> Self {
        Self::case(0, Some(payload))
    }
    /// `ok` of a `result<_, E>`.
    pub fn ok_unit() -> Self {
        Self::case(0, None)
    }
    pub fn err(payload: Value) -> Self {
        Self::case(1, Some(payload))
    }
    pub fn err_unit() -> Self {
        Self::case(1, None)
    }
    pub fn some(payload: Value) -> Self {
        Self::case(1, Some(payload))
    }
    pub fn none() -> Self {
        Self::case(0, None)
    }
    pub fn option(value: Option<Value>) -> Self {
        value.map_or_else(Self::none, Self::some)
    }
    pub fn string(s: impl Into<String>) -> Self {
        Self::String(s.into())
    }
}

/// A core value type in a flattened signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flat {
    I32,
    I64,
    F32,
    F64,
}

impl Flat {
    /// The core type that carries either of two cases' flat values.
    fn join(self, other: Flat) -> Flat {
        match (self, other) {
            (a, b) if a == b => a,
            (Flat::I32, Flat::F32) | (Flat::F32, Flat::I32) => Flat::I32,
            _ => Flat::I64,
        }
    }
}

/// Flattened arguments beyond this go through memory.
pub(crate) const MAX_FLAT_PARAMS: usize = 16;
/// Flattened results beyond this go through a return area.
const MAX_FLAT_RESULTS: usize = 1;

impl Ty {
    /// The alignment of a value of this type in linear memory.
    pub fn align(&self) -> usize {
        match self {
            Ty::Bool | Ty::U8 | Ty::S8 => 1,
            Ty::U16 | Ty::S16 => 2,
            Ty::U32 | Ty::S32 | Ty::F32 | Ty::Char | Ty::Handle | Ty::String | Ty::List(_) => 4,
            Ty::U64 | Ty::S64 | Ty::F64 => 8,
            Ty::Flags(n) => flags_size(*n),
            Ty::Tuple(fields) => fields.iter().map(Ty::align).max().unwrap_or(1),
            Ty::Variant(cases) => discriminant_size(cases.len()).max(max_case_align(cases)),
        }
    }

    /// The bytes a value of this type takes in linear memory (public so
    /// that host tables can test their layouts against the WIT's).
    pub fn size(&self) -> usize {
        match self {
            Ty::Bool | Ty::U8 | Ty::S8 => 1,
            Ty::U16 | Ty::S16 => 2,
            Ty::U32 | Ty::S32 | Ty::F32 | Ty::Char | Ty::Handle => 4,
            Ty::U64 | Ty::S64 | Ty::F64 | Ty::String | Ty::List(_) => 8,
            Ty::Flags(n) => flags_size(*n),
            Ty::Tuple(fields) => {
                let mut size = 0;
                for field in *fields {
                    size = align_to(size, field.align()) + field.size();
                }
                align_to(size, self.align())
            }
            Ty::Variant(cases) => {
                let payload = cases.iter().flatten().map(Ty::size).max().unwrap_or(0);
                align_to(payload_offset(cases) + payload, self.align())
            }
        }
    }

    fn flatten(&self, out: &mut Vec<Flat>) {
        match self {
            Ty::Bool
            | Ty::U8
            | Ty::U16
            | Ty::U32
            | Ty::S8
            | Ty::S16
            | Ty::S32
            | Ty::Char
            | Ty::Flags(_)
            | Ty::Handle => out.push(Flat::I32),
            Ty::U64 | Ty::S64 => out.push(Flat::I64),
            Ty::F32 => out.push(Flat::F32),
            Ty::F64 => out.push(Flat::F64),
            Ty::String | Ty::List(_) => out.extend([Flat::I32, Flat::I32]),
            Ty::Tuple(fields) => fields.iter().for_each(|f| f.flatten(out)),
            Ty::Variant(cases) => {
                out.push(Flat::I32);
                let mut joined: Vec<Flat> = Vec::new();
                for case in cases.iter().flatten() {
                    let mut flat = Vec::new();
                    case.flatten(&mut flat);
                    for (i, f) in flat.into_iter().enumerate() {
                        match joined.get_mut(i) {
                            Some(j) => *j = j.join(f),
                            None => joined.push(f),
                        }
                    }
                }
                out.extend(joined);
            }
        }
    }

    /// How many core values carry this type (`flat().len()`, without
    /// allocating: lifting asks for it on every variant).
    pub(crate) fn flat_count(&self) -> usize {
        match self {
            Ty::String | Ty::List(_) => 2,
            Ty::Tuple(fields) => fields.iter().map(Ty::flat_count).sum(),
            Ty::Variant(cases) => {
                1 + cases
                    .iter()
                    .flatten()
                    .map(Ty::flat_count)
                    .max()
                    .unwrap_or(0)
            }
            _ => 1,
        }
    }

    fn flat(&self) -> Vec<Flat> {
        let mut out = Vec::new();
        self.flatten(&mut out);
        out
    }
}

fn flags_size(members: u8) -> usize {
    match members {
        0..=8 => 1,
        9..=16 => 2,
        _ => 4,
    }
}

fn discriminant_size(cases: usize) -> usize {
    match cases {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    }
}

fn max_case_align(cases: &[Option<Ty>]) -> usize {
    cases.iter().flatten().map(Ty::align).max().unwrap_or(1)
}

fn payload_offset(cases: &[Option<Ty>]) -> usize {
    align_to(discriminant_size(cases.len()), max_case_align(cases))
}

fn align_to(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_follow_the_canonical_abi() {
        let scheme = Ty::Variant(&[None, None, Some(Ty::String)]);
        assert_eq!((scheme.size(), scheme.align()), (12, 4));
        let opt_scheme = option_ty!(Ty::Variant(&[None, None, Some(Ty::String)]));
        assert_eq!((opt_scheme.size(), opt_scheme.align()), (16, 4));
        let entry = Ty::Tuple(&[Ty::String, Ty::List(&Ty::U8)]);
        assert_eq!((entry.size(), entry.align()), (16, 4));
        let r: Ty = result_ty!(Ty::U64, Ty::Handle);
        assert_eq!((r.size(), r.align()), (16, 8));
        assert_eq!(opt_scheme.flat_count(), opt_scheme.flat().len());
        let unit: Ty = result_ty!(_, _);
        assert_eq!((unit.size(), unit.flat()), (1, vec![Flat::I32]));
    }

    #[test]
    fn variants_join_their_cases_flat_types() {
        // option<u64> | option<u32> | string: [disc, join(i32, i32, i32), join(i64, i32, i32)]
        let v = Ty::Variant(&[
            Some(option_ty!(Ty::U64)),
            Some(option_ty!(Ty::U32)),
            Some(Ty::String),
        ]);
        assert_eq!(v.flat(), vec![Flat::I32, Flat::I32, Flat::I64]);
    }
}
