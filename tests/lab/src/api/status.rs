//! Response helpers: JSON bodies, `Status` errors, plain 404s, content
//! negotiation and query strings.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::store::ApiError;

pub const JSON: &str = "application/json";

/// A JSON response.
pub fn json_response(code: u16, body: &Value) -> Response {
    json_response_as(code, body, JSON)
}

/// A JSON response with an explicit Content-Type (negotiated media types).
pub fn json_response_as(code: u16, body: &Value, content_type: &str) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(JSON)),
        )
        .body(Body::from(bytes))
        .expect("valid response")
}

/// A plain-text response.
pub fn text_response(code: u16, text: impl Into<String>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text.into()))
        .expect("valid response")
}

/// What a real API server answers for a path nothing serves (an uninstalled
/// CRD, an unserved version): a plain-text 404, not a Status.
pub fn page_not_found() -> Response {
    text_response(404, "404 page not found\n")
}

/// Status `details` for an error about one object or collection.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub name: Option<String>,
    pub group: String,
    /// The resource plural (Kubernetes puts it in `details.kind`).
    pub kind: Option<String>,
}

/// A failure `Status` object.
pub fn status_value(err: &ApiError, details: &Details) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": err.message,
        "reason": err.reason,
        "code": err.code,
    });
    let mut d = serde_json::Map::new();
    if let Some(name) = &details.name {
        d.insert("name".into(), json!(name));
    }
    if !details.group.is_empty() {
        d.insert("group".into(), json!(details.group));
    }
    if let Some(kind) = &details.kind {
        d.insert("kind".into(), json!(kind));
    }
    if let Some(own) = &err.details {
        status["details"] = own.clone();
    } else if !d.is_empty() && !matches!(err.code, 400 | 401) {
        status["details"] = Value::Object(d);
    }
    status
}

/// A failure `Status` response.
pub fn status_response(err: &ApiError, details: &Details) -> Response {
    json_response(err.code, &status_value(err, details))
}

/// A failure `Status` response with no details.
pub fn error_response(err: &ApiError) -> Response {
    status_response(err, &Details::default())
}

/// One media range of an Accept header: type and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl MediaRange {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// The media ranges of the Accept header, in order.
pub fn accept_ranges(headers: &HeaderMap) -> Vec<MediaRange> {
    let mut out = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(s) = value.to_str() else { continue };
        for part in s.split(',') {
            let mut pieces = part.split(';').map(str::trim);
            let mime = pieces.next().unwrap_or_default().to_ascii_lowercase();
            if mime.is_empty() {
                continue;
            }
            let params = pieces
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect();
            out.push(MediaRange { mime, params });
        }
    }
    out
}

/// Which Table version the client asked for (`as=Table;g=meta.k8s.io;v=v1`),
/// if it asked for one before plain JSON.
pub fn wants_table(headers: &HeaderMap) -> Option<&'static str> {
    for r in accept_ranges(headers) {
        if r.param("as").is_some() {
            if r.mime == JSON
                && r.param("as") == Some("Table")
                && r.param("g") == Some("meta.k8s.io")
            {
                match r.param("v") {
                    Some("v1") => return Some("v1"),
                    Some("v1beta1") => return Some("v1beta1"),
                    _ => {}
                }
            }
            continue;
        }
        if r.mime == JSON || r.mime == "*/*" || r.mime == "application/*" {
            return None;
        }
    }
    None
}

/// Query string → map (last value wins), percent- and `+`-decoded.
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(url_decode(k), url_decode(v));
    }
    out
}

pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a boolean query parameter is set (`true`, `1`).
pub fn query_flag(q: &HashMap<String, String>, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1" | "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = parse_query(Some(
            "labelSelector=app%3Dx%2Cversion+in+%28v1%29&limit=5&x",
        ));
        assert_eq!(q["labelSelector"], "app=x,version in (v1)");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["x"], "");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%2"), "%2");
    }

    #[test]
    fn negotiates_tables() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            ),
        );
        assert_eq!(wants_table(&h), Some("v1"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert_eq!(wants_table(&h), None);
    }

    #[test]
    fn status_shape() {
        let err = ApiError::not_found("pods", "x");
        let v = status_value(
            &err,
            &Details {
                name: Some("x".into()),
                group: String::new(),
                kind: Some("pods".into()),
            },
        );
        assert_eq!(
            v,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"pods \"x\" not found","reason":"NotFound",
                "details":{"name":"x","kind":"pods"},"code":404})
        );
    }
}
