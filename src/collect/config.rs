//! Cluster configuration: the API server's version, Istio API discovery
//! (one version per Istio kind: the group's preferred version, else the
//! first that serves the kind), every Istio config object listed once
//! cluster-wide (per namespace where the cluster-wide list is forbidden),
//! the namespaces and the mesh ConfigMap.

use std::collections::BTreeSet;

use futures::StreamExt;
use serde_json::Value;

use super::api::{
    group_versions, kinds_from_resource_list, one_version_per_kind, ApiCallError, Collection,
    Failure, Kind, ISTIO_GROUPS,
};
use super::error::CollectError;
use super::Run;

/// The kinds without which the TLS decision cannot be checked: the rules
/// that set client TLS, and the policies that set server mode (current and
/// legacy).
const ESSENTIAL_KINDS: &[&str] = &[
    "DestinationRule",
    "PeerAuthentication",
    "MeshPolicy",
    "Policy",
];

impl Run<'_> {
    /// `/version`, then Istio API discovery and the cluster-wide lists. The
    /// first request tells whether the API can be used at all.
    pub(super) async fn preflight(&mut self) -> Result<(), CollectError> {
        self.say("reading the API server version");
        self.server_version().await?;
        self.discover().await?;
        let kinds = self.kinds.clone();
        self.list_istio_cluster_wide(kinds).await
    }

    /// `/version`: the first request, which tells whether the API can be
    /// used at all (unreachable and 401 end the run).
    async fn server_version(&mut self) -> Result<(), CollectError> {
        match self.api.get_path("/version", None).await {
            Ok(v) => self.snap.server_version = Some(v),
            Err(e) if e.is_unauthorized() => {
                return Err(CollectError::Unauthorized {
                    url: self.url.clone(),
                    source: e,
                })
            }
            Err(e) if e.is_unreachable() => {
                return Err(CollectError::Connect {
                    url: self.url.clone(),
                    source: e,
                })
            }
            Err(e) => self.gap("GET /version", e.to_string()),
        }
        Ok(())
    }

    /// [`Run::preflight`] without listing the kinds `later` names: those
    /// are returned, for the caller to list with [`fetch_istio_lists`]
    /// while it does other reads, and to add with [`Run::absorb_istio_lists`].
    pub(super) async fn preflight_except(
        &mut self,
        later: &[&str],
    ) -> Result<Vec<Kind>, CollectError> {
        self.say("reading the API server version");
        self.server_version().await?;
        self.discover().await?;
        let (deferred, now): (Vec<Kind>, Vec<Kind>) = self
            .kinds
            .clone()
            .into_iter()
            .partition(|k| later.contains(&k.kind.as_str()));
        self.list_istio_cluster_wide(now).await?;
        Ok(deferred)
    }

    /// One version per Istio kind, from `/apis` and each served version's
    /// resource list.
    async fn discover(&mut self) -> Result<(), CollectError> {
        self.say("discovering Istio APIs");
        let groups = match self.api.get_path("/apis", Some("APIGroupList")).await {
            Ok(g) => g,
            Err(e) => {
                let text = match self.survivable("reading /apis (API discovery)", e)? {
                    Failure::NotFound => "HTTP 404".to_string(),
                    Failure::Forbidden(t) | Failure::Other(t) => t,
                };
                self.essential_gap(
                    "GET /apis (API discovery)",
                    format!("{text}; Istio config cannot be listed"),
                );
                return Ok(());
            }
        };
        // Every served version's resource list at once (independent GETs).
        let paths: Vec<(&str, String)> = ISTIO_GROUPS
            .iter()
            .flat_map(|g| group_versions(&groups, g).into_iter().map(move |v| (*g, v)))
            .collect();
        let api = self.api.clone();
        let mut lists = futures::future::join_all(paths.iter().map(|(g, v)| {
            let api = api.clone();
            async move {
                api.get_path(&format!("/apis/{g}/{v}"), Some("APIResourceList"))
                    .await
            }
        }))
        .await
        .into_iter();
        let mut answers = Vec::new();
        for (g, v) in &paths {
            answers.push((*g, v.clone(), lists.next()));
        }
        for group in ISTIO_GROUPS {
            let mut per_version = Vec::new();
            for (_, version, answer) in answers.iter_mut().filter(|(g, _, _)| g == group) {
                let path = format!("/apis/{group}/{version}");
                let Some(answer) = answer.take() else {
                    continue;
                };
                match answer {
                    Ok(list) => per_version.push(kinds_from_resource_list(group, version, &list)),
                    Err(e) => {
                        match self.survivable(&format!("reading {path} (API discovery)"), e)? {
                            Failure::NotFound => {}
                            Failure::Forbidden(t) | Failure::Other(t) => {
                                self.gap(format!("GET {path} (API discovery)"), t)
                            }
                        }
                    }
                }
            }
            for k in one_version_per_kind(per_version) {
                self.snap.served_resources.push(k.served());
                self.kinds.push(k);
            }
        }
        if !self.kinds.iter().any(|k| k.group == "networking.istio.io") {
            self.essential_gap(
                "Istio API discovery",
                "the cluster serves no networking.istio.io API: Istio is not installed (or not visible to this user)",
            );
        }
        Ok(())
    }

    async fn list_istio_cluster_wide(&mut self, kinds: Vec<Kind>) -> Result<(), CollectError> {
        let results = fetch_istio_lists(
            self.api.clone(),
            kinds,
            self.progress,
            self.opts.concurrency,
        )
        .await;
        self.absorb_istio_lists(results)
    }

    /// Adds listed Istio objects; a kind forbidden cluster-wide is kept for
    /// the per-namespace fallback, other failures are gaps (essential for
    /// the kinds the TLS decision needs); a lost API ends the run.
    pub(super) fn absorb_istio_lists(&mut self, results: IstioLists) -> Result<(), CollectError> {
        for (k, r) in results {
            match r {
                Ok(items) => items.into_iter().for_each(|o| self.add_object(o)),
                Err(e) => match self.survivable(&format!("listing {}", k.describe()), e)? {
                    Failure::NotFound => {}
                    Failure::Forbidden(text) if k.namespaced => self.deferred.push((k, text)),
                    Failure::Forbidden(text) | Failure::Other(text) => {
                        let source = format!("list {}", k.describe());
                        if ESSENTIAL_KINDS.contains(&k.kind.as_str()) {
                            self.essential_gap(source, text);
                        } else {
                            self.gap(source, text);
                        }
                    }
                },
            }
        }
        Ok(())
    }

    /// Istio kinds that were forbidden cluster-wide, listed in the
    /// namespaces that matter. One gap line per kind, whatever the
    /// namespaces (an essential one if the kind could not be read in one
    /// of them either).
    pub(super) async fn list_istio_fallback(
        &mut self,
        namespaces: &BTreeSet<String>,
    ) -> Result<(), CollectError> {
        let deferred = std::mem::take(&mut self.deferred);
        for (k, text) in deferred {
            let mut failed: Vec<String> = Vec::new();
            let mut reason = String::new();
            for ns in namespaces {
                self.say(&format!("listing {} in {ns}", k.describe()));
                let r = match k.collection(Some(ns)) {
                    Ok(c) => self.api.list(&c, None).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(items) => items.into_iter().for_each(|o| self.add_object(o)),
                    Err(e) => {
                        match self.survivable(&format!("listing {} in {ns}", k.describe()), e)? {
                            Failure::NotFound => {}
                            Failure::Forbidden(t) | Failure::Other(t) => {
                                failed.push(ns.clone());
                                reason = t;
                            }
                        }
                    }
                }
            }
            let list: Vec<&str> = namespaces.iter().map(String::as_str).collect();
            let source = format!("list {}", k.describe());
            if failed.is_empty() {
                self.gap(
                    source,
                    format!(
                        "{text} (all namespaces); read only in namespaces {} instead, so rules elsewhere are unseen",
                        list.join(", ")
                    ),
                );
                continue;
            }
            let detail = format!(
                "{text} (all namespaces); per namespace, not readable in {} either ({reason})",
                failed.join(", ")
            );
            if ESSENTIAL_KINDS.contains(&k.kind.as_str()) {
                self.essential_gap(source, detail);
            } else {
                self.gap(source, detail);
            }
        }
        Ok(())
    }

    /// Namespaces: all of them for their labels; else the ones that matter.
    pub(super) async fn namespaces(
        &mut self,
        wanted: &BTreeSet<String>,
    ) -> Result<(), CollectError> {
        let Ok(coll) = Collection::core("namespaces", "Namespace", None) else {
            return Ok(());
        };
        if let Some(items) = self
            .list_or_gap("namespaces", Ok(coll.clone()), None, false)
            .await?
        {
            items.into_iter().for_each(|o| self.add_object(o));
            return Ok(());
        }
        for ns in wanted {
            match self.api.get(&coll, ns).await {
                Ok(v) => self.add_object(v),
                Err(e) => {
                    // Recorded by the list's gap; only a lost API matters here.
                    self.survivable(&format!("reading namespace {ns}"), e)?;
                }
            }
        }
        Ok(())
    }

    /// The `istio` ConfigMap of `--istio-namespace` (the mesh config).
    pub(super) async fn mesh_config(&mut self) -> Result<(), CollectError> {
        let ins = self.opts.istio_namespace.clone();
        self.say(&format!("reading configmap {ins}/istio"));
        let got = match Collection::core("configmaps", "ConfigMap", Some(&ins)) {
            Ok(c) => self.api.get(&c, "istio").await,
            Err(e) => Err(e),
        };
        match got {
            Ok(v) => self.add_object(v),
            Err(e) => match self.survivable(&format!("reading configmap {ins}/istio"), e)? {
                Failure::NotFound => self.gap(
                    format!("configmap {ins}/istio"),
                    "mesh config not found; assuming Istio defaults (if Istio lives elsewhere, pass --istio-namespace)",
                ),
                Failure::Forbidden(t) | Failure::Other(t) => {
                    self.gap(format!("configmap {ins}/istio"), format!("{t}; assuming Istio defaults"))
                }
            },
        }
        Ok(())
    }
}

/// Each Istio kind's cluster-wide list, or why it failed.
pub(super) type IstioLists = Vec<(Kind, Result<Vec<Value>, ApiCallError>)>;

/// Lists `kinds` cluster-wide, `concurrency` at a time. Borrows nothing of
/// the run, so it can proceed while the run does other reads.
pub(super) async fn fetch_istio_lists(
    api: super::api::ReadApi,
    kinds: Vec<Kind>,
    progress: &dyn Fn(&str),
    concurrency: usize,
) -> IstioLists {
    futures::stream::iter(kinds)
        .map(|k| {
            let api = api.clone();
            async move {
                progress(&format!("listing {} (all namespaces)", k.describe()));
                let r = match k.collection(None) {
                    Ok(c) => api.list(&c, None).await,
                    Err(e) => Err(e),
                };
                (k, r)
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}
