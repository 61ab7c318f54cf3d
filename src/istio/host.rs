//! Host names as Istio resolves and matches them.
//!
//! Place in the flow: a pure helper (istio/) for model and analyze. Every
//! resolution takes the cluster domain ([`fqdn`]); the model reads it once.
//!
//! Sources: istio/istio `pilot/pkg/model/config.go` (`ResolveShortnameToFQDN`,
//! `MostSpecificHostMatch`), `pkg/config/host/name.go` (`Name.Matches`,
//! `SubsetOf`), `pkg/config/host/names.go` (`MoreSpecific`).

use std::cmp::Ordering;

/// Kubernetes' default cluster domain.
pub const DEFAULT_DOMAIN_SUFFIX: &str = "cluster.local";

/// Resolve a host written in a config object to the name Istio compares
/// against service host names.
///
/// Istio's rule (istio/istio pilot/pkg/model/config.go `ResolveShortnameToFQDN`,
/// unchanged from 1.1 to today): a host **without any dot** is a short name and
/// becomes `<host>.<rule namespace>.svc.<domain>`; `*` and IP addresses stay;
/// anything that contains a dot is taken **as written**.
///
/// So `httpbin` in namespace `foo` → `httpbin.foo.svc.cluster.local`, but
/// `httpbin.foo` stays `httpbin.foo` and matches no Kubernetes service. Use
/// [`probable_intent`] to recognize that mistake.
pub fn fqdn(host: &str, rule_namespace: &str, domain_suffix: &str) -> String {
    if host.is_empty() || host == "*" || host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    if host.contains('.') {
        return host.to_string();
    }
    let mut out = host.to_string();
    if !rule_namespace.is_empty() {
        out.push('.');
        out.push_str(rule_namespace);
    }
    if !domain_suffix.is_empty() {
        out.push_str(".svc.");
        out.push_str(domain_suffix);
    }
    out
}

/// For a host Istio takes literally but that looks like a Kubernetes
/// `name.namespace` or `name.namespace.svc` short form, the FQDN the author
/// most likely meant (`httpbin.foo` → `httpbin.foo.svc.cluster.local`).
/// `None` for short names (Istio expands those itself), wildcards, IPs and
/// names that already end in the domain suffix.
pub fn probable_intent(host: &str, domain_suffix: &str) -> Option<String> {
    if host.starts_with('*') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if host.ends_with(&format!(".{domain_suffix}")) || host == domain_suffix {
        return None;
    }
    let parts: Vec<&str> = host.split('.').collect();
    match parts.as_slice() {
        [name, ns] if !name.is_empty() && !ns.is_empty() => {
            Some(format!("{name}.{ns}.svc.{domain_suffix}"))
        }
        [name, ns, "svc"] if !name.is_empty() && !ns.is_empty() => {
            Some(format!("{name}.{ns}.svc.{domain_suffix}"))
        }
        _ => None,
    }
}

/// `*.foo.com`, `*`.
pub fn is_wildcard(host: &str) -> bool {
    host.starts_with('*')
}

/// Does config host `pattern` (possibly a wildcard) cover the concrete
/// service host `host`?
///
/// Istio (pilot/pkg/model/config.go `mostSpecificHostWildcardMatch`): a
/// wildcard matches when the host ends with the pattern minus its leading
/// `*`; so `*` matches everything, `*.local` matches
/// `httpbin.foo.svc.cluster.local`, and `*.foo.svc.cluster.local` does **not**
/// match `foo.svc.cluster.local`. Non-wildcards must be equal. If `host`
/// itself is a wildcard, it is covered only by an equal or broader wildcard
/// (pkg/config/host/name.go `SubsetOf`).
pub fn matches(pattern: &str, host: &str) -> bool {
    match (is_wildcard(pattern), is_wildcard(host)) {
        (false, false) => pattern == host,
        (true, false) => host.ends_with(&pattern[1..]),
        (true, true) => pattern.len() <= host.len() && host[1..].ends_with(&pattern[1..]),
        (false, true) => false,
    }
}

/// Istio's specificity order, as a sort order: `Less` means `a` is **more**
/// specific than `b` and sorts first.
///
/// pkg/config/host/names.go `MoreSpecific`: non-wildcards before wildcards;
/// within each group longer names first; equal lengths alphabetically.
/// This is a total order (equal only for equal strings).
pub fn specificity_order(a: &str, b: &str) -> Ordering {
    match (is_wildcard(a), is_wildcard(b)) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        _ => b.len().cmp(&a.len()).then_with(|| a.cmp(b)),
    }
}

/// `true` when `a` is strictly more specific than `b`.
pub fn more_specific(a: &str, b: &str) -> bool {
    specificity_order(a, b) == Ordering::Less
}

