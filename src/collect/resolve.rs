//! Collect stage: the target resolved to Kubernetes objects: its Services, their
//! EndpointSlices (or Endpoints), the pods whose sidecars are read as
//! servers, the port a host target names, and the cluster's DNS domain
//! (read with `istio::cluster_domain`) — recorded in the snapshot as
//! [`ResolvedTarget`] so the analysis need not resolve the target again.

use serde_json::Value;

use super::api::{ApiCallError, Collection, Failure};
use super::error::CollectError;
use super::objects;
use super::sidecar::ProxyJob;
use super::Run;
use crate::istio::cluster_domain::{domain_from_pod, domain_from_server_info, DEFAULT_DOMAIN};
use crate::istio::sidecar::has_sidecar;
use crate::snapshot::{ObjectRef, ProxyRole, ResolvedTarget, ServerPod};
use crate::target::Target;

/// Cap on server sidecars read for one target.
pub const MAX_SERVER_PROXIES: usize = 10;

/// How many caller IPs are mapped to pods by `status.podIP` lookups.
pub(super) const MAX_IP_LOOKUPS: usize = 16;

/// Pods Istio's injector labelled (see `injected_pods_until`).
pub(super) const SIDECAR_LABEL_SELECTOR: &str = "security.istio.io/tlsMode=istio";

/// Pods Istio's injector did not label (see `pods_without_sidecar_label`).
pub(super) const NO_SIDECAR_LABEL_SELECTOR: &str = "!security.istio.io/tlsMode";

/// The target, resolved to Kubernetes objects.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Namespace of the target.
    pub namespace: String,
    /// The Services of the target (one for a Service or host).
    pub services: Vec<Value>,
    /// Pods whose sidecars are read as servers, each with why.
    pub server_pods: Vec<(Value, String)>,
    /// Other pods behind the Services (kept as objects).
    pub other_pods: Vec<Value>,
    /// Port the user named on a host, if any.
    pub port: Option<u16>,
}

impl Resolved {
    /// Nothing resolved (tls-check without a service).
    pub fn empty(namespace: &str) -> Resolved {
        Resolved {
            namespace: namespace.to_string(),
            ..Resolved::default()
        }
    }
}

