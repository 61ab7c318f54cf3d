//! Cause `PORT_PROTOCOL_UNDECLARED` (rule; declared in the catalog): a
//! Service port of the target whose protocol istiod must sniff.
//!
//! The model resolves each port's protocol as istiod does (istio/istio
//! `pkg/config/kube/conversion.go` `ConvertProtocol`: `appProtocol`, else the
//! name's prefix, case-insensitive; UDP; well-known ports default to TCP);
//! istio.io ops/configuration/traffic-management/protocol-selection explains
//! what sniffing breaks.

use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::model::services::Protocol;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    mesh.target_ports()
        .into_iter()
        .filter(|(_, p)| p.protocol == Protocol::Unsupported)
        .map(|(svc, p)| {
            let written = match &p.app_protocol {
                Some(a) => format!("has appProtocol {a:?}, which Istio does not know"),
                None => format!("is named {:?} and has no appProtocol", p.name.clone().unwrap_or_default()),
            };
            Finding::new(
                Cause::PortProtocolUndeclared,
                format!("{}:{}", svc.fqdn, p.number),
                format!("Service port {}:{} does not declare its protocol", svc.key, p.number),
                &Confidence::of(&[Weight::ConfigPitfall]),
            )
            .explain(["Istio falls back to protocol sniffing, which fails for server-first protocols and can give 400 DPE or resets.".to_string()])
            .evidence([Evidence::new(
                SourceRef::Service(svc.key.clone()),
                format!("port {} {written}", p.number),
            )])
            .fix(Some(Fix::advice(
                FixKind::DeclareProtocol,
                "name the port <protocol>[-suffix] (e.g. http-web) or set appProtocol",
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;

    fn mesh(name: &str, port: u16, app: Option<&str>) -> crate::model::Mesh {
        let mut s = service("foo", "web", "web", &[(port, name, 8080)]);
        if let Some(a) = app {
            s.ports[0].app_protocol = Some(a.into());
            let (p, src) =
                crate::model::services::resolve_protocol(port, Some(name), "TCP", Some(a));
            s.ports[0].protocol = p;
            s.ports[0].protocol_source = src;
        }
        MeshBuilder::new().target(s).build()
    }

    #[test]
    fn fires_and_near_misses() {
        let cases = [
            (
                "a name without protocol prefix",
                mesh("web", 8000, None),
                true,
            ),
            ("no name at all", mesh("", 8000, None), true),
            (
                "an appProtocol Istio does not know replaces a good name",
                mesh("http", 8000, Some("custom")),
                true,
            ),
            ("near miss: http-web", mesh("http-web", 8000, None), false),
            (
                "near miss: the prefix is case-insensitive",
                mesh("HTTP", 8000, None),
                false,
            ),
            (
                "near miss: appProtocol http2",
                mesh("web", 8000, Some("http2")),
                false,
            ),
            (
                "near miss: MySQL's well-known port defaults to TCP",
                mesh("", 3306, None),
                false,
            ),
            (
                "near miss: a Service that is not the target",
                MeshBuilder::new()
                    .target(httpbin())
                    .service(service("foo", "other", "other", &[(80, "web", 8080)]))
                    .build(),
                false,
            ),
        ];
        for (name, m, fires) in cases {
            let f = check(&m);
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        let f = &check(&mesh("web", 8000, None))[0];
        assert_eq!(
            f.evidence[0].detail,
            "port 8000 is named \"web\" and has no appProtocol"
        );
        assert_eq!(f.confidence, 50);
    }
}
