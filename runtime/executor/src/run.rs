//! The three executors' invocations: WAGI's `_start` with stdin and a
//! bounded stdout, a Spin SDK component's `incoming-handler.handle`, and an
//! MQTT handler (a Spin MQTT guest's `handle-message` or a WAGI module).

use std::sync::{Arc, Mutex, RwLock};

use flint_engine::InstanceLimits;
use flint_engine::LimitHit;
use flint_engine::canon::{Ty, Value};
use flint_engine::component::{SinkClosed, StreamSink, StreamSource};
use flint_engine::result_ty;
use flint_host::{
    Contents, Engine, GuestState, IncomingRequest, P3_RESPONSE_RESULT, P3Request, P3Response,
    ResponseOutparam,
};
use wasmi::Store;

use crate::instance::{
    CappedBuffer, Export, Live, call_entry, finished, instantiate, new_store, spin_store, start,
};
use crate::load::{
    CLI_RUN_INTERFACE, HTTP_HANDLER_INTERFACE, SPIN_REDIS_EXPORTS, SPIN_REDIS_INTERFACES,
    async_handler_interface,
};
use crate::request_body::BodyReader;
use crate::respond::{RespondError, Responder, ResponseHead};
use crate::{Code, Component, GuestFailure, GuestKind, SPIN_HTTP_EXPORT, SPIN_MQTT_EXPORT};

/// What changes from one WAGI invocation to the next.
pub struct Invocation {
    pub stdin: Vec<u8>,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
}

/// An MQTT message for a handler.
pub struct MqttMessage {
    pub topic: Arc<str>,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub message_id: u16,
}

/// A message published on a channel a Redis trigger subscribes to.
pub struct RedisMessage {
    pub channel: Arc<str>,
    pub payload: Vec<u8>,
}

/// A Spin guest's answer.
pub struct SpinResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Runs `run`, then counts the invocation's outcome and the fuel it used
/// (which `run` reports through its argument) in the component's metrics.
fn observed<T>(
    component: &Component,
    run: impl FnOnce(&mut Option<u64>) -> Result<T, GuestFailure>,
) -> Result<T, GuestFailure> {
    let mut fuel = None;
    let result = run(&mut fuel);
    component.metrics.record(result.as_ref().err(), fuel);
    result
}

/// Runs `_start` in a new instance and returns what the guest wrote to stdout.
pub fn run_wagi(
    engine: &Engine,
    component: &Component,
    invocation: Invocation,
    limits: &InstanceLimits,
) -> Result<Vec<u8>, GuestFailure> {
    observed(component, |fuel| {
        wagi(engine, component, invocation, limits, fuel)
    })
}

fn wagi(
    engine: &Engine,
    component: &Component,
    invocation: Invocation,
    limits: &InstanceLimits,
    fuel: &mut Option<u64>,
) -> Result<Vec<u8>, GuestFailure> {
    let stdout = Arc::new(RwLock::new(CappedBuffer::new(limits.stdout_bytes)));
    // wasi-libc's getenv returns the first match, so configured variables
    // replace same-named CGI ones (a client cannot shadow them with a header).
    let mut env = invocation.env;
    env.retain(|(k, _)| !component.environment.iter().any(|(c, _)| c == k));
    env.extend(component.environment.iter().cloned());
    // One WASI state for a core module (preview 1) and a component (0.2);
    // stderr goes to the log.
    let mut store = new_store(engine, component, limits);
    let wasi = &mut store.data_mut().host.wasi_state;
    wasi.env = env;
    wasi.args = invocation.argv;
    wasi.stdout = flint_host::wasi::Sink::Buffer(stdout.clone());
    wasi.set_stdin(invocation.stdin);
    let result = match &component.code {
        Code::Module(module) => {
            let instance = instantiate(engine, &mut store, module)?;
            call_entry(&mut store, &instance, "_start")
        }
        Code::Component(_) => {
            start(engine, &mut store, component).and_then(|mut live| cli_run(&mut store, &mut live))
        }
    };
    *fuel = flint_engine::fuel_used(&store);
    // Dropping the store flushes the guest's last stderr line.
    drop(store);
    let mut out = stdout.write().unwrap_or_else(|e| e.into_inner());
    if out.overflowed {
        return Err(GuestFailure::OutputTooLarge(limits.stdout_bytes));
    }
    result?;
    Ok(std::mem::take(&mut out.data))
}

