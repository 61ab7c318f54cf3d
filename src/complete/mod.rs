//! Shell completion through kubectl: the `kubectl_complete-mesh503` helper.
//!
//! kubectl (≥ 1.26) completes a plugin's words by running
//! `kubectl_complete-<plugin> WORD… PARTIAL` from PATH (kubernetes/kubectl
//! `pkg/cmd/plugin/plugin_completion.go`, `pluginCompletion`: the plugin's
//! words so far, then the word being completed, empty after a space) and
//! relays the answer in cobra's format ([`protocol`]). This module answers:
//!
//! - subcommand names and flag names, read from [`crate::cli::Cli`]'s clap
//!   tree, so new subcommands and flags are completed without change here;
//! - flag values: enumerations (`-o`), kubeconfig contexts (`--context`),
//!   live namespaces (`-n`, `--istio-namespace`), JSON files (`--snapshot`,
//!   `--config-dump`), other paths;
//! - targets (`svc/NAME`, `deploy/NAME`, `pod/NAME`) and `--from` clients
//!   (`pod/NAME`, `deploy/NAME`, `NAMESPACE/deploy/NAME`) listed live.
//!
//! Live names come from a [`Source`]; the helper's is [`live::Cluster`]
//! (list calls only, one deadline for all). Any failure to read them yields
//! no candidates and directive 4, never an error on the terminal.

pub mod live;
pub mod protocol;
pub mod scripts;
pub mod words;

use clap::{Arg, Command, ValueHint};
pub use protocol::{Candidate, Completions, Directive};
use words::{positional_at, repeatable, takes_value, Conn, Parsed, Slot};

/// The helper's executable name (`kubectl_complete-` + the plugin's name).
pub const HELPER: &str = "kubectl_complete-mesh503";

/// Whether this process was started as [`HELPER`] (e.g. through a symlink
/// `kubectl_complete-mesh503 -> kubectl-mesh503`, which survives
/// `kubectl krew upgrade`): then `kubectl-mesh503` answers completions.
pub fn invoked_as_helper() -> bool {
    std::env::args_os()
        .next()
        .and_then(|arg0| std::path::Path::new(&arg0).file_stem().map(|s| s == HELPER))
        .unwrap_or(false)
}

/// The helper's whole run: reads the words from the command line, prints
/// the answer, exits 0. Silent on stderr: kubectl shows the helper's stderr
/// on the user's terminal, mid-line (errors go to `BASH_COMP_DEBUG_FILE`).
pub fn helper_main() -> ! {
    use clap::CommandFactory;
    use std::io::Write;
    std::panic::set_hook(Box::new(|info| live::debug(&format!("panic: {info}"))));
    let words: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let answer = std::panic::catch_unwind(|| {
        complete(
            crate::cli::Cli::command(),
            &words,
            &live::Cluster::from_env(),
        )
    })
    .unwrap_or_else(|_| Completions::nothing());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(answer.render().as_bytes());
    let _ = out.flush();
    // Not waiting for a fetch thread still stuck past its deadline.
    std::process::exit(0)
}

/// Kinds whose names the cluster is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Service,
    Deployment,
    Pod,
}

impl Kind {
    /// The prefix kubectl users type, and the plugin accepts.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Service => "svc",
            Kind::Deployment => "deploy",
            Kind::Pod => "pod",
        }
    }

    /// Every spelling the plugin's target parser accepts for the kind
    /// (`crate::target`), case-insensitively.
    fn from_prefix(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().as_str() {
            "svc" | "service" | "services" => Some(Kind::Service),
            "deploy" | "deployment" | "deployments" | "deployment.apps" | "deployments.apps" => {
                Some(Kind::Deployment)
            }
            "po" | "pod" | "pods" => Some(Kind::Pod),
            _ => None,
        }
    }
}

/// One question for the cluster (or the kubeconfig).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Names of all namespaces.
    Namespaces,
    /// Context names in the kubeconfig.
    Contexts,
    /// Names of objects of `kind` in `namespace` (`None`: the context's
    /// namespace, else `default`).
    Objects {
        kind: Kind,
        namespace: Option<String>,
    },
}

