//! The component model's async ABI for one component instance: the task an
//! async export runs as, waitable sets, streams and futures, error contexts
//! (`design/mvp/CanonicalABI.md`, "Async").
//!
//! Flint runs one task per instance, on the worker thread of its invocation,
//! and a host function completes before it returns (an async-lowered import
//! reports `RETURNED`) unless it waits on the guest itself: such a call
//! (`HostFn::ready`) becomes a subtask that completes once the guest has
//! done what it waits for. Otherwise what can wait is what the guest waits
//! on itself: a read on a stream or future whose writer has not written
//! yet, a write whose reader has not read. Such an operation is kept
//! pending, and completes (as an event for the guest's event loop) when the
//! other end acts, whether that end is the guest's own or the host's. The
//! host's ends are sinks and sources ([`StreamSink`], [`StreamSource`],
//! [`FutureSink`], a future's value), which never leave the guest's loop
//! waiting on an event: a sink that must apply backpressure, or a source
//! whose data is still arriving (a request body), blocks the worker thread
//! inside its `write` or `read`, bounded by the deadline.
//!
//! A guest that waits while nothing pending can ever complete (it waits on
//! a future nobody writes) has deadlocked; it is held until the deadline,
//! as a guest that never answers would be, and ends as a deadline hit.

use std::any::Any;
use std::collections::VecDeque;

use wasmi::{AsContextMut, Caller, Func, FuncType, Memory, Val, ValType};

use crate::GuestState;
use crate::canon::abi::Guest;
use crate::canon::{PendingCall, StringEncoding, Ty, Value};

pub(crate) const EVENT_NONE: u32 = 0;
const EVENT_SUBTASK: u32 = 1;
const EVENT_STREAM_READ: u32 = 2;
const EVENT_STREAM_WRITE: u32 = 3;
const EVENT_FUTURE_READ: u32 = 4;
const EVENT_FUTURE_WRITE: u32 = 5;

/// A stream or future operation's result: not done yet, or done (with the
/// element count shifted left by 4) because it completed, the other end was
/// dropped, or it was cancelled.
const BLOCKED: u32 = u32::MAX;
const COMPLETED: u32 = 0;
const DROPPED: u32 = 1;
const CANCELLED: u32 = 2;

/// Subtask states: what an async-lowered import returns (`RETURNED` with
/// no subtask, or `STARTED` with one) and a subtask's event says.
const SUBTASK_STARTED: u32 = 1;
pub(crate) const SUBTASK_RETURNED: u32 = 2;
const SUBTASK_STARTED_CANCELLED: u32 = 3;

/// Live waitables, sets and error contexts one instance may hold, so a guest
/// cannot grow host memory by creating streams in a loop.
const MAX_HANDLES: usize = 4096;

fn trap(message: impl Into<String>) -> wasmi::Error {
    wasmi::Error::new(message.into())
}

/// The element type of a stream or future, as far as the component's types
/// say: none (`stream` of nothing), a known layout, or one Flint cannot lay
/// out (its elements can then only pass to and from the host).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Elem {
    Unit,
    Known(&'static Ty),
    Unknown,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::Unit | Elem::Unknown => 0,
            Elem::Known(ty) => ty.size(),
        }
    }
}

/// Whether values of `ty` are plain bytes (no strings, lists: pointers that
/// must be copied into the reader's own allocations).
fn is_plain(ty: &Ty) -> bool {
    match ty {
        Ty::String | Ty::List(_) => false,
        Ty::Tuple(fields) => fields.iter().all(is_plain),
        Ty::Variant(cases) => cases.iter().flatten().all(is_plain),
        _ => true,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelOp {
    New,
    Read,
    Write,
    CancelRead,
    CancelWrite,
    DropReadable,
    DropWritable,
}

/// One async built-in, as a component's `canon` declares it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Builtin {
    Channel {
        future: bool,
        op: ChannelOp,
        elem: Elem,
    },
    TaskReturn,
    TaskCancel,
    ContextGet(u32),
    ContextSet(u32),
    Backpressure,
    Yield,
    SubtaskDrop,
    SubtaskCancel,
    ErrorContextNew,
    ErrorContextDebugMessage,
    ErrorContextDrop,
    SetNew,
    SetWait,
    SetPoll,
    SetDrop,
    Join,
}

impl Builtin {
    /// The core type of the built-in; `None` for `task.return`, whose type
    /// is its results' (checked when the export is called).
    pub(crate) fn core_type(&self) -> Option<FuncType> {
        use ValType::{I32, I64};
        let ty = |params: &[ValType], results: &[ValType]| {
            Some(FuncType::new(
                params.iter().copied(),
                results.iter().copied(),
            ))
        };
        match self {
            Builtin::TaskReturn => None,
            Builtin::TaskCancel | Builtin::Backpressure => ty(&[], &[]),
            Builtin::ContextGet(_) | Builtin::Yield | Builtin::SetNew => ty(&[], &[I32]),
            Builtin::ContextSet(_)
            | Builtin::SubtaskDrop
            | Builtin::ErrorContextDrop
            | Builtin::SetDrop => ty(&[I32], &[]),
            Builtin::SubtaskCancel => ty(&[I32], &[I32]),
            Builtin::ErrorContextNew => ty(&[I32, I32], &[I32]),
            Builtin::ErrorContextDebugMessage | Builtin::Join => ty(&[I32, I32], &[]),
            Builtin::SetWait | Builtin::SetPoll => ty(&[I32, I32], &[I32]),
            Builtin::Channel { future, op, .. } => match op {
                ChannelOp::New => ty(&[], &[I64]),
                ChannelOp::Read | ChannelOp::Write if *future => ty(&[I32, I32], &[I32]),
                ChannelOp::Read | ChannelOp::Write => ty(&[I32, I32, I32], &[I32]),
                ChannelOp::CancelRead | ChannelOp::CancelWrite => ty(&[I32], &[I32]),
                ChannelOp::DropReadable | ChannelOp::DropWritable => ty(&[I32], &[]),
            },
        }
    }
}

/// Where a host end of a stream puts what the guest writes. `write` takes
/// all of `bytes`, blocking the worker thread while the consumer is full
/// (backpressure), and fails when the consumer is gone.
pub trait StreamSink: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkClosed>;
    /// The guest dropped its writable end: the stream is complete.
    fn close(&mut self);
}

