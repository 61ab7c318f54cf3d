//! Which DestinationRule shapes a client's cluster for a service, and the
//! traffic policy that results for a port and subset.
//!
//! Lookup (istio/istio `pilot/pkg/model/push_context.go` `destinationRule`):
//! 1. the client's namespace (all its rules, `exportTo: "."` included; for a
//!    client in the root namespace only its namespace-local rules);
//! 2. the service's namespace, rules exported to the client;
//! 3. the root namespace (`meshConfig.rootNamespace`), rules exported to the client.
//!
//! The first namespace with a host match wins, and within it the most
//! specific host (`MostSpecificHostMatch`: exact beats wildcard, a longer
//! wildcard beats a shorter one); if that host's rules are not exported to
//! the client the step yields nothing. Short hosts resolve in the rule's
//! namespace. Rules with a `workloadSelector` apply only in the client's own
//! namespace and only when they select the client; a selected rule beats the
//! selector-less one (`SidecarScope.DestinationRule`). Several rules for one
//! host in one namespace are merged (`mergeDestinationRule`): subsets are
//! concatenated (duplicates dropped) and the first (oldest) top-level
//! trafficPolicy wins.

use super::services::{exported, host_matches, resolve_host};
use super::world::{self, name, namespace, selects, string_list, string_map, MeshConfig, World};
use serde_json::Value;
use std::collections::BTreeMap;

/// One DestinationRule object, host resolved.
#[derive(Debug, Clone)]
pub struct DestRule<'a> {
    pub obj: &'a Value,
    pub name: String,
    pub namespace: String,
    pub host: String,
    pub export_to: Vec<String>,
    pub selector: Option<BTreeMap<String, String>>,
}

impl<'a> DestRule<'a> {
    fn from(obj: &'a Value) -> DestRule<'a> {
        let ns = namespace(obj).to_string();
        let sel = string_map(&obj["spec"]["workloadSelector"]["matchLabels"]);
        DestRule {
            obj,
            name: name(obj).to_string(),
            host: resolve_host(obj["spec"]["host"].as_str().unwrap_or(""), &ns),
            namespace: ns,
            export_to: string_list(&obj["spec"]["exportTo"]),
            selector: (!sel.is_empty()).then_some(sel),
        }
    }
}

/// The traffic-policy fields the lab models (istio/api `TrafficPolicy`).
/// Each field is kept as the raw JSON the user wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub connection_pool: Option<Value>,
    pub outlier_detection: Option<Value>,
    pub load_balancer: Option<Value>,
    pub tls: Option<Value>,
    /// `portLevelSettings` keyed by SERVICE port number.
    pub port_level: Vec<(u16, Policy)>,
}

impl Policy {
    pub fn parse(v: &Value) -> Option<Policy> {
        if !v.is_object() {
            return None;
        }
        let field = |k: &str| v.get(k).filter(|x| !x.is_null()).cloned();
        let port_level = v["portLevelSettings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let port = p["port"]["number"].as_u64()? as u16;
                let mut inner = Policy::parse(p).unwrap_or_default();
                inner.port_level.clear();
                Some((port, inner))
            })
            .collect();
        Some(Policy {
            connection_pool: field("connectionPool"),
            outlier_detection: field("outlierDetection"),
            load_balancer: field("loadBalancer"),
            tls: field("tls"),
            port_level,
        })
    }

    /// The port-level entry for `port`, which replaces the whole policy (no
    /// inheritance: omitted fields fall back to defaults), and whether there
    /// was one (istio/istio `pilot/pkg/networking/util` `GetPortLevelTrafficPolicy`).
    pub fn for_port(&self, port: u16) -> (Policy, bool) {
        match self.port_level.iter().find(|(p, _)| *p == port) {
            Some((_, pl)) => (
                Policy {
                    port_level: Vec::new(),
                    ..pl.clone()
                },
                true,
            ),
            None => (
                Policy {
                    port_level: Vec::new(),
                    ..self.clone()
                },
                false,
            ),
        }
    }

    /// `tls.mode` if set.
    pub fn tls_mode(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|t| t["mode"].as_str())
    }
}

/// A subset of a merged rule.
#[derive(Debug, Clone)]
pub struct Subset {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub policy: Option<Policy>,
}

