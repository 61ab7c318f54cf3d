//! Cause `CONFIG_REJECTED` (rule; declared in the catalog): a sidecar the
//! target depends on refused (NACKed) an update of a listener, cluster or
//! endpoint assignment.
//!
//! Envoy keeps what it refused in `/config_dump` as an `error_state`
//! (`UpdateFailureState`: `details`, `last_update_attempt`,
//! `failed_configuration`; envoyproxy/envoy
//! `api/envoy/admin/v3/config_dump_shared.proto`) and goes on serving the
//! last version it accepted, or nothing when there is none (a listener never
//! accepted serves no port). istiod only learns of it through the NACK
//! (`istioctl proxy-status` shows it); the API objects then describe config
//! the proxy does not run, so every config-based conclusion about that
//! proxy may be wrong.
//!
//! Which resources matter: the server sidecar's inbound side
//! (`virtualInbound`, the legacy per-port inbound listeners `<podIP>_<port>`,
//! `inbound|…` clusters) and, for a caller, the outbound cluster or endpoint
//! assignment of the target's `outbound|port|subset|fqdn` and the outbound
//! listeners carrying its port (`0.0.0.0_<port>`, `<vip>_<port>`,
//! `virtualOutbound`): an error. A rejection elsewhere on those proxies is a
//! warning.
//!
//! The usual culprit is an EnvoyFilter (istiod copies its patches into the
//! resource without validating them as Envoy does). The EnvoyFilters that
//! apply to the workload are those in the root namespace and the workload's
//! own namespace whose `workloadSelector` matches its labels, or that have
//! none (istio/istio `pilot/pkg/model/push_context.go` `EnvoyFilters` and
//! `getMatchedEnvoyFilters`, 1.24); a patch of the resource's kind
//! (`applyTo`) in its direction (`match.context`) is named first.

use std::collections::BTreeMap;

use super::unexplained_503s::seen_503s;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, Severity, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::config_dump::{RejectedResource, ResourceType};
use crate::model::networking::EnvoyFilter;
use crate::model::{Mesh, Pod, Proxy};

/// The side of the proxy a resource is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Inbound,
    Outbound,
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &mesh.proxies {
        let Some(dump) = &p.dump else { continue };
        let server = is_server(mesh, p);
        for r in distinct(&dump.rejected) {
            let Some(name) = r.resource_name() else {
                continue;
            };
            let side = side_of(r.resource_type, name, p);
            let critical = if server {
                side == Side::Inbound
            } else {
                caller_critical(mesh, r.resource_type, name)
            };
            out.push(finding(mesh, p, r, name, side, critical));
        }
    }
    out
}

/// A server of the target: the proxy runs in a pod a target Service selects.
fn is_server(mesh: &Mesh, p: &Proxy) -> bool {
    let Some(key) = &p.pod else { return false };
    mesh.target_services()
        .any(|s| mesh.backing_pods(s).any(|pod| &pod.key == key))
}