/// The consumer of a stream is gone; the guest's write sees `DROPPED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkClosed;

/// What a host end of a stream gives the guest's reads.
pub enum SourceRead {
    /// Bytes of a `stream<u8>` (at most what was asked for).
    Bytes(Vec<u8>),
    /// Elements of any other stream.
    Values(Vec<Value>),
    /// The stream is complete.
    End,
    /// The stream cannot go on (its data stopped arriving): the guest's
    /// invocation ends, since what it has read is not the whole stream.
    Failed(SourceFailure),
}

/// Why a host end could not give a guest's read what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFailure {
    /// The invocation's deadline passed while the read waited.
    Deadline,
    /// The data ended before it was complete; the text says why.
    Broken(String),
}

/// A host end that writes a stream: `read` is asked for at most `max`
/// elements and may block the worker thread until it has some.
pub trait StreamSource: Send {
    fn read(&mut self, max: usize) -> SourceRead;
}

/// Where the value the guest writes into a future goes.
pub type FutureSink = Box<dyn FnOnce(Value) + Send>;

/// A stream or future the host holds an end of, as the host names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelId {
    index: u32,
    generation: u32,
}

/// The options of a read or write: where its buffer is and how strings in
/// it are encoded and allocated.
#[derive(Clone, Copy)]
struct Opts {
    memory: Option<Memory>,
    realloc: Option<Func>,
    encoding: StringEncoding,
}

#[derive(Clone, Copy)]
struct Pending {
    ptr: u32,
    len: u32,
    opts: Opts,
}

struct GuestEnd {
    handle: u32,
    op: Option<Pending>,
    /// A completed operation's result, not yet delivered to the guest.
    event: Option<u32>,
    /// The waitable set it is joined to (0: none).
    set: u32,
    /// An operation on it saw the other end dropped: only dropping it remains.
    finished: bool,
}

enum HostEnd {
    /// Taken from the guest; the host has not said yet where data goes.
    Unclaimed,
    Sink(Box<dyn StreamSink>),
    FutureSink(FutureSink),
    Source(Box<dyn StreamSource>),
    /// A future the host writes: its value, until the guest reads it.
    Value(Value),
}

enum Side {
    Guest(GuestEnd),
    Host(HostEnd),
    Dropped,
}

struct Channel {
    future: bool,
    elem: Elem,
    reader: Side,
    writer: Side,
    /// A future whose value has been delivered.
    done: bool,
}

struct ChannelSlot {
    generation: u32,
    channel: Option<Channel>,
}

enum Entry {
    End {
        channel: u32,
        readable: bool,
    },
    Set,
    ErrorContext(String),
    /// An async-lowered host call that waits on the guest (`HostFn::ready`).
    Subtask {
        returned: bool,
        event: Option<u32>,
        set: u32,
    },
}

/// The export call the instance is running, as an async task.
#[derive(Default)]
struct Task {
    /// The export's result type, for `task.return`.
    result: Option<&'static Ty>,
    running: bool,
    returned: Option<Value>,
    /// `task.return` was called (its value may already be taken).
    has_returned: bool,
    context: [u32; 2],
}

/// The async state of one component instance: its table of waitables,
/// sets and error contexts, its streams and futures, and its task.
#[derive(Default)]
pub struct Tasks {
    table: Vec<Option<Entry>>,
    free: Vec<u32>,
    channels: Vec<ChannelSlot>,
    free_channels: Vec<u32>,
    /// Handles of guest ends and subtasks with an undelivered event, oldest first.
    ready: VecDeque<u32>,
    /// Subtasks still waiting, with their calls (a `PendingCall` of the
    /// store's data type, which this table does not name).
    pending: Vec<(u32, Option<Box<dyn Any + Send>>)>,
    task: Task,
}

impl Tasks {
    pub(crate) fn reset(&mut self) {
        *self = Tasks::default();
    }

    fn insert(&mut self, entry: Entry) -> Result<u32, wasmi::Error> {
        if let Some(index) = self.free.pop() {
            self.table[index as usize] = Some(entry);
            return Ok(index + 1);
        }
        if self.table.len() >= MAX_HANDLES {
            return Err(trap(format!(
                "more than {MAX_HANDLES} live streams, futures, waitable sets and error contexts"
            )));
        }
        self.table.push(Some(entry));
        Ok(self.table.len() as u32)
    }

    fn entry(&self, handle: u32) -> Result<&Entry, wasmi::Error> {
        handle
            .checked_sub(1)
            .and_then(|i| self.table.get(i as usize))
            .and_then(Option::as_ref)
            .ok_or_else(|| trap(format!("invalid handle {handle}")))
    }

    fn remove(&mut self, handle: u32) {
        if let Some(slot) = handle
            .checked_sub(1)
            .and_then(|i| self.table.get_mut(i as usize))
            && slot.take().is_some()
        {
            self.free.push(handle - 1);
        }
        self.ready.retain(|h| *h != handle);
    }

    fn new_channel(&mut self, future: bool, elem: Elem) -> Result<u32, wasmi::Error> {
        let channel = Channel {
            future,
            elem,
            reader: Side::Dropped,
            writer: Side::Dropped,
            done: false,
        };
        if let Some(index) = self.free_channels.pop() {
            let slot = &mut self.channels[index as usize];
            slot.generation += 1;
            slot.channel = Some(channel);
            return Ok(index);
        }
        if self.channels.len() >= MAX_HANDLES {
            return Err(trap(format!(
                "more than {MAX_HANDLES} live streams and futures"
            )));
        }
        self.channels.push(ChannelSlot {
            generation: 0,
            channel: Some(channel),
        });
        Ok(self.channels.len() as u32 - 1)
    }

    fn channel(&mut self, index: u32) -> &mut Channel {
        self.channels[index as usize]
            .channel
            .as_mut()
            .expect("a live end's channel is live")
    }

    fn id(&self, index: u32) -> ChannelId {
        ChannelId {
            index,
            generation: self.channels[index as usize].generation,
        }
    }

    fn by_id(&mut self, id: ChannelId) -> Option<&mut Channel> {
        let slot = self.channels.get_mut(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.channel.as_mut())
            .flatten()
    }

