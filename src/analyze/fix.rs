//! Analyze stage: fixes shared by every cause. The kinds of fix the catalog
//! declares, and the DestinationRule patches and new rules the mTLS causes
//! print (built from the model's apply-ready [`Manifest`]s).

use serde::Serialize;

use super::finding::Fix;
use crate::istio::destination_rule::{PolicyOrigin, TlsMode};
use crate::model::decisions::{ClientTls, ServerSide};
use crate::model::{Manifest, Mesh, Service, TlsAt};

/// The kind of change a fix asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixKind {
    /// Edit the DestinationRule in force (a complete manifest is printed).
    EditDestinationRule,
    /// Create a DestinationRule for the service (a manifest is printed).
    NewDestinationRule,
    /// Inject a sidecar into the caller, or relax the server's PeerAuthentication.
    InjectSidecarOrRelaxPolicy,
    /// Raise connectionPool limits (or send less load).
    TuneConnectionPool,
    /// Fix the errors behind ejections; tune outlierDetection.
    TuneOutlierDetection,
    /// Make pods matching the selector ready.
    ReadyEndpoints,
    /// Define the subset the route names (make-before-break).
    DefineSubset,
    /// Change the application (bind address, keep-alive) or the connection pool.
    ChangeApplication,
    /// Name the port `<protocol>[-suffix]` or set appProtocol.
    DeclareProtocol,
    /// Edit the VirtualService route (destination host, port, subset,
    /// fault) or the DestinationRule subset it names.
    EditRoute,
    /// Not a fix: investigate.
    #[default]
    Investigate,
}

impl FixKind {
    pub fn describe(self) -> &'static str {
        match self {
            FixKind::EditDestinationRule => {
                "edit the DestinationRule in force (full manifest printed)"
            }
            FixKind::NewDestinationRule => {
                "create a DestinationRule for the service (manifest printed)"
            }
            FixKind::InjectSidecarOrRelaxPolicy => {
                "inject a sidecar into the caller, or relax the server's PeerAuthentication"
            }
            FixKind::TuneConnectionPool => {
                "raise the DestinationRule's connectionPool limits, or send less load"
            }
            FixKind::TuneOutlierDetection => {
                "fix the errors behind the ejections; tune outlierDetection"
            }
            FixKind::ReadyEndpoints => "make pods matching the Service's selector ready",
            FixKind::DefineSubset => {
                "define the subset in the DestinationRule before routing to it"
            }
            FixKind::ChangeApplication => "change the application or the connection pool settings",
            FixKind::DeclareProtocol => "name the port <protocol>[-suffix] or set appProtocol",
            FixKind::EditRoute => {
                "edit the VirtualService route (destination, subset, fault, gateway binding) or the DestinationRule subset it names"
            }
            FixKind::Investigate => "none: investigate (istioctl proxy-status)",
        }
    }
}

/// The DestinationRule fix for an mTLS mismatch: set `tls.mode want` in the
/// rule in force, at the port level when a port-level entry decided; never
/// weaken a mesh-wide rule to fix one service (a new rule for the service
/// instead). A server pod without sidecar is also offered injection.
pub fn destination_rule_tls(
    mesh: &Mesh,
    svc: &Service,
    client: &ClientTls,
    server: &ServerSide,
    want: TlsMode,
) -> Option<Fix> {
    let no_sidecar_server = !server.sidecar;
    let want_s = want.as_str();
    let primary = client.selection().and_then(|s| s.primary());
    let editable = primary.filter(|r| {
        !(want == TlsMode::Disable
            && r.meta.namespace == mesh.settings.root_namespace
            && r.host.starts_with('*'))
    });
    let sidecar_note = if want == TlsMode::Disable && no_sidecar_server {
        format!(" (or inject a sidecar into {}'s pods)", svc.key.name)
    } else {
        String::new()
    };
    if let Some(rule) = editable {
        let manifest = mesh.config.manifest(&rule.object_ref())?;
        let (at, where_) = match client.policy.as_ref().map(|p| &p.origin) {
            Some(PolicyOrigin::PortLevel(p)) | Some(PolicyOrigin::SubsetPortLevel(_, p)) => (
                TlsAt::PortLevel(*p),
                format!("the portLevelSettings entry for port {p}"),
            ),
            _ => (TlsAt::TopLevel, "spec.trafficPolicy".to_string()),
        };
        return Some(Fix {
            summary: format!(
                "set tls.mode {want_s} in {where_} of DestinationRule {}{sidecar_note}: kubectl apply -f - <<'EOF' … EOF",
                rule.key()
            ),
            yaml: Some(manifest.with_tls_mode(at, want_s).to_yaml()),
            kind: FixKind::EditDestinationRule,
        });
    }
    // No rule to edit: a new one for this service, in its namespace.
    let api = mesh
        .config
        .preferred_api_version("DestinationRule")
        .unwrap_or_else(|| "networking.istio.io/v1alpha3".into());
    let suffix = if want == TlsMode::Disable {
        "plaintext"
    } else {
        "mtls"
    };
    let name = format!("{}-{suffix}", svc.key.name);
    let manifest =
        Manifest::new_destination_rule(&api, &svc.key.namespace, &name, &svc.fqdn, want_s);
    Some(Fix {
        summary: format!(
            "create DestinationRule {}/{name} with tls.mode {want_s} for {}{}",
            svc.key.namespace,
            svc.fqdn,
            if want == TlsMode::Disable && no_sidecar_server {
                format!(", or inject a sidecar into {}'s pods", svc.key.name)
            } else {
                String::new()
            }
        ),
        yaml: Some(manifest.to_yaml()),
        kind: FixKind::NewDestinationRule,
    })
}
