//! What an operator sees: the status document (`/.well-known/flint/status`,
//! JSON, or a human summary for `flint status`) and every metric family
//! beyond the HTTP trigger's own, composed here because only the binary sees
//! every layer: the engine's memory budget, the components' invocations, the
//! host's stores, outbound calls and outbox, the MQTT and Redis triggers,
//! the process.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flint_engine::limiter::MemoryBudget;
use flint_engine::metrics::MetricsWriter;
use flint_executor::Component;
use flint_host::capabilities::{Capabilities, Services};
use flint_host::outbox::Outbox;
use flint_trigger_http::metrics::requests_total;
use flint_trigger_http::service::{HttpApp, Operator, StatusFormat};
use flint_trigger_mqtt::status::MqttStatus;
use flint_trigger_redis::status::RedisStatus;

/// The build target, set by build.rs.
const TARGET: &str = env!("FLINT_TARGET");

/// Request counts sampled once a second, for the recent request rate.
const RATE_WINDOW: usize = 60;

/// Everything the status document and the metrics read, besides the HTTP app.
pub struct Observed {
    pub app_name: String,
    pub app_version: String,
    pub board: String,
    pub started: Instant,
    pub memory: Option<Arc<MemoryBudget>>,
    pub components: Vec<Arc<Component>>,
    pub services: Arc<Services>,
    pub mqtt: Option<Arc<MqttStatus>>,
    /// The Redis trigger, when the app has one (set after [`Observed::new`]).
    pub redis: Option<Arc<RedisStatus>>,
    pub outbox: Option<Arc<Outbox>>,
    /// (when, requests so far), newest last.
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Observed {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app_name: String,
        app_version: String,
        board: String,
        memory: Option<Arc<MemoryBudget>>,
        components: Vec<Arc<Component>>,
        services: Arc<Services>,
        mqtt: Option<Arc<MqttStatus>>,
        outbox: Option<Arc<Outbox>>,
    ) -> Self {
        let started = Instant::now();
        Self {
            app_name,
            app_version,
            board,
            started,
            memory,
            components,
            services,
            mqtt,
            redis: None,
            outbox,
            samples: Mutex::new(VecDeque::from([(started, 0)])),
        }
    }