    /// Frees a channel both of whose ends are gone.
    fn collect(&mut self, index: u32) {
        let slot = &mut self.channels[index as usize];
        if let Some(c) = &slot.channel
            && matches!(c.reader, Side::Dropped)
            && matches!(c.writer, Side::Dropped)
        {
            slot.channel = None;
            self.free_channels.push(index);
        }
    }

    /// A new stream or future whose two ends are the guest's, as `stream.new`
    /// returns them: the readable end's handle in the low 32 bits.
    fn new_guest_pair(&mut self, future: bool, elem: Elem) -> Result<u64, wasmi::Error> {
        let index = self.new_channel(future, elem)?;
        let r = self.insert(Entry::End {
            channel: index,
            readable: true,
        })?;
        let w = self.insert(Entry::End {
            channel: index,
            readable: false,
        })?;
        let c = self.channel(index);
        c.reader = Side::Guest(guest_end(r));
        c.writer = Side::Guest(guest_end(w));
        Ok(u64::from(r) | (u64::from(w) << 32))
    }

    /// Starts a subtask for `call`, an async-lowered host call that cannot
    /// complete yet; the status the call returns to the guest.
    pub(crate) fn start_subtask(&mut self, call: Box<dyn Any + Send>) -> Result<u32, wasmi::Error> {
        let handle = self.insert(Entry::Subtask {
            returned: false,
            event: None,
            set: 0,
        })?;
        self.pending.push((handle, Some(call)));
        Ok((handle << 4) | SUBTASK_STARTED)
    }

    fn subtask_returned(&mut self, handle: u32) {
        if let Some(Some(Entry::Subtask {
            returned, event, ..
        })) = self.table.get_mut(handle as usize - 1)
        {
            *returned = true;
            *event = Some(SUBTASK_RETURNED);
            self.ready.push_back(handle);
        }
    }

    /// The guest end `handle`: its channel index and which end it is.
    fn end(&self, handle: u32, future: bool, readable: bool) -> Result<u32, wasmi::Error> {
        match self.entry(handle)? {
            Entry::End {
                channel,
                readable: r,
            } if *r == readable => {
                let c = self.channels[*channel as usize]
                    .channel
                    .as_ref()
                    .expect("a live end's channel is live");
                if c.future != future {
                    return Err(trap(format!(
                        "handle {handle} is a {}, not a {}",
                        kind(c.future),
                        kind(future)
                    )));
                }
                Ok(*channel)
            }
            _ => Err(trap(format!(
                "handle {handle} is not the {} end of a {}",
                if readable { "readable" } else { "writable" },
                kind(future)
            ))),
        }
    }

    // ---- the host's side ----

    /// Takes the readable end `handle` the guest passed to the host (a
    /// `stream<T>` or `future<T>` argument): the host reads it from now on.
    pub fn take_reader(&mut self, handle: u32, future: bool) -> Result<ChannelId, wasmi::Error> {
        let index = self.end(handle, future, true)?;
        let c = self.channel(index);
        let Side::Guest(end) = &c.reader else {
            unreachable!("a guest handle's end is the guest's")
        };
        if end.op.is_some() {
            return Err(trap(format!(
                "handle {handle} is passed while a read on it is in progress"
            )));
        }
        c.reader = Side::Host(HostEnd::Unclaimed);
        self.remove(handle);
        Ok(self.id(index))
    }

    /// Where what the guest writes into the stream `id` goes. A write the
    /// guest made before completes at the next event the guest waits for.
    /// A stream whose writer is the host's own (a request body the guest
    /// passes on as a response's or an outbound request's, unread) is copied
    /// into `sink` now, on this thread, as the reads and writes allow; one
    /// the guest has already finished closes `sink` at once.
    pub fn attach_sink(&mut self, id: ChannelId, mut sink: Box<dyn StreamSink>) {
        let Some(c) = self.by_id(id) else { return };
        let Side::Host(reader) = &mut c.reader else {
            return;
        };
        match c.writer {
            Side::Host(HostEnd::Source(_)) => {}
            // The guest finished the stream before the host said where it
            // goes: it is complete as it is.
            Side::Dropped => {
                sink.close();
                c.reader = Side::Dropped;
                self.collect(id.index);
                return;
            }
            _ => {
                *reader = HostEnd::Sink(sink);
                return;
            }
        }
        let Side::Host(HostEnd::Source(source)) = std::mem::replace(&mut c.writer, Side::Dropped)
        else {
            unreachable!("the writer was just matched")
        };
        c.reader = Side::Dropped;
        self.collect(id.index);
        forward(source, sink);
    }

    /// Where the value the guest writes into the future `id` goes.
    pub fn attach_future_sink(&mut self, id: ChannelId, sink: FutureSink) {
        if let Some(c) = self.by_id(id)
            && let Side::Host(end) = &mut c.reader
        {
            *end = HostEnd::FutureSink(sink);
        }
    }

    /// The host no longer reads `id`: the guest's writes see `DROPPED`.
    pub fn drop_reader(&mut self, id: ChannelId) {
        let Some(c) = self.by_id(id) else { return };
        if matches!(c.reader, Side::Host(_)) {
            c.reader = Side::Dropped;
            let index = id.index;
            self.peer_dropped(index, false);
            self.collect(index);
        }
    }

    /// Whether the guest has finished writing `id` (dropped its end, or the
    /// host stopped reading).
    pub fn writer_done(&mut self, id: ChannelId) -> bool {
        self.by_id(id)
            .is_none_or(|c| matches!(c.writer, Side::Dropped) || c.done)
    }

    /// A stream whose readable end goes to the guest (returned as its
    /// handle) and whose elements come from `source`.
    pub fn new_stream_from(
        &mut self,
        elem: Option<&'static Ty>,
        source: Box<dyn StreamSource>,
    ) -> Result<u32, wasmi::Error> {
        let elem = elem.map_or(Elem::Unit, Elem::Known);
        self.new_host_writer(false, elem, HostEnd::Source(source))
    }

    /// A future whose readable end goes to the guest (its handle is
    /// returned), holding `value`, which the host has already.
    pub fn new_future_from(
        &mut self,
        elem: Option<&'static Ty>,
        value: Value,
    ) -> Result<u32, wasmi::Error> {
        let elem = elem.map_or(Elem::Unit, Elem::Known);
        self.new_host_writer(true, elem, HostEnd::Value(value))
    }

