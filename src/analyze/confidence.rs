//! Analyze stage: how sure a finding is, from a declared table of evidence
//! weights. No rule writes a number: it says which kinds of evidence it holds
//! ([`Weight`]) and the score is their sum, clamped to 0–99.
//! `docs/findings.md` prints this table from [`WEIGHTS`].

use serde::Serialize;

/// A kind of evidence and what it adds to a finding's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weight {
    /// The objects predict the failure through a decision chain the proxies may not follow yet.
    ConfigPredicts,
    /// The objects make the failure certain for traffic on that path.
    ConfigCertain,
    /// The objects hold a pitfall that may or may not bite.
    ConfigPitfall,
    ClientClusterConfirms,
    ServerListenerConfirms,
    ClientLog,
    ServerLog,
    DistinctiveFlag,
    HostHealth,
    IntermittentPattern,
    ClientCounter,
    ServerCounter,
    Metrics,
    ProxyRunsOtherRule,
    PredictionContradicted,
    ConfigRouteCertain,
    ClientClusterMissing,
    ConfigAdvisory,
    ConfigHidden,
    ConfigRejected,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct WeightDecl {
    pub weight: Weight,
    /// `config-predicts`, as in the JSON report's `confidence_basis`.
    pub name: &'static str,
    pub points: i32,
    pub meaning: &'static str,
}

/// The scoring model. Sums above 99 are clamped: certainty is never claimed.
pub const WEIGHTS: &[WeightDecl] = &[
    WeightDecl { weight: Weight::ConfigPredicts, name: "config-predicts", points: 40,
        meaning: "the API objects predict the failure through Istio's decision chain (DestinationRule lookup, auto mTLS, PeerAuthentication); the proxies may not run it yet" },
    WeightDecl { weight: Weight::ConfigCertain, name: "config-certain", points: 60,
        meaning: "the API objects make the failure certain for traffic on that path (a route to a subset no rule defines, a Service with no ready endpoint)" },
    WeightDecl { weight: Weight::ConfigPitfall, name: "config-pitfall", points: 50,
        meaning: "the API objects hold a pitfall that fails only for some traffic (protocol sniffing)" },
    WeightDecl { weight: Weight::ClientClusterConfirms, name: "client-cluster-confirms", points: 20,
        meaning: "the client sidecar's cluster in /config_dump runs what the finding says (its transport socket)" },
    WeightDecl { weight: Weight::ServerListenerConfirms, name: "server-listener-confirms", points: 15,
        meaning: "the server sidecar's inbound listener in /config_dump enforces the mode the finding says" },
    WeightDecl { weight: Weight::ClientLog, name: "client-log", points: 20,
        meaning: "the client sidecar's access log shows the requests failing with this cause's response flags" },
    WeightDecl { weight: Weight::ServerLog, name: "server-log", points: 10,
        meaning: "the server sidecar's access log shows the rejected connections or failed requests" },
    WeightDecl { weight: Weight::DistinctiveFlag, name: "distinctive-flag", points: 70,
        meaning: "the access log shows a response flag or detail that only this cause produces (UO overflow, NC cluster_not_found, UF on an inbound cluster, NR filter_chain_not_found from a pod without sidecar)" },
    WeightDecl { weight: Weight::HostHealth, name: "host-health", points: 60,
        meaning: "/clusters shows the symptom itself: every host ejected (failed_outlier_check), or no host at all" },
    WeightDecl { weight: Weight::IntermittentPattern, name: "intermittent-pattern", points: 55,
        meaning: "failures mixed with successes on one path, the signature of a race rather than a misconfiguration" },
    WeightDecl { weight: Weight::ClientCounter, name: "client-counter", points: 5,
        meaning: "a client /stats counter confirms it (kept only when the pod's stats inclusion keeps it; Istio's default drops it)" },
    WeightDecl { weight: Weight::ServerCounter, name: "server-counter", points: 5,
        meaning: "a server /stats counter confirms it (same caveat)" },
    WeightDecl { weight: Weight::Metrics, name: "metrics", points: 20,
        meaning: "Istio's standard metrics (istio_requests_total with response_code 503 and its response_flags, either reporter) show the failures" },
    WeightDecl { weight: Weight::ProxyRunsOtherRule, name: "proxy-runs-other-rule", points: 70,
        meaning: "a client cluster's istio.config metadata names another DestinationRule than the API says applies" },
    WeightDecl { weight: Weight::PredictionContradicted, name: "prediction-contradicted", points: -10,
        meaning: "the proxy's running config differs from what the API objects predict (the proxy's is used)" },
    WeightDecl { weight: Weight::ConfigRouteCertain, name: "config-route-certain", points: 60,
        meaning: "istiod's routing for a caller (the VirtualService that wins the host, a reachable route with weight > 0) sends requests to a cluster that does not exist or has no endpoint, or through an abort: every request taking it fails" },
    WeightDecl { weight: Weight::ClientClusterMissing, name: "client-cluster-missing", points: 25,
        meaning: "the client sidecar's /config_dump (its clusters were read) has no cluster of the name the route names" },
    WeightDecl { weight: Weight::ConfigAdvisory, name: "config-advisory", points: 40,
        meaning: "the API objects hold a routing anomaly that fails no request by itself (a VirtualService shadowed by another, a route after a catch-all, a host no gateway route serves)" },
    WeightDecl { weight: Weight::ConfigHidden, name: "config-hidden", points: -20,
        meaning: "some objects the routing decision depends on could not be read (RBAC): what the tool could not see may change the answer" },
    WeightDecl { weight: Weight::ConfigRejected, name: "config-rejected", points: 70,
        meaning: "a sidecar's /config_dump holds an `error_state`: Envoy refused an update of that resource and runs an older version of it, or none" },
];