/// `wasi:cli/run#run: func() -> result`: a `wasm32-wasip2` program's `main`.
const CLI_RUN: Export = Export {
    interface: CLI_RUN_INTERFACE,
    function: "run",
    // Core modules run as WAGI guests through `_start`, never this.
    core_name: "wasi:cli/run@0.2.0#run",
    params: &[],
    result: Some(result_ty!(_, _)),
};

/// Runs a WAGI component's `main`; `err` is exit status 1, as a preview 1
/// program that returns non-zero from `main`.
fn cli_run(store: &mut Store<GuestState>, live: &mut Live) -> Result<(), GuestFailure> {
    match live.call(store, &CLI_RUN, &[]) {
        Ok(Some(Value::Variant(0, _))) => finished(store, Ok(())),
        Ok(_) => finished(store, Ok(())).and(Err(GuestFailure::Exit(1))),
        Err(e) => finished(store, Err(e)),
    }
}

/// Instantiates `component` (a reactor's constructors included) and calls
/// nothing: whether a new app version's components start at all, before it
/// serves.
pub fn probe(
    engine: &Engine,
    component: &Component,
    limits: &InstanceLimits,
) -> Result<(), GuestFailure> {
    let mut store = spin_store(engine, component, limits)?;
    start(engine, &mut store, component).map(drop)
}

/// Calls a Spin SDK component's `wasi:http/incoming-handler#handle` with the
/// request and collects the response it sets.
pub fn run_spin_http(
    engine: &Engine,
    component: &Component,
    request: IncomingRequest,
    limits: &InstanceLimits,
) -> Result<SpinResponse, GuestFailure> {
    observed(component, |fuel| {
        spin_http(engine, component, request, limits, fuel)
    })
}

/// `wasi:http/incoming-handler#handle(request, response-out)`.
const HTTP_HANDLE: Export = Export {
    interface: HTTP_HANDLER_INTERFACE,
    function: "handle",
    core_name: SPIN_HTTP_EXPORT,
    params: &[Ty::Handle, Ty::Handle],
    result: None,
};

fn spin_http(
    engine: &Engine,
    component: &Component,
    request: IncomingRequest,
    limits: &InstanceLimits,
    fuel: &mut Option<u64>,
) -> Result<SpinResponse, GuestFailure> {
    let mut store = spin_store(engine, component, limits)?;
    let mut live = start(engine, &mut store, component)?;
    let resources = &mut store.data_mut().host.resources;
    let setup_handle = |e: wasmi::Error| GuestFailure::Setup(e.to_string());
    let request = resources.push(request).map_err(setup_handle)?;
    let outparam = resources.push(ResponseOutparam).map_err(setup_handle)?;
    let args = [Value::Handle(request), Value::Handle(outparam)];
    let result = live.call(&mut store, &HTTP_HANDLE, &args).map(drop);
    *fuel = flint_engine::fuel_used(&store);
    finished(&mut store, result)?;
    let host = &mut store.data_mut().host;
    let head = host
        .response
        .take()
        .ok_or(GuestFailure::NoResponse)?
        .map_err(GuestFailure::ErrorResponse)?;
    let body = host.bodies.take(head.body)?;
    Ok(SpinResponse {
        status: head.status,
        headers: head.headers,
        body,
    })
}