    fn new_host_writer(
        &mut self,
        future: bool,
        elem: Elem,
        writer: HostEnd,
    ) -> Result<u32, wasmi::Error> {
        let index = self.new_channel(future, elem)?;
        let handle = match self.insert(Entry::End {
            channel: index,
            readable: true,
        }) {
            Ok(handle) => handle,
            Err(e) => {
                self.channels[index as usize].channel = None;
                self.free_channels.push(index);
                return Err(e);
            }
        };
        let c = self.channel(index);
        c.reader = Side::Guest(guest_end(handle));
        c.writer = Side::Host(writer);
        Ok(handle)
    }

    // ---- events ----

    fn complete(&mut self, index: u32, readable: bool, code: u32) {
        let c = self.channel(index);
        let side = if readable {
            &mut c.reader
        } else {
            &mut c.writer
        };
        if let Side::Guest(end) = side {
            end.op = None;
            end.event = Some(code);
            end.finished |= code & 0xf == DROPPED;
            let handle = end.handle;
            self.ready.push_back(handle);
        }
    }

    /// One end went away: a pending operation on the other end ends.
    fn peer_dropped(&mut self, index: u32, readable_dropped: bool) {
        let c = self.channel(index);
        let other = if readable_dropped {
            &mut c.writer
        } else {
            &mut c.reader
        };
        match other {
            Side::Guest(end) if end.op.is_some() => {
                self.complete(index, !readable_dropped, DROPPED);
            }
            Side::Host(HostEnd::Sink(sink)) if !readable_dropped => sink.close(),
            // Nothing will read what the host's end writes: the source (a
            // request body still arriving, rows) is dropped now rather than
            // with the instance, so that its producer hears it.
            Side::Host(_) if readable_dropped => *other = Side::Dropped,
            _ => {}
        }
    }

    fn event_code(&self, handle: u32) -> u32 {
        match self.entry(handle) {
            Ok(Entry::End { channel, readable }) => {
                let future = self.channels[*channel as usize]
                    .channel
                    .as_ref()
                    .is_some_and(|c| c.future);
                match (future, readable) {
                    (false, true) => EVENT_STREAM_READ,
                    (false, false) => EVENT_STREAM_WRITE,
                    (true, true) => EVENT_FUTURE_READ,
                    (true, false) => EVENT_FUTURE_WRITE,
                }
            }
            Ok(Entry::Subtask { .. }) => EVENT_SUBTASK,
            _ => EVENT_NONE,
        }
    }

    fn guest_end_mut(&mut self, handle: u32) -> Option<&mut GuestEnd> {
        let Ok(Entry::End { channel, readable }) = self.entry(handle) else {
            return None;
        };
        let (channel, readable) = (*channel, *readable);
        let c = self.channels[channel as usize].channel.as_mut()?;
        match if readable {
            &mut c.reader
        } else {
            &mut c.writer
        } {
            Side::Guest(end) => Some(end),
            _ => None,
        }
    }

    /// The oldest undelivered event of a waitable in `set`, taken.
    fn take_event(&mut self, set: u32) -> Option<(u32, u32, u32)> {
        let position = self.ready.iter().position(|h| {
            let handle = *h;
            match self.entry(handle) {
                Ok(Entry::End { channel, readable }) => {
                    let c = self.channels[*channel as usize].channel.as_ref();
                    c.is_some_and(|c| match if *readable { &c.reader } else { &c.writer } {
                        Side::Guest(end) => end.set == set,
                        _ => false,
                    })
                }
                Ok(Entry::Subtask { set: s, .. }) => *s == set,
                _ => false,
            }
        })?;
        let handle = self.ready.remove(position)?;
        let code = self.event_code(handle);
        let payload = match self.table.get_mut(handle as usize - 1) {
            Some(Some(Entry::Subtask { event, .. })) => event.take()?,
            _ => self.guest_end_mut(handle)?.event.take()?,
        };
        Some((code, handle, payload))
    }
}

fn guest_end(handle: u32) -> GuestEnd {
    GuestEnd {
        handle,
        op: None,
        event: None,
        set: 0,
        finished: false,
    }
}

fn kind(future: bool) -> &'static str {
    if future { "future" } else { "stream" }
}

/// A finished operation's code: for a stream with the element count above
/// the low four bits; a future's code is the bare code.
fn done(code: u32, count: usize) -> u32 {
    code | ((count as u32) << 4)
}

/// A future operation's codes carry no count.
fn future_done(code: u32) -> u32 {
    code
}

// ---- moving elements between guest memory and the other end ----

fn guest<'c, C: AsContextMut>(ctx: &'c mut C, opts: &Opts) -> Guest<&'c mut C> {
    Guest::new(ctx, opts.memory, opts.realloc, opts.encoding)
}

/// Copies `count` elements from one guest buffer to another (both in this
/// instance): bytes when the elements are plain, else value by value so
/// that strings and lists land in the reader's own allocations.
fn copy_elems<C: AsContextMut>(
    ctx: &mut C,
    elem: Elem,
    from: (&Opts, u32),
    to: (&Opts, u32),
    count: usize,
) -> Result<(), wasmi::Error> {
    let ty = match elem {
        Elem::Unit => return Ok(()),
        Elem::Unknown => {
            return Err(trap(
                "copying a stream or future element of a type Flint cannot lay out",
            ));
        }
        Elem::Known(ty) => ty,
    };
    let size = ty.size();
    if is_plain(ty) {
        let bytes = guest(ctx, from.0)
            .slice(from.1 as usize, size * count)?
            .to_vec();
        return guest(ctx, to.0).write(to.1 as usize, &bytes);
    }
    for i in 0..count {
        let value = guest(ctx, from.0).load(ty, from.1 as usize + i * size)?;
        guest(ctx, to.0).store(ty, &value, to.1 as usize + i * size)?;
    }
    Ok(())
}

/// What a guest read or write does to the other end, decided with the
/// state alone; the memory work is done after (it may call the guest's
/// `cabi_realloc`, which needs the store).
enum Step {
    Done(u32),
    /// Copy between this operation's buffer and the other end's pending one.
    Rendezvous {
        other: Pending,
        count: usize,
    },
    ToSink(Box<dyn StreamSink>),
    ToFutureSink(FutureSink),
    FromSource(Box<dyn StreamSource>),
    FromValue(Value),
    Block,
}

