//! Reading the words typed so far against the clap command tree: which
//! subcommand they reach, which flags they set (the connection flags are
//! kept, so live names come from the cluster the command would use), and what
//! the last, partial word is: a flag name, a flag's value or a positional.
//!
//! The tree is [`crate::cli::Cli`]'s own (`CommandFactory::command()`), so a
//! new subcommand or flag is completed without touching this module.

use clap::{Arg, ArgAction, Command};
use std::path::PathBuf;

/// The connection flags among the words (`--kubeconfig`, `--context`,
/// `-n/--namespace`), as kubectl would honour them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conn {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// What the last word is.
#[derive(Debug)]
pub enum Slot<'c> {
    /// A flag name (the word starts with `-`).
    FlagName,
    /// The value of `arg`; `prefix` is what precedes the value in the word
    /// (`--output=` for `--output=js`, empty when the value is its own word).
    FlagValue { arg: &'c Arg, prefix: String },
    /// The `index`-th positional word of the subcommand (0-based), or a
    /// subcommand name when the command has subcommands and no positional yet.
    Positional { index: usize },
}

/// The words read up to the last one.
#[derive(Debug)]
pub struct Parsed<'c> {
    /// The deepest subcommand reached (the root when none).
    pub cmd: &'c Command,
    /// Ids of the flags already given to it (or its parents).
    pub seen: Vec<String>,
    pub conn: Conn,
    /// The slot of the last word, and that word without its `prefix`.
    pub slot: Slot<'c>,
    pub partial: String,
}

/// Reads `words` (the plugin's arguments; the last one is being completed
/// and may be empty) against the built command tree `root`.
pub fn parse<'c>(root: &'c Command, words: &[String]) -> Parsed<'c> {
    let (last, before) = match words.split_last() {
        Some((last, before)) => (last.as_str(), before),
        None => ("", &[][..]),
    };
    let mut p = Parsed {
        cmd: root,
        seen: Vec::new(),
        conn: Conn::default(),
        slot: Slot::FlagName,
        partial: String::new(),
    };
    let mut positionals = 0usize;
    let mut pending: Option<&'c Arg> = None;
    let mut dashdash = false;
    for w in before {
        if let Some(arg) = pending.take() {
            p.record(arg, w);
            continue;
        }
        if dashdash {
            positionals += 1;
            continue;
        }
        if w == "--" {
            dashdash = true;
        } else if let Some(rest) = w.strip_prefix("--") {
            let (name, value) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (rest, None),
            };
            if let Some(arg) = find_long(p.cmd, name) {
                p.seen.push(arg.get_id().to_string());
                if takes_value(arg) {
                    match value {
                        Some(v) => p.record(arg, v),
                        None => pending = Some(arg),
                    }
                }
            }
        } else if w.len() > 1 && w.starts_with('-') {
            pending = p.shorts(&w[1..]);
        } else if positionals == 0 && p.cmd.has_subcommands() {
            match find_subcommand(p.cmd, w) {
                Some(sub) => p.cmd = sub,
                None => positionals += 1,
            }
        } else {
            positionals += 1;
        }
    }
    p.partial = last.to_string();
    p.slot = if let Some(arg) = pending {
        Slot::FlagValue {
            arg,
            prefix: String::new(),
        }
    } else if dashdash || !last.starts_with('-') {
        Slot::Positional { index: positionals }
    } else if let Some((flag, value)) = last.split_once('=') {
        // `--output=js`, or cobra's `-o=js` (the last short letter before `=`).
        let arg = match flag.strip_prefix("--") {
            Some(long) => find_long(p.cmd, long),
            None => flag.chars().last().and_then(|c| find_short(p.cmd, c)),
        };
        match arg.filter(|a| takes_value(a)) {
            Some(arg) => {
                p.partial = value.to_string();
                Slot::FlagValue {
                    arg,
                    prefix: format!("{flag}="),
                }
            }
            None => Slot::FlagName,
        }
    } else {
        Slot::FlagName
    };
    p
}

impl<'c> Parsed<'c> {
    /// A cluster of short flags (`-A`, `-nfoo`, `-An foo`); returns the flag
    /// whose value is the next word, if any.
    fn shorts(&mut self, letters: &str) -> Option<&'c Arg> {
        for (i, c) in letters.char_indices() {
            let arg = find_short(self.cmd, c)?;
            self.seen.push(arg.get_id().to_string());
            if takes_value(arg) {
                let rest = &letters[i + c.len_utf8()..];
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                if rest.is_empty() {
                    return Some(arg);
                }
                self.record(arg, rest);
                return None;
            }
        }
        None
    }

    /// Keeps the connection flags' values.
    fn record(&mut self, arg: &Arg, value: &str) {
        match arg.get_id().as_str() {
            "kubeconfig" => self.conn.kubeconfig = Some(expand_home(value)),
            "context" => self.conn.context = Some(value.to_string()),
            "namespace" => self.conn.namespace = Some(value.to_string()),
            _ => {}
        }
    }
}

/// The words reach the shell unexpanded (`--kubeconfig ~/k.yaml`): a leading
/// `~/` means $HOME as the shell would have read it.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Whether the flag is followed by a value (`-n foo`), not a switch (`-A`).
pub fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Whether the flag may be given again (`--from a --from b`).
pub fn repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
}