/// Calls a WASI 0.3 component's async `wasi:http/handler#handle` with the
/// request and runs its task to the end. The request's body is `arriving`
/// when the client is still sending it (the guest's reads wait for it), or
/// else `request.body`. The response the handler returns goes out through
/// `responder` at once; its body follows as the guest writes it (the
/// guest's writes wait while the client is behind), after the handler has
/// returned.
pub fn run_spin_http_async(
    engine: &Engine,
    component: &Component,
    request: IncomingRequest,
    arriving: Option<BodyReader>,
    limits: &InstanceLimits,
    responder: Responder,
) -> Result<(), GuestFailure> {
    observed(component, |fuel| {
        spin_http_async(
            engine, component, request, arriving, limits, responder, fuel,
        )
    })
}

/// Shared between the executor and the body's sink.
type Slot<T> = Arc<Mutex<Option<T>>>;

fn lock<T>(slot: &Slot<T>) -> std::sync::MutexGuard<'_, Option<T>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// The guest's body stream, written to the client through the responder.
/// A failed write (the client left, the body is over `max_response_bytes`,
/// the deadline passed) is the guest's write seeing the stream dropped; the
/// reason is kept for the invocation's outcome.
struct ResponderSink {
    responder: Slot<Responder>,
    failure: Slot<RespondError>,
}

impl StreamSink for ResponderSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        let mut responder = lock(&self.responder);
        let Some(responder) = responder.as_mut() else {
            return Err(SinkClosed);
        };
        responder.send_body(bytes).map_err(|e| {
            *lock(&self.failure) = Some(e);
            SinkClosed
        })
    }

    fn close(&mut self) {
        let responder = lock(&self.responder).take();
        if let Some(Err(e)) = responder.map(Responder::finish) {
            *lock(&self.failure) = Some(e);
        }
    }
}

fn spin_http_async(
    engine: &Engine,
    component: &Component,
    request: IncomingRequest,
    arriving: Option<BodyReader>,
    limits: &InstanceLimits,
    responder: Responder,
    fuel: &mut Option<u64>,
) -> Result<(), GuestFailure> {
    let mut store = spin_store(engine, component, limits)?;
    let live = start(engine, &mut store, component)?;
    let Live::Component(mut instance, image) = live else {
        return Err(GuestFailure::Instantiate(
            "a WASI 0.3 HTTP handler must be a component".into(),
        ));
    };
    let interface = async_handler_interface(&image).ok_or_else(|| {
        GuestFailure::Instantiate("the component exports no WASI 0.3 HTTP handler".into())
    })?;
    let setup_handle = |e: wasmi::Error| GuestFailure::Setup(e.to_string());
    let request = store
        .data_mut()
        .host
        .resources
        .push(P3Request::incoming(
            request,
            arriving.map(|body| Box::new(body) as Box<dyn StreamSource>),
        ))
        .map_err(setup_handle)?;
    let responder: Slot<Responder> = Arc::new(Mutex::new(Some(responder)));
    let failure: Slot<RespondError> = Arc::default();
    let mut returned: Option<Result<(), GuestFailure>> = None;
    let mut on_return = |store: &mut Store<GuestState>, value: Value| {
        returned = Some(respond(store, value, &responder, &failure)?);
        Ok(())
    };
    let result = instance.call_async(
        &mut store,
        &image,
        interface,
        "handle",
        &[Ty::Handle],
        &[Value::Handle(request)],
        Some(&P3_RESPONSE_RESULT),
        flint_engine::call_guest,
        &mut on_return,
    );
    *fuel = flint_engine::fuel_used(&store);
    // A body the guest did not finish ends the response incomplete.
    if let Some(unfinished) = lock(&responder).take() {
        unfinished.fail("the guest did not finish the response body");
    }
    finished(&mut store, result)?;
    returned.ok_or(GuestFailure::NoResponse)??;
    match lock(&failure).take() {
        Some(RespondError::Deadline) => Err(GuestFailure::Limit(LimitHit::Deadline(
            limits.max_execution,
        ))),
        Some(RespondError::TooLarge(limit)) => Err(GuestFailure::OutputTooLarge(limit)),
        // The client went away: nothing to answer, nothing the guest did wrong.
        Some(RespondError::Closed) | None => Ok(()),
        Some(other) => Err(GuestFailure::Setup(other.to_string())),
    }
}

