//! Words for report text shared by every stage: a count with its noun in
//! the right number ("1 finding", "2 findings"), never "finding(s)".
//! Pure; imports nothing.

/// `n` followed by `one` when `n` is 1, else by `many`:
/// `count(2, "legacy authentication policy", "legacy authentication policies")`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", noun(n, one, many))
}

/// `one` when `n` is 1, else `many`.
pub fn noun<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `count` for a regular noun: `s` appended for every number but 1.
pub fn counts(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_only_for_one() {
        assert_eq!(counts(1, "finding"), "1 finding");
        assert_eq!(counts(0, "error"), "0 errors");
        assert_eq!(counts(2, "error"), "2 errors");
        assert_eq!(count(1, "policy", "policies"), "1 policy");
        assert_eq!(count(3, "policy", "policies"), "3 policies");
    }
}