/// `stream.read`/`stream.write`/`future.read`/`future.write` on the guest end
/// `handle`, with the buffer at `ptr` (`len` elements; 1 for a future).
fn transfer<H: 'static>(
    caller: &mut Caller<'_, GuestState<H>>,
    future: bool,
    readable: bool,
    handle: u32,
    pending: Pending,
) -> Result<u32, wasmi::Error> {
    let tasks = &mut caller.data_mut().tasks;
    let index = tasks.end(handle, future, readable)?;
    let c = tasks.channel(index);
    let elem = c.elem;
    let (mine, other) = if readable {
        (&mut c.reader, &mut c.writer)
    } else {
        (&mut c.writer, &mut c.reader)
    };
    let Side::Guest(me) = mine else {
        unreachable!("a guest handle's end is the guest's")
    };
    if me.finished {
        return Err(trap(format!(
            "handle {handle}: a {} after the other end was dropped",
            if readable { "read" } else { "write" }
        )));
    }
    if me.op.is_some() || me.event.is_some() {
        return Err(trap(format!(
            "a {} on handle {handle} while one is already in progress",
            if readable { "read" } else { "write" }
        )));
    }
    if c.done {
        return Err(trap(format!(
            "handle {handle}: the future's value was already transferred"
        )));
    }
    let step = match other {
        Side::Dropped => Step::Done(done(DROPPED, 0)),
        _ if pending.len == 0 => Step::Done(done(COMPLETED, 0)),
        Side::Guest(peer) => match peer.op {
            Some(op) if op.len > 0 => Step::Rendezvous {
                other: op,
                count: op.len.min(pending.len) as usize,
            },
            _ => Step::Block,
        },
        Side::Host(end) => match (readable, std::mem::replace(end, HostEnd::Unclaimed)) {
            (false, HostEnd::Sink(sink)) => Step::ToSink(sink),
            (false, HostEnd::FutureSink(sink)) => Step::ToFutureSink(sink),
            (true, HostEnd::Source(source)) => Step::FromSource(source),
            (true, HostEnd::Value(value)) => Step::FromValue(value),
            (_, taken) => {
                *end = taken;
                Step::Block
            }
        },
    };
    let opts = pending.opts;
    let result = match step {
        Step::Done(code) => code,
        Step::Block => {
            let c = caller.data_mut().tasks.channel(index);
            let Side::Guest(me) = (if readable {
                &mut c.reader
            } else {
                &mut c.writer
            }) else {
                unreachable!()
            };
            me.op = Some(pending);
            BLOCKED
        }
        Step::Rendezvous { other, count } => {
            let (from, to) = if readable {
                ((&other.opts, other.ptr), (&opts, pending.ptr))
            } else {
                ((&opts, pending.ptr), (&other.opts, other.ptr))
            };
            copy_elems(caller, elem, from, to, count)?;
            let tasks = &mut caller.data_mut().tasks;
            let code = if future {
                tasks.channel(index).done = true;
                future_done(COMPLETED)
            } else {
                done(COMPLETED, count)
            };
            tasks.complete(index, !readable, code);
            code
        }
        Step::ToSink(mut sink) => {
            let size = elem.size();
            let bytes = guest(caller, &opts)
                .slice(pending.ptr as usize, size * pending.len as usize)?
                .to_vec();
            let outcome = sink.write(&bytes);
            let c = caller.data_mut().tasks.channel(index);
            match outcome {
                Ok(()) => {
                    c.reader = Side::Host(HostEnd::Sink(sink));
                    done(COMPLETED, pending.len as usize)
                }
                Err(SinkClosed) => {
                    c.reader = Side::Dropped;
                    done(DROPPED, 0)
                }
            }
        }
        Step::ToFutureSink(sink) => {
            let Elem::Known(ty) = elem else {
                return Err(trap("a future value of a type Flint cannot lay out"));
            };
            let value = guest(caller, &opts).load(ty, pending.ptr as usize)?;
            sink(value);
            let c = caller.data_mut().tasks.channel(index);
            c.reader = Side::Dropped;
            c.done = true;
            future_done(COMPLETED)
        }
        Step::FromSource(mut source) => {
            let read = source.read(pending.len as usize);
            let count = match read {
                SourceRead::End => None,
                SourceRead::Failed(SourceFailure::Deadline) => {
                    return Err(caller.data_mut().run.deadline_hit());
                }
                SourceRead::Failed(SourceFailure::Broken(why)) => return Err(trap(why)),
                SourceRead::Bytes(bytes) => {
                    let size = elem.size().max(1);
                    let count = (bytes.len() / size).min(pending.len as usize);
                    guest(caller, &opts).write(pending.ptr as usize, &bytes[..count * size])?;
                    Some(count)
                }
                SourceRead::Values(values) => {
                    let Elem::Known(ty) = elem else {
                        return Err(trap("stream elements of a type Flint cannot lay out"));
                    };
                    let count = values.len().min(pending.len as usize);
                    for (i, value) in values.iter().take(count).enumerate() {
                        guest(caller, &opts).store(
                            ty,
                            value,
                            pending.ptr as usize + i * ty.size(),
                        )?;
                    }
                    Some(count)
                }
            };
            let c = caller.data_mut().tasks.channel(index);
            match count {
                Some(count) => {
                    c.writer = Side::Host(HostEnd::Source(source));
                    done(COMPLETED, count)
                }
                None => {
                    c.writer = Side::Dropped;
                    done(DROPPED, 0)
                }
            }
        }
        Step::FromValue(value) => {
            let Elem::Known(ty) = elem else {
                return Err(trap("a future value of a type Flint cannot lay out"));
            };
            guest(caller, &opts).store(ty, &value, pending.ptr as usize)?;
            let c = caller.data_mut().tasks.channel(index);
            c.writer = Side::Dropped;
            c.done = true;
            future_done(COMPLETED)
        }
    };
    if result != BLOCKED && result & 0xf == DROPPED {
        let c = caller.data_mut().tasks.channel(index);
        if let Side::Guest(me) = if readable {
            &mut c.reader
        } else {
            &mut c.writer
        } {
            me.finished = true;
        }
    }
    Ok(result)
}