/// The most specific of `candidates` that [`matches`] `host`, as Istio's
/// `MostSpecificHostMatch` picks it (exact match first, then the longest
/// matching wildcard).
pub fn most_specific_match<'a, I>(host: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .filter(|c| matches(c, host))
        .min_by(|a, b| specificity_order(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fqdn_local(host: &str, ns: &str) -> String {
        fqdn(host, ns, DEFAULT_DOMAIN_SUFFIX)
    }

    #[test]
    fn short_names_resolve_in_rule_namespace() {
        assert_eq!(
            fqdn_local("httpbin", "foo"),
            "httpbin.foo.svc.cluster.local"
        );
        assert_eq!(
            fqdn("httpbin", "foo", "example.org"),
            "httpbin.foo.svc.example.org"
        );
        assert_eq!(fqdn_local("*", "foo"), "*");
        assert_eq!(fqdn_local("*.local", "foo"), "*.local");
        assert_eq!(fqdn_local("10.0.0.1", "foo"), "10.0.0.1");
        assert_eq!(
            fqdn_local("httpbin.foo.svc.cluster.local", "bar"),
            "httpbin.foo.svc.cluster.local"
        );
    }

    #[test]
    fn dotted_names_are_taken_literally_like_istio() {
        // ResolveShortnameToFQDN only expands names without a dot.
        assert_eq!(fqdn_local("httpbin.foo", "foo"), "httpbin.foo");
        assert_eq!(
            probable_intent("httpbin.foo", DEFAULT_DOMAIN_SUFFIX).as_deref(),
            Some("httpbin.foo.svc.cluster.local")
        );
        assert_eq!(
            probable_intent("httpbin.foo.svc", DEFAULT_DOMAIN_SUFFIX).as_deref(),
            Some("httpbin.foo.svc.cluster.local")
        );
        assert_eq!(probable_intent("httpbin", DEFAULT_DOMAIN_SUFFIX), None);
        assert_eq!(
            probable_intent("httpbin.foo.svc.cluster.local", DEFAULT_DOMAIN_SUFFIX),
            None
        );
        assert_eq!(probable_intent("*.foo", DEFAULT_DOMAIN_SUFFIX), None);
    }

    #[test]
    fn wildcard_matching() {
        let h = "httpbin.foo.svc.cluster.local";
        assert!(matches("*", h));
        assert!(matches("*.local", h));
        assert!(matches("*.foo.svc.cluster.local", h));
        assert!(!matches("*.bar.svc.cluster.local", h));
        assert!(!matches("*.foo.svc.cluster.local", "foo.svc.cluster.local"));
        assert!(matches(h, h));
        assert!(!matches("httpbin.foo", h));
        // wildcard host covered only by broader wildcards
        assert!(matches("*.local", "*.foo.local"));
        assert!(!matches("*.foo.local", "*.local"));
        assert!(!matches("a.foo.local", "*.foo.local"));
    }

    #[test]
    fn specificity() {
        assert!(more_specific(
            "httpbin.foo.svc.cluster.local",
            "*.foo.svc.cluster.local"
        ));
        assert!(more_specific("*.foo.svc.cluster.local", "*.local"));
        assert!(more_specific("*.local", "*"));
        assert!(more_specific("a.b", "*.very.long.wildcard.example"));
        let cands = [
            "*",
            "*.local",
            "*.foo.svc.cluster.local",
            "other.foo.svc.cluster.local",
        ];
        assert_eq!(
            most_specific_match("httpbin.foo.svc.cluster.local", cands),
            Some("*.foo.svc.cluster.local")
        );
        assert_eq!(most_specific_match("x.bar", ["*.foo"]), None);
    }

    fn host_strategy() -> impl Strategy<Value = String> {
        prop_oneof!["[a-c]{1,3}(\\.[a-c]{1,3}){0,3}", "\\*(\\.[a-c]{1,3}){0,3}",]
    }

    proptest! {
        #[test]
        fn specificity_is_a_total_order(a in host_strategy(), b in host_strategy(), c in host_strategy()) {
            let ab = specificity_order(&a, &b);
            let ba = specificity_order(&b, &a);
            prop_assert_eq!(ab, ba.reverse());
            prop_assert_eq!(ab == Ordering::Equal, a == b);
            if ab != Ordering::Greater && specificity_order(&b, &c) != Ordering::Greater {
                prop_assert_ne!(specificity_order(&a, &c), Ordering::Greater);
            }
        }

        #[test]
        fn exact_match_always_wins(h in "[a-c]{1,3}(\\.[a-c]{1,3}){1,3}", w in host_strategy()) {
            let picked = most_specific_match(&h, [w.as_str(), h.as_str()]);
            prop_assert_eq!(picked, Some(h.as_str()));
        }

        #[test]
        fn fqdn_never_panics(h in ".{0,20}", ns in "[a-z]{0,5}") {
            let _ = fqdn_local(&h, &ns);
            let _ = probable_intent(&h, DEFAULT_DOMAIN_SUFFIX);
            let _ = matches(&h, &ns);
        }
    }
}
