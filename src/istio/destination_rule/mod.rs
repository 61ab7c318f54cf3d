//! `DestinationRule`: the typed spec, Istio's rule lookup for a client, and
//! the effective traffic policy for a port/subset — the decision in typed
//! form, the prose apart.
//!
//! Place in the flow: a pure helper (istio/). model parses every rule once
//! ([`types`]); analyze rules ask [`lookup`] which rule applies to a client
//! and [`policy`] what it sets for a port/subset; reports use [`explain`].
//!
//! - [`types`]: parsing (`from_value_with_domain`: short hosts resolve in the
//!   cluster domain);
//! - [`lookup`]: the namespace search, exportTo, workloadSelector, merge —
//!   typed reasons ([`ShadowReason`], [`MergeNote`], [`WhyNone`]);
//! - [`policy`]: port-level / subset precedence ([`effective_policy`]);
//! - [`explain`]: the sentences.

pub mod explain;
pub mod lookup;
pub mod policy;
pub mod types;

pub use explain::describe_tls_of;
pub use lookup::{
    decide, lookup, select, Lookup, LookupLevel, LookupQuery, MergeNote, SelectedSubset, Selection,
    ShadowReason, Shadowed, WhyNone, DEFAULT_ROOT_NAMESPACE,
};
pub use policy::{
    decide_policy, effective_policy, EffectivePolicy, FieldOrigins, PolicyNote, PolicyOrigin,
};
pub use types::{
    ClientTls, ConnectionPool, DestinationRule, HttpSettings, LoadBalancer, OutlierDetection,
    PortTrafficPolicy, Subset, TcpSettings, TlsMode, TrafficPolicy,
};

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
