//! The bounded backtracking matcher that reads an access log line back into
//! the fields of a compiled template ([`super::template`]).
//!
//! Place in the flow: a private part of [`super`] (envoy/ parsers).
//!
//! Bounds (lines and templates both come from the proxy: a client chooses the
//! request path, the listeners the templates): one pass over the line builds
//! a [`LineIndex`] shared by every template tried on it; each matcher step is
//! then O(log n), a template gets [`STEP_BUDGET`] steps, and the matcher
//! keeps its backtracking points on the heap (no recursion).

use super::template::{Field, Tok};

fn is_dash_or_digits(v: &str) -> bool {
    v == "-" || (!v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
}

/// The longest value a typed field (number, flags, method, time) may have:
/// longer is implausible, which keeps every plausibility check O(1).
const MAX_TYPED_VALUE: usize = 256;

/// Per-field plausibility, so that the right era's template wins. `v` never
/// holds a quote, nor whitespace unless `delimited`: candidates end before
/// the first such character (see [`Matcher::field`]).
fn plausible(f: Field, v: &str) -> bool {
    let typed = |ok: &dyn Fn(&str) -> bool| v.len() <= MAX_TYPED_VALUE && ok(v);
    match f {
        Field::ResponseCode | Field::BytesReceived | Field::BytesSent | Field::Duration => {
            typed(&is_dash_or_digits)
        }
        Field::Protocol => v == "-" || v.starts_with("HTTP/"),
        Field::ResponseFlags => typed(&|v| {
            v == "-"
                || (!v.is_empty()
                    && v.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b',' || c == b'_'))
        }),
        Field::StartTime => typed(&|v| !v.is_empty() && !v.contains(']')),
        Field::Method => typed(&|v| {
            v == "-"
                || (!v.is_empty()
                    && v.bytes()
                        .all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_'))
        }),
        _ => true,
    }
}

/// Offsets in one line that bound the candidates of every field, each found
/// in one pass over the line, so that a matcher step costs O(log n) instead
/// of a scan of the rest of the line (fuzz target `access_log`: with the
/// scans, a 60 KB request path cost 120 ms per line).
pub(super) struct LineIndex<'a> {
    line: &'a str,
    /// Offsets of `"`.
    quotes: Vec<u32>,
    /// Offsets of `"` and of whitespace.
    breaks: Vec<u32>,
    /// Literals met so far, each with every place it starts in the line
    /// (overlapping occurrences included). Templates share most literals.
    lits: Vec<(String, Vec<u32>)>,
}

impl<'a> LineIndex<'a> {
    /// `None` for a line of 4 GiB or more (offsets are `u32`).
    pub(super) fn new(line: &'a str) -> Option<LineIndex<'a>> {
        u32::try_from(line.len()).ok()?;
        let mut quotes = Vec::new();
        let mut breaks = Vec::new();
        for (i, c) in line.char_indices() {
            if c == '"' {
                quotes.push(i as u32);
            }
            if c == '"' || c.is_whitespace() {
                breaks.push(i as u32);
            }
        }
        Some(LineIndex {
            line,
            quotes,
            breaks,
            lits: Vec::new(),
        })
    }

    /// The id of `lit` in `lits`, its occurrences found when first needed.
    fn literal(&mut self, lit: &str) -> usize {
        if let Some(id) = self.lits.iter().position(|(l, _)| l == lit) {
            return id;
        }
        let step = lit.chars().next().map_or(1, char::len_utf8);
        let mut at = Vec::new();
        let mut from = 0;
        while let Some(k) = self.line.get(from..).and_then(|r| r.find(lit)) {
            at.push((from + k) as u32);
            from += k + step;
        }
        self.lits.push((lit.to_string(), at));
        self.lits.len() - 1
    }
}

/// The first offset in `sorted` at or after `pos`.
fn first_at(sorted: &[u32], pos: usize) -> Option<usize> {
    let i = sorted.partition_point(|&k| (k as usize) < pos);
    sorted.get(i).map(|&k| k as usize)
}

/// The candidate ends (relative to the field's start) still to try for one field.
enum Ends {
    /// Occurrences `lo..hi` of the next literal (`lits[id]` of the index).
    Lit { id: usize, lo: usize, hi: usize },
    /// Adjacent operators (Istio 1.0's `%PATH%%PROTOCOL%`): every char
    /// boundary, longest value first; `None` when done.
    Split(Option<usize>),
    /// The last token: the rest of the line, once.
    Rest(Option<usize>),
}

/// A field with candidates left: a backtracking point.
struct Choice {
    ti: usize,
    pos: usize,
    field: Field,
    ends: Ends,
    /// A capture of this choice is on `caps`.
    active: bool,
}

/// An iterative backtracking matcher (no recursion: its depth would be the
/// template's length, and templates come from the proxy's own config).
struct Matcher<'a, 'i> {
    toks: &'i [Tok],
    ix: &'i mut LineIndex<'a>,
    /// Steps left: every token step and every candidate tried costs one.
    budget: usize,
    caps: Vec<(Field, &'a str)>,
    stack: Vec<Choice>,
}

/// What one token step did.
enum Step {
    Matched,
    Advance(usize, usize),
    Fail,
}

impl<'a> Matcher<'a, '_> {
    fn spend(&mut self) -> bool {
        self.budget = self.budget.saturating_sub(1);
        self.budget > 0
    }