fn find_long<'c>(cmd: &'c Command, name: &str) -> Option<&'c Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| {
        a.get_short() == Some(c)
            || a.get_all_short_aliases()
                .is_some_and(|aliases| aliases.contains(&c))
    })
}

fn find_subcommand<'c>(cmd: &'c Command, word: &str) -> Option<&'c Command> {
    cmd.get_subcommands()
        .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
}

/// The positional argument that the `index`-th positional word fills.
pub fn positional_at(cmd: &Command, index: usize) -> Option<&Arg> {
    let mut left = index;
    for arg in cmd.get_positionals() {
        let max = arg.get_num_args().map_or(1, |r| r.max_values());
        if left < max {
            return Some(arg);
        }
        left -= max;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    fn with<R>(w: &[&str], f: impl FnOnce(Parsed<'_>) -> R) -> R {
        let mut root = Cli::command();
        root.build();
        f(parse(&root, &words(w)))
    }

    #[test]
    fn empty_word_at_the_root_is_a_subcommand_slot() {
        with(&[""], |p| {
            assert_eq!(p.cmd.get_name(), "kubectl-mesh503");
            assert!(matches!(p.slot, Slot::Positional { index: 0 }));
        });
        with(&[], |p| {
            assert!(matches!(p.slot, Slot::Positional { index: 0 }))
        });
    }

    #[test]
    fn reaches_the_subcommand_and_keeps_connection_flags() {
        with(
            &[
                "--kubeconfig",
                "/k.yaml",
                "diagnose",
                "-n",
                "foo",
                "--context=lab",
                "",
            ],
            |p| {
                assert_eq!(p.cmd.get_name(), "diagnose");
                assert_eq!(
                    p.conn,
                    Conn {
                        kubeconfig: Some("/k.yaml".into()),
                        context: Some("lab".into()),
                        namespace: Some("foo".into()),
                    }
                );
                assert!(matches!(p.slot, Slot::Positional { index: 0 }));
                assert!(p.seen.contains(&"namespace".to_string()));
            },
        );
    }

    #[test]
    fn a_flag_without_its_value_yet_is_a_value_slot() {
        with(&["diagnose", "--namespace", ""], |p| match p.slot {
            Slot::FlagValue { arg, prefix } => {
                assert_eq!(arg.get_id(), "namespace");
                assert_eq!(prefix, "");
            }
            other => panic!("{other:?}"),
        });
        with(&["diagnose", "-o", "j"], |p| match p.slot {
            Slot::FlagValue { arg, .. } => {
                assert_eq!(arg.get_id(), "output");
                assert_eq!(p.partial, "j");
            }
            other => panic!("{other:?}"),
        });
    }

    #[test]
    fn flag_equals_value_in_the_last_word() {
        with(&["diagnose", "--output=js"], |p| match p.slot {
            Slot::FlagValue { arg, prefix } => {
                assert_eq!(arg.get_id(), "output");
                assert_eq!(prefix, "--output=");
                assert_eq!(p.partial, "js");
            }
            other => panic!("{other:?}"),
        });
        with(&["diagnose", "-o=t"], |p| match p.slot {
            Slot::FlagValue { prefix, .. } => assert_eq!(prefix, "-o="),
            other => panic!("{other:?}"),
        });
    }

    #[test]
    fn short_clusters_and_attached_values() {
        with(&["diagnose", "-Anfoo", "svc/a", ""], |p| {
            assert_eq!(p.conn.namespace.as_deref(), Some("foo"));
            assert!(matches!(p.slot, Slot::Positional { index: 1 }));
        });
        with(&["diagnose", "-An", ""], |p| {
            assert!(matches!(p.slot, Slot::FlagValue { .. }));
        });
    }

    #[test]
    fn values_are_not_positionals_and_dashdash_ends_flags() {
        with(&["diagnose", "--from", "pod/x", "svc/a", ""], |p| {
            assert!(matches!(p.slot, Slot::Positional { index: 1 }));
        });
        with(&["diagnose", "--", "-x"], |p| {
            assert!(matches!(p.slot, Slot::Positional { index: 0 }));
        });
        with(&["diagnose", "--n"], |p| {
            assert!(matches!(p.slot, Slot::FlagName));
        });
    }

    #[test]
    fn tilde_in_kubeconfig_means_home() {
        let home = std::env::var_os("HOME").expect("HOME is set for tests");
        with(&["--kubeconfig", "~/k", ""], |p| {
            assert_eq!(p.conn.kubeconfig, Some(PathBuf::from(home).join("k")));
        });
    }

    #[test]
    fn positional_index_maps_onto_args() {
        let mut root = Cli::command();
        root.build();
        let diagnose = root.find_subcommand("diagnose").unwrap();
        assert_eq!(positional_at(diagnose, 0).unwrap().get_id(), "target");
        assert!(positional_at(diagnose, 1).is_none());
        let tls = root.find_subcommand("tls-check").unwrap();
        assert_eq!(positional_at(tls, 3).unwrap().get_id(), "targets");
    }
}
