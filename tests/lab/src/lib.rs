//! mesh503-lab: a local Istio-like mesh for tests and demos.
//!
//! A Kubernetes API on loopback (real wire protocol, so `kubectl` and kube-rs
//! talk to it), a control plane that turns Deployments into Pods and Services
//! into Endpoints, an `istiod` model that renders each pod's sidecar config the
//! way istiod would, and real Envoy processes running that config.
//!
//! This crate never imports the plugin crate: it is an independent model of
//! Istio, so tests of the plugin against it prove something.

pub mod ads;
pub mod api;
pub mod app;
pub mod bench;
pub mod bench_reads;
pub mod controller;
pub mod curl;
pub mod duration;
pub mod endpoint_slices;
pub mod envoy;
pub mod exits;
pub mod generate;
pub mod injector;
pub mod istiod;
pub mod kubeconfig;
pub mod lab;
pub mod nack;
pub mod net;
pub mod pki;
pub mod resources;
pub mod runtime;
pub mod scenario;
pub mod sidecar;
pub mod store;
pub mod validation;
pub mod xds_proto;
