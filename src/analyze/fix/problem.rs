//! What a rule hands the fix engine: the failure, typed, with what a fix
//! must achieve ([`Problem::repaired`]) checked on the mesh with the fix
//! applied.

use crate::istio::destination_rule::TlsMode;
use crate::istio::object::ObjectRef;
use crate::model::decisions::Client;
use crate::model::{Mesh, Pod, PoolField, Service, ServicePort};

use super::blast::{self, Caller};

/// An mTLS mismatch: `caller` → `svc:port` fails at `pod`; `want` is the
/// client TLS that the server accepts (ISTIO_MUTUAL towards a STRICT
/// sidecar, DISABLE towards a pod that takes plaintext only).
#[derive(Debug, Clone)]
pub struct TlsProblem<'m> {
    pub svc: &'m Service,
    pub port: &'m ServicePort,
    pub caller: Caller,
    pub pod: &'m Pod,
    pub want: TlsMode,
}

/// A connection-pool limit reached by `caller` towards `svc:port`, or (for
/// the keep-alive race) the server's own inbound pool (`caller` is then the
/// server pod: istiod applies the service's DestinationRule to the inbound
/// cluster too, cluster_builder.go `buildInboundCluster`).
#[derive(Debug, Clone)]
pub struct PoolProblem<'m> {
    pub svc: &'m Service,
    pub port: &'m ServicePort,
    pub caller: Caller,
    pub change: PoolChange,
}

/// The change a pool problem needs.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolChange {
    /// Set these connection-pool limits.
    Limits(Vec<(PoolField, i64)>),
    /// `connectionPool.http.idleTimeout`.
    IdleTimeout(String),
}

/// A route (VirtualService `vs`, in its namespace) to a subset of `svc` that
/// no DestinationRule in force for the route's namespace defines.
#[derive(Debug, Clone)]
pub struct SubsetProblem<'m> {
    pub svc: &'m Service,
    pub port: &'m ServicePort,
    pub vs: ObjectRef,
    /// The destination host as the VirtualService writes it.
    pub host: String,
    pub subset: String,
}

/// What a rule found, as the fix engine needs it.
#[derive(Debug, Clone)]
pub enum Problem<'m> {
    Tls(TlsProblem<'m>),
    Pool(PoolProblem<'m>),
    Subset(SubsetProblem<'m>),
}

impl<'m> Problem<'m> {
    pub fn svc(&self) -> &'m Service {
        match self {
            Problem::Tls(p) => p.svc,
            Problem::Pool(p) => p.svc,
            Problem::Subset(p) => p.svc,
        }
    }

    pub fn port(&self) -> &'m ServicePort {
        match self {
            Problem::Tls(p) => p.port,
            Problem::Pool(p) => p.port,
            Problem::Subset(p) => p.port,
        }
    }

    /// The caller whose DestinationRule lookup decides (for a route: any
    /// client of the route's namespace).
    pub fn caller(&self) -> Caller {
        match self {
            Problem::Tls(p) => p.caller.clone(),
            Problem::Pool(p) => p.caller.clone(),
            Problem::Subset(p) => Caller::hypothetical(&p.vs.namespace),
        }
    }

    pub fn client(&self) -> Client {
        self.caller().client
    }

    /// Does `fixed` (the mesh with a candidate applied) cure it? `Err` says
    /// why not, in words.
    pub fn repaired(&self, fixed: &Mesh) -> Result<(), String> {
        match self {
            Problem::Tls(p) => {
                let state = blast::pair_state(fixed, &p.caller, p.svc, p.port);
                match state {
                    Some(s) if s.outcome == "ok" => Ok(()),
                    Some(s) => Err(format!(
                        "does not repair the call: {} sends {} and the server ({}) still refuses it",
                        p.caller.label, s.wire, s.server
                    )),
                    None => Err("the service has no pod to call".into()),
                }
            }
            Problem::Pool(p) => pool_in_force(fixed, p),
            Problem::Subset(p) => subset_defined(fixed, p),
        }
    }
}

/// The pool change is what the caller's effective policy holds afterwards.
fn pool_in_force(fixed: &Mesh, p: &PoolProblem) -> Result<(), String> {
    let ct = fixed.client_tls(&p.caller.client, p.svc, p.port.number);
    let policy = ct.policy.as_ref();
    let pool = policy.and_then(|x| x.connection_pool.as_ref());
    let ok = match &p.change {
        PoolChange::Limits(limits) => limits.iter().all(|(f, v)| {
            let have = pool.and_then(|c| match f {
                PoolField::MaxConnections => c.tcp.as_ref().and_then(|t| t.max_connections),
                PoolField::Http1MaxPendingRequests => {
                    c.http.as_ref().and_then(|h| h.http1_max_pending_requests)
                }
                PoolField::Http2MaxRequests => c.http.as_ref().and_then(|h| h.http2_max_requests),
                PoolField::MaxRequestsPerConnection => {
                    c.http.as_ref().and_then(|h| h.max_requests_per_connection)
                }
                PoolField::MaxRetries => c.http.as_ref().and_then(|h| h.max_retries),
            });
            have == Some(*v)
        }),
        PoolChange::IdleTimeout(d) => {
            pool.and_then(|c| c.http.as_ref())
                .and_then(|h| h.idle_timeout.as_deref())
                == Some(d.as_str())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "does not take effect: the DestinationRule {} applies to {} for {}",
            ct.selection()
                .and_then(|s| s.policy_from.clone())
                .unwrap_or_else(|| "in force".into()),
            p.svc.fqdn,
            p.caller.label
        ))
    }
}

/// The subset is defined by the rule in force for the route's namespace and
/// selects a ready pod, or the route no longer names it.
fn subset_defined(fixed: &Mesh, p: &SubsetProblem) -> Result<(), String> {
    let still_routed = fixed.config.virtual_services.iter().any(|vs| {
        vs.meta.object_ref() == p.vs
            && vs
                .destinations(crate::model::networking::RouteKind::Http)
                .any(|d| d.host_fqdn == p.svc.fqdn && d.subset.as_deref() == Some(&p.subset))
    });
    if !still_routed {
        return Ok(());
    }
    let lk = fixed.destination_rule_lookup(&Client::in_namespace(&p.vs.namespace), p.svc);
    let Some(subset) = lk.selection.as_ref().and_then(|s| s.subset(&p.subset)) else {
        return Err(format!(
            "does not repair: no DestinationRule in force for clients in {} defines subset {}",
            p.vs.namespace, p.subset
        ));
    };
    let selects = fixed.backing_pods(p.svc).any(|pod| {
        pod.ready
            && subset
                .subset
                .labels
                .iter()
                .all(|(k, v)| pod.labels.get(k) == Some(v))
    });
    if selects {
        Ok(())
    } else {
        Err(format!(
            "does not repair: subset {} selects no ready pod of {} (503 UH instead of NC)",
            p.subset, p.svc.key
        ))
    }
}