/// Where live names come from.
pub trait Source {
    /// Answers every need, in order, or says why it cannot (then nothing is
    /// offered). `conn` holds the connection flags found among the words.
    fn fetch(&self, conn: &Conn, needs: &[Need]) -> Result<Vec<Vec<String>>, String>;
}

/// What the value of an argument is, for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Namespace,
    Context,
    /// A diagnose/tls-check target: svc/, deploy/, pod/ or a bare service.
    Target,
    /// A `--from` client: pod/ or deploy/, optionally `NAMESPACE/` first.
    Client,
    JsonFile,
    Other,
}

/// The arguments whose values are names from the cluster or files, by clap
/// id (`crate::cli`'s field names). A test checks that each id still exists.
const VALUE_IDS: &[(&str, Value)] = &[
    ("namespace", Value::Namespace),
    ("istio_namespace", Value::Namespace),
    ("context", Value::Context),
    ("target", Value::Target),
    ("targets", Value::Target),
    ("from", Value::Client),
    ("snapshot", Value::JsonFile),
    ("config_dump", Value::JsonFile),
];

fn value_of(arg: &Arg) -> Value {
    VALUE_IDS
        .iter()
        .find(|(id, _)| arg.get_id() == *id)
        .map_or(Value::Other, |(_, v)| *v)
}

/// The answer for `words` (the plugin's arguments, the last one partial)
/// against the command tree `cmd` (normally `Cli::command()`).
pub fn complete(cmd: Command, words: &[String], source: &dyn Source) -> Completions {
    let mut root = cmd;
    root.build();
    let p = words::parse(&root, words);
    match &p.slot {
        Slot::FlagName => flag_names(&p),
        Slot::FlagValue { arg, prefix } => value(&p, arg, prefix, source),
        Slot::Positional { index } => {
            let mut out = Completions::nothing();
            if *index == 0 && p.cmd.has_subcommands() {
                out.candidates = subcommands(p.cmd, &p.partial);
            }
            match positional_at(p.cmd, *index) {
                Some(arg) => {
                    let more = value(&p, arg, "", source);
                    out.candidates.extend(more.candidates);
                    out.directive = more.directive;
                    out
                }
                None => out,
            }
        }
    }
}

fn subcommands(cmd: &Command, partial: &str) -> Vec<Candidate> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name().starts_with(partial))
        .map(|s| {
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            Candidate::described(s.get_name(), &about)
        })
        .collect()
}

/// `--long` and `-s` names of the subcommand's flags (its own and the
/// global ones), except those already given that cannot be repeated.
fn flag_names(p: &Parsed<'_>) -> Completions {
    let mut out = Vec::new();
    for arg in p.cmd.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() {
            continue;
        }
        if p.seen.iter().any(|s| arg.get_id() == s.as_str()) && !repeatable(arg) {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        if let Some(long) = arg.get_long() {
            let name = format!("--{long}");
            if name.starts_with(&p.partial) {
                out.push(Candidate::described(name, &help));
            }
        }
        if let Some(short) = arg.get_short() {
            let name = format!("-{short}");
            if name.starts_with(&p.partial) {
                out.push(Candidate::described(name, &help));
            }
        }
    }
    Completions::of(out)
}