/// Completes what the host made possible since the guest last ran: writes
/// that were waiting for the host to claim their stream, and host calls
/// waiting on the guest. Runs before the guest is told of events.
fn progress<H: 'static>(ctx: &mut wasmi::Store<GuestState<H>>) -> Result<(), wasmi::Error> {
    progress_channels(ctx)?;
    // Host calls waiting on what the guest (or the copies above) just did.
    for i in 0..ctx.data().tasks.pending.len() {
        let (handle, call) = &mut ctx.data_mut().tasks.pending[i];
        let (handle, Some(mut call)) = (*handle, call.take()) else {
            continue;
        };
        let completed = match call.downcast_mut::<PendingCall<GuestState<H>>>() {
            Some(pending) => pending.try_complete(ctx)?,
            None => return Err(trap("host bug: a subtask of another store type")),
        };
        if completed {
            ctx.data_mut().tasks.subtask_returned(handle);
        } else {
            ctx.data_mut().tasks.pending[i].1 = Some(call);
        }
    }
    ctx.data_mut()
        .tasks
        .pending
        .retain(|(_, call)| call.is_some());
    Ok(())
}

fn progress_channels<H: 'static>(
    ctx: &mut wasmi::Store<GuestState<H>>,
) -> Result<(), wasmi::Error> {
    let count = ctx.data().tasks.channels.len();
    for index in 0..count as u32 {
        let Some(c) = ctx.data_mut().tasks.channels[index as usize]
            .channel
            .as_mut()
        else {
            continue;
        };
        let elem = c.elem;
        // A guest write waiting on a host reader that can now take it.
        if let (Side::Guest(w), Side::Host(end)) = (&mut c.writer, &mut c.reader)
            && let Some(op) = w.op
            && !matches!(end, HostEnd::Unclaimed)
        {
            let step = std::mem::replace(end, HostEnd::Unclaimed);
            let code = match step {
                HostEnd::Sink(mut sink) => {
                    let bytes = guest(ctx, &op.opts)
                        .slice(op.ptr as usize, elem.size() * op.len as usize)?
                        .to_vec();
                    let outcome = sink.write(&bytes);
                    let c = ctx.data_mut().tasks.channel(index);
                    match outcome {
                        Ok(()) => {
                            c.reader = Side::Host(HostEnd::Sink(sink));
                            done(COMPLETED, op.len as usize)
                        }
                        Err(SinkClosed) => {
                            c.reader = Side::Dropped;
                            done(DROPPED, 0)
                        }
                    }
                }
                HostEnd::FutureSink(sink) => {
                    let Elem::Known(ty) = elem else {
                        return Err(trap("a future value of a type Flint cannot lay out"));
                    };
                    let value = guest(ctx, &op.opts).load(ty, op.ptr as usize)?;
                    sink(value);
                    let c = ctx.data_mut().tasks.channel(index);
                    c.reader = Side::Dropped;
                    c.done = true;
                    future_done(COMPLETED)
                }
                other => {
                    let c = ctx.data_mut().tasks.channel(index);
                    c.reader = Side::Host(other);
                    continue;
                }
            };
            ctx.data_mut().tasks.complete(index, false, code);
            continue;
        }
    }
    Ok(())
}

// ---- the built-ins as core functions ----

fn arg(args: &[Val], i: usize) -> Result<u32, wasmi::Error> {
    match args.get(i) {
        Some(Val::I32(n)) => Ok(*n as u32),
        _ => Err(trap("an async built-in called without its arguments")),
    }
}

/// The core function for `op` in one instance; `memory`, `realloc` and
/// `encoding` are the options its `canon` names, `ty` its core type (the
/// importer's, for `task.return`).
pub(crate) fn builtin<H: 'static>(
    store: &mut wasmi::Store<GuestState<H>>,
    op: Builtin,
    ty: FuncType,
    memory: Option<Memory>,
    realloc: Option<Func>,
    encoding: StringEncoding,
) -> Func {
    let opts = Opts {
        memory,
        realloc,
        encoding,
    };
    Func::new(
        store,
        ty,
        move |mut caller: Caller<'_, GuestState<H>>, args, out| {
            let result = call_builtin(&mut caller, op, opts, args)?;
            if let (Some(slot), Some(value)) = (out.first_mut(), result) {
                *slot = value;
            }
            Ok(())
        },
    )
}