/// The rule(s) that apply to one (client, service host).
#[derive(Debug, Clone)]
pub struct MergedRule<'a> {
    /// The rule whose metadata names the cluster config (the oldest merged one).
    pub first: DestRule<'a>,
    /// Every rule merged in, oldest first, as `namespace/name`.
    pub from: Vec<String>,
    pub policy: Option<Policy>,
    pub subsets: Vec<Subset>,
}

impl<'a> MergedRule<'a> {
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

/// The effective policy for a port of the default cluster (`subset` None)
/// or of a subset cluster (istio/istio `MergeSubsetTrafficPolicy`): the
/// top-level port-level entry replaces the top-level policy; then a subset's
/// port-level entry replaces everything, otherwise the subset's fields
/// override the top-level ones one by one.
pub fn effective_policy(
    top: Option<&Policy>,
    subset: Option<&Policy>,
    port: u16,
) -> Option<Policy> {
    let original = top.map(|t| t.for_port(port).0);
    let Some(subset) = subset else {
        return original;
    };
    let (sub, has_port_level) = subset.for_port(port);
    let Some(mut merged) = original else {
        return Some(sub);
    };
    if sub.connection_pool.is_some() || has_port_level {
        merged.connection_pool = sub.connection_pool.clone();
    }
    if sub.outlier_detection.is_some() || has_port_level {
        merged.outlier_detection = sub.outlier_detection.clone();
    }
    if sub.load_balancer.is_some() || has_port_level {
        merged.load_balancer = sub.load_balancer.clone();
    }
    if sub.tls.is_some() || has_port_level {
        merged.tls = sub.tls.clone();
    }
    Some(merged)
}

/// The DestinationRule(s) a client sees for a service host.
pub fn lookup<'a>(
    world: &'a World,
    mesh: &MeshConfig,
    client_ns: &str,
    client_labels: &BTreeMap<String, String>,
    hostname: &str,
    service_ns: &str,
) -> Option<MergedRule<'a>> {
    let root = mesh.root_namespace.as_str();
    // Only rules of these namespaces can apply (below); in age order.
    let mut owners = vec![client_ns, service_ns, root];
    owners.sort_unstable();
    owners.dedup();
    let mut rules: Vec<&Value> = owners
        .into_iter()
        .flat_map(|ns| world.of_kind_in("networking.istio.io", "DestinationRule", ns))
        .collect();
    rules.sort_by_key(|o| world::age_key(o));
    let rules: Vec<DestRule> = rules.into_iter().map(DestRule::from).collect();

    // 1. The client's namespace.
    let local: Vec<&DestRule> = rules
        .iter()
        .filter(|r| r.namespace == client_ns)
        .filter(|r| client_ns != root || (is_private(&r.export_to) && r.selector.is_none()))
        .collect();
    if let Some(host) = most_specific(&local, hostname) {
        let same: Vec<&DestRule> = local.into_iter().filter(|r| r.host == host).collect();
        return select_for_client(&same, client_labels);
    }
    // 2. and 3.: exported rules of the service's namespace, then the root namespace.
    for owner in [service_ns, root] {
        let exported_rules: Vec<&DestRule> = rules
            .iter()
            .filter(|r| r.namespace == owner && r.selector.is_none() && !is_private(&r.export_to))
            .collect();
        if let Some(host) = most_specific(&exported_rules, hostname) {
            let visible: Vec<&DestRule> = exported_rules
                .into_iter()
                .filter(|r| r.host == host && exported(&r.export_to, &r.namespace, client_ns))
                .collect();
            if !visible.is_empty() {
                return select_for_client(&visible, client_labels);
            }
        }
    }
    None
}

/// `exportTo: ["."]` only: indexed as namespace-local, never exported.
fn is_private(export_to: &[String]) -> bool {
    !export_to.is_empty() && export_to.iter().all(|e| e == ".")
}

/// The most specific rule host matching `hostname` (exact, else the longest wildcard).
fn most_specific(rules: &[&DestRule], hostname: &str) -> Option<String> {
    if rules.iter().any(|r| r.host == hostname) {
        return Some(hostname.to_string());
    }
    rules
        .iter()
        .filter(|r| r.host.starts_with('*') && host_matches(&r.host, hostname))
        .map(|r| r.host.clone())
        .max_by_key(|h| h.len())
}

