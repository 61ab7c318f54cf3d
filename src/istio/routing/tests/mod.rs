//! Unit tests of istio::routing.