/// The highest confidence a finding can have.
pub const CAP: i32 = 99;

impl Weight {
    pub fn decl(self) -> &'static WeightDecl {
        WEIGHTS
            .iter()
            .find(|d| d.weight == self)
            .expect("every Weight has a row in WEIGHTS (tested)")
    }

    pub fn points(self) -> i32 {
        self.decl().points
    }
}

/// The evidence a finding holds, and its score.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confidence {
    basis: Vec<Weight>,
}

impl Confidence {
    pub fn of(weights: &[Weight]) -> Confidence {
        let mut c = Confidence::default();
        for w in weights {
            c.add(*w);
        }
        c
    }

    pub fn add(&mut self, w: Weight) {
        self.basis.push(w);
    }

    pub fn add_if(&mut self, cond: bool, w: Weight) {
        if cond {
            self.add(w);
        }
    }

    pub fn basis(&self) -> &[Weight] {
        &self.basis
    }

    /// The sum of the weights, clamped to 0–[`CAP`].
    pub fn score(&self) -> u8 {
        let sum: i32 = self.basis.iter().map(|w| w.points()).sum();
        sum.clamp(0, CAP) as u8
    }
}

/// The table as Markdown, for `docs/findings.md`.
pub fn markdown_table() -> String {
    let mut s = String::from("| evidence | points | meaning |\n|---|---|---|\n");
    for d in WEIGHTS {
        let pts = if d.points > 0 {
            format!("+{}", d.points)
        } else {
            d.points.to_string()
        };
        s.push_str(&format!("| `{}` | {pts} | {} |\n", d.name, d.meaning));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_is_declared_once_with_its_serde_name() {
        for d in WEIGHTS {
            assert_eq!(WEIGHTS.iter().filter(|o| o.weight == d.weight).count(), 1);
            let json = serde_json::to_value(d.weight).unwrap();
            assert_eq!(
                json, d.name,
                "the table names the weight as the report does"
            );
        }
        let all = [
            Weight::ConfigPredicts,
            Weight::ConfigCertain,
            Weight::ConfigPitfall,
            Weight::ClientClusterConfirms,
            Weight::ServerListenerConfirms,
            Weight::ClientLog,
            Weight::ServerLog,
            Weight::DistinctiveFlag,
            Weight::HostHealth,
            Weight::IntermittentPattern,
            Weight::ClientCounter,
            Weight::ServerCounter,
            Weight::Metrics,
            Weight::ProxyRunsOtherRule,
            Weight::PredictionContradicted,
            Weight::ConfigRouteCertain,
            Weight::ClientClusterMissing,
            Weight::ConfigAdvisory,
            Weight::ConfigHidden,
            Weight::ConfigRejected,
        ];
        assert_eq!(all.len(), WEIGHTS.len());
        for w in all {
            let _ = w.decl();
        }
    }

    #[test]
    fn scores_sum_and_clamp() {
        use Weight::*;
        assert_eq!(Confidence::of(&[ConfigPredicts]).score(), 40);
        // Config + cluster + listener + both logs + both counters, then a disagreeing proxy.
        let full = [
            ConfigPredicts,
            ClientClusterConfirms,
            ServerListenerConfirms,
            ClientLog,
            ServerLog,
            ClientCounter,
            ServerCounter,
            PredictionContradicted,
        ];
        assert_eq!(Confidence::of(&full).score(), 99);
        assert_eq!(Confidence::of(&[ClientLog, DistinctiveFlag]).score(), 90);
        assert_eq!(Confidence::of(&[PredictionContradicted]).score(), 0);
    }
}