/// Among rules for one host (oldest first): the oldest whose selector picks
/// the client (merged with rules of the same selector), else the merge of
/// the selector-less ones.
fn select_for_client<'a>(
    rules: &[&DestRule<'a>],
    client_labels: &BTreeMap<String, String>,
) -> Option<MergedRule<'a>> {
    if let Some(sel) = rules
        .iter()
        .filter_map(|r| r.selector.as_ref())
        .find(|s| selects(s, client_labels))
    {
        let group: Vec<&DestRule> = rules
            .iter()
            .filter(|r| r.selector.as_ref() == Some(sel))
            .copied()
            .collect();
        return merge(&group);
    }
    let group: Vec<&DestRule> = rules
        .iter()
        .filter(|r| r.selector.is_none())
        .copied()
        .collect();
    merge(&group)
}

fn merge<'a>(group: &[&DestRule<'a>]) -> Option<MergedRule<'a>> {
    let first = (*group.first()?).clone();
    let mut merged = MergedRule {
        first,
        from: Vec::new(),
        policy: None,
        subsets: Vec::new(),
    };
    for r in group {
        merged.from.push(format!("{}/{}", r.namespace, r.name));
        if merged.policy.is_none() {
            merged.policy = Policy::parse(&r.obj["spec"]["trafficPolicy"]);
        }
        for s in r.obj["spec"]["subsets"].as_array().into_iter().flatten() {
            let sname = s["name"].as_str().unwrap_or("").to_string();
            if merged.subsets.iter().any(|x| x.name == sname) {
                continue;
            }
            merged.subsets.push(Subset {
                name: sname,
                labels: string_map(&s["labels"]),
                policy: Policy::parse(&s["trafficPolicy"]),
            });
        }
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dr(ns: &str, name: &str, created: &str, spec: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec})
    }

    const HOST: &str = "httpbin.foo.svc.cluster.local";

    fn find<'a>(w: &'a World, client_ns: &str, labels: &[(&str, &str)]) -> Option<MergedRule<'a>> {
        let l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lookup(w, &MeshConfig::default(), client_ns, &l, HOST, "foo")
    }

    #[test]
    fn client_namespace_then_service_namespace_then_root() {
        // push_context.go destinationRule: client ns → service ns (exported) → root ns.
        let w = World::new(vec![
            dr(
                "istio-system",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"host": "*.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
            dr(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
            dr(
                "bar",
                "httpbin-from-bar",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin.foo.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}}),
            ),
        ]);
        assert_eq!(find(&w, "bar", &[]).unwrap().first.name, "httpbin-from-bar");
        assert_eq!(find(&w, "foo", &[]).unwrap().first.name, "httpbin");
        assert_eq!(find(&w, "baz", &[]).unwrap().first.name, "httpbin");
        let only_root = World::new(vec![w.objects[0].clone()]);
        assert_eq!(find(&only_root, "baz", &[]).unwrap().first.name, "default");
    }

    #[test]
    fn export_to_dot_hides_a_rule_from_other_namespaces() {
        // push_context.go getExportedDestinationRuleFromNamespace: exportTo "." is private.
        let w = World::new(vec![
            dr(
                "istio-system",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"host": "*.local"}),
            ),
            dr(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "exportTo": ["."]}),
            ),
        ]);
        assert_eq!(find(&w, "foo", &[]).unwrap().first.name, "httpbin");
        assert_eq!(find(&w, "bar", &[]).unwrap().first.name, "default");
        // Exported to a list that names the client.
        let w2 = World::new(vec![dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin", "exportTo": [".", "bar"]}),
        )]);
        assert!(find(&w2, "bar", &[]).is_some());
        assert!(find(&w2, "baz", &[]).is_none());
    }

    #[test]
    fn most_specific_host_wins_within_a_namespace() {
        // MostSpecificHostMatch: exact > longer wildcard > shorter wildcard.
        let w = World::new(vec![
            dr(
                "foo",
                "all",
                "2020-01-01T00:00:00Z",
                json!({"host": "*.local"}),
            ),
            dr(
                "foo",
                "ns",
                "2020-01-01T00:00:00Z",
                json!({"host": "*.foo.svc.cluster.local"}),
            ),
        ]);
        assert_eq!(find(&w, "foo", &[]).unwrap().first.name, "ns");
        let mut w2 = w.clone();
        w2.objects.push(dr(
            "foo",
            "exact",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin"}),
        ));
        assert_eq!(find(&w2, "foo", &[]).unwrap().first.name, "exact");
    }

    #[test]
    fn workload_selector_only_in_client_namespace_and_only_when_selected() {
        // sidecar.go SidecarScope.DestinationRule: a selected rule beats the catch-all.
        let w = World::new(vec![
            dr(
                "foo",
                "catchall",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
            dr(
                "foo",
                "for-sleep",
                "2020-01-02T00:00:00Z",
                json!({"host": "httpbin", "workloadSelector": {"matchLabels": {"app": "sleep"}}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
        ]);
        assert_eq!(
            find(&w, "foo", &[("app", "sleep")]).unwrap().first.name,
            "for-sleep"
        );
        assert_eq!(
            find(&w, "foo", &[("app", "other")]).unwrap().first.name,
            "catchall"
        );
        // From another namespace the selector rule is never used.
        assert_eq!(
            find(&w, "bar", &[("app", "sleep")]).unwrap().first.name,
            "catchall"
        );
    }

    #[test]
    fn rules_for_one_host_merge_first_policy_wins() {
        // destination_rule.go mergeDestinationRule: subsets concatenated, first top-level policy kept.
        let w = World::new(vec![
            dr(
                "foo",
                "b-newer",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}, "subsets": [{"name": "v2", "labels": {"version": "v2"}}, {"name": "v1", "labels": {"version": "other"}}]}),
            ),
            dr(
                "foo",
                "a-older",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}),
            ),
        ]);
        let m = find(&w, "foo", &[]).unwrap();
        assert_eq!(m.first.name, "a-older");
        assert_eq!(m.from, vec!["foo/a-older", "foo/b-newer"]);
        assert_eq!(m.policy.unwrap().tls_mode(), Some("ISTIO_MUTUAL"));
        assert_eq!(
            m.subsets
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            vec!["v1", "v2"]
        );
        assert_eq!(m.subsets[0].labels["version"], "v1");
    }

    #[test]
    fn port_level_replaces_and_subsets_override() {
        // util.go MergeSubsetTrafficPolicy / GetPortLevelTrafficPolicy.
        let top = Policy::parse(&json!({
            "tls": {"mode": "ISTIO_MUTUAL"},
            "connectionPool": {"tcp": {"maxConnections": 10}},
            "portLevelSettings": [{"port": {"number": 9000}, "connectionPool": {"tcp": {"maxConnections": 1}}}]
        }))
        .unwrap();
        // Port 9000's entry has no tls: TLS silently drops for that port.
        let p9000 = effective_policy(Some(&top), None, 9000).unwrap();
        assert_eq!(p9000.tls, None);
        assert_eq!(p9000.connection_pool.unwrap()["tcp"]["maxConnections"], 1);
        assert_eq!(
            effective_policy(Some(&top), None, 8000).unwrap().tls_mode(),
            Some("ISTIO_MUTUAL")
        );
        // A subset overrides one field and inherits the rest.
        let sub =
            Policy::parse(&json!({"connectionPool": {"tcp": {"maxConnections": 5}}})).unwrap();
        let s = effective_policy(Some(&top), Some(&sub), 8000).unwrap();
        assert_eq!(s.tls_mode(), Some("ISTIO_MUTUAL"));
        assert_eq!(s.connection_pool.unwrap()["tcp"]["maxConnections"], 5);
        // A subset's port-level entry replaces the subset's policy entirely.
        let sub_pl = Policy::parse(&json!({"tls": {"mode": "DISABLE"}, "portLevelSettings": [{"port": {"number": 8000}, "outlierDetection": {"consecutive5xxErrors": 1}}]})).unwrap();
        let s2 = effective_policy(Some(&top), Some(&sub_pl), 8000).unwrap();
        assert_eq!(s2.tls, None);
        assert_eq!(s2.connection_pool, None);
        assert!(s2.outlier_detection.is_some());
    }
}
