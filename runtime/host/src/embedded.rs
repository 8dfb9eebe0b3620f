//! The device seam (cargo feature `embedded-svc`): `embedded-svc`'s
//! vocabulary for the services a board without Linux brings itself. Any
//! [`RawStorage`] (an ESP-IDF build passes `EspNvs`) backs a key-value store;
//! HTTP methods and MQTT QoS convert to and from Flint's. The Linux build
//! never goes through here.

use std::collections::BTreeSet;
use std::sync::Mutex;

use embedded_svc::http::Method;
use embedded_svc::mqtt::client::QoS;
use embedded_svc::storage::RawStorage;

use crate::kv_store::{KvBackend, KvError};
use crate::outbox::Qos;

/// Where [`RawStorageStore`] keeps its list of keys, since `RawStorage`
/// cannot enumerate them. Short enough for NVS (15 bytes at most).
pub const KEY_INDEX: &str = "flint.keys";

/// A key-value store on a [`RawStorage`]. Keys are the storage's names (its
/// own rules apply: NVS allows 15 bytes); their list lives under
/// [`KEY_INDEX`], written after each value, so a crash between the two can
/// leave a stored key unlisted until it is set again, never a listed key
/// that reads wrongly.
pub struct RawStorageStore<S> {
    inner: Mutex<Inner<S>>,
}

struct Inner<S> {
    storage: S,
    keys: BTreeSet<String>,
}

fn storage_error(what: &str, key: &str, e: impl std::fmt::Debug) -> KvError {
    KvError(format!("{what} `{key}`: {e:?}"))
}

impl<S: RawStorage> RawStorageStore<S> {
    /// Opens a store on `storage`, reading its key list.
    pub fn new(storage: S) -> Result<Self, KvError> {
        let keys = match read(&storage, KEY_INDEX)? {
            Some(index) => decode_keys(&index)
                .ok_or_else(|| KvError(format!("the key list `{KEY_INDEX}` is corrupt")))?,
            None => BTreeSet::new(),
        };
        Ok(Self {
            inner: Mutex::new(Inner { storage, keys }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn read<S: RawStorage>(storage: &S, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    let Some(len) = storage
        .len(key)
        .map_err(|e| storage_error("reading", key, e))?
    else {
        return Ok(None);
    };
    let mut buf = vec![0; len];
    let value = storage
        .get_raw(key, &mut buf)
        .map_err(|e| storage_error("reading", key, e))?;
    Ok(value.map(<[u8]>::to_vec))
}

fn reserved(key: &str) -> Result<(), KvError> {
    match key == KEY_INDEX {
        true => Err(KvError(format!("key `{KEY_INDEX}` is reserved by Flint"))),
        false => Ok(()),
    }
}

impl<S: RawStorage> Inner<S> {
    /// Writes one value; `true` if its key is new to the list (which the
    /// caller then writes, after the value).
    fn write_value(&mut self, key: &str, value: &[u8]) -> Result<bool, KvError> {
        self.storage
            .set_raw(key, value)
            .map_err(|e| storage_error("writing", key, e))?;
        Ok(self.keys.insert(key.to_owned()))
    }

    /// Removes one value; `true` if its key was listed.
    fn remove_value(&mut self, key: &str) -> Result<bool, KvError> {
        self.storage
            .remove(key)
            .map_err(|e| storage_error("deleting", key, e))?;
        Ok(self.keys.remove(key))
    }

    fn write_index(&mut self) -> Result<(), KvError> {
        let index = encode_keys(&self.keys);
        self.storage
            .set_raw(KEY_INDEX, &index)
            .map_err(|e| storage_error("writing", KEY_INDEX, e))?;
        Ok(())
    }
}

impl<S: RawStorage + Send> KvBackend for RawStorageStore<S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        reserved(key)?;
        read(&self.lock().storage, key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        reserved(key)?;
        let mut inner = self.lock();
        if inner.write_value(key, value)? {
            inner.write_index()?;
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        reserved(key)?;
        let mut inner = self.lock();
        if inner.remove_value(key)? {
            inner.write_index()?;
        }
        Ok(())
    }

    /// Atomic because every change to the store holds its lock.
    fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        reserved(key)?;
        let mut inner = self.lock();
        if read(&inner.storage, key)?.as_deref() != current {
            return Ok(false);
        }
        if inner.write_value(key, new)? {
            inner.write_index()?;
        }
        Ok(true)
    }

    /// Under one lock, so that no other change interleaves; no retries.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        reserved(key)?;
        let mut inner = self.lock();
        let current = read(&inner.storage, key)?;
        let next = crate::kv_store::add_to_counter(key, current.as_deref(), delta)?;
        if inner.write_value(key, &next.to_le_bytes())? {
            inner.write_index()?;
        }
        Ok(next)
    }

    /// The values, then the key list once (if any key is new).
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        entries.iter().try_for_each(|(key, _)| reserved(key))?;
        let mut inner = self.lock();
        let mut listed = false;
        let mut written = Ok(());
        for (key, value) in entries {
            match inner.write_value(key, value) {
                Ok(new) => listed |= new,
                Err(e) => {
                    written = Err(e);
                    break;
                }
            }
        }
        // Even after a failure, list what was written.
        if listed {
            inner.write_index()?;
        }
        written
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        keys.iter().try_for_each(|key| reserved(key))?;
        let mut inner = self.lock();
        let mut unlisted = false;
        let mut removed = Ok(());
        for key in keys {
            match inner.remove_value(key) {
                Ok(listed) => unlisted |= listed,
                Err(e) => {
                    removed = Err(e);
                    break;
                }
            }
        }
        if unlisted {
            inner.write_index()?;
        }
        removed
    }

    fn exists(&self, key: &str) -> Result<bool, KvError> {
        reserved(key)?;
        self.lock()
            .storage
            .contains(key)
            .map_err(|e| storage_error("reading", key, e))
    }

    fn keys(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), KvError> {
        for key in &self.lock().keys {
            if !visit(key.as_bytes()) {
                break;
            }
        }
        Ok(())
    }
}

/// Each key as a big-endian u16 length and its bytes.
fn encode_keys(keys: &BTreeSet<String>) -> Vec<u8> {
    let mut out = Vec::new();
    for key in keys {
        // Keys longer than u16::MAX cannot be storage names on any device.
        let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&key.as_bytes()[..usize::from(len)]);
    }
    out
}

fn decode_keys(mut bytes: &[u8]) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    while !bytes.is_empty() {
        let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
        let key = bytes.get(2..2 + len)?;
        keys.insert(String::from_utf8(key.to_vec()).ok()?);
        bytes = &bytes[2 + len..];
    }
    Some(keys)
}

