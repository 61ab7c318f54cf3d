//! An allowlist from one ClusterRole's rules, checked the way Kubernetes RBAC
//! checks resource requests.

use serde_json::{json, Value};

/// One request, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// Plural, or `plural/subresource`.
    pub resource: String,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
struct Rule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    resource_names: Vec<String>,
}

/// The rules of one ClusterRole.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Rules {
    /// From a ClusterRole object (or a bare `{rules: [...]}`).
    pub fn from_cluster_role(role: &Value) -> Rules {
        let rules = role
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| Rule {
                        api_groups: strings(r.get("apiGroups")),
                        resources: strings(r.get("resources")),
                        verbs: strings(r.get("verbs")),
                        resource_names: strings(r.get("resourceNames")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Rules { rules }
    }

    pub fn allows(&self, a: &Attributes<'_>) -> bool {
        self.rules.iter().any(|r| rule_allows(r, a))
    }
}

fn rule_allows(r: &Rule, a: &Attributes<'_>) -> bool {
    let verb_ok = r.verbs.iter().any(|v| v == "*" || v == a.verb);
    let group_ok = r.api_groups.iter().any(|g| g == "*" || g == a.group);
    let resource_ok = r.resources.iter().any(|res| {
        if res == "*" || *res == a.resource {
            return true;
        }
        // `*/status` matches any resource's status subresource.
        match (res.split_once('/'), a.resource.split_once('/')) {
            (Some(("*", sub)), Some((_, want))) => sub == want,
            _ => false,
        }
    });
    let name_ok = r.resource_names.is_empty()
        || a.name
            .is_some_and(|n| r.resource_names.iter().any(|rn| rn == n));
    verb_ok && group_ok && resource_ok && name_ok
}

/// Answer a SelfSubjectAccessReview or SelfSubjectRulesReview (`body` is
/// the request object) from the allowlist; no allowlist allows everything.
pub fn review(rules: Option<&Rules>, kind: &str, mut body: Value) -> Value {
    match kind {
        "SelfSubjectRulesReview" => {
            let resource_rules: Vec<Value> = match rules {
                None => vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
                Some(r) => r
                    .rules
                    .iter()
                    .map(|r| {
                        let mut v = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                        if !r.resource_names.is_empty() {
                            v["resourceNames"] = json!(r.resource_names);
                        }
                        v
                    })
                    .collect(),
            };
            body["status"] = json!({
                "resourceRules": resource_rules,
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            });
        }
        _ => {
            let attrs = body.pointer("/spec/resourceAttributes").cloned();
            let allowed = match (rules, attrs) {
                (None, _) | (_, None) => true,
                (Some(rules), Some(a)) => {
                    let s = |k: &str| {
                        a.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    let (verb, group, ns, name) =
                        (s("verb"), s("group"), s("namespace"), s("name"));
                    let (resource, sub) = (s("resource"), s("subresource"));
                    let resource = if sub.is_empty() {
                        resource
                    } else {
                        format!("{resource}/{sub}")
                    };
                    rules.allows(&Attributes {
                        verb: &verb,
                        group: &group,
                        resource,
                        namespace: (!ns.is_empty()).then_some(ns.as_str()),
                        name: (!name.is_empty()).then_some(name.as_str()),
                    })
                }
            };
            body["status"] = if allowed {
                json!({"allowed": true, "reason": "allowed by the lab's RBAC allowlist"})
            } else {
                json!({"allowed": false})
            };
        }
    }
    body
}

/// `pods "x" is forbidden: User "lab" cannot get resource "pods" in API group "" in the namespace "foo"`.
pub fn forbidden_message(a: &Attributes<'_>, qualified: &str) -> String {
    let subject = match a.name {
        Some(n) => format!("{qualified} \"{n}\""),
        None => qualified.to_string(),
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User \"lab\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        a.verb, a.resource, a.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &str,
        name: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group,
            resource: resource.to_string(),
            namespace: Some("foo"),
            name,
        }
    }

    #[test]
    fn rules_allow_what_they_list() {
        let role = json!({"kind": "ClusterRole", "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
            {"apiGroups": ["networking.istio.io"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["istio"]},
            {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
        ]});
        let r = Rules::from_cluster_role(&role);
        assert!(r.allows(&attrs("list", "", "pods", None)));
        assert!(r.allows(&attrs("get", "", "pods/log", Some("p"))));
        assert!(!r.allows(&attrs("watch", "", "pods", None)));
        assert!(!r.allows(&attrs("list", "", "services", None)));
        assert!(r.allows(&attrs(
            "patch",
            "networking.istio.io",
            "destinationrules",
            Some("x")
        )));
        assert!(r.allows(&attrs("get", "", "configmaps", Some("istio"))));
        assert!(!r.allows(&attrs("get", "", "configmaps", Some("other"))));
        assert!(!r.allows(&attrs("list", "", "configmaps", None)));
        assert!(r.allows(&attrs("create", "", "pods/portforward", Some("p"))));
        assert!(!r.allows(&attrs("get", "apps", "deployments", Some("p"))));
        let ssar = json!({"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes":
            {"namespace": "foo", "verb": "create", "resource": "pods", "subresource": "portforward", "name": "p"}}});
        assert_eq!(
            review(Some(&r), "SelfSubjectAccessReview", ssar.clone())["status"]["allowed"],
            true
        );
        let mut denied = ssar.clone();
        denied["spec"]["resourceAttributes"]["verb"] = json!("get");
        assert_eq!(
            review(Some(&r), "SelfSubjectAccessReview", denied)["status"]["allowed"],
            false
        );
        assert_eq!(
            review(None, "SelfSubjectAccessReview", ssar)["status"]["allowed"],
            true
        );
        let rules = review(
            Some(&r),
            "SelfSubjectRulesReview",
            json!({"spec": {"namespace": "foo"}}),
        );
        assert_eq!(
            rules["status"]["resourceRules"].as_array().unwrap().len(),
            4
        );
        assert_eq!(
            forbidden_message(&attrs("list", "", "pods", None), "pods"),
            "pods is forbidden: User \"lab\" cannot list resource \"pods\" in API group \"\" in the namespace \"foo\""
        );
    }
}
