//! Just enough Kubernetes protobuf to read the request bodies kubectl's typed
//! clients insist on sending as protobuf: SelfSubjectAccessReview and
//! SelfSubjectRulesReview (`kubectl auth can-i`). Responses stay JSON, which
//! those clients accept. Any other protobuf body is a 415.

use serde_json::{json, Map, Value};

use crate::store::ApiError;

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\x00";

enum Field<'a> {
    /// A varint or fixed-width number (never needed here).
    Scalar,
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// The fields of one message, in order.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => {
                varint(buf, &mut pos)?;
                Field::Scalar
            }
            1 => {
                pos += 8;
                Field::Scalar
            }
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                let b = &buf[pos..end];
                pos = end;
                Field::Bytes(b)
            }
            5 => {
                pos += 4;
                Field::Scalar
            }
            _ => return None,
        };
        out.push((num, f));
    }
    (pos == buf.len()).then_some(out)
}

fn bytes_of<'a>(fs: &[(u64, Field<'a>)], num: u64) -> Option<&'a [u8]> {
    fs.iter().find_map(|(n, f)| match f {
        Field::Bytes(b) if *n == num => Some(*b),
        _ => None,
    })
}

fn string_of(fs: &[(u64, Field<'_>)], num: u64) -> Option<String> {
    bytes_of(fs, num).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Decode string fields `names[i]` = field number i+1 of a message.
fn strings_message(buf: &[u8], names: &[&str]) -> Option<Value> {
    let fs = fields(buf)?;
    let mut m = Map::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(s) = string_of(&fs, i as u64 + 1) {
            m.insert((*name).into(), json!(s));
        }
    }
    Some(Value::Object(m))
}

/// A protobuf-encoded review as the equivalent JSON object.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unsupported = || {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "the lab API server reads protobuf only for SelfSubjectAccessReview and SelfSubjectRulesReview; send application/json",
        )
    };
    let bad = || ApiError::bad_request("malformed protobuf body");
    let envelope = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    let unknown = fields(envelope).ok_or_else(bad)?;
    let type_meta = fields(bytes_of(&unknown, 1).unwrap_or_default()).ok_or_else(bad)?;
    let api_version = string_of(&type_meta, 1).unwrap_or_default();
    let kind = string_of(&type_meta, 2).unwrap_or_default();
    let raw = bytes_of(&unknown, 2).unwrap_or_default();
    let msg = fields(raw).ok_or_else(bad)?;
    let spec = fields(bytes_of(&msg, 2).unwrap_or_default()).ok_or_else(bad)?;
    let spec_json = match kind.as_str() {
        "SelfSubjectAccessReview" => {
            let mut s = Map::new();
            if let Some(ra) = bytes_of(&spec, 1) {
                let names = [
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                s.insert(
                    "resourceAttributes".into(),
                    strings_message(ra, &names).ok_or_else(bad)?,
                );
            }
            if let Some(nra) = bytes_of(&spec, 2) {
                s.insert(
                    "nonResourceAttributes".into(),
                    strings_message(nra, &["path", "verb"]).ok_or_else(bad)?,
                );
            }
            Value::Object(s)
        }
        "SelfSubjectRulesReview" => json!({"namespace": string_of(&spec, 1).unwrap_or_default()}),
        _ => return Err(unsupported()),
    };
    Ok(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {},
        "spec": spec_json,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3) | 2, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
        let mut attrs = ld(1, b"foo");
        attrs.extend(ld(2, b"create"));
        attrs.extend(ld(5, b"pods"));
        attrs.extend(ld(6, b"portforward"));
        let spec = ld(1, &attrs);
        let mut msg = ld(1, b"");
        msg.extend(ld(2, &spec));
        let mut type_meta = ld(1, b"authorization.k8s.io/v1");
        type_meta.extend(ld(2, b"SelfSubjectAccessReview"));
        let mut unknown = ld(1, &type_meta);
        unknown.extend(ld(2, &msg));
        let mut body = MAGIC.to_vec();
        body.extend(unknown);
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "foo", "verb": "create", "resource": "pods", "subresource": "portforward"})
        );
        assert_eq!(decode(b"not protobuf").unwrap_err().code, 400);
        let mut other = MAGIC.to_vec();
        let tm = ld(2, b"Pod");
        other.extend(ld(1, &tm));
        assert_eq!(decode(&other).unwrap_err().code, 415);
    }
}
