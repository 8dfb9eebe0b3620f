//! Outbound Redis with the Spin SDK (`fermyon:spin/redis@2.0.0`), against
//! the server named by the `redis_address` variable (or `?address=`):
//! `GET /ops/<prefix>` runs every operation on keys under `<prefix>` and
//! answers one line per result; `POST /publish/<channel>` publishes the body;
//! `GET /get/<key>` answers the value; `GET /open` only connects.

use spin_sdk::http::{Request, Response};
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use spin_sdk::{http_component, variables};

#[http_component]
fn handle(req: Request) -> anyhow::Result<Response> {
    let (path, query) = req.uri().split_once('?').unwrap_or((req.uri(), ""));
    let path = path.split_once("://").map_or(path, |(_, rest)| {
        rest.find('/').map_or("/", |at| &rest[at..])
    });
    let address = match query.strip_prefix("address=") {
        Some(given) => given.to_owned(),
        None => variables::get("redis_address")?,
    };
    let conn = match Connection::open(&address) {
        Ok(c) => c,
        Err(e) => return Ok(Response::new(502, format!("open: {e:?}\n"))),
    };
    let answer = if let Some(prefix) = path.strip_prefix("/ops/") {
        ops(&conn, prefix)
    } else if let Some(channel) = path.strip_prefix("/publish/") {
        // An owned payload: spin-sdk 3 takes `&Vec<u8>`, 5 takes `&[u8]`.
        let payload: Vec<u8> = req.body().into();
        conn.publish(channel, &payload)
            .map(|()| "published\n".to_owned())
            .map_err(|e| format!("publish: {e:?}"))
    } else if let Some(key) = path.strip_prefix("/get/") {
        conn.get(key)
            .map(|v| {
                format!(
                    "{}\n",
                    v.map_or("(nil)".into(), |v| String::from_utf8_lossy(&v).into_owned())
                )
            })
            .map_err(|e| format!("get: {e:?}"))
    } else if path == "/open" {
        Ok("opened\n".to_owned())
    } else {
        return Ok(Response::new(
            404,
            "GET /ops/<prefix>, POST /publish/<channel>, GET /get/<key>\n",
        ));
    };
    Ok(match answer {
        Ok(text) => Response::new(200, text),
        Err(e) => Response::new(500, format!("{e}\n")),
    })
}

/// Every operation, in order, one line each; errors are lines too, so the
/// caller sees what each returned.
fn ops(conn: &Connection, prefix: &str) -> Result<String, String> {
    let key = |k: &str| format!("{prefix}:{k}");
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name}: {value}\n"));
    let value: Vec<u8> = b"value".into();
    line("set", format!("{:?}", conn.set(&key("s"), &value)));
    line(
        "get",
        format!(
            "{:?}",
            conn.get(&key("s")).map(|v| v.map(String::from_utf8))
        ),
    );
    line("get missing", format!("{:?}", conn.get(&key("missing"))));
    line("incr", format!("{:?}", conn.incr(&key("n"))));
    line("incr", format!("{:?}", conn.incr(&key("n"))));
    line("incr string", format!("{:?}", conn.incr(&key("s"))));
    let members = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    line("sadd", format!("{:?}", conn.sadd(&key("set"), &members)));
    line(
        "sadd again",
        format!("{:?}", conn.sadd(&key("set"), &members[..1])),
    );
    line(
        "srem",
        format!("{:?}", conn.srem(&key("set"), &members[1..2])),
    );
    line(
        "smembers",
        format!(
            "{:?}",
            conn.smembers(&key("set")).map(|mut m| {
                m.sort();
                m
            })
        ),
    );
    line(
        "sadd on string",
        format!("{:?}", conn.sadd(&key("s"), &members)),
    );
    line(
        "del",
        format!("{:?}", conn.del(&[key("s"), key("n"), key("missing")])),
    );
    line("get deleted", format!("{:?}", conn.get(&key("s"))));
    let results = |r: Result<Vec<RedisResult>, _>| match r {
        Ok(results) => results
            .iter()
            .map(|r| match r {
                RedisResult::Nil => "nil".to_owned(),
                RedisResult::Status(s) => format!("status {s}"),
                RedisResult::Int64(n) => format!("int {n}"),
                RedisResult::Binary(b) => format!("binary {}", String::from_utf8_lossy(b)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("{e:?}"),
    };
    let bin = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
    line(
        "execute set",
        results(conn.execute("SET", &[bin(&key("x")), bin("41")])),
    );
    line(
        "execute incrby",
        results(conn.execute("INCRBY", &[bin(&key("x")), RedisParameter::Int64(1)])),
    );
    line(
        "execute mget",
        results(conn.execute("MGET", &[bin(&key("x")), bin(&key("missing"))])),
    );
    line(
        "execute unknown",
        results(conn.execute("NOSUCHCOMMAND", &[])),
    );
    line(
        "execute del",
        results(conn.execute("DEL", &[bin(&key("x"))])),
    );
    Ok(out)
}