/// One entry per (type, name): Envoy prints a NACKed listener twice (the
/// named entry, then a nameless one); the one with more facts is kept.
fn distinct(rejected: &[RejectedResource]) -> Vec<&RejectedResource> {
    let mut by: BTreeMap<(ResourceType, Option<&str>), &RejectedResource> = BTreeMap::new();
    for r in rejected {
        let k = (r.resource_type, r.resource_name());
        let score = |x: &RejectedResource| {
            usize::from(x.failure.last_update_attempt.is_some())
                + usize::from(x.failure.details.is_some())
                + usize::from(x.name.is_some())
        };
        match by.get(&k) {
            Some(old) if score(old) >= score(r) => {}
            _ => {
                by.insert(k, r);
            }
        }
    }
    let mut v: Vec<_> = by.into_values().collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

fn side_of(t: ResourceType, name: &str, p: &Proxy) -> Side {
    match t {
        ResourceType::Listener => {
            let legacy_inbound = name
                .rsplit_once('_')
                .is_some_and(|(ip, _)| p.ips.iter().any(|i| i == ip));
            if name == "virtualInbound" || legacy_inbound {
                Side::Inbound
            } else {
                Side::Outbound
            }
        }
        _ if name.starts_with("inbound|") => Side::Inbound,
        _ => Side::Outbound,
    }
}

/// A caller's resource on the way to the target: its outbound clusters (or
/// their endpoints), the listeners of its ports, `virtualOutbound`.
fn caller_critical(mesh: &Mesh, t: ResourceType, name: &str) -> bool {
    mesh.target_ports().iter().any(|(svc, port)| match t {
        ResourceType::Listener => {
            name == "virtualOutbound" || name.ends_with(&format!("_{}", port.number))
        }
        _ => {
            name.starts_with(&format!("outbound|{}|", port.number))
                && name.ends_with(&format!("|{}", svc.fqdn))
        }
    })
}

fn finding(
    mesh: &Mesh,
    p: &Proxy,
    r: &RejectedResource,
    name: &str,
    side: Side,
    critical: bool,
) -> Finding {
    let pod = p.pod.as_ref().and_then(|k| mesh.pod(k));
    let filters = envoy_filters(mesh, pod, r.resource_type, side);
    let what = format!("{} {name}", r.resource_type);
    let details = r.failure.details.as_deref().unwrap_or("no details given");
    let serving = if r.previous_version_serves() {
        format!(
            "it keeps serving the version it accepted before ({}{})",
            r.active_version.as_deref().unwrap_or("version not shown"),
            r.active_last_updated
                .as_deref()
                .map(|t| format!(", updated {t}"))
                .unwrap_or_default()
        )
    } else if r.resource_type == ResourceType::Listener {
        "no earlier version serves it: its port is not served".to_string()
    } else {
        "no earlier version of it is shown".to_string()
    };
    let mut conf = Confidence::of(&[Weight::ConfigRejected]);
    let failures = if critical {
        observed_failures(mesh, p, &mut conf)
    } else {
        vec![]
    };
    let culprit = match filters.first() {
        Some((ef, true)) => format!(", most likely from EnvoyFilter {}", ef.meta.key()),
        _ => String::new(),
    };
    let claim = format!("{}'s sidecar rejected {what}{culprit}: {details}", p.label);
    let mut explain = vec![
        format!(
            "Envoy refused the update{}{}; {serving}.",
            r.failure
                .last_update_attempt
                .as_deref()
                .map(|t| format!(" tried at {t}"))
                .unwrap_or_default(),
            r.failure
                .version_info
                .as_deref()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default(),
        ),
        "The API objects describe config this proxy does not run: conclusions drawn from them about this proxy may not hold until the update lands.".to_string(),
    ];
    explain.push(if critical {
        match side {
            Side::Inbound => "This is the server's inbound side: every call to the target goes through it.".to_string(),
            Side::Outbound => "This is the caller's way to the target.".to_string(),
        }
    } else {
        "This resource is not on the way to the target: it fails other traffic, not necessarily these calls.".to_string()
    });
    explain.extend(filter_lines(&filters));
    let mut evidence = vec![Evidence::new(
        SourceRef::ConfigDump(p.label.clone()),
        format!(
            "{} error_state: details {details:?}; last_update_attempt {}",
            r.path,
            r.failure.last_update_attempt.as_deref().unwrap_or("-")
        ),
    )];
    evidence.extend(filters.iter().map(|(ef, _)| {
        Evidence::new(
            SourceRef::Object(ef.meta.object_ref()),
            format!("applies to {}: patches {}", p.label, patches_text(ef)),
        )
    }));
    evidence.extend(failures);
    let advice = match filters.first() {
        Some((ef, _)) => format!(
            "Fix or delete EnvoyFilter {} (Envoy says: {details}); istiod pushes {what} again on the next change and the proxy takes it. `istioctl proxy-status` shows the NACK until then.",
            ef.meta.key()
        ),
        None => format!(
            "No EnvoyFilter applies to this workload: compare the istiod and proxy versions (`istioctl proxy-status`); Envoy says: {details}."
        ),
    };
    Finding::new(
        Cause::ConfigRejected,
        format!("{what} at {}", p.label),
        claim,
        &conf,
    )
    .with_severity(if critical {
        Severity::Error
    } else {
        Severity::Warning
    })
    .explain(explain)
    .evidence(evidence)
    .fix(Some(Fix::advice(FixKind::Investigate, advice)))
}

/// Failing calls to the target that pass through the rejected resource, as
/// evidence: for the server's inbound side every 503 seen for the target
/// (any proxy, metrics or logs) and the connections its listener refused;
/// for a caller, its own. Adds the weights to `conf`.
fn observed_failures(mesh: &Mesh, p: &Proxy, conf: &mut Confidence) -> Vec<Evidence> {
    let server = is_server(mesh, p);
    let mut out = Vec::new();
    let mut weights = Vec::new();
    for s in seen_503s(mesh)
        .into_iter()
        .filter(|s| server || s.proxy == p.label)
    {
        let (source, w) = if s.from_metrics {
            (SourceRef::Metrics(s.proxy.clone()), Weight::Metrics)
        } else if s.reporter == "inbound" {
            (SourceRef::AccessLog(s.proxy.clone()), Weight::ServerLog)
        } else {
            (SourceRef::AccessLog(s.proxy.clone()), Weight::ClientLog)
        };
        weights.push(w);
        out.push(Evidence::new(
            source,
            format!("{} × 503 {} for the target", s.count, s.flags),
        ));
    }
    if server {
        let refused = p.log.entries.iter().filter(|e| e.no_filter_chain()).count();
        if refused > 0 {
            weights.push(Weight::ServerLog);
            out.push(Evidence::new(
                SourceRef::AccessLog(p.label.clone()),
                format!("{refused} connection(s) refused: NR filter_chain_not_found"),
            ));
        }
    }
    weights.sort();
    weights.dedup();
    for w in weights {
        conf.add(w);
    }
    out
}

/// EnvoyFilters that apply to the pod's workload, each with whether one of
/// its patches is of the rejected resource's kind and side.
fn envoy_filters<'m>(
    mesh: &'m Mesh,
    pod: Option<&Pod>,
    t: ResourceType,
    side: Side,
) -> Vec<(&'m EnvoyFilter, bool)> {
    let Some(pod) = pod else { return vec![] };
    let root = &mesh.settings.root_namespace;
    let mut v: Vec<(&EnvoyFilter, bool)> = mesh
        .config
        .envoy_filters
        .iter()
        .filter(|ef| &ef.meta.namespace == root || ef.meta.namespace == pod.key.namespace)
        .filter(|ef| {
            ef.workload_selector
                .as_ref()
                .is_none_or(|sel| sel.iter().all(|(k, val)| pod.labels.get(k) == Some(val)))
        })
        .map(|ef| (ef, ef.patches.iter().any(|p| patch_fits(p, t, side))))
        .collect();
    v.sort_by_key(|(ef, fits)| (!fits, ef.meta.key()));
    v
}

