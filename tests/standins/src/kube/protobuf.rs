//! The protobuf encoding client-go uses for built-in kinds
//! (`application/vnd.kubernetes.protobuf`; `kubectl create configmap` sends
//! it): the `k8s\0` magic, a `runtime.Unknown` envelope, and inside it a
//! `ConfigMap` (or `DeleteOptions`) message, decoded into the JSON the
//! rest of the stand-in works with. Answers stay JSON, which such clients
//! also accept.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// The media type, as clients send it.
pub(super) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width values: no field this stand-in reads has one.
    Fixed,
}

/// The fields of one message, in order (`Err` on a truncated or malformed one).
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    fn varint(buf: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    let mut out = vec![];
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut buf)?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                buf = buf.get(n..).ok_or("truncated fixed-width field")?;
                Field::Fixed
            }
            2 => {
                let n = usize::try_from(varint(&mut buf)?).map_err(|_| "length overflows")?;
                let (bytes, rest) = buf
                    .split_at_checked(n)
                    .ok_or("truncated length-delimited field")?;
                buf = rest;
                Field::Bytes(bytes)
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// A map entry message: `(key, value)`.
fn entry(b: &[u8]) -> Result<(String, &[u8]), String> {
    let (mut k, mut v) = (String::new(), &b[..0]);
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = text(x)?,
            (2, Field::Bytes(x)) => v = x,
            _ => {}
        }
    }
    Ok((k, v))
}

/// `metav1.Time`: RFC 3339 seconds, or `None` for the zero time.
fn time(b: &[u8]) -> Result<Option<String>, String> {
    let mut secs = 0i64;
    for (n, f) in fields(b)? {
        if let (1, Field::Varint(v)) = (n, f) {
            secs = v as i64;
        }
    }
    if secs == 0 {
        return Ok(None);
    }
    let t = jiff::Timestamp::from_second(secs).map_err(|e| e.to_string())?;
    Ok(Some(t.to_string()))
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    let strings = [
        (1, "name"),
        (2, "generateName"),
        (3, "namespace"),
        (4, "selfLink"),
        (5, "uid"),
        (6, "resourceVersion"),
    ];
    for (n, f) in fields(b)? {
        match (n, f) {
            (n, Field::Bytes(x)) if n <= 6 => {
                let name = strings[(n - 1) as usize].1;
                m.insert(name.into(), json!(text(x)?));
            }
            (7, Field::Varint(v)) => {
                m.insert("generation".into(), json!(v as i64));
            }
            (8, Field::Bytes(x)) => {
                if let Some(t) = time(x)? {
                    m.insert("creationTimestamp".into(), json!(t));
                }
            }
            (n @ (11 | 12), Field::Bytes(x)) => {
                let (k, v) = entry(x)?;
                let slot = if n == 11 { "labels" } else { "annotations" };
                m.entry(slot).or_insert_with(|| json!({}))[k] = json!(text(v)?);
            }
            (14, Field::Bytes(x)) => {
                let list = m.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(json!(text(x)?));
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// The envelope's `(apiVersion, kind, raw)`.
fn envelope(body: &[u8]) -> Result<(String, String, &[u8]), String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("the body does not start with the protobuf magic number")?;
    let (mut api, mut kind, mut raw) = (String::new(), String::new(), &inner[..0]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(x)) => api = text(x)?,
                        (2, Field::Bytes(x)) => kind = text(x)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    Ok((api, kind, raw))
}

/// A protobuf `ConfigMap` (or `DeleteOptions`) body as the JSON object it
/// stands for.
pub(super) fn to_json(body: &[u8]) -> Result<Value, String> {
    let (api, kind, raw) = envelope(body)?;
    let mut obj = json!({ "apiVersion": api, "kind": kind });
    match kind.as_str() {
        "ConfigMap" => {
            for (n, f) in fields(raw)? {
                match (n, f) {
                    (1, Field::Bytes(x)) => obj["metadata"] = object_meta(x)?,
                    (n @ (2 | 3), Field::Bytes(x)) => {
                        let (k, v) = entry(x)?;
                        let (slot, value) = if n == 2 {
                            ("data", json!(text(v)?))
                        } else {
                            ("binaryData", json!(STANDARD.encode(v)))
                        };
                        if obj[slot].is_null() {
                            obj[slot] = json!({});
                        }
                        obj[slot][k] = value;
                    }
                    (4, Field::Varint(v)) => obj["immutable"] = json!(v != 0),
                    _ => {}
                }
            }
        }
        "DeleteOptions" => {
            for (n, f) in fields(raw)? {
                match (n, f) {
                    (2, Field::Bytes(pre)) => {
                        for (n, f) in fields(pre)? {
                            match (n, f) {
                                (1, Field::Bytes(x)) => {
                                    obj["preconditions"]["uid"] = json!(text(x)?)
                                }
                                (2, Field::Bytes(x)) => {
                                    obj["preconditions"]["resourceVersion"] = json!(text(x)?)
                                }
                                _ => {}
                            }
                        }
                    }
                    (4, Field::Bytes(x)) => obj["propagationPolicy"] = json!(text(x)?),
                    _ => {}
                }
            }
        }
        other => return Err(format!("no protobuf decoding for kind {other:?}")),
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a length-delimited field.
    fn ld(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8];
        let mut len = b.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn a_configmap_in_its_envelope_decodes_to_its_json() {
        let entry = |k: &str, v: &[u8]| [ld(1, k.as_bytes()), ld(2, v)].concat();
        let meta = [
            ld(1, b"spool"),
            ld(3, b"hpa-tier"),
            ld(8, &[]),
            ld(11, &entry("app", b"hpa-tier")),
        ]
        .concat();
        let long = "v".repeat(300);
        let cm = [
            ld(1, &meta),
            ld(2, &entry("a", b"1")),
            ld(2, &entry("b", long.as_bytes())),
            ld(3, &entry("bin", &[0, 255])),
            vec![4 << 3, 1],
        ]
        .concat();
        let type_meta = [ld(1, b"v1"), ld(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), ld(1, &type_meta), ld(2, &cm)].concat();
        assert_eq!(
            to_json(&body).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "spool", "namespace": "hpa-tier", "labels": { "app": "hpa-tier" } },
                "data": { "a": "1", "b": long },
                "binaryData": { "bin": "AP8=" },
                "immutable": true,
            })
        );
        assert!(to_json(&body[..body.len() - 3]).is_err());
        assert!(to_json(b"{\"kind\":\"ConfigMap\"}").is_err());
    }
}