fn call_builtin<H: 'static>(
    caller: &mut Caller<'_, GuestState<H>>,
    op: Builtin,
    opts: Opts,
    args: &[Val],
) -> Result<Option<Val>, wasmi::Error> {
    let i32 = |n: u32| Some(Val::I32(n as i32));
    match op {
        Builtin::Channel { future, op, elem } => {
            let handle = || arg(args, 0);
            match op {
                ChannelOp::New => {
                    let pair = caller.data_mut().tasks.new_guest_pair(future, elem)?;
                    Ok(Some(Val::I64(pair as i64)))
                }
                ChannelOp::Read | ChannelOp::Write => {
                    let pending = Pending {
                        ptr: arg(args, 1)?,
                        len: if future { 1 } else { arg(args, 2)? },
                        opts,
                    };
                    let readable = op == ChannelOp::Read;
                    Ok(i32(transfer(caller, future, readable, handle()?, pending)?))
                }
                ChannelOp::CancelRead | ChannelOp::CancelWrite => {
                    let h = handle()?;
                    let tasks = &mut caller.data_mut().tasks;
                    tasks.end(h, future, op == ChannelOp::CancelRead)?;
                    let end = tasks.guest_end_mut(h).expect("checked by end");
                    let code = if let Some(code) = end.event.take() {
                        code
                    } else if end.op.take().is_some() {
                        done(CANCELLED, 0)
                    } else {
                        return Err(trap(format!("handle {h}: nothing to cancel")));
                    };
                    tasks.ready.retain(|r| *r != h);
                    Ok(i32(code))
                }
                ChannelOp::DropReadable | ChannelOp::DropWritable => {
                    let h = handle()?;
                    let readable = op == ChannelOp::DropReadable;
                    let tasks = &mut caller.data_mut().tasks;
                    let index = tasks.end(h, future, readable)?;
                    if tasks.guest_end_mut(h).is_some_and(|e| e.op.is_some()) {
                        return Err(trap(format!(
                            "handle {h} is dropped while an operation on it is in progress"
                        )));
                    }
                    let c = tasks.channel(index);
                    *(if readable {
                        &mut c.reader
                    } else {
                        &mut c.writer
                    }) = Side::Dropped;
                    tasks.remove(h);
                    tasks.peer_dropped(index, readable);
                    tasks.collect(index);
                    Ok(None)
                }
            }
        }
        Builtin::TaskReturn => {
            let task = &caller.data().tasks.task;
            if !task.running {
                return Err(trap("task.return outside an async export"));
            }
            if task.has_returned {
                return Err(trap("task.return called twice"));
            }
            let value = match task.result {
                None => None,
                Some(ty) => {
                    let params = std::slice::from_ref(ty);
                    let mut values =
                        Guest::new(&mut *caller, opts.memory, opts.realloc, opts.encoding)
                            .lift_params(params, args)?;
                    values.pop()
                }
            };
            let task = &mut caller.data_mut().tasks.task;
            task.has_returned = true;
            task.returned = Some(value.unwrap_or_else(Value::unit));
            Ok(None)
        }
        Builtin::TaskCancel => Err(trap(
            "task.cancel without a cancellation request (Flint never cancels a task)",
        )),
        Builtin::ContextGet(slot) => {
            let context = &caller.data().tasks.task.context;
            let value = context
                .get(slot as usize)
                .ok_or_else(|| trap("context slot out of range"))?;
            Ok(i32(*value))
        }
        Builtin::ContextSet(slot) => {
            let value = arg(args, 0)?;
            let context = &mut caller.data_mut().tasks.task.context;
            *context
                .get_mut(slot as usize)
                .ok_or_else(|| trap("context slot out of range"))? = value;
            Ok(None)
        }
        // One task per instance: there is never a second call to hold back.
        Builtin::Backpressure => Ok(None),
        // Not cancelled.
        Builtin::Yield => Ok(i32(0)),
        Builtin::SubtaskDrop => {
            let h = arg(args, 0)?;
            let tasks = &mut caller.data_mut().tasks;
            match tasks.entry(h)? {
                Entry::Subtask { returned: true, .. } => {
                    tasks.remove(h);
                    Ok(None)
                }
                Entry::Subtask { .. } => {
                    Err(trap(format!("subtask {h} is dropped before it returned")))
                }
                _ => Err(trap(format!("handle {h} is not a subtask"))),
            }
        }
        Builtin::SubtaskCancel => {
            let h = arg(args, 0)?;
            let tasks = &mut caller.data_mut().tasks;
            let Some(Some(Entry::Subtask {
                returned, event, ..
            })) = h
                .checked_sub(1)
                .and_then(|i| tasks.table.get_mut(i as usize))
            else {
                return Err(trap(format!("handle {h} is not a subtask")));
            };
            if *returned {
                // It returned before the cancellation reached it.
                event.take();
                tasks.ready.retain(|r| *r != h);
                return Ok(i32(SUBTASK_RETURNED));
            }
            *returned = true;
            tasks.pending.retain(|(p, _)| *p != h);
            Ok(i32(SUBTASK_STARTED_CANCELLED))
        }
        Builtin::ErrorContextNew => {
            let (ptr, len) = (arg(args, 0)? as usize, arg(args, 1)? as usize);
            let bytes = guest(caller, &opts).slice(ptr, len)?.to_vec();
            let message = String::from_utf8_lossy(&bytes).into_owned();
            Ok(i32(caller
                .data_mut()
                .tasks
                .insert(Entry::ErrorContext(message))?))
        }
        Builtin::ErrorContextDebugMessage => {
            let (h, ret) = (arg(args, 0)?, arg(args, 1)? as usize);
            let Entry::ErrorContext(message) = caller.data().tasks.entry(h)? else {
                return Err(trap(format!("handle {h} is not an error context")));
            };
            let value = Value::String(message.clone());
            guest(caller, &opts).store(&Ty::String, &value, ret)?;
            Ok(None)
        }
        Builtin::ErrorContextDrop => {
            let h = arg(args, 0)?;
            let tasks = &mut caller.data_mut().tasks;
            if !matches!(tasks.entry(h)?, Entry::ErrorContext(_)) {
                return Err(trap(format!("handle {h} is not an error context")));
            }
            tasks.remove(h);
            Ok(None)
        }
        Builtin::SetNew => Ok(i32(caller.data_mut().tasks.insert(Entry::Set)?)),
        Builtin::SetDrop => {
            let set = arg(args, 0)?;
            let tasks = &mut caller.data_mut().tasks;
            if !matches!(tasks.entry(set)?, Entry::Set) {
                return Err(trap(format!("handle {set} is not a waitable set")));
            }
            for entry in tasks.table.iter_mut().flatten() {
                if let Entry::Subtask { set: s, .. } = entry
                    && *s == set
                {
                    *s = 0;
                }
            }
            for slot in tasks.channels.iter_mut() {
                if let Some(c) = &mut slot.channel {
                    for side in [&mut c.reader, &mut c.writer] {
                        if let Side::Guest(end) = side
                            && end.set == set
                        {
                            end.set = 0;
                        }
                    }
                }
            }
            tasks.remove(set);
            Ok(None)
        }
        Builtin::Join => {
            let (w, set) = (arg(args, 0)?, arg(args, 1)?);
            let tasks = &mut caller.data_mut().tasks;
            if set != 0 && !matches!(tasks.entry(set)?, Entry::Set) {
                return Err(trap(format!("handle {set} is not a waitable set")));
            }
            if let Some(Some(Entry::Subtask { set: s, .. })) = w
                .checked_sub(1)
                .and_then(|i| tasks.table.get_mut(i as usize))
            {
                *s = set;
                return Ok(None);
            }
            let end = tasks
                .guest_end_mut(w)
                .ok_or_else(|| trap(format!("handle {w} is not a waitable")))?;
            end.set = set;
            Ok(None)
        }
        Builtin::SetWait | Builtin::SetPoll => {
            let (set, ret) = (arg(args, 0)?, arg(args, 1)? as usize);
            if !matches!(caller.data().tasks.entry(set)?, Entry::Set) {
                return Err(trap(format!("handle {set} is not a waitable set")));
            }
            let event = caller.data_mut().tasks.take_event(set);
            let (code, handle, payload) = match event {
                Some(event) => event,
                None if matches!(op, Builtin::SetPoll) => (EVENT_NONE, 0, 0),
                None => return Err(deadlocked(caller.data_mut())),
            };
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&handle.to_le_bytes());
            bytes[4..].copy_from_slice(&payload.to_le_bytes());
            guest(caller, &opts).write(ret, &bytes)?;
            Ok(i32(code))
        }
    }
}

