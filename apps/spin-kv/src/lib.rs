//! Key-value with the Spin SDK: a counter, and every store operation over HTTP.
//!
//! - `GET /counter`: increments `counter` in the default store, returns the new value.
//! - `GET /kv/<key>`: the value (404 if absent); `HEAD`: exists (200/404);
//!   `PUT`/`POST`: set to the body; `DELETE`: delete. `GET /kv`: all keys, one per line.
//! - `?store=<label>` opens another store; store errors answer 500 with the error.

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::{Error, Store};

#[http_component]
fn handle(req: Request) -> Response {
    match serve(&req) {
        Ok(response) => response,
        Err(e) => Response::new(500, format!("store error: {e:?}\n")),
    }
}

fn serve(req: &Request) -> Result<Response, Error> {
    let label = req
        .query()
        .split('&')
        .find_map(|p| p.strip_prefix("store="))
        .unwrap_or("default");
    let store = Store::open(label)?;
    let path = req.path();
    if path == "/counter" {
        let count = store
            .get("counter")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        store.set("counter", count.to_string().as_bytes())?;
        return Ok(Response::new(200, format!("{count}\n")));
    }
    if path == "/kv" || path == "/kv/" {
        let mut keys = store.get_keys()?;
        keys.sort();
        let listing: String = keys.iter().map(|k| format!("{k}\n")).collect();
        return Ok(Response::new(200, listing));
    }
    let Some(key) = path.strip_prefix("/kv/") else {
        return Ok(Response::new(404, "no such route\n"));
    };
    Ok(match req.method() {
        Method::Get => match store.get(key)? {
            Some(value) => Response::new(200, value),
            None => Response::new(404, "no such key\n"),
        },
        Method::Head => Response::new(if store.exists(key)? { 200 } else { 404 }, ()),
        Method::Put | Method::Post => {
            store.set(key, req.body())?;
            Response::new(200, "stored\n")
        }
        Method::Delete => {
            store.delete(key)?;
            Response::new(200, "deleted\n")
        }
        _ => Response::new(405, "method not allowed\n"),
    })
}
