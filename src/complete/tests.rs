//! The completion answers for the plugin's real command tree, with a fake
//! cluster: what each kind of word is offered, and the exact protocol text.

use super::*;
use crate::cli::Cli;
use clap::CommandFactory;
use std::cell::RefCell;

/// A cluster with namespaces `default`, `foo`, `istio-system`; in `foo`:
/// Service httpbin and sleep, Deployments of the same names, two pods; in
/// `bar`: Deployment client. Records what it was asked.
#[derive(Default)]
struct Fake {
    fail: bool,
    asked: RefCell<Vec<(Conn, Need)>>,
}

impl Source for Fake {
    fn fetch(&self, conn: &Conn, needs: &[Need]) -> Result<Vec<Vec<String>>, String> {
        self.asked
            .borrow_mut()
            .extend(needs.iter().map(|n| (conn.clone(), n.clone())));
        if self.fail {
            return Err("connection refused".into());
        }
        Ok(needs
            .iter()
            .map(|n| {
                let v: &[&str] = match n {
                    Need::Namespaces => &["default", "foo", "istio-system"],
                    Need::Contexts => &["lab", "prod"],
                    Need::Objects { kind, namespace } => {
                        match (kind, namespace.as_deref().unwrap_or("default")) {
                            (Kind::Service, "foo") => &["httpbin", "sleep"],
                            (Kind::Deployment, "foo") => &["httpbin", "sleep"],
                            (Kind::Pod, "foo") => &["httpbin-7d9c-abcde", "sleep-5f6d-fghij"],
                            (Kind::Deployment, "bar") => &["client"],
                            _ => &[],
                        }
                    }
                };
                v.iter().map(|s| s.to_string()).collect()
            })
            .collect())
    }
}

fn ask(source: &Fake, w: &[&str]) -> Completions {
    let words: Vec<String> = w.iter().map(|s| s.to_string()).collect();
    complete(Cli::command(), &words, source)
}

fn values(w: &[&str]) -> Vec<String> {
    ask(&Fake::default(), w)
        .values()
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[test]
fn subcommands_at_the_root_with_descriptions() {
    let c = ask(&Fake::default(), &[""]);
    let v = c.values();
    for sub in ["diagnose", "tls-check", "completion", "help"] {
        assert!(v.contains(&sub), "{sub} in {v:?}");
    }
    assert_eq!(c.directive, Directive::NO_FILE_COMP);
    let text = c.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("diagnose\t") && l.len() > "diagnose\t".len()),
        "diagnose has its description:\n{text}"
    );
    assert!(text.ends_with("\n:4\n"), "{text}");
}

#[test]
fn subcommands_filtered_by_prefix() {
    assert_eq!(values(&["d"]), ["diagnose"]);
    assert_eq!(values(&["--context", "lab", "tl"]), ["tls-check"]);
    assert!(values(&["x"]).is_empty());
}

#[test]
fn every_subcommand_of_the_cli_is_offered() {
    // New subcommands (e.g. `scan`) need no change in the completer.
    let offered = values(&[""]);
    for sub in Cli::command().get_subcommands() {
        if !sub.is_hide_set() {
            assert!(
                offered.iter().any(|o| o == sub.get_name()),
                "{}",
                sub.get_name()
            );
        }
    }
}

#[test]
fn flags_of_the_subcommand_including_global_ones() {
    let v = values(&["diagnose", "-"]);
    for f in [
        "--from",
        "--output",
        "-o",
        "--namespace",
        "-n",
        "--context",
        "--help",
    ] {
        assert!(v.iter().any(|x| x == f), "{f} in {v:?}");
    }
    assert!(!v.iter().any(|x| x == "--config-dump"), "tls-check only");
    assert_eq!(values(&["diagnose", "--sn"]), ["--snapshot"]);
}

#[test]
fn flags_already_given_are_not_offered_again_unless_repeatable() {
    let v = values(&["diagnose", "-o", "json", "--from", "pod/a", "--"]);
    assert!(!v.iter().any(|x| x == "--output"), "{v:?}");
    assert!(v.iter().any(|x| x == "--from"), "{v:?}");
}

#[test]
fn enumerated_values_with_their_help() {
    let c = ask(&Fake::default(), &["diagnose", "-o", ""]);
    let v = c.values();
    assert!(v.contains(&"table") && v.contains(&"json"), "{v:?}");
    assert_eq!(values(&["diagnose", "-o", "j"]), ["json"]);
    assert_eq!(values(&["diagnose", "--output=j"]), ["--output=json"]);
    let shells = values(&["completion", ""]);
    for s in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|x| x == s), "{s} in {shells:?}");
    }
}

#[test]
fn namespaces_from_the_cluster() {
    let fake = Fake::default();
    let c = ask(&fake, &["diagnose", "--namespace", ""]);
    assert_eq!(c.values(), ["default", "foo", "istio-system"]);
    assert_eq!(c.render(), "default\nfoo\nistio-system\n:4\n");
    assert_eq!(values(&["-n", "f"]), ["foo"]);
    assert_eq!(
        values(&["diagnose", "--istio-namespace", "is"]),
        ["istio-system"]
    );
    assert_eq!(
        values(&["diagnose", "-n="]),
        ["-n=default", "-n=foo", "-n=istio-system"]
    );
}

#[test]
fn contexts_from_the_kubeconfig() {
    let fake = Fake::default();
    assert_eq!(ask(&fake, &["--context", "p"]).values(), ["prod"]);
    let asked = fake.asked.borrow();
    assert_eq!(asked[0].1, Need::Contexts);
}