    fn step(&mut self, ti: usize, pos: usize) -> Step {
        let line = self.ix.line;
        match self.toks.get(ti) {
            None if pos == line.len() => Step::Matched,
            None => Step::Fail,
            Some(Tok::Lit(s)) if line[pos..].starts_with(s.as_str()) => {
                Step::Advance(ti + 1, pos + s.len())
            }
            Some(Tok::Lit(_)) => Step::Fail,
            Some(Tok::Field(f)) => {
                let ends = self.field(ti, pos);
                self.stack.push(Choice {
                    ti,
                    pos,
                    field: *f,
                    ends,
                    active: false,
                });
                Step::Fail // the choice's first candidate is taken by `resume`
            }
        }
    }

    /// The candidates of the field at token `ti`, starting at `pos`.
    fn field(&mut self, ti: usize, pos: usize) -> Ends {
        let prev_lit = match ti.checked_sub(1).and_then(|k| self.toks.get(k)) {
            Some(Tok::Lit(s)) => s.chars().last(),
            _ => None,
        };
        let next = self.toks.get(ti + 1);
        let next_first = match next {
            Some(Tok::Lit(s)) => s.chars().next(),
            _ => None,
        };
        let delimited = matches!(
            (prev_lit, next_first),
            (Some('"'), Some('"')) | (Some('['), Some(']'))
        );
        // A value never contains a quote, nor whitespace outside quotes or
        // brackets: candidates end at or before the first such character.
        let stops = if delimited {
            &self.ix.quotes
        } else {
            &self.ix.breaks
        };
        let line_len = self.ix.line.len();
        let limit = first_at(stops, pos).unwrap_or(line_len);
        match next {
            None => Ends::Rest((limit == line_len).then_some(limit - pos)),
            Some(Tok::Lit(s)) => {
                let id = self.ix.literal(s);
                let occ = &self.ix.lits[id].1;
                let lo = occ.partition_point(|&k| (k as usize) < pos);
                let hi = occ.partition_point(|&k| (k as usize) <= limit);
                Ends::Lit { id, lo, hi }
            }
            Some(Tok::Field(_)) => Ends::Split(Some(limit - pos)),
        }
    }

    /// Take the next candidate of the innermost choice (dropping exhausted
    /// choices): where to continue, or `None` when nothing is left.
    fn resume(&mut self) -> Option<(usize, usize)> {
        loop {
            let c = self.stack.last_mut()?;
            if c.active {
                self.caps.pop();
                c.active = false;
            }
            let line = self.ix.line;
            let rest = &line[c.pos..];
            let end = match &mut c.ends {
                Ends::Lit { id, lo, hi } if *lo < *hi => {
                    let k = self.ix.lits[*id].1[*lo] as usize;
                    *lo += 1;
                    Some(k - c.pos)
                }
                Ends::Lit { .. } => None,
                Ends::Rest(e) => e.take(),
                Ends::Split(e) => {
                    let cur = e.take();
                    *e =
                        cur.and_then(|k| rest[..k].chars().next_back().map(|ch| k - ch.len_utf8()));
                    cur
                }
            };
            let Some(end) = end else {
                self.stack.pop();
                continue;
            };
            let (ti, pos, field) = (c.ti, c.pos, c.field);
            if !self.spend() {
                return None;
            }
            let v = &rest[..end];
            if plausible(field, v) {
                if let Some(c) = self.stack.last_mut() {
                    c.active = true;
                }
                self.caps.push((field, v));
                return Some((ti + 1, pos + end));
            }
        }
    }
}

/// Steps a template gets on one line: every token step and every candidate
/// value tried costs one. A real line needs a few hundred at most (a few per
/// field); a line that does not fit a template is given up after this many.
pub(super) const STEP_BUDGET: usize = 5_000;

/// Match the line of `ix` against a compiled template: the captured fields,
/// or `None` when it does not fit or the template's [`STEP_BUDGET`] runs out.
pub(super) fn match_line<'a>(
    toks: &[Tok],
    ix: &mut LineIndex<'a>,
) -> Option<Vec<(Field, &'a str)>> {
    let mut m = Matcher {
        toks,
        ix,
        budget: STEP_BUDGET,
        caps: Vec::new(),
        stack: Vec::new(),
    };
    let (mut ti, mut pos) = (0, 0);
    loop {
        if !m.spend() {
            return None;
        }
        (ti, pos) = match m.step(ti, pos) {
            Step::Matched => return Some(m.caps),
            Step::Advance(t, p) => (t, p),
            Step::Fail => m.resume()?,
        };
    }
}