/// What the handler returned: an error code (a failure), or a response whose
/// head goes out now and whose body follows from its stream.
fn respond(
    store: &mut Store<GuestState>,
    value: Value,
    responder: &Slot<Responder>,
    failure: &Slot<RespondError>,
) -> Result<Result<(), GuestFailure>, wasmi::Error> {
    let (disc, payload) = value.into_variant()?;
    let payload =
        payload.ok_or_else(|| wasmi::Error::new("host bug: a result without its payload"))?;
    if disc != 0 {
        return Ok(Err(GuestFailure::ErrorResponse(format!("{payload:?}"))));
    }
    let state = store.data_mut();
    let response = state
        .host
        .resources
        .take::<P3Response>(payload.into_handle()?)?;
    let head = ResponseHead {
        status: response.status,
        content_length: content_length(&response.headers),
        headers: response.headers,
    };
    let mut slot = lock(responder);
    let mut sender = slot
        .take()
        .ok_or_else(|| wasmi::Error::new("host bug: the response was sent twice"))?;
    if let Err(e) = sender.send_head(head) {
        return Ok(Err(GuestFailure::Setup(e.to_string())));
    }
    let sent = match response.contents {
        Contents::Guest {
            stream: Some(stream),
            ..
        } => {
            *slot = Some(sender);
            let sink = ResponderSink {
                responder: responder.clone(),
                failure: failure.clone(),
            };
            state.tasks.attach_sink(stream, Box::new(sink));
            Ok(())
        }
        // A body the host holds: a response the guest got from an outbound
        // request and returns as it is.
        Contents::Bytes(bytes) => sender.send_body(&bytes).and_then(|()| sender.finish()),
        _ => sender.finish(),
    };
    if let Err(e) = sent {
        *lock(failure) = Some(e);
    }
    Ok(Ok(()))
}

/// The body length a response's `content-length` header declares, if valid.
fn content_length(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.trim().parse().ok())
}

/// Runs an MQTT handler: a Spin MQTT guest's `handle-message`, or a WAGI
/// module with the payload on stdin and `MQTT_*` variables (exit 0 is success).
pub fn run_mqtt(
    engine: &Engine,
    component: &Component,
    message: &MqttMessage,
    limits: &InstanceLimits,
) -> Result<(), GuestFailure> {
    observed(component, |fuel| {
        mqtt(engine, component, message, limits, fuel)
    })
}

fn mqtt(
    engine: &Engine,
    component: &Component,
    message: &MqttMessage,
    limits: &InstanceLimits,
    fuel: &mut Option<u64>,
) -> Result<(), GuestFailure> {
    if component.kind == GuestKind::Wagi {
        let env = [
            ("MQTT_TOPIC", message.topic.to_string()),
            ("MQTT_QOS", message.qos.to_string()),
            ("MQTT_RETAIN", message.retain.to_string()),
            ("MQTT_MESSAGE_ID", message.message_id.to_string()),
        ];
        let invocation = Invocation {
            stdin: message.payload.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            argv: vec![component.id.to_string()],
        };
        return wagi(engine, component, invocation, limits, fuel).map(drop);
    }
    const HANDLE_MESSAGE: Export = Export {
        interface: "",
        function: SPIN_MQTT_EXPORT,
        core_name: SPIN_MQTT_EXPORT,
        params: &[Ty::List(&Ty::U8), Ty::Tuple(&[Ty::String])],
        result: Some(result_ty!(_, Ty::Variant(&[Some(Ty::String)]))),
    };
    let mut store = spin_store(engine, component, limits)?;
    let mut live = start(engine, &mut store, component)?;
    let args = [
        Value::Bytes(message.payload.clone()),
        Value::Tuple(vec![Value::string(message.topic.as_ref())]),
    ];
    let outcome = live.call(&mut store, &HANDLE_MESSAGE, &args);
    *fuel = flint_engine::fuel_used(&store);
    if let Some(hit) = store.data_mut().take_limit_hit() {
        return Err(GuestFailure::Limit(hit));
    }
    match outcome {
        Ok(Some(Value::Variant(0, _))) => Ok(()),
        Ok(Some(Value::Variant(_, Some(error)))) => {
            let message = match *error {
                Value::Variant(_, Some(text)) => match *text {
                    Value::String(text) => text,
                    other => format!("{other:?}"),
                },
                other => format!("{other:?}"),
            };
            Err(GuestFailure::Handler(message))
        }
        Ok(other) => Err(GuestFailure::Handler(format!(
            "unexpected result {other:?}"
        ))),
        Err(e) => finished(&mut store, Err(e)),
    }
}

