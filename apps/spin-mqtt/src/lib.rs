//! Outbound MQTT with the Spin SDK: `POST /publish/<topic>` publishes the body
//! at QoS 1 to the broker named by the `mqtt_address` variable.

use spin_sdk::http::{Request, Response};
use spin_sdk::mqtt::{Connection, Qos};
use spin_sdk::{http_component, variables};

#[http_component]
fn handle(req: Request) -> anyhow::Result<Response> {
    let Some(topic) = req.path().strip_prefix("/publish/") else {
        return Ok(Response::new(404, "POST /publish/<topic>\n"));
    };
    let address = variables::get("mqtt_address")?;
    let connection = match Connection::open(&address, "", "", 30) {
        Ok(c) => c,
        Err(e) => return Ok(Response::new(502, format!("connect failed: {e:?}\n"))),
    };
    match connection.publish(topic, &req.body().to_vec(), Qos::AtLeastOnce) {
        Ok(()) => Ok(Response::new(200, "published\n")),
        Err(e) => Ok(Response::new(502, format!("publish failed: {e:?}\n"))),
    }
}
