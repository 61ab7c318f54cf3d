//! Reading `mesh503.io/snapshot/v1` files: converted in memory to v2.
//!
//! v1 listed every Istio kind in every served version, so one
//! DestinationRule could appear three times (v1, v1beta1, v1alpha3). The
//! conversion keeps the first copy of each (group, kind, namespace, name):
//! discovery lists a group's versions in priority order, preferred first
//! (Kubernetes `APIGroup.versions`), so the first copy is the preferred
//! version's — and the first copy is also the one the v1 analysis used
//! (it skipped later copies of the same key). Nothing else changes: `/stats`
//! stays whole, `resolved` stays `None` (the analysis resolves the target
//! itself, as it did for v1), `metrics` stays `None`.

use std::collections::HashSet;

use super::{object_key, Snapshot, SCHEMA};

/// The first schema.
pub const SCHEMA_V1: &str = "mesh503.io/snapshot/v1";

/// Converts a parsed v1 snapshot to v2.
pub fn upgrade(mut snap: Snapshot) -> Snapshot {
    let mut seen = HashSet::new();
    snap.objects.retain(|o| seen.insert(object_key(o)));
    snap.schema = SCHEMA.to_string();
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_copy_per_object_the_first() {
        let dr = |v: &str, marker: u32| {
            json!({"apiVersion": format!("networking.istio.io/{v}"), "kind": "DestinationRule",
                   "metadata": {"name": "d", "namespace": "foo"}, "spec": {"m": marker}})
        };
        let snap = Snapshot {
            schema: SCHEMA_V1.into(),
            objects: vec![
                dr("v1", 1),
                dr("v1beta1", 2),
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "d", "namespace": "foo"}}),
                dr("v1alpha3", 3),
            ],
            ..Snapshot::default()
        };
        let up = upgrade(snap);
        assert_eq!(up.schema, SCHEMA);
        assert_eq!(up.objects.len(), 2);
        assert_eq!(up.objects[0]["spec"]["m"], 1);
        assert_eq!(up.objects[1]["kind"], "Pod");
        assert!(up.resolved.is_none());
    }
}