/// Could this patch (`applyTo`, `match.context`) have changed the resource?
fn patch_fits(
    (apply_to, context): &(Option<String>, Option<String>),
    t: ResourceType,
    side: Side,
) -> bool {
    let kind_fits = match apply_to.as_deref() {
        None => true,
        Some(
            "LISTENER" | "FILTER_CHAIN" | "NETWORK_FILTER" | "HTTP_FILTER" | "LISTENER_FILTER",
        ) => t == ResourceType::Listener,
        Some("CLUSTER") => t != ResourceType::Listener,
        Some(_) => false,
    };
    let side_fits = match context.as_deref() {
        None | Some("ANY") => true,
        Some("SIDECAR_INBOUND") => side == Side::Inbound,
        Some("SIDECAR_OUTBOUND") => side == Side::Outbound,
        Some(_) => false,
    };
    kind_fits && side_fits
}

fn patches_text(ef: &EnvoyFilter) -> String {
    if ef.patches.is_empty() {
        return "nothing".into();
    }
    ef.patches
        .iter()
        .map(|(a, c)| {
            format!(
                "{} in {}",
                a.as_deref().unwrap_or("(any)"),
                c.as_deref().unwrap_or("ANY")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn filter_lines(filters: &[(&EnvoyFilter, bool)]) -> Vec<String> {
    match filters {
        [] => vec!["No EnvoyFilter in the snapshot applies to this workload; istiod itself produced the config Envoy refused (an istiod/proxy version skew is the usual reason).".into()],
        fs => fs
            .iter()
            .map(|(ef, fits)| {
                if *fits {
                    format!(
                        "EnvoyFilter {} applies to this workload and patches this kind of resource on this side ({}): the likely source of what Envoy refused.",
                        ef.meta.key(),
                        patches_text(ef)
                    )
                } else {
                    format!(
                        "EnvoyFilter {} applies to this workload but patches other resources ({}).",
                        ef.meta.key(),
                        patches_text(ef)
                    )
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::config_dump::{ConfigDump, UpdateFailure};
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::json;

    fn rejected(t: ResourceType, name: &str, serving: bool) -> RejectedResource {
        RejectedResource {
            resource_type: t,
            name: Some(name.into()),
            failure: UpdateFailure {
                details: Some("script load error: ')' expected near 'end'".into()),
                last_update_attempt: Some("2026-12-01T20:00:00Z".into()),
                version_info: None,
                has_failed_configuration: true,
                failed_name: Some(name.into()),
            },
            active_version: serving.then(|| "2026-12-01T19:00:00Z/7".into()),
            active_last_updated: serving.then(|| "2026-12-01T19:00:01Z".into()),
            path: "configs[0].dynamic_listeners[3]".into(),
        }
    }

    fn with_rejected(mut p: Proxy, r: Vec<RejectedResource>) -> Proxy {
        p.dump.get_or_insert_with(ConfigDump::default).rejected = r;
        p
    }

    fn lua_filter(selector: Option<&str>, context: &str) -> serde_json::Value {
        let mut spec = json!({"configPatches": [{"applyTo": "HTTP_FILTER",
            "match": {"context": context}, "patch": {"operation": "INSERT_BEFORE"}}]});
        if let Some(app) = selector {
            spec["workloadSelector"] = json!({"labels": {"app": app}});
        }
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
            "metadata": {"name": "httpbin-lua", "namespace": "foo"}, "spec": spec})
    }

    fn mesh(
        server: Vec<RejectedResource>,
        client: Vec<RejectedResource>,
        ef: Option<serde_json::Value>,
    ) -> Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(
                with_rejected(proxy(&httpbin_pod(), ProxyRole::Server), server)
                    .with_log(vec![entry(0, "NR", None)]),
            )
            .proxy(
                with_rejected(proxy(&sleep_pod(), ProxyRole::Client), client).with_log(vec![
                    entry(
                        503,
                        "UC",
                        Some("outbound|8000||httpbin.foo.svc.cluster.local"),
                    ),
                ]),
            );
        if let Some(ef) = ef {
            b = b.object(ef);
        }
        b.build()
    }

    #[test]
    fn fires_and_near_misses() {
        use ResourceType::*;
        let cluster = "outbound|8000||httpbin.foo.svc.cluster.local";
        let cases: Vec<(&str, Mesh, Option<Severity>)> = vec![
            (
                "server's virtualInbound rejected",
                mesh(
                    vec![rejected(Listener, "virtualInbound", true)],
                    vec![],
                    None,
                ),
                Some(Severity::Error),
            ),
            (
                "server's inbound cluster rejected",
                mesh(
                    vec![rejected(Cluster, "inbound|8080||", false)],
                    vec![],
                    None,
                ),
                Some(Severity::Error),
            ),
            (
                "caller's cluster for the target rejected",
                mesh(vec![], vec![rejected(Cluster, cluster, true)], None),
                Some(Severity::Error),
            ),
            (
                "caller's endpoints for the target rejected",
                mesh(vec![], vec![rejected(Endpoints, cluster, true)], None),
                Some(Severity::Error),
            ),
            (
                "caller's outbound listener on the target's port rejected",
                mesh(vec![], vec![rejected(Listener, "0.0.0.0_8000", true)], None),
                Some(Severity::Error),
            ),
            (
                "near miss: the caller's cluster for another service",
                mesh(
                    vec![],
                    vec![rejected(
                        Cluster,
                        "outbound|8000||other.foo.svc.cluster.local",
                        true,
                    )],
                    None,
                ),
                Some(Severity::Warning),
            ),
            (
                "near miss: the caller's listener on another port",
                mesh(vec![], vec![rejected(Listener, "0.0.0.0_9090", true)], None),
                Some(Severity::Warning),
            ),
            (
                "near miss: the server's outbound listener",
                mesh(vec![rejected(Listener, "0.0.0.0_9090", true)], vec![], None),
                Some(Severity::Warning),
            ),
            (
                "near miss: nothing rejected",
                mesh(vec![], vec![], None),
                None,
            ),
        ];
        for (name, m, want) in cases {
            let f = check(&m);
            assert_eq!(f.first().map(|f| f.severity), want, "{name}: {f:#?}");
            assert!(f.len() <= 1, "{name}: {f:#?}");
        }
    }

    #[test]
    fn names_the_resource_the_error_and_the_envoy_filter() {
        let named = rejected(ResourceType::Listener, "virtualInbound", true);
        let mut nameless = named.clone();
        nameless.name = None;
        nameless.failure.last_update_attempt = None;
        let m = mesh(
            vec![named, nameless],
            vec![],
            Some(lua_filter(Some("httpbin"), "SIDECAR_INBOUND")),
        );
        let f = check(&m);
        assert_eq!(
            f.len(),
            1,
            "the nameless twin is the same rejection: {f:#?}"
        );
        let f = &f[0];
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.claim.contains("rejected listener virtualInbound, most likely from EnvoyFilter foo/httpbin-lua: script load error"),
            "{}",
            f.claim
        );
        assert!(
            f.explanation
                .iter()
                .any(|l| l.contains("tried at 2026-12-01T20:00:00Z")),
            "{:?}",
            f.explanation
        );
        assert!(f
            .explanation
            .iter()
            .any(|l| l
                .contains("keeps serving the version it accepted before (2026-12-01T19:00:00Z/7")));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.source.to_string() == "EnvoyFilter foo/httpbin-lua"));
        assert_eq!(
            f.confidence_basis,
            vec![Weight::ConfigRejected, Weight::ClientLog, Weight::ServerLog],
            "the callers' failures pass through the server's inbound side"
        );
        assert!(f
            .chosen_fix()
            .unwrap()
            .summary
            .contains("EnvoyFilter foo/httpbin-lua"));

        // Near miss: a filter for another workload, or for the outbound side, is not the culprit.
        for ef in [
            lua_filter(Some("sleep"), "SIDECAR_INBOUND"),
            lua_filter(None, "SIDECAR_OUTBOUND"),
        ] {
            let m = mesh(
                vec![rejected(ResourceType::Listener, "virtualInbound", false)],
                vec![],
                Some(ef),
            );
            let f = &check(&m)[0];
            assert!(!f.claim.contains("most likely"), "{}", f.claim);
            assert!(f
                .explanation
                .iter()
                .any(|l| l.contains("its port is not served")));
        }
    }
}
