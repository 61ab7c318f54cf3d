//! One collection in progress ([`Run`]): the snapshot being filled, what is
//! known so far, and the two policies every step shares — which failures end
//! the run ([`Run::fatal`]) and how sidecars are read ([`Run::read_sidecars`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::Value;

use super::api::{classify, ApiCallError, Failure, Kind, ReadApi};
use super::budget::Limit;
use super::sidecar::{self, read_sidecar, ProxyJob};
use super::{push_gap, CollectError, CollectOptions, Session};
use crate::snapshot::{AdminScope, Gap, ProxyEvidence, Snapshot, SCHEMA};

/// RFC 3339 UTC time, second precision.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// One collection in progress: the snapshot being filled and what is known.
pub(super) struct Run<'a> {
    pub(super) api: ReadApi,
    pub(super) opts: &'a CollectOptions,
    pub(super) progress: &'a dyn Fn(&str),
    pub(super) snap: Snapshot,
    pub(super) seen: HashSet<(String, String, String, String)>,
    pub(super) url: String,
    pub(super) kinds: Vec<Kind>,
    /// Namespaced Istio kinds forbidden cluster-wide, with the 403 text.
    pub(super) deferred: Vec<(Kind, String)>,
    pub(super) client_namespaces: BTreeSet<String>,
    /// Pods listed per namespace ("" = all namespaces).
    pub(super) pod_lists: HashMap<String, Vec<Value>>,
    /// Reads the diagnosis cannot do without that failed.
    pub(super) missing: Vec<Gap>,
    /// Envoy admin filters for every sidecar read (`None`: read everything).
    pub(super) scope: Option<AdminScope>,
    /// Callers found that are not read proxies (`ResolvedTarget::callers`).
    pub(super) found_callers: Vec<crate::snapshot::FoundCaller>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        session: &Session,
        opts: &'a CollectOptions,
        progress: &'a dyn Fn(&str),
        target: String,
    ) -> Run<'a> {
        Run {
            api: ReadApi::new(session.client.clone(), session.budget),
            opts,
            progress,
            snap: Snapshot {
                schema: SCHEMA.to_string(),
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                taken_at: rfc3339(SystemTime::now()),
                context: opts.context.clone().or_else(|| session.context.clone()),
                target,
                namespace: session.namespace.clone(),
                istio_namespace: opts.istio_namespace.clone(),
                stats_filter: Some(sidecar::STATS_FILTER.clone()),
                ..Snapshot::default()
            },
            seen: HashSet::new(),
            url: session.url.clone(),
            kinds: Vec::new(),
            deferred: Vec::new(),
            client_namespaces: BTreeSet::new(),
            pod_lists: HashMap::new(),
            missing: Vec::new(),
            scope: None,
            found_callers: Vec::new(),
        }
    }

    pub(super) fn say(&self, line: &str) {
        (self.progress)(line);
    }

    pub(super) fn gap(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        push_gap(&mut self.snap.gaps, source, reason);
    }

    /// A gap the diagnosis cannot do without.
    pub(super) fn essential_gap(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        let (source, reason) = (source.into(), reason.into());
        push_gap(&mut self.snap.gaps, source.clone(), reason.clone());
        push_gap(&mut self.missing, source, reason);
    }

    pub(super) fn add_object(&mut self, o: Value) {
        if self.seen.insert(crate::snapshot::object_key(&o)) {
            self.snap.objects.push(o);
        }
    }

    /// A failed call that ends the run — the credentials were refused, the
    /// API stopped answering, the run is out of time — as an error; any
    /// other failure is given back.
    pub(super) fn fatal(
        &self,
        during: &str,
        e: ApiCallError,
    ) -> Result<ApiCallError, CollectError> {
        if e.is_unauthorized() {
            return Err(CollectError::Unauthorized {
                url: self.url.clone(),
                source: e,
            });
        }
        if let ApiCallError::Timeout(Limit::Run(d)) = e {
            return Err(CollectError::OutOfTime {
                during: during.to_string(),
                limit: crate::cli::duration::display(d),
            });
        }
        if e.is_unreachable() {
            let flag = match &e {
                ApiCallError::Timeout(l) => Some(l.flag()),
                _ => None,
            };
            return Err(CollectError::ApiLost {
                url: self.url.clone(),
                during: during.to_string(),
                reason: e.to_string(),
                flag,
            });
        }
        Ok(e)
    }

    /// A failed call the run can survive as a gap, classified; see [`Run::fatal`].
    pub(super) fn survivable(
        &self,
        during: &str,
        e: ApiCallError,
    ) -> Result<Failure, CollectError> {
        Ok(classify(&self.fatal(during, e)?))
    }

    /// Reads sidecars, `--concurrency` at a time, all within the run's
    /// deadline. If the API went away meanwhile the run ends (exit 3).
    pub(super) async fn read_sidecars(
        &self,
        jobs: Vec<ProxyJob>,
    ) -> Result<Vec<ProxyEvidence>, CollectError> {
        let client = self.api.client().clone();
        let budget = *self.api.budget();
        let (timeout, lines, progress) = (
            self.opts.proxy_timeout,
            self.opts.log_tail_lines,
            self.progress,
        );
        let scope = self.scope.as_ref();
        let reads: Vec<sidecar::SidecarRead> = futures::stream::iter(jobs)
            .map(|job| {
                let client = client.clone();
                async move {
                    read_sidecar(&client, &job, scope, &budget, timeout, lines, progress).await
                }
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await;
        if let Some((during, reason)) = reads.iter().find_map(|r| r.api_lost.clone()) {
            return Err(CollectError::ApiLost {
                url: self.url.clone(),
                during,
                reason,
                flag: None,
            });
        }
        Ok(reads.into_iter().map(|r| r.evidence).collect())
    }
}