/// Runs a Redis handler: `fermyon:spin/inbound-redis#handle-message` of a
/// Spin guest, or a WAGI module with the payload on stdin and the channel
/// in `REDIS_CHANNEL` (exit 0 is success).
pub fn run_redis(
    engine: &Engine,
    component: &Component,
    message: &RedisMessage,
    limits: &InstanceLimits,
) -> Result<(), GuestFailure> {
    observed(component, |fuel| {
        redis(engine, component, message, limits, fuel)
    })
}

/// `handle-message: func(message: payload) -> result<_, error>`, where
/// `error` is `redis-types`' enum `{ success, error }`: one export per name
/// a guest may give it.
const REDIS_HANDLE_MESSAGE: [Export; 2] = {
    const fn export(interface: &'static str, core_name: &'static str) -> Export {
        Export {
            interface,
            function: "handle-message",
            core_name,
            params: &[Ty::List(&Ty::U8)],
            result: Some(result_ty!(_, Ty::Variant(&[None, None]))),
        }
    }
    [
        export(SPIN_REDIS_INTERFACES[0], SPIN_REDIS_EXPORTS[0]),
        export(SPIN_REDIS_INTERFACES[1], SPIN_REDIS_EXPORTS[1]),
    ]
};

fn redis(
    engine: &Engine,
    component: &Component,
    message: &RedisMessage,
    limits: &InstanceLimits,
    fuel: &mut Option<u64>,
) -> Result<(), GuestFailure> {
    if component.kind == GuestKind::Wagi {
        let invocation = Invocation {
            stdin: message.payload.clone(),
            env: vec![("REDIS_CHANNEL".to_owned(), message.channel.to_string())],
            argv: vec![component.id.to_string()],
        };
        return wagi(engine, component, invocation, limits, fuel).map(drop);
    }
    // Loading found one of the names; the first is what both SDKs export.
    let export = REDIS_HANDLE_MESSAGE
        .iter()
        .find(|e| match &component.code {
            Code::Module(module) => module.get_export(e.core_name).is_some(),
            Code::Component(image) => image.exports(e.interface, e.function),
        })
        .unwrap_or(&REDIS_HANDLE_MESSAGE[0]);
    let mut store = spin_store(engine, component, limits)?;
    let mut live = start(engine, &mut store, component)?;
    let args = [Value::Bytes(message.payload.clone())];
    let outcome = live.call(&mut store, export, &args);
    *fuel = flint_engine::fuel_used(&store);
    if let Some(hit) = store.data_mut().take_limit_hit() {
        return Err(GuestFailure::Limit(hit));
    }
    match outcome {
        Ok(Some(Value::Variant(0, _))) => Ok(()),
        // Spin's words; the enum carries nothing more.
        Ok(Some(Value::Variant(..))) => Err(GuestFailure::Handler(
            "Redis handler returned an error".into(),
        )),
        Ok(other) => Err(GuestFailure::Handler(format!(
            "unexpected result {other:?}"
        ))),
        Err(e) => finished(&mut store, Err(e)),
    }
}
