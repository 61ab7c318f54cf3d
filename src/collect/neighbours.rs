//! The neighbourhood of the diagnosis: every Service and Pod of the
//! namespaces that matter (the target's, the clients', the servers', the
//! Istio namespace), kept as objects so a fix can be checked against every
//! caller and service the snapshot knows before it is printed
//! (analyze::fix::blast). Lists only; bounded; a list that fails is a gap,
//! never an error, and the fix check then says what it could not see.

use std::collections::BTreeSet;

use super::api::Collection;
use super::error::CollectError;
use super::Run;

/// At most this many Services and Pods are kept per namespace.
pub const MAX_PER_NAMESPACE: usize = 500;

impl Run<'_> {
    /// Services and Pods of `namespaces`, added as objects. Every list is
    /// requested at once; results are kept in the namespaces' order.
    pub(super) async fn neighbours(
        &mut self,
        namespaces: &BTreeSet<String>,
    ) -> Result<(), CollectError> {
        let api = self.api.clone();
        let list = |resource: &'static str, kind: &'static str, ns: String| {
            let api = api.clone();
            async move {
                match Collection::core(resource, kind, Some(&ns)) {
                    Ok(c) => api.list(&c, None).await,
                    Err(e) => Err(e),
                }
            }
        };
        let pods_wanted: Vec<&String> = namespaces
            .iter()
            .filter(|ns| !self.pod_lists.contains_key(*ns))
            .collect();
        self.say("listing the services and pods of the namespaces that matter");
        let (services, pods) = futures::join!(
            futures::future::join_all(namespaces.iter().map(|ns| list(
                "services",
                "Service",
                ns.clone()
            ))),
            futures::future::join_all(pods_wanted.iter().map(|ns| list(
                "pods",
                "Pod",
                (*ns).clone()
            )))
        );
        let mut pods: std::collections::HashMap<&String, _> =
            pods_wanted.into_iter().zip(pods).collect();
        for (ns, services) in namespaces.iter().zip(services) {
            let services = self
                .listed_or_gap(&format!("services in {ns}"), services)?
                .unwrap_or_default();
            self.keep_some(ns, "services", services);
            let pods = match pods.remove(ns) {
                Some(r) => {
                    let listed = self.listed_or_gap(&format!("pods in {ns}"), r)?;
                    if let Some(p) = &listed {
                        self.pod_lists.insert(ns.clone(), p.clone());
                    }
                    listed
                }
                None => self.pods_in(ns).await?,
            };
            self.keep_some(ns, "pods", pods.unwrap_or_default());
        }
        Ok(())
    }

    /// A list's answer, or its gap (`Run::list_or_gap` for a list already made).
    fn listed_or_gap(
        &mut self,
        what: &str,
        result: Result<Vec<serde_json::Value>, super::api::ApiCallError>,
    ) -> Result<Option<Vec<serde_json::Value>>, CollectError> {
        match result {
            Ok(items) => Ok(Some(items)),
            Err(e) => {
                let text = match self.survivable(&format!("listing {what}"), e)? {
                    super::api::Failure::NotFound => "HTTP 404: not found".to_string(),
                    super::api::Failure::Forbidden(t) | super::api::Failure::Other(t) => t,
                };
                self.gap(format!("list {what}"), text);
                Ok(None)
            }
        }
    }

    fn keep_some(&mut self, ns: &str, what: &str, items: Vec<serde_json::Value>) {
        let total = items.len();
        for o in items.into_iter().take(MAX_PER_NAMESPACE) {
            self.add_object(o);
        }
        if total > MAX_PER_NAMESPACE {
            self.gap(
                format!("{what} in {ns}"),
                format!(
                    "kept {MAX_PER_NAMESPACE} of {total}: a fix is checked against those callers and services only"
                ),
            );
        }
    }
}