/// Candidates for the value of `arg`, each written after `prefix`.
fn value(p: &Parsed<'_>, arg: &Arg, prefix: &str, source: &dyn Source) -> Completions {
    if !takes_value(arg) {
        return Completions::nothing();
    }
    let partial = p.partial.as_str();
    let mut out = match value_of(arg) {
        Value::Namespace => names(source, &p.conn, Need::Namespaces, partial),
        Value::Context => names(source, &p.conn, Need::Contexts, partial),
        Value::Target => objects(source, &p.conn, partial, false),
        Value::Client => objects(source, &p.conn, partial, true),
        Value::JsonFile => return Completions::files_with_ext(&["json"]),
        Value::Other => {
            let possible: Vec<Candidate> = arg
                .get_possible_values()
                .into_iter()
                .filter(|v| !v.is_hide_set() && v.get_name().starts_with(partial))
                .map(|v| {
                    let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
                    Candidate::described(v.get_name(), &help)
                })
                .collect();
            if !possible.is_empty() {
                Completions::of(possible)
            } else {
                match arg.get_value_hint() {
                    ValueHint::DirPath => Completions {
                        candidates: Vec::new(),
                        directive: Directive::FILTER_DIRS,
                    },
                    ValueHint::AnyPath | ValueHint::FilePath | ValueHint::ExecutablePath => {
                        return Completions::files()
                    }
                    _ => Completions::nothing(),
                }
            }
        }
    };
    if !prefix.is_empty() {
        for c in &mut out.candidates {
            c.value.insert_str(0, prefix);
        }
    }
    out
}

/// One list of names, filtered by the partial word.
fn names(source: &dyn Source, conn: &Conn, need: Need, partial: &str) -> Completions {
    match source.fetch(conn, std::slice::from_ref(&need)) {
        Ok(mut lists) => Completions::of(
            lists
                .pop()
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.starts_with(partial))
                .map(Candidate::plain)
                .collect(),
        ),
        Err(_) => Completions::nothing(),
    }
}

/// `KIND/NAME` candidates for a target (`client == false`: services,
/// deployments, pods, and bare service names when nothing else matches) or a
/// `--from` client (`client == true`: pods and deployments, optionally in
/// another namespace as `NAMESPACE/KIND/NAME`). The kind is written as typed
/// (`service/`, `po/` …) once the user has typed it, else kubectl's short form.
fn objects(source: &dyn Source, conn: &Conn, partial: &str, client: bool) -> Completions {
    let allowed: &[Kind] = if client {
        &[Kind::Pod, Kind::Deployment]
    } else {
        &[Kind::Service, Kind::Deployment, Kind::Pod]
    };
    let mut namespace = conn.namespace.clone();
    let mut ns_prefix = "";
    let mut rest = partial;
    if client {
        if let Some((first, after)) = partial.split_once('/') {
            if Kind::from_prefix(first).is_none() {
                namespace = Some(first.to_string());
                ns_prefix = &partial[..first.len() + 1];
                rest = after;
            }
        }
    }
    // (kind, how it is written)
    let kinds: Vec<(Kind, &str)> = match rest.split_once('/') {
        Some((typed, _)) => match Kind::from_prefix(typed).filter(|k| allowed.contains(k)) {
            Some(kind) => vec![(kind, typed)],
            None => return Completions::nothing(),
        },
        None => allowed.iter().map(|k| (*k, k.prefix())).collect(),
    };
    let needs: Vec<Need> = kinds
        .iter()
        .map(|(kind, _)| Need::Objects {
            kind: *kind,
            namespace: namespace.clone(),
        })
        .collect();
    let Ok(lists) = source.fetch(conn, &needs) else {
        return Completions::nothing();
    };
    let mut out: Vec<Candidate> = Vec::new();
    for ((_, written), names) in kinds.iter().zip(&lists) {
        out.extend(
            names
                .iter()
                .map(|n| format!("{ns_prefix}{written}/{n}"))
                .filter(|c| c.starts_with(partial))
                .map(Candidate::plain),
        );
    }
    // A bare word is a Service name to the plugin (`crate::target`).
    if out.is_empty() && !client && !partial.is_empty() && !partial.contains('/') {
        if let Some(services) = kinds
            .iter()
            .zip(&lists)
            .find(|((k, _), _)| *k == Kind::Service)
            .map(|(_, names)| names)
        {
            out.extend(
                services
                    .iter()
                    .filter(|n| n.starts_with(partial))
                    .map(Candidate::plain),
            );
        }
    }
    Completions::of(out)
}

#[cfg(test)]
mod tests;