impl From<Qos> for QoS {
    fn from(qos: Qos) -> Self {
        match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        }
    }
}

impl From<QoS> for Qos {
    fn from(qos: QoS) -> Self {
        match qos {
            QoS::AtMostOnce => Qos::AtMostOnce,
            QoS::AtLeastOnce => Qos::AtLeastOnce,
            QoS::ExactlyOnce => Qos::ExactlyOnce,
        }
    }
}

/// A request method as Flint carries it: the method token (`GET`, `PATCH`,
/// or an extension method a guest or client sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpMethod(pub String);

/// The methods `embedded-svc` names, with their tokens.
const METHODS: &[(Method, &str)] = &[
    (Method::Delete, "DELETE"),
    (Method::Get, "GET"),
    (Method::Head, "HEAD"),
    (Method::Post, "POST"),
    (Method::Put, "PUT"),
    (Method::Connect, "CONNECT"),
    (Method::Options, "OPTIONS"),
    (Method::Trace, "TRACE"),
    (Method::Copy, "COPY"),
    (Method::Lock, "LOCK"),
    (Method::MkCol, "MKCOL"),
    (Method::Move, "MOVE"),
    (Method::Propfind, "PROPFIND"),
    (Method::Proppatch, "PROPPATCH"),
    (Method::Search, "SEARCH"),
    (Method::Unlock, "UNLOCK"),
    (Method::Bind, "BIND"),
    (Method::Rebind, "REBIND"),
    (Method::Unbind, "UNBIND"),
    (Method::Acl, "ACL"),
    (Method::Report, "REPORT"),
    (Method::MkActivity, "MKACTIVITY"),
    (Method::Checkout, "CHECKOUT"),
    (Method::Merge, "MERGE"),
    (Method::MSearch, "M-SEARCH"),
    (Method::Notify, "NOTIFY"),
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Unsubscribe, "UNSUBSCRIBE"),
    (Method::Patch, "PATCH"),
    (Method::Purge, "PURGE"),
    (Method::MkCalendar, "MKCALENDAR"),
    (Method::Link, "LINK"),
    (Method::Unlink, "UNLINK"),
];

impl From<Method> for HttpMethod {
    fn from(method: Method) -> Self {
        let token = METHODS
            .iter()
            .find(|(m, _)| *m == method)
            .map_or("GET", |(_, token)| token);
        HttpMethod(token.to_owned())
    }
}

/// A method `embedded-svc` has no name for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("HTTP method `{0}` has no embedded-svc equivalent")]
pub struct UnknownMethod(pub String);

impl TryFrom<&HttpMethod> for Method {
    type Error = UnknownMethod;

    fn try_from(method: &HttpMethod) -> Result<Self, UnknownMethod> {
        METHODS
            .iter()
            .find(|(_, token)| *token == method.0)
            .map(|(m, _)| *m)
            .ok_or_else(|| UnknownMethod(method.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_svc_method_round_trips() {
        for (method, token) in METHODS {
            let flint = HttpMethod::from(*method);
            assert_eq!(flint.0, *token);
            assert_eq!(Method::try_from(&flint), Ok(*method));
        }
        let extension = HttpMethod("FROBNICATE".into());
        assert!(Method::try_from(&extension).is_err());
    }

    #[test]
    fn qos_round_trips() {
        for qos in [Qos::AtMostOnce, Qos::AtLeastOnce, Qos::ExactlyOnce] {
            assert_eq!(Qos::from(QoS::from(qos)), qos);
        }
    }

    #[test]
    fn key_lists_decode_what_they_encode_and_refuse_garbage() {
        let keys: BTreeSet<String> = ["a", "sensor/1", ""].map(String::from).into();
        assert_eq!(decode_keys(&encode_keys(&keys)), Some(keys));
        assert_eq!(decode_keys(&[0, 5, b'a']), None);
        assert_eq!(decode_keys(&[0]), None);
    }
}
