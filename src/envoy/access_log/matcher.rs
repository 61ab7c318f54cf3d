//! The bounded backtracking matcher that reads an access log line back into
//! the fields of a compiled template ([`super::template`]).
//!
//! Place in the flow: a private part of [`super`] (envoy/ parsers).
//!
//! Bounds: lines and templates both come from the proxy (a client chooses the
//! request path, the listeners the templates), so the work on a line is
//! linear in its length whatever they hold. One pass builds a [`LineIndex`]
//! (where values must stop), shared by every template tried on the line; a
//! template then gets [`budget`] units for the line: a step costs one, and a
//! search for the literal after a field one more per [`SCAN_UNIT`] bytes it
//! reads. Backtracking points live on the heap (no recursion: its depth
//! would be the template's length). Found by fuzz target `access_log` and
//! `fuzz/scale.sh`: a 60 KB request path cost 120 ms per line and template,
//! and a 1,500-operator template overflowed a 256 KiB stack.

use super::template::{Field, Tok};

fn is_dash_or_digits(v: &str) -> bool {
    v == "-" || (!v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
}

/// The longest value a typed field (number, flags, method, time) may have:
/// longer is implausible, which keeps every plausibility check O(1).
const MAX_TYPED_VALUE: usize = 256;

/// Fields whose values are short by nature (numbers, flags, method, time,
/// protocol): at most [`MAX_TYPED_VALUE`] bytes.
fn typed(f: Field) -> bool {
    matches!(
        f,
        Field::ResponseCode
            | Field::BytesReceived
            | Field::BytesSent
            | Field::Duration
            | Field::Protocol
            | Field::ResponseFlags
            | Field::StartTime
            | Field::Method
    )
}

/// Per-field plausibility, so that the right era's template wins. `v` never
/// holds a quote, nor whitespace unless `delimited`: candidates end before
/// the first such character (see [`Matcher::field`]).
fn plausible(f: Field, v: &str) -> bool {
    let typed = |ok: &dyn Fn(&str) -> bool| v.len() <= MAX_TYPED_VALUE && ok(v);
    match f {
        Field::ResponseCode | Field::BytesReceived | Field::BytesSent | Field::Duration => {
            typed(&is_dash_or_digits)
        }
        Field::Protocol => typed(&|v| v == "-" || v.starts_with("HTTP/")),
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

/// Where field values must stop in one line (values never contain a quote,
/// nor whitespace outside quotes or brackets), found in one pass so that a
/// step finds its limit in O(log n) instead of scanning the rest of the line.
pub(super) struct LineIndex<'a> {
    line: &'a str,
    /// Offsets of `"`.
    quotes: Vec<u32>,
    /// Offsets of `"` and of whitespace.
    breaks: Vec<u32>,
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
        })
    }
}

/// The first offset in `sorted` at or after `pos`.
fn first_at(sorted: &[u32], pos: usize) -> Option<usize> {
    let i = sorted.partition_point(|&k| (k as usize) < pos);
    sorted.get(i).map(|&k| k as usize)
}

/// Bytes of literal search that cost one unit of budget.
pub(super) const SCAN_UNIT: usize = 8;

/// The units a template gets on a line of `len` bytes: a real line uses about
/// three per field and one per [`SCAN_UNIT`] bytes (under 150 for a 300-byte
/// line of Istio's format); a line that does not fit is given up after this
/// many, so the work stays linear in the line.
pub(super) fn budget(len: usize) -> usize {
    32 + 2 * len
}