#[test]
fn targets_are_kubectl_style_names_in_the_namespace_given() {
    let fake = Fake::default();
    let c = ask(&fake, &["diagnose", "-n", "foo", ""]);
    assert_eq!(
        c.values(),
        [
            "svc/httpbin",
            "svc/sleep",
            "deploy/httpbin",
            "deploy/sleep",
            "pod/httpbin-7d9c-abcde",
            "pod/sleep-5f6d-fghij"
        ]
    );
    assert_eq!(c.directive, Directive::NO_FILE_COMP);
    for (conn, _) in fake.asked.borrow().iter() {
        assert_eq!(conn.namespace.as_deref(), Some("foo"));
    }
}

#[test]
fn a_typed_kind_limits_the_list_and_keeps_its_spelling() {
    let fake = Fake::default();
    let c = ask(&fake, &["diagnose", "-n", "foo", "service/h"]);
    assert_eq!(c.values(), ["service/httpbin"]);
    let asked: Vec<Need> = fake.asked.borrow().iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(
        asked.last(),
        Some(&Need::Objects {
            kind: Kind::Service,
            namespace: Some("foo".into())
        })
    );
    assert_eq!(
        values(&["diagnose", "-n", "foo", "po/s"]),
        ["po/sleep-5f6d-fghij"]
    );
    assert!(values(&["diagnose", "-n", "foo", "cm/x"]).is_empty());
}

#[test]
fn a_bare_word_completes_to_a_service_name() {
    assert_eq!(values(&["diagnose", "-n", "foo", "htt"]), ["httpbin"]);
    assert_eq!(
        values(&["diagnose", "-n", "foo", "s"]),
        ["svc/httpbin", "svc/sleep"]
    );
}

#[test]
fn only_one_diagnose_target_but_several_tls_check_targets() {
    assert!(values(&["diagnose", "-n", "foo", "svc/httpbin", ""]).is_empty());
    let v = values(&["tls-check", "-n", "foo", "pod/sleep-5f6d-fghij", "svc/"]);
    assert_eq!(v, ["svc/httpbin", "svc/sleep"]);
}

#[test]
fn from_offers_pods_and_deployments_also_in_another_namespace() {
    assert_eq!(
        values(&["diagnose", "-n", "foo", "--from", ""]),
        [
            "pod/httpbin-7d9c-abcde",
            "pod/sleep-5f6d-fghij",
            "deploy/httpbin",
            "deploy/sleep"
        ]
    );
    assert_eq!(
        values(&["diagnose", "-n", "foo", "--from", "deploy/s"]),
        ["deploy/sleep"]
    );
    assert_eq!(
        values(&["diagnose", "--from", "bar/deploy/"]),
        ["bar/deploy/client"]
    );
    assert_eq!(
        values(&["diagnose", "--from", "bar/"]),
        ["bar/deploy/client"]
    );
    assert!(values(&["diagnose", "-n", "foo", "--from", "svc/"]).is_empty());
}

#[test]
fn files_for_paths_and_json_for_snapshots() {
    let c = ask(&Fake::default(), &["--kubeconfig", ""]);
    assert_eq!(c.render(), ":0\n");
    let c = ask(&Fake::default(), &["diagnose", "--snapshot", ""]);
    assert_eq!(c.render(), "json\n:8\n");
    let c = ask(&Fake::default(), &["tls-check", "--config-dump", "x"]);
    assert_eq!(c.directive, Directive::FILTER_FILE_EXT);
}

#[test]
fn free_text_values_get_nothing_and_no_files() {
    assert_eq!(
        ask(&Fake::default(), &["diagnose", "--proxy-timeout", ""]).render(),
        ":4\n"
    );
}

#[test]
fn any_cluster_error_gives_no_candidates_and_directive_4() {
    let fake = Fake {
        fail: true,
        ..Fake::default()
    };
    for w in [
        &["diagnose", "-n", "foo", ""][..],
        &["diagnose", "--namespace", ""][..],
        &["diagnose", "--from", "pod/"][..],
        &["--context", ""][..],
    ] {
        assert_eq!(ask(&fake, w).render(), ":4\n", "{w:?}");
    }
}

#[test]
fn connection_flags_are_passed_to_the_source() {
    let fake = Fake::default();
    ask(
        &fake,
        &[
            "--kubeconfig",
            "/tmp/k",
            "--context",
            "lab",
            "diagnose",
            "-n",
            "foo",
            "",
        ],
    );
    let asked = fake.asked.borrow();
    let (conn, _) = &asked[0];
    assert_eq!(
        conn.kubeconfig.as_deref(),
        Some(std::path::Path::new("/tmp/k"))
    );
    assert_eq!(conn.context.as_deref(), Some("lab"));
}

#[test]
fn nothing_is_fetched_for_static_answers() {
    let fake = Fake::default();
    ask(&fake, &[""]);
    ask(&fake, &["diagnose", "--"]);
    ask(&fake, &["diagnose", "-o", ""]);
    assert!(fake.asked.borrow().is_empty());
}

#[test]
fn the_value_ids_exist_in_the_cli() {
    // If a field of `crate::cli` is renamed, its values would silently stop
    // being completed: fail here instead.
    let mut root = Cli::command();
    root.build();
    let mut ids = Vec::new();
    collect_ids(&root, &mut ids);
    for (id, _) in VALUE_IDS {
        assert!(
            ids.iter().any(|i| i == id),
            "no argument with id {id:?} in the CLI"
        );
    }
}

fn collect_ids(cmd: &clap::Command, out: &mut Vec<String>) {
    out.extend(cmd.get_arguments().map(|a| a.get_id().to_string()));
    for sub in cmd.get_subcommands() {
        collect_ids(sub, out);
    }
}
