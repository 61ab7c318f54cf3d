//! Every request the lab's API server answers: who asked (the identity the
//! request authenticated as), what (verb, path, query), and the answer's
//! status — like a Kubernetes audit log at level `Metadata`, so tests can
//! prove what a tool does and does not do to a cluster.
//!
//! Identity, as a Kubernetes API server would establish it with the lab's
//! authenticators: a valid bearer token (`--token`) authenticates as the
//! token's user (`ApiOptions::token_user`, default `lab`, the kubeconfig's
//! user name); a request without credentials, when no token is required, is
//! `system:anonymous`; a rejected token has no user. `Impersonate-User`
//! (`kubectl --as`) is recorded as `impersonated_user`, as audit logs do.
//!
//! The log keeps the newest [`MAX_RECORDS`] in memory (older ones are
//! counted as dropped) and, when given a file, appends one JSON object per
//! line to it.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Records kept in memory.
pub const MAX_RECORDS: usize = 50_000;

/// The user of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// RFC 3339 time the request arrived.
    pub time: String,
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection` for resources (`create` for a
    /// port-forward), the lowercase HTTP method for other paths.
    pub verb: String,
    pub method: String,
    pub path: String,
    /// The raw query string (`""` when none).
    pub query: String,
    /// The authenticated user; None when authentication failed.
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<String>,
    pub user_agent: String,
    /// The resource (`pods`, `pods/log`, …) when the path names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// HTTP status of the answer.
    pub code: u16,
}

impl RequestRecord {
    /// Does this request change anything (a write verb)?
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) && self.resource.as_deref() != Some("pods/portforward")
            && !self
                .resource
                .as_deref()
                .is_some_and(|r| r.starts_with("selfsubject"))
    }
}

/// The lab API's request log.
#[derive(Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
    file: Option<Mutex<std::fs::File>>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    records: VecDeque<RequestRecord>,
    dropped: u64,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("file", &self.file.is_some())
            .finish()
    }
}

impl RequestLog {
    /// An in-memory log, also appending JSON lines to `file` if given.
    pub fn new(file: Option<&Path>) -> std::io::Result<RequestLog> {
        let file = match file {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Some(Mutex::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)?,
                ))
            }
            None => None,
        };
        Ok(RequestLog {
            inner: Mutex::new(Inner::default()),
            file,
        })
    }

    /// Store a record (its `seq` is assigned here) and append it to the file.
    pub fn record(&self, mut r: RequestRecord) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.next_seq += 1;
        r.seq = inner.next_seq;
        if let Some(f) = &self.file {
            if let (Ok(mut f), Ok(line)) = (f.lock(), serde_json::to_string(&r)) {
                // A full disk must not take the API down; the in-memory log stays.
                let _ = writeln!(f, "{line}");
            }
        }
        if inner.records.len() >= MAX_RECORDS {
            inner.records.pop_front();
            inner.dropped += 1;
        }
        inner.records.push_back(r);
    }

    /// The records kept, oldest first.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.inner
            .lock()
            .map(|i| i.records.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records dropped from memory because more than [`MAX_RECORDS`] arrived.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().map(|i| i.dropped).unwrap_or(0)
    }
}

/// The user a request authenticates as (see the module docs).
pub fn identity(
    authorization: Option<&str>,
    required_token: Option<&str>,
    token_user: &str,
) -> Option<String> {
    let bearer = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (bearer, required_token) {
        (Some(t), Some(want)) if t == want => Some(token_user.to_string()),
        (_, Some(_)) => None,
        // No token authenticator: credentials are not looked at.
        (_, None) => Some(ANONYMOUS.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(verb: &str, resource: Option<&str>) -> RequestRecord {
        RequestRecord {
            seq: 0,
            time: "t".into(),
            verb: verb.into(),
            method: "GET".into(),
            path: "/api/v1/pods".into(),
            query: String::new(),
            user: Some(ANONYMOUS.into()),
            impersonated_user: None,
            user_agent: "kubectl".into(),
            resource: resource.map(str::to_string),
            namespace: None,
            name: None,
            code: 200,
        }
    }

    #[test]
    fn identities() {
        assert_eq!(identity(None, None, "lab").as_deref(), Some(ANONYMOUS));
        assert_eq!(
            identity(Some("Bearer s3cret"), Some("s3cret"), "lab").as_deref(),
            Some("lab")
        );
        assert_eq!(identity(Some("Bearer nope"), Some("s3cret"), "lab"), None);
        assert_eq!(identity(None, Some("s3cret"), "lab"), None);
        // Without a token authenticator the lab does not look at credentials.
        assert_eq!(
            identity(Some("Bearer x"), None, "lab").as_deref(),
            Some(ANONYMOUS)
        );
    }

    #[test]
    fn records_get_sequence_numbers_and_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/requests.jsonl");
        let log = RequestLog::new(Some(&path)).unwrap();
        log.record(rec("list", Some("pods")));
        log.record(rec("create", Some("pods/portforward")));
        log.record(rec("patch", Some("destinationrules")));
        let all = log.records();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(
            all.iter().map(RequestRecord::is_write).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Vec<RequestRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, all);
        assert_eq!(log.dropped(), 0);
    }
}