/// Copies a host source into a host sink to the end of either. A source
/// that fails, or is not bytes, leaves the sink unclosed: what it got is
/// not the whole stream.
fn forward(mut source: Box<dyn StreamSource>, mut sink: Box<dyn StreamSink>) {
    /// The most asked of the source at once.
    const PIECE: usize = 64 * 1024;
    loop {
        match source.read(PIECE) {
            SourceRead::Bytes(bytes) => {
                if sink.write(&bytes).is_err() {
                    return;
                }
            }
            SourceRead::End => return sink.close(),
            SourceRead::Values(_) | SourceRead::Failed(_) => return,
        }
    }
}

/// The guest waits for an event that nothing can produce: held until the
/// deadline, then ended as a deadline hit (a guest that never answers).
fn deadlocked<H>(state: &mut GuestState<H>) -> wasmi::Error {
    if let Some(deadline) = state.run.deadline() {
        let now = std::time::Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return state.run.deadline_hit();
    }
    trap("the component waits for an event nothing can produce")
}

// ---- running an async export ----

/// What the caller of an async export does with its result, when it comes.
pub type OnReturn<'a, H> =
    dyn FnMut(&mut wasmi::Store<GuestState<H>>, Value) -> Result<(), wasmi::Error> + 'a;

/// Calls an async-lifted export (with a callback) as a task and runs its
/// event loop until it exits. `on_return` gets the task's result when the
/// guest calls `task.return`, which may be long before the task exits (it
/// can go on writing a response body); a task that exits without it fails.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_task<H: 'static>(
    store: &mut wasmi::Store<GuestState<H>>,
    func: &Func,
    callback: &Func,
    flat_args: &[Val],
    result: Option<&'static Ty>,
    invoke: crate::canon::Invoke<GuestState<H>>,
    on_return: &mut OnReturn<'_, H>,
) -> Result<(), wasmi::Error> {
    {
        let task = &mut store.data_mut().tasks.task;
        *task = Task {
            result,
            running: true,
            ..Task::default()
        };
    }
    let mut code = [Val::I32(0)];
    invoke(store, func, flat_args, &mut code)?;
    loop {
        progress(store)?;
        if let Some(value) = store.data_mut().tasks.task.returned.take() {
            on_return(store, value)?;
            progress(store)?;
        }
        let c = match code[0] {
            Val::I32(c) => c as u32,
            _ => return Err(trap("an async export returned a non-i32 code")),
        };
        let event = match c & 0xf {
            0 => {
                store.data_mut().tasks.task.running = false;
                if !store.data().tasks.task.has_returned {
                    return Err(trap("the async export exited without calling task.return"));
                }
                return Ok(());
            }
            1 => (EVENT_NONE, 0, 0),
            2 => {
                let set = c >> 4;
                if !matches!(store.data().tasks.entry(set), Ok(Entry::Set)) {
                    return Err(trap(format!(
                        "waiting on {set}, which is not a waitable set"
                    )));
                }
                match store.data_mut().tasks.take_event(set) {
                    Some(event) => event,
                    None => return Err(deadlocked(store.data_mut())),
                }
            }
            other => return Err(trap(format!("unknown callback code {other}"))),
        };
        let args = [
            Val::I32(event.0 as i32),
            Val::I32(event.1 as i32),
            Val::I32(event.2 as i32),
        ];
        invoke(store, callback, &args, &mut code)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A source of fixed pieces, then `last`.
    struct Pieces(VecDeque<Vec<u8>>, Option<SourceRead>);

    impl StreamSource for Pieces {
        fn read(&mut self, _max: usize) -> SourceRead {
            match self.0.pop_front() {
                Some(piece) => SourceRead::Bytes(piece),
                None => self.1.take().unwrap_or(SourceRead::End),
            }
        }
    }

    #[derive(Default, Clone)]
    struct Collected(Arc<Mutex<(Vec<u8>, bool)>>);

    impl StreamSink for Collected {
        fn write(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
            self.0.lock().unwrap().0.extend_from_slice(bytes);
            Ok(())
        }
        fn close(&mut self) {
            self.0.lock().unwrap().1 = true;
        }
    }

    /// A host stream passed back to the host (`take_reader`) and given a sink.
    fn pass_on(last: Option<SourceRead>) -> (Collected, Tasks) {
        let mut tasks = Tasks::default();
        let source = Pieces(VecDeque::from([b"ab".to_vec(), b"cd".to_vec()]), last);
        let handle = tasks
            .new_stream_from(Some(&Ty::U8), Box::new(source))
            .unwrap();
        let id = tasks.take_reader(handle, false).unwrap();
        let sink = Collected::default();
        tasks.attach_sink(id, Box::new(sink.clone()));
        assert!(tasks.writer_done(id), "the stream is done with");
        (sink, tasks)
    }

    #[test]
    fn a_host_stream_passed_on_is_copied_into_its_sink_and_closes_it() {
        let (sink, tasks) = pass_on(None);
        assert_eq!(*sink.0.lock().unwrap(), (b"abcd".to_vec(), true));
        assert_eq!(tasks.free_channels.len(), 1, "its channel is freed");
    }

    #[test]
    fn a_stream_the_guest_finished_before_the_host_claimed_it_closes_its_sink() {
        let mut tasks = Tasks::default();
        let pair = tasks.new_guest_pair(false, Elem::Known(&Ty::U8)).unwrap();
        let (readable, writable) = (pair as u32, (pair >> 32) as u32);
        let id = tasks.take_reader(readable, false).unwrap();
        // What the `stream.drop-writable` built-in does.
        let index = id.index;
        tasks.channel(index).writer = Side::Dropped;
        tasks.remove(writable);
        tasks.peer_dropped(index, false);
        let sink = Collected::default();
        tasks.attach_sink(id, Box::new(sink.clone()));
        assert_eq!(*sink.0.lock().unwrap(), (Vec::new(), true));
        assert!(tasks.writer_done(id));
    }

    #[test]
    fn a_host_stream_that_fails_leaves_its_sink_unclosed() {
        let failed = SourceRead::Failed(SourceFailure::Broken("cut".into()));
        let (sink, _tasks) = pass_on(Some(failed));
        assert_eq!(*sink.0.lock().unwrap(), (b"abcd".to_vec(), false));
    }
}