impl Run<'_> {
    /// GET of something the user named: not found and forbidden are errors.
    #[allow(clippy::too_many_arguments)]
    async fn get_named(
        &mut self,
        coll: Result<Collection, ApiCallError>,
        word: &str,
        short: &str,
        ns: &str,
        name: &str,
        note: Option<&str>,
    ) -> Result<Value, CollectError> {
        self.say(&format!("reading {word} {ns}/{name}"));
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        let what = format!("{word} {ns}/{name}{note}");
        let result = match coll {
            Ok(c) => self.api.get(&c, name).await,
            Err(e) => Err(e),
        };
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) => self.fatal(&format!("reading {what}"), e)?,
        };
        if e.is_not_found() {
            return Err(CollectError::TargetNotFound {
                what: format!("{word} {name:?}{note}"),
                namespace: ns.to_string(),
                hint: format!(
                    "list what exists with `kubectl get {short} -n {ns}`; pick the namespace with -n"
                ),
            });
        }
        if e.is_forbidden() {
            return Err(CollectError::Forbidden {
                what,
                message: e.to_string(),
                hint: format!(
                    "check with `kubectl auth can-i get {short} -n {ns}`; this tool needs get/list on it"
                ),
            });
        }
        Err(CollectError::Api { what, source: e })
    }

    pub(super) async fn get_pod_target(
        &mut self,
        ns: &str,
        name: &str,
        note: Option<&str>,
    ) -> Result<Value, CollectError> {
        let coll = Collection::core("pods", "Pod", Some(ns));
        self.get_named(coll, "pod", "pods", ns, name, note).await
    }

    async fn get_service_target(&mut self, ns: &str, name: &str) -> Result<Value, CollectError> {
        let coll = Collection::core("services", "Service", Some(ns));
        self.get_named(coll, "service", "svc", ns, name, None).await
    }

    pub(super) async fn get_deployment_target(
        &mut self,
        ns: &str,
        name: &str,
        note: Option<&str>,
    ) -> Result<Value, CollectError> {
        let coll = Collection::new("apps", "v1", "deployments", "Deployment", Some(ns));
        self.get_named(coll, "deployment", "deploy", ns, name, note)
            .await
    }

    /// Lists objects for evidence; a failure is a gap (an essential one
    /// when `essential`) and gives `None`.
    pub(super) async fn list_or_gap(
        &mut self,
        what: &str,
        coll: Result<Collection, ApiCallError>,
        selector: Option<&str>,
        essential: bool,
    ) -> Result<Option<Vec<Value>>, CollectError> {
        self.say(&format!("listing {what}"));
        let result = match coll {
            Ok(c) => self.api.list(&c, selector).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(items) => Ok(Some(items)),
            Err(e) => {
                let text = match self.survivable(&format!("listing {what}"), e)? {
                    Failure::NotFound => "HTTP 404: not found".to_string(),
                    Failure::Forbidden(t) | Failure::Other(t) => t,
                };
                if essential {
                    self.essential_gap(format!("list {what}"), text);
                } else {
                    self.gap(format!("list {what}"), text);
                }
                Ok(None)
            }
        }
    }

    async fn services_in(&mut self, ns: &str) -> Result<Vec<Value>, CollectError> {
        let coll = Collection::core("services", "Service", Some(ns));
        Ok(self
            .list_or_gap(&format!("services in {ns}"), coll, None, true)
            .await?
            .unwrap_or_default())
    }

    pub(super) async fn pods_by_selector(
        &mut self,
        ns: &str,
        selector: &str,
        essential: bool,
    ) -> Result<Vec<Value>, CollectError> {
        let coll = Collection::core("pods", "Pod", Some(ns));
        let what = format!("pods in {ns} with {selector}");
        Ok(self
            .list_or_gap(&what, coll, Some(selector), essential)
            .await?
            .unwrap_or_default())
    }

    /// Pods of a namespace ("" = all namespaces), listed once.
    pub(super) async fn pods_in(&mut self, ns: &str) -> Result<Option<Vec<Value>>, CollectError> {
        if let Some(p) = self.pod_lists.get(ns) {
            return Ok(Some(p.clone()));
        }
        let (coll, what) = if ns.is_empty() {
            (
                Collection::core("pods", "Pod", None),
                "pods (all namespaces)".to_string(),
            )
        } else {
            (
                Collection::core("pods", "Pod", Some(ns)),
                format!("pods in {ns}"),
            )
        };
        let Some(pods) = self.list_or_gap(&what, coll, None, false).await? else {
            return Ok(None);
        };
        self.pod_lists.insert(ns.to_string(), pods.clone());
        Ok(Some(pods))
    }

    /// The pods (any namespace) whose IP is one of `ips`, asked of the API
    /// server one IP at a time with the field selector `status.podIP=IP`
    /// (a selectable field of pods: kubernetes `pkg/registry/core/pod/strategy.go`
    /// `PodToSelectableFields`; the "Field selectors" page of kubernetes.io
    /// lists it), so mapping a few callers does not read every pod of the
    /// cluster. At most [`MAX_IP_LOOKUPS`] IPs are looked up. An API that
    /// refuses the selector (400) gets the whole list once instead, as
    /// does a run that has listed every pod already. `None`: the pods could
    /// not be listed (the gap is recorded).
    pub(super) async fn pods_with_ips(
        &mut self,
        ips: &[&str],
    ) -> Result<Option<Vec<Value>>, CollectError> {
        let wanted = |p: &Value| {
            objects::pod_ips(p)
                .iter()
                .any(|i| ips.contains(&i.as_str()))
        };
        if let Some(all) = self.pod_lists.get("") {
            return Ok(Some(all.iter().filter(|p| wanted(p)).cloned().collect()));
        }
        let mut out: Vec<Value> = Vec::new();
        let Ok(coll) = Collection::core("pods", "Pod", None) else {
            let all = self.pods_in("").await?;
            return Ok(all.map(|all| all.into_iter().filter(|p| wanted(p)).collect()));
        };
        for ip in ips.iter().take(MAX_IP_LOOKUPS) {
            let field = format!("status.podIP={ip}");
            self.say(&format!("listing pods with {field} (all namespaces)"));
            match self.api.list_selected(&coll, None, Some(&field)).await {
                Ok(found) => {
                    for p in found {
                        if !out.iter().any(|q| objects::key(q) == objects::key(&p)) {
                            out.push(p);
                        }
                    }
                }
                Err(e) if e.status_code() == Some(400) => {
                    let all = self.pods_in("").await?;
                    return Ok(all.map(|all| all.into_iter().filter(|p| wanted(p)).collect()));
                }
                Err(e) => {
                    let during = format!("listing pods with {field} (all namespaces)");
                    let text = match self.survivable(&during, e)? {
                        Failure::NotFound => "HTTP 404: not found".to_string(),
                        Failure::Forbidden(t) | Failure::Other(t) => t,
                    };
                    self.gap("list pods (all namespaces, by IP)".to_string(), text);
                    return Ok(None);
                }
            }
        }
        Ok(Some(out))
    }

    /// Pods without a sidecar, in every namespace: the label selector
    /// `!security.istio.io/tlsMode` leaves out the pods Istio's injector
    /// labelled (its template sets `security.istio.io/tlsMode: istio` on
    /// every injected pod since 1.4, `manifests/charts/istio-control/
    /// istio-discovery/files/injection-template.yaml`), so the answer grows
    /// with the pods outside the mesh, not with the mesh. Pods of a mesh
    /// older than 1.4 carry no such label and are all listed (correct,
    /// only slower). A run that listed every pod already filters that list.
    pub(super) async fn pods_without_sidecar_label(
        &mut self,
    ) -> Result<Option<Vec<Value>>, CollectError> {
        if let Some(all) = self.pod_lists.get("") {
            return Ok(Some(all.clone()));
        }
        let coll = Collection::core("pods", "Pod", None);
        let what = format!("pods with {NO_SIDECAR_LABEL_SELECTOR} (all namespaces)");
        self.list_or_gap(&what, coll, Some(NO_SIDECAR_LABEL_SELECTOR), false)
            .await
    }

    /// Injected pods of every namespace, page by page until `enough` says
    /// the sample has what it needs: the label selector
    /// `security.istio.io/tlsMode=istio` (every pod Istio's injector touched
    /// since 1.4), else, when no pod carries it (an older mesh), unselected
    /// pages. A run that listed every pod already uses that list. `None`:
    /// the pods could not be listed (the gap is recorded).
    pub(super) async fn injected_pods_until(
        &mut self,
        enough: &(dyn Fn(&[Value]) -> bool + Sync),
    ) -> Result<Option<Vec<Value>>, CollectError> {
        if let Some(all) = self.pod_lists.get("") {
            return Ok(Some(all.clone()));
        }
        let Ok(coll) = Collection::core("pods", "Pod", None) else {
            return self.pods_in("").await;
        };
        for selector in [Some(SIDECAR_LABEL_SELECTOR), None] {
            let what = format!(
                "pods{} (all namespaces, a sample)",
                selector.map(|s| format!(" with {s}")).unwrap_or_default()
            );
            self.say(&format!("listing {what}"));
            match self.api.list_until(&coll, selector, None, enough).await {
                Ok(pods) if pods.is_empty() && selector.is_some() => continue,
                Ok(pods) => return Ok(Some(pods)),
                Err(e) => {
                    let text = match self.survivable(&format!("listing {what}"), e)? {
                        Failure::NotFound => "HTTP 404: not found".to_string(),
                        Failure::Forbidden(t) | Failure::Other(t) => t,
                    };
                    self.gap(format!("list {what}"), text);
                    return Ok(None);
                }
            }
        }
        Ok(Some(Vec::new()))
    }

    /// Services selecting pods with `labels`, in `ns`.
    async fn services_selecting(
        &mut self,
        ns: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<Value>, CollectError> {
        Ok(self
            .services_in(ns)
            .await?
            .into_iter()
            .filter(|s| {
                objects::service_selector(s)
                    .is_some_and(|sel| objects::selector_matches(&sel, labels))
            })
            .collect())
    }

    pub(super) async fn resolve(
        &mut self,
        target: &Target,
        ns: &str,
    ) -> Result<Resolved, CollectError> {
        let mut r = Resolved::empty(ns);
        match target {
            Target::Service { name } => {
                let svc = self.get_service_target(ns, name).await?;
                r.services.push(svc);
            }
            Target::Host { host, .. } => {
                let Some(sh) = target.service_host(ns) else {
                    return Err(CollectError::TargetNotFound {
                        what: format!("a Kubernetes service for host {host:?}"),
                        namespace: ns.to_string(),
                        hint: "only in-cluster service hosts (NAME[.NAMESPACE[.svc[.DOMAIN]]]) can be \
                               resolved; name the service instead, e.g. svc/NAME -n NAMESPACE"
                            .to_string(),
                    });
                };
                r.namespace = sh.namespace.clone();
                r.port = sh.port;
                let svc = self.get_service_target(&sh.namespace, &sh.name).await?;
                r.services.push(svc);
            }
            Target::Deployment { name } => {
                let deploy = self.get_deployment_target(ns, name, None).await?;
                let labels = objects::string_map(&deploy, "/spec/template/metadata/labels");
                let selector = deploy
                    .pointer("/spec/selector")
                    .and_then(objects::label_selector_string);
                self.add_object(deploy);
                r.services = self.services_selecting(ns, &labels).await?;
                match selector {
                    Some(sel) => {
                        for p in self.pods_by_selector(ns, &sel, true).await? {
                            r.server_pods
                                .push((p, format!("a pod of the target deployment {ns}/{name} ({sel})")));
                        }
                    }
                    None => self.essential_gap(
                        format!("deployment {ns}/{name}"),
                        "its spec.selector is empty or uses an unknown operator; its pods were not listed",
                    ),
                }
            }
            Target::Pod { name } => {
                let pod = self.get_pod_target(ns, name, None).await?;
                r.services = self.services_selecting(ns, &objects::labels(&pod)).await?;
                r.server_pods.push((pod, "the target pod".to_string()));
            }
        }
        if r.services.is_empty() && matches!(target, Target::Deployment { .. } | Target::Pod { .. })
        {
            self.essential_gap(
                format!("services selecting {target} in {ns}"),
                "no Service selects the target's pods: no client can reach it by a service name, so there is no traffic to check",
            );
        }
        self.pods_of_services(&mut r).await?;
        Ok(r)
    }

    /// The pods behind the resolved Services: server pods when none were
    /// chosen yet, other pods (objects only) otherwise.
    async fn pods_of_services(&mut self, r: &mut Resolved) -> Result<(), CollectError> {
        let have_servers = !r.server_pods.is_empty();
        for svc in r.services.clone() {
            let (sns, sname) = (
                objects::namespace(&svc).to_string(),
                objects::name(&svc).to_string(),
            );
            let Some(sel) = objects::service_selector(&svc) else {
                self.gap(
                    format!("service {sns}/{sname}"),
                    "the service has no selector (endpoints managed by hand); its pods were not identified",
                );
                continue;
            };
            let sel_text = objects::selector_string(&sel);
            for p in self
                .pods_by_selector(&sns, &sel_text, !have_servers)
                .await?
            {
                let key = objects::key(&p);
                let known = r.server_pods.iter().any(|(s, _)| objects::key(s) == key)
                    || r.other_pods.iter().any(|s| objects::key(s) == key);
                if known {
                    continue;
                }
                if have_servers {
                    r.other_pods.push(p);
                } else {
                    r.server_pods.push((
                        p,
                        format!("backs service {sns}/{sname} (selector {sel_text})"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Services, their EndpointSlices (or Endpoints), and the pods as objects.
    pub(super) async fn server_side(&mut self, r: &Resolved) -> Result<(), CollectError> {
        for svc in &r.services {
            self.add_object(svc.clone());
        }
        for svc in r.services.clone() {
            self.endpoints_of_service(&svc).await?;
        }
        for (p, _) in &r.server_pods {
            self.add_object(p.clone());
        }
        for p in &r.other_pods {
            self.add_object(p.clone());
        }
        Ok(())
    }

    /// A Service's EndpointSlices, else (Kubernetes < 1.21) its Endpoints, as objects.
    pub(super) async fn endpoints_of_service(&mut self, svc: &Value) -> Result<(), CollectError> {
        let (sns, sname) = (
            objects::namespace(svc).to_string(),
            objects::name(svc).to_string(),
        );
        let slices = Collection::new(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            Some(&sns),
        );
        let selector = format!("kubernetes.io/service-name={sname}");
        let what = format!("endpointslices of {sns}/{sname}");
        if let Some(items) = self
            .list_or_gap(&what, slices, Some(&selector), false)
            .await?
        {
            items.into_iter().for_each(|o| self.add_object(o));
            return Ok(());
        }
        // Clusters before EndpointSlices (Kubernetes < 1.21): Endpoints.
        let coll = Collection::core("endpoints", "Endpoints", Some(&sns));
        self.say(&format!("reading endpoints {sns}/{sname}"));
        let got = match coll {
            Ok(c) => self.api.get(&c, &sname).await,
            Err(e) => Err(e),
        };
        match got {
            Ok(v) => self.add_object(v),
            Err(e) => {
                let text = match self.survivable(&format!("reading endpoints {sns}/{sname}"), e)? {
                    Failure::NotFound => "HTTP 404: not found".to_string(),
                    Failure::Forbidden(t) | Failure::Other(t) => t,
                };
                self.gap(format!("endpoints of service {sns}/{sname}"), text);
            }
        }
        Ok(())
    }

    /// The server sidecars to read: running pods with a sidecar, ready ones
    /// first, at most [`MAX_SERVER_PROXIES`].
    pub(super) fn server_jobs(&mut self, r: &Resolved) -> Vec<ProxyJob> {
        let mut candidates: Vec<&(Value, String)> = r
            .server_pods
            .iter()
            .filter(|(p, _)| has_sidecar(p) && objects::is_running(p) && objects::valid_ref(p))
            .collect();
        candidates.sort_by_key(|(p, _)| !objects::is_ready(p));
        if candidates.len() > MAX_SERVER_PROXIES {
            let skipped: Vec<String> = candidates[MAX_SERVER_PROXIES..]
                .iter()
                .map(|(p, _)| objects::key(p))
                .collect();
            self.gap(
                "server sidecars",
                format!(
                    "only {MAX_SERVER_PROXIES} server sidecars are read; not read: {}",
                    skipped.join(", ")
                ),
            );
            candidates.truncate(MAX_SERVER_PROXIES);
        }
        candidates
            .into_iter()
            .map(|(p, because)| ProxyJob {
                namespace: objects::namespace(p).to_string(),
                pod: objects::name(p).to_string(),
                role: ProxyRole::Server,
                because: because.clone(),
            })
            .collect()
    }

    /// Server sidecars (and `--from` clients) that were to be read and of
    /// which none could be: an essential gap.
    pub(super) fn check_sidecars_read(&mut self) {
        let readable = |e: &crate::snapshot::ProxyEvidence| {
            e.server_info.is_some() || e.clusters_config.is_some() || e.listeners_config.is_some()
        };
        for (role, what) in [
            (ProxyRole::Server, "server sidecars"),
            (ProxyRole::Client, "client sidecars named with --from"),
        ] {
            if role == ProxyRole::Client && self.opts.from.is_empty() {
                continue;
            }
            let tried: Vec<&crate::snapshot::ProxyEvidence> = self
                .snap
                .proxies
                .iter()
                .filter(|p| p.role == role)
                .collect();
            if !tried.is_empty() && !tried.iter().any(|p| readable(p)) {
                let names: Vec<String> = tried
                    .iter()
                    .map(|p| format!("{}/{}", p.namespace, p.pod))
                    .collect();
                push_missing(
                    &mut self.missing,
                    what,
                    format!(
                        "none of {} could be read (see their gaps): the data plane was not seen",
                        names.join(", ")
                    ),
                );
            }
        }
    }

    /// What the snapshot records about the target.
    pub(super) fn resolved_target(&self, r: &Resolved) -> ResolvedTarget {
        let services = r
            .services
            .iter()
            .map(|s| ObjectRef {
                namespace: objects::namespace(s).to_string(),
                name: objects::name(s).to_string(),
            })
            .collect();
        let server_pods = r
            .server_pods
            .iter()
            .map(|(p, because)| ServerPod {
                namespace: objects::namespace(p).to_string(),
                name: objects::name(p).to_string(),
                because: because.clone(),
                sidecar: has_sidecar(p),
            })
            .collect();
        let from_pods = r.server_pods.iter().find_map(|(p, _)| {
            domain_from_pod(p).map(|d| {
                (
                    d,
                    format!("--domain of pod {}'s istio-proxy", objects::key(p)),
                )
            })
        });
        let from_proxies = || {
            self.snap.proxies.iter().find_map(|p| {
                let d = domain_from_server_info(p.server_info.as_ref()?)?;
                Some((
                    d,
                    format!("node id of pod {}/{}'s sidecar", p.namespace, p.pod),
                ))
            })
        };
        let (cluster_domain, cluster_domain_source) = from_pods
            .or_else(from_proxies)
            .unwrap_or_else(|| (DEFAULT_DOMAIN.to_string(), "default".to_string()));
        ResolvedTarget {
            namespace: r.namespace.clone(),
            services,
            server_pods,
            port: r.port,
            cluster_domain,
            cluster_domain_source,
            missing: Vec::new(),
            routes: None,
            callers: Vec::new(),
        }
    }
}

fn push_missing(missing: &mut Vec<crate::snapshot::Gap>, source: &str, reason: String) {
    super::push_gap(missing, source, reason);
}
