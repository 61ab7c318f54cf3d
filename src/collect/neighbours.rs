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
    /// Services and Pods of `namespaces`, added as objects.
    pub(super) async fn neighbours(
        &mut self,
        namespaces: &BTreeSet<String>,
    ) -> Result<(), CollectError> {
        for ns in namespaces {
            let coll = Collection::core("services", "Service", Some(ns));
            let services = self
                .list_or_gap(&format!("services in {ns}"), coll, None, false)
                .await?
                .unwrap_or_default();
            self.keep_some(ns, "services", services);
            let pods = self.pods_in(ns).await?.unwrap_or_default();
            self.keep_some(ns, "pods", pods);
        }
        Ok(())
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