    /// Samples the request count once a second, for as long as the process runs.
    pub fn sample_forever(self: Arc<Self>, http: Arc<HttpApp>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("flint-status".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let router = http.router.current();
                    let total = requests_total(&http.labelled_routes(&router));
                    let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                    samples.push_back((Instant::now(), total));
                    if samples.len() > RATE_WINDOW {
                        samples.pop_front();
                    }
                }
            })
            .map(drop)
    }

    /// Requests per second over the sampled window (up to a minute).
    fn request_rate(&self, total: u64) -> f64 {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        match samples.front() {
            Some(&(at, then)) if at.elapsed() >= Duration::from_millis(500) => {
                total.saturating_sub(then) as f64 / at.elapsed().as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn capabilities(&self) -> Vec<&Capabilities> {
        self.components.iter().map(|c| &*c.caps).collect()
    }

    /// The JSON document at `GET /.well-known/flint/status`.
    pub fn json(&self, http: &HttpApp) -> String {
        let router = http.router.current();
        let routes = http.labelled_routes(&router);
        let total = requests_total(&routes);
        let route_list: Vec<String> = router
            .entries()
            .iter()
            .map(|e| {
                format!(
                    "{{\"route\":{},\"component\":{},\"requests\":{}}}",
                    quote(e.pattern.raw()),
                    quote(e.component_label()),
                    e.metrics.total()
                )
            })
            .collect();
        let mut members = vec![
            format!(
                "\"app\":{{\"name\":{},\"version\":{},\"board\":{},\"flint_version\":{},\"target\":{}}}",
                quote(&self.app_name),
                quote(&self.app_version),
                quote(&self.board),
                quote(env!("CARGO_PKG_VERSION")),
                quote(TARGET)
            ),
            format!(
                "\"uptime_seconds\":{:.3}",
                self.started.elapsed().as_secs_f64()
            ),
            format!(
                "\"http\":{{\"requests\":{total},\"requests_per_second\":{:.2},\"connections\":{},\"queued\":{},\"routes\":[{}]}}",
                self.request_rate(total),
                http.metrics.open_connections(),
                http.pool.queued(),
                route_list.join(",")
            ),
        ];
        if let Some(memory) = &self.memory {
            members.push(format!(
                "\"guest_memory\":{{\"used\":{},\"budget\":{},\"instances\":{}}}",
                memory.used(),
                memory.total(),
                memory.instances()
            ));
        }
        if let Some(mqtt) = &self.mqtt {
            members.push(format!("\"mqtt\":{{{}}}", mqtt.json_members(quote)));
        }
        if let Some(redis) = &self.redis {
            members.push(format!("\"redis\":{{{}}}", redis.json_members(quote)));
        }
        if let Some(outbox) = &self.outbox {
            let (depth, bytes) = outbox.depth();
            let budget = outbox.budget();
            members.push(format!(
                "\"outbox\":{{\"depth\":{depth},\"bytes\":{bytes},\"max_messages\":{},\"max_bytes\":{},\"oldest_age_seconds\":{:.3}}}",
                budget.max_messages,
                budget.max_bytes,
                outbox.oldest_age().map_or(0.0, |age| age.as_secs_f64())
            ));
        }
        format!("{{{}}}\n", members.join(","))
    }

    /// The same numbers for a person (`flint status`).
    pub fn text(&self, http: &HttpApp) -> String {
        let router = http.router.current();
        let routes = http.labelled_routes(&router);
        let total = requests_total(&routes);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {} (board {}, flint {}, {TARGET}), up {}",
            self.app_name,
            if self.app_version.is_empty() {
                "-"
            } else {
                &self.app_version
            },
            self.board,
            env!("CARGO_PKG_VERSION"),
            human_duration(self.started.elapsed())
        );
        let _ = writeln!(
            out,
            "requests: {total} ({:.1}/s over the last minute), {} connections open, {} queued",
            self.request_rate(total),
            http.metrics.open_connections(),
            http.pool.queued()
        );
        if let Some(memory) = &self.memory {
            let _ = writeln!(
                out,
                "guest memory: {:.1} of {:.1} MiB, {} instances running",
                memory.used() as f64 / 1048576.0,
                memory.total() as f64 / 1048576.0,
                memory.instances()
            );
        }
        let _ = writeln!(out, "routes:");
        for e in router.entries() {
            let _ = writeln!(
                out,
                "  {:<32} {:<24} {} requests",
                e.pattern.raw(),
                e.component_label(),
                e.metrics.total()
            );
        }
        if let Some(mqtt) = &self.mqtt {
            use std::sync::atomic::Ordering::Relaxed;
            let state = if mqtt.connected.load(Relaxed) {
                "connected"
            } else {
                "disconnected"
            };
            let _ = writeln!(
                out,
                "mqtt: {} {state}, {} reconnects",
                mqtt.broker,
                mqtt.reconnects.load(Relaxed)
            );
            for s in &mqtt.subscriptions {
                let _ = writeln!(
                    out,
                    "  {:<32} {:<24} {} handled, {} failed attempts, {} dead-lettered",
                    s.filter,
                    s.component,
                    s.handled.get(),
                    s.failed_attempts.get(),
                    s.dead_lettered.get()
                );
            }
        }
        if let Some(redis) = &self.redis {
            use std::sync::atomic::Ordering::Relaxed;
            for server in &redis.servers {
                let state = match server.connected.load(Relaxed) {
                    true => "connected",
                    false => "disconnected",
                };
                let _ = writeln!(
                    out,
                    "redis: {} {state}, {} reconnects",
                    server.address,
                    server.reconnects.get()
                );
            }
            for t in &redis.triggers {
                let _ = writeln!(
                    out,
                    "  {:<32} {:<24} {} handled, {} failed",
                    t.channel,
                    t.component,
                    t.handled.get(),
                    t.failed.get()
                );
            }
        }
        if let Some(outbox) = &self.outbox {
            let (depth, bytes) = outbox.depth();
            let age = outbox.oldest_age().map_or("-".to_owned(), human_duration);
            let _ = writeln!(out, "outbox: {depth} messages, {bytes} bytes, oldest {age}");
        }
        out
    }

    /// Every metric family but the HTTP trigger's.
    pub fn write_metrics(&self, w: &mut MetricsWriter) {
        w.gauge(
            "flint_build_info",
            "Flint's version, board profile and build target (value 1).",
        );
        w.value(
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("board", &self.board),
                ("target", TARGET),
            ],
            1,
        );
        w.gauge("flint_app_info", "The app's name and version (value 1).");
        w.value(
            &[("name", &self.app_name), ("version", &self.app_version)],
            1,
        );
        w.gauge(
            "flint_uptime_seconds",
            "Seconds since flint started serving.",
        );
        w.value_f64(&[], self.started.elapsed().as_secs_f64());
        if let Some(rss) = resident_bytes() {
            w.gauge(
                "flint_process_resident_memory_bytes",
                "Resident memory of the flint process.",
            );
            w.value(&[], rss);
        }
        if let Some(memory) = &self.memory {
            w.gauge(
                "flint_guest_memory_bytes",
                "Linear memory all guest instances hold now.",
            );
            w.value(&[], memory.used() as u64);
            w.gauge(
                "flint_guest_memory_budget_bytes",
                "Linear memory all guest instances may hold (guest_memory_budget_bytes).",
            );
            w.value(&[], memory.total() as u64);
            w.gauge("flint_instances", "Guest instances running now.");
            w.value(&[], memory.instances() as u64);
        }
        let components: Vec<&Component> = self.components.iter().map(|c| &**c).collect();
        flint_executor::write_metrics(w, &components);
        flint_host::capabilities::write_outbound_metrics(w, &self.capabilities());
        self.services.kv.write_metrics(w);
        if let Some(mqtt) = &self.mqtt {
            mqtt.write_metrics(w);
        }
        if let Some(redis) = &self.redis {
            redis.write_metrics(w);
        }
        if let Some(outbox) = &self.outbox {
            outbox.write_metrics(w);
        }
    }
}

impl Operator for Observed {
    fn status(&self, app: &HttpApp, format: StatusFormat) -> String {
        match format {
            StatusFormat::Json => self.json(app),
            StatusFormat::Text => self.text(app),
        }
    }

    fn write_metrics(&self, _app: &HttpApp, w: &mut MetricsWriter) {
        Observed::write_metrics(self, w);
    }
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=89 => format!("{s} s"),
        90..=5399 => format!("{} min", s / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// The process's resident set, from /proc (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_for_json() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
