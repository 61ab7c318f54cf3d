//! The answer format of cobra's completion protocol, as kubectl relays it for
//! plugins.
//!
//! kubectl (≥ 1.26) completes `kubectl mesh503 …` by running
//! `kubectl_complete-mesh503 WORD… PARTIAL` from PATH and reading its stdout
//! (kubernetes/kubectl `pkg/cmd/plugin/plugin_completion.go`,
//! `pluginCompletion` / `lookupCompletionExec` / `getPluginCompletions`):
//! one candidate per non-empty line, optionally `candidate<TAB>description`,
//! and when the last line is `:<integer>` that integer is the
//! `ShellCompDirective`. A non-zero exit status throws every line away, and
//! the helper's stderr goes straight to the user's terminal, so the helper
//! always exits 0 and never writes to stderr.
//!
//! The directive bits are cobra's (spf13/cobra `completions.go`,
//! `ShellCompDirective` constants, v1.10): 1 error, 2 no space, 4 no file
//! completion, 8 filter file extensions, 16 filter directories, 32 keep
//! order; 0 is the default (the shell may fall back to file names). cobra's
//! own `__complete` command prints each candidate's first line, trimmed,
//! then `:<directive>`; [`Completions::render`] writes the same shape.

use std::fmt::Write as _;

/// cobra's `ShellCompDirective` bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directive(pub u8);

impl Directive {
    /// Let the shell do its default (file names when there is no candidate).
    pub const DEFAULT: Directive = Directive(0);
    /// An error occurred: the shell ignores the candidates.
    pub const ERROR: Directive = Directive(1);
    /// No space after a single completion (e.g. `svc/` to be continued).
    pub const NO_SPACE: Directive = Directive(2);
    /// Never fall back to file names.
    pub const NO_FILE_COMP: Directive = Directive(4);
    /// The candidates are file extensions to filter file names by.
    pub const FILTER_FILE_EXT: Directive = Directive(8);
    /// Only directory names.
    pub const FILTER_DIRS: Directive = Directive(16);
    /// Keep the candidates in the given order.
    pub const KEEP_ORDER: Directive = Directive(32);

    /// Both sets of bits.
    pub fn with(self, other: Directive) -> Directive {
        Directive(self.0 | other.0)
    }

    /// Whether every bit of `other` is set.
    pub fn has(self, other: Directive) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One completion choice and its optional one-line description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub value: String,
    pub description: Option<String>,
}

impl Candidate {
    pub fn plain(value: impl Into<String>) -> Candidate {
        Candidate {
            value: value.into(),
            description: None,
        }
    }

    pub fn described(value: impl Into<String>, description: &str) -> Candidate {
        let description = one_line(description);
        Candidate {
            value: value.into(),
            description: (!description.is_empty()).then_some(description),
        }
    }
}

/// The full answer: candidates, then the directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    pub candidates: Vec<Candidate>,
    pub directive: Directive,
}

impl Completions {
    /// No candidate and no file-name fallback: the answer to anything that
    /// cannot be completed, and to every error (unreachable cluster, timeout,
    /// unreadable kubeconfig).
    pub fn nothing() -> Completions {
        Completions {
            candidates: Vec::new(),
            directive: Directive::NO_FILE_COMP,
        }
    }

    /// Let the shell complete file names (`--kubeconfig`, `--save-snapshot`).
    pub fn files() -> Completions {
        Completions {
            candidates: Vec::new(),
            directive: Directive::DEFAULT,
        }
    }

    /// File names with one of these extensions (without the dot).
    pub fn files_with_ext(exts: &[&str]) -> Completions {
        Completions {
            candidates: exts.iter().map(|e| Candidate::plain(*e)).collect(),
            directive: Directive::FILTER_FILE_EXT,
        }
    }

    /// These candidates, no file-name fallback.
    pub fn of(candidates: Vec<Candidate>) -> Completions {
        Completions {
            candidates,
            directive: Directive::NO_FILE_COMP,
        }
    }

    /// The values only, for tests and debugging.
    pub fn values(&self) -> Vec<&str> {
        self.candidates.iter().map(|c| c.value.as_str()).collect()
    }

    /// The text kubectl reads: `value[\tdescription]` lines, then
    /// `:<directive>`. Values never contain a line break or a tab (a name
    /// that would is dropped rather than split into two candidates).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.candidates {
            if c.value.is_empty() || c.value.contains(['\n', '\r', '\t']) {
                continue;
            }
            out.push_str(&c.value);
            if let Some(d) = &c.description {
                out.push('\t');
                out.push_str(d);
            }
            out.push('\n');
        }
        let _ = writeln!(out, ":{}", self.directive.0);
        out
    }
}

/// The first line of `text`, whitespace collapsed (a description must stay
/// on the candidate's line; cobra keeps only the first line as well).
fn one_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_candidates_then_directive() {
        let c = Completions::of(vec![
            Candidate::described("diagnose", "Why do calls fail?\nMore text."),
            Candidate::plain("svc/httpbin"),
        ]);
        assert_eq!(
            c.render(),
            "diagnose\tWhy do calls fail?\nsvc/httpbin\n:4\n"
        );
    }

    #[test]
    fn nothing_is_only_the_no_file_directive() {
        assert_eq!(Completions::nothing().render(), ":4\n");
        assert_eq!(Completions::files().render(), ":0\n");
        assert_eq!(
            Completions::files_with_ext(&["json"]).render(),
            "json\n:8\n"
        );
    }

    #[test]
    fn directive_bits_are_cobras() {
        // spf13/cobra completions.go: Error = 1 << iota, then NoSpace,
        // NoFileComp, FilterFileExt, FilterDirs, KeepOrder.
        let all = [
            Directive::ERROR,
            Directive::NO_SPACE,
            Directive::NO_FILE_COMP,
            Directive::FILTER_FILE_EXT,
            Directive::FILTER_DIRS,
            Directive::KEEP_ORDER,
        ];
        for (i, d) in all.iter().enumerate() {
            assert_eq!(d.0, 1 << i);
        }
        let d = Directive::NO_FILE_COMP.with(Directive::NO_SPACE);
        assert_eq!(d.0, 6);
        assert!(d.has(Directive::NO_SPACE) && !d.has(Directive::ERROR));
    }

    #[test]
    fn a_value_with_a_line_break_or_tab_is_dropped_not_split() {
        let c = Completions::of(vec![
            Candidate::plain("a\nb"),
            Candidate::plain("c\td"),
            Candidate::plain(""),
            Candidate::plain("ok"),
        ]);
        assert_eq!(c.render(), "ok\n:4\n");
    }

    #[test]
    fn blank_descriptions_are_omitted() {
        assert_eq!(Candidate::described("x", "  \n ").description, None);
        assert_eq!(
            Candidate::described("x", "  two   words ")
                .description
                .as_deref(),
            Some("two words")
        );
    }
}
