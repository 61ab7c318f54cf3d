//! Report stage: fitting text to a width. The width of the output
//! ([`detect_width`]), wrapping on word boundaries with a hanging indent
//! ([`wrap`]) and a [`Doc`] the human report is written into. Rendering only.
//!
//! Rules (docs/output.md): lines break only at spaces. A single token too
//! long for a line of its own (a cluster or stat name such as
//! `cluster.outbound|8000||httpbin.foo.svc.cluster.local.upstream_cx_…`) is
//! broken after one of [`TOKEN_BREAKS`], never inside a run of letters or
//! digits; a piece with no such character that is still too long is left
//! whole and is the only thing that may pass the width. Pasteable blocks
//! (a fix's `kubectl apply` heredoc, the verify command) are never wrapped.

use std::io::IsTerminal;
use unicode_width::UnicodeWidthStr;

/// Width used when standard output is not a terminal and `COLUMNS` is unset.
pub const PIPED_WIDTH: usize = 100;
/// Narrowest width honoured; below it the report would be unreadable.
pub const MIN_WIDTH: usize = 40;
/// Widest width honoured (a bound, so nothing is laid out for `COLUMNS=10⁹`).
pub const MAX_WIDTH: usize = 1000;

/// Characters after which an over-long token may be broken: first these,
/// then, for a piece still too long, [`WEAK_BREAKS`].
pub const TOKEN_BREAKS: &[char] = &['|', '.', '/', ',', ':', '=', '&', '?', ';'];
/// Breaks used only inside a piece still too long for a line.
pub const WEAK_BREAKS: &[char] = &['-', '_'];

/// The output width: the terminal's when standard output is one, else
/// `COLUMNS` (a positive number), else [`PIPED_WIDTH`]; clamped to
/// [`MIN_WIDTH`]..=[`MAX_WIDTH`].
pub fn detect_width() -> usize {
    let tty = std::io::stdout()
        .is_terminal()
        .then(|| terminal_size::terminal_size_of(std::io::stdout()))
        .flatten()
        .map(|(w, _)| w.0 as usize)
        .filter(|w| *w > 0);
    let w = tty
        .or_else(|| columns_env(std::env::var("COLUMNS").ok().as_deref()))
        .unwrap_or(PIPED_WIDTH);
    w.clamp(MIN_WIDTH, MAX_WIDTH)
}

/// `COLUMNS` as a width, if it is a positive whole number.
pub fn columns_env(v: Option<&str>) -> Option<usize> {
    v?.trim().parse::<usize>().ok().filter(|w| *w > 0)
}

/// Display width of `s` in terminal columns.
pub fn width_of(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Splits `token` after each run of `breaks`; the pieces joined give the
/// token back.
fn split_after<'a>(token: &'a str, breaks: &[char]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = token.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        // After a run of separators (`||`), not inside it.
        let next_breaks = chars.peek().is_some_and(|(_, n)| breaks.contains(n));
        if breaks.contains(&c) && !next_breaks {
            let end = i + c.len_utf8();
            out.push(&token[start..end]);
            start = end;
        }
    }
    if start < token.len() {
        out.push(&token[start..]);
    }
    out
}

/// An over-long token in pieces: after [`TOKEN_BREAKS`], and a piece
/// still longer than `room` after [`WEAK_BREAKS`] too.
fn pieces(token: &str, room: usize) -> Vec<&str> {
    split_after(token, TOKEN_BREAKS)
        .into_iter()
        .flat_map(|p| {
            if width_of(p) > room {
                split_after(p, WEAK_BREAKS)
            } else {
                vec![p]
            }
        })
        .collect()
}

/// Wraps `text` into lines of at most `width` columns: the first starts
/// with `first`, the others with `hang`. Words are separated by single
/// spaces in the result (runs of whitespace collapse).
pub fn wrap(text: &str, width: usize, first: &str, hang: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut used = width_of(first);
    // Whether `line` holds a word yet (beyond its indent).
    let mut has_word = false;
    for word in text.split_whitespace() {
        let w = width_of(word);
        if has_word && used + 1 + w <= width {
            line.push(' ');
            line.push_str(word);
            used += 1 + w;
            continue;
        }
        if has_word && width_of(hang) + w <= width {
            lines.push(std::mem::replace(&mut line, hang.to_string()));
            line.push_str(word);
            used = width_of(hang) + w;
            continue;
        }
        if !has_word && used + w <= width {
            line.push_str(word);
            used += w;
            has_word = true;
            continue;
        }
        // Too long for a line of its own: start it on a line of its own
        // and break it at TOKEN_BREAKS (then WEAK_BREAKS).
        if has_word {
            lines.push(std::mem::replace(&mut line, hang.to_string()));
            used = width_of(hang);
            has_word = false;
        }
        let mut sep = "";
        for piece in pieces(word, width.saturating_sub(width_of(hang))) {
            let pw = width_of(piece);
            if has_word && used + sep.len() + pw > width {
                lines.push(std::mem::replace(&mut line, hang.to_string()));
                used = width_of(hang);
                sep = "";
            }
            line.push_str(sep);
            line.push_str(piece);
            used += sep.len() + pw;
            sep = "";
            has_word = true;
        }
    }
    lines.push(line);
    lines
}

/// The human report as it is written: paragraphs wrapped to the width,
/// verbatim blocks kept as they are.
pub struct Doc {
    pub width: usize,
    pub out: String,
}

impl Doc {
    pub fn new(width: usize) -> Doc {
        Doc {
            width,
            out: String::new(),
        }
    }

    /// `text` wrapped, its first line after `first`, the rest after `hang`.
    pub fn para(&mut self, first: &str, hang: &str, text: &str) {
        for l in wrap(text, self.width, first, hang) {
            self.out.push_str(l.trim_end());
            self.out.push('\n');
        }
    }

    /// A line as it is (commands and blocks meant to be pasted).
    pub fn raw(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    pub fn blank(&mut self) {
        self.out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_on_spaces_with_a_hanging_indent() {
        let l = wrap("aaa bbb ccc ddd", 11, "  ", "    ");
        assert_eq!(l, vec!["  aaa bbb", "    ccc ddd"]);
        assert!(l.iter().all(|l| width_of(l) <= 11));
    }

    #[test]
    fn a_word_longer_than_a_line_breaks_after_separators_only() {
        let tok = "outbound|8080||httpbin.foo.svc.cluster.local";
        let l = wrap(&format!("cluster {tok} has"), 24, "", "  ");
        assert!(l.iter().all(|l| width_of(l) <= 24), "{l:?}");
        let joined: String = l.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        assert!(
            joined.replace("| ", "|").replace(". ", ".").contains(tok),
            "{l:?}"
        );
        for line in &l[..l.len() - 1] {
            let last = line.chars().last().unwrap();
            assert!(
                TOKEN_BREAKS.contains(&last) || line.ends_with("cluster"),
                "{l:?}"
            );
        }
    }

    #[test]
    fn a_piece_without_separator_is_left_whole() {
        let l = wrap("abcdefghijklmnop", 8, "", "");
        assert_eq!(l, vec!["abcdefghijklmnop"]);
    }

    #[test]
    fn columns_must_be_a_positive_number() {
        assert_eq!(columns_env(Some("80")), Some(80));
        assert_eq!(columns_env(Some("0")), None);
        assert_eq!(columns_env(Some("wide")), None);
        assert_eq!(columns_env(None), None);
    }
}