/// The candidate ends (offsets in the line) still to try for one field.
enum Ends {
    /// The next literal (`lit`, token `ti + 1`) found from `from` on, up to
    /// `limit`; searched lazily, non-overlapping.
    Lit { from: usize, limit: usize },
    /// Adjacent operators (Istio 1.0's `%PATH%%PROTOCOL%`): every char
    /// boundary from `limit` down, longest value first; `None` when done.
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

struct Matcher<'a, 'i> {
    toks: &'i [Tok],
    ix: &'i LineIndex<'a>,
    /// Units left (see [`budget`]).
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
    fn spend(&mut self, units: usize) -> bool {
        self.budget = self.budget.saturating_sub(units);
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
                let ends = self.field(ti, pos, *f);
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
    fn field(&self, ti: usize, pos: usize, f: Field) -> Ends {
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
        // Candidates end at or before the first quote (and, outside quotes
        // or brackets, the first whitespace).
        let stops = if delimited {
            &self.ix.quotes
        } else {
            &self.ix.breaks
        };
        let line = self.ix.line;
        let line_len = line.len();
        let mut limit = first_at(stops, pos).unwrap_or(line_len);
        if typed(f) && limit - pos > MAX_TYPED_VALUE {
            // Longer values are implausible: do not enumerate them.
            limit = pos + MAX_TYPED_VALUE;
            while !line.is_char_boundary(limit) {
                limit -= 1;
            }
        }
        match next {
            None => Ends::Rest((limit == line_len).then_some(limit)),
            Some(Tok::Lit(_)) => Ends::Lit { from: pos, limit },
            Some(Tok::Field(_)) => Ends::Split(Some(limit)),
        }
    }

    /// The next candidate end of the innermost choice, and the units it cost.
    fn next_end(&mut self) -> Option<(Option<usize>, usize)> {
        let line = self.ix.line;
        let c = self.stack.last_mut()?;
        Some(match &mut c.ends {
            Ends::Lit { from, limit } => {
                let Some(Tok::Lit(lit)) = self.toks.get(c.ti + 1) else {
                    return Some((None, 1));
                };
                if *from > *limit {
                    return Some((None, 1));
                }
                // An occurrence starts at `limit` at the latest.
                let mut end = (*limit + lit.len()).min(line.len());
                while !line.is_char_boundary(end) {
                    end += 1;
                }
                let window = &line[*from..end];
                match window.find(lit.as_str()) {
                    Some(k) if *from + k <= *limit => {
                        let at = *from + k;
                        *from = at + lit.len();
                        (Some(at), 1 + (k + lit.len()) / SCAN_UNIT)
                    }
                    _ => {
                        *from = usize::MAX;
                        (None, 1 + window.len() / SCAN_UNIT)
                    }
                }
            }
            Ends::Rest(e) => (e.take(), 1),
            Ends::Split(e) => {
                let cur = e.take();
                *e = cur.filter(|k| *k > c.pos).and_then(|k| {
                    line[c.pos..k]
                        .chars()
                        .next_back()
                        .map(|ch| k - ch.len_utf8())
                });
                (cur, 1)
            }
        })
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
            let (ti, pos, field) = (c.ti, c.pos, c.field);
            let (end, cost) = self.next_end()?;
            if !self.spend(cost) {
                return None;
            }
            let Some(end) = end else {
                self.stack.pop();
                continue;
            };
            let v = &self.ix.line[pos..end];
            if plausible(field, v) {
                if let Some(c) = self.stack.last_mut() {
                    c.active = true;
                }
                self.caps.push((field, v));
                return Some((ti + 1, end));
            }
        }
    }
}

/// Match the line of `ix` against a compiled template: the captured fields,
/// or `None` when it does not fit or the template's [`budget`] runs out.
pub(super) fn match_line<'a>(toks: &[Tok], ix: &LineIndex<'a>) -> Option<Vec<(Field, &'a str)>> {
    let mut m = Matcher {
        toks,
        ix,
        budget: budget(ix.line.len()),
        caps: Vec::new(),
        stack: Vec::new(),
    };
    let (mut ti, mut pos) = (0, 0);
    loop {
        if !m.spend(1) {
            return None;
        }
        (ti, pos) = match m.step(ti, pos) {
            Step::Matched => return Some(m.caps),
            Step::Advance(t, p) => (t, p),
            Step::Fail => m.resume()?,
        };
    }
}
