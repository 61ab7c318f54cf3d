//! `kubectl mesh503 completion SHELL`: clap_complete's static script for the
//! `kubectl-mesh503` executable run by its own name. Through kubectl
//! (`kubectl mesh503 …`) completion comes from `kubectl_complete-mesh503`
//! instead (see docs/completion.md); the script says so in a last comment.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;

/// The executable name the scripts complete.
pub const BIN: &str = "kubectl-mesh503";

/// The completion script for `shell`.
///
/// Bash: clap_complete 4.6 spells the state of a subcommand two ways when
/// the executable's name has a hyphen (clap-rs/clap#6421, open): the loop
/// over the words sets `kubectl__mesh503__subcmd__diagnose`, the branches
/// test `kubectl__subcmd__mesh503__subcmd__diagnose`, so nothing after a
/// subcommand completed. The branches are respelled the loop's way.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut buf);
    if shell == Shell::Bash {
        let fixed = String::from_utf8_lossy(&buf).replace(
            "kubectl__subcmd__mesh503__subcmd__",
            "kubectl__mesh503__subcmd__",
        );
        buf = fixed.into_bytes();
    }
    // `#` starts a comment in bash, zsh, fish, elvish and PowerShell; it goes
    // last because zsh's `#compdef` must stay the first line.
    if !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    buf.extend_from_slice(
        b"# Completes the kubectl-mesh503 executable. For `kubectl mesh503 <TAB>`, kubectl (>= 1.26)\n\
          # runs kubectl_complete-mesh503 from PATH instead: see docs/completion.md.\n",
    );
    buf
}

/// Writes [`script`] to `out`; a closed pipe (`… | head`) is an error to
/// report, not a panic.
pub fn write_script(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(&script(shell))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn text(shell: Shell) -> String {
        String::from_utf8(script(shell)).expect("UTF-8 script")
    }

    #[test]
    fn every_script_registers_the_executable_name() {
        let bash = text(Shell::Bash);
        assert!(bash.contains("-o default kubectl-mesh503\n"));
        assert!(
            !bash.contains("kubectl__subcmd__"),
            "clap-rs/clap#6421 respelled"
        );
        let zsh = text(Shell::Zsh);
        assert!(
            zsh.starts_with("#compdef kubectl-mesh503\n"),
            "{}",
            &zsh[..40]
        );
        assert!(text(Shell::Fish).contains("complete -c kubectl-mesh503 "));
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let t = text(shell);
            assert!(
                !t.contains("kubectl mesh503 diagnose"),
                "{shell}: no spaced bin name"
            );
            assert!(t.contains("kubectl_complete-mesh503"), "{shell}: the note");
        }
    }

    /// Sources the bash script and runs its function as bash's `complete -F`
    /// would for the command line `words` (the last word being completed).
    fn bash_complete(words: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubectl-mesh503.bash");
        std::fs::write(&path, script(Shell::Bash)).unwrap();
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let prog = format!(
            "source '{}'\n\
             COMP_WORDS=({})\n\
             COMP_CWORD={}\n\
             fn=$(complete -p kubectl-mesh503 | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
             \"$fn\" kubectl-mesh503 \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            path.display(),
            quoted.join(" "),
            words.len() - 1
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(prog)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "bash failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_bash_script_completes_the_executable() {
        assert_eq!(bash_complete(&["kubectl-mesh503", "di"]), ["diagnose"]);
        let flags = bash_complete(&["kubectl-mesh503", "diagnose", "--ou"]);
        assert_eq!(flags, ["--output"]);
        let formats = bash_complete(&["kubectl-mesh503", "diagnose", "-o", ""]);
        assert!(formats.contains(&"json".to_string()), "{formats:?}");
        let shells = bash_complete(&["kubectl-mesh503", "completion", "z"]);
        assert_eq!(shells, ["zsh"]);
    }

    #[test]
    fn a_closed_pipe_is_an_error_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = write_script(Shell::Bash, &mut Closed).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
