//! The time limits of one collection, in one place.
//!
//! Three flags bound the run (docs/reliability.md says why these defaults):
//! `--request-timeout` (default 10s; `0` = none) each API request,
//! `--proxy-timeout` (default 5s) each sidecar's port-forward, admin reads
//! and log together, and `--timeout` (default 60s) the whole run. Every wait
//! ends at the earliest limit that applies, so per-request and per-sidecar
//! limits never add up past the run's: all sidecars share its deadline.
//! Each timeout says which flag set it.

use std::time::Duration;

use tokio::time::Instant;

use crate::cli::duration::display;

/// Which limit ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--request-timeout`.
    Request(Duration),
    /// `--proxy-timeout`.
    Proxy(Duration),
    /// `--timeout`.
    Run(Duration),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Request(d) => write!(f, "no answer within {} (--request-timeout)", display(*d)),
            Limit::Proxy(d) => write!(
                f,
                "no answer within the {} --proxy-timeout for this pod",
                display(*d)
            ),
            Limit::Run(d) => write!(
                f,
                "the run's time limit of {} (--timeout) was reached",
                display(*d)
            ),
        }
    }
}

impl Limit {
    /// The flag to raise.
    pub fn flag(&self) -> &'static str {
        match self {
            Limit::Request(_) => "--request-timeout",
            Limit::Proxy(_) => "--proxy-timeout",
            Limit::Run(_) => "--timeout",
        }
    }
}

/// The run's deadline and the per-request limit.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    request: Option<Duration>,
    run: Duration,
    /// `None` only if `now + run` cannot be represented (then: no run limit).
    end: Option<Instant>,
}

impl Budget {
    /// Starts the clock: the run ends `run` from now.
    pub fn start(request: Option<Duration>, run: Duration) -> Budget {
        Budget {
            request,
            run,
            end: Instant::now().checked_add(run),
        }
    }

    /// Earliest of `now + d` and the run's end, and which limit that is.
    fn earliest(
        &self,
        d: Option<Duration>,
        limit: fn(Duration) -> Limit,
    ) -> (Option<Instant>, Limit) {
        let own = d.and_then(|d| Instant::now().checked_add(d).map(|at| (at, limit(d))));
        match (own, self.end) {
            (Some((at, l)), Some(end)) if at < end => (Some(at), l),
            (_, Some(end)) => (Some(end), Limit::Run(self.run)),
            (Some((at, l)), None) => (Some(at), l),
            (None, None) => (None, Limit::Run(self.run)),
        }
    }

    /// When one API request must have answered.
    pub fn request(&self) -> (Option<Instant>, Limit) {
        self.earliest(self.request, Limit::Request)
    }

    /// When one sidecar's reads must be done.
    pub fn proxy(&self, proxy_timeout: Duration) -> (Option<Instant>, Limit) {
        self.earliest(Some(proxy_timeout), Limit::Proxy)
    }

    /// The per-request limit, for the client's own connect/read timeouts.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request
    }

    /// Whether the run's deadline has passed.
    pub fn expired(&self) -> bool {
        self.end.is_some_and(|e| Instant::now() >= e)
    }

    /// Runs `fut` until `deadline` (`None`: no limit).
    pub async fn bound<T>(
        deadline: Option<Instant>,
        fut: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        match deadline {
            Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
            None => Some(fut.await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_earliest_limit_wins_and_names_its_flag() {
        let b = Budget::start(Some(Duration::from_secs(10)), Duration::from_secs(60));
        let (_, l) = b.request();
        assert_eq!(l, Limit::Request(Duration::from_secs(10)));
        assert_eq!(l.to_string(), "no answer within 10s (--request-timeout)");
        let b = Budget::start(Some(Duration::from_secs(10)), Duration::from_secs(3));
        assert_eq!(b.request().1, Limit::Run(Duration::from_secs(3)));
        assert_eq!(b.request().1.flag(), "--timeout");
        let b = Budget::start(None, Duration::from_secs(3));
        assert_eq!(b.request().1, Limit::Run(Duration::from_secs(3)));
        let (_, l) = b.proxy(Duration::from_secs(1));
        assert_eq!(l, Limit::Proxy(Duration::from_secs(1)));
        assert!(l.to_string().contains("--proxy-timeout"));
        assert_eq!(b.proxy(Duration::from_secs(30)).1.flag(), "--timeout");
        assert!(!b.expired());
    }

    #[tokio::test]
    async fn bound_stops_a_wait() {
        let b = Budget::start(Some(Duration::from_millis(50)), Duration::from_secs(60));
        let (at, _) = b.request();
        let r = Budget::bound(at, futures::future::pending::<()>()).await;
        assert!(r.is_none());
        assert_eq!(Budget::bound(at, async { 7 }).await, Some(7));
    }
}
