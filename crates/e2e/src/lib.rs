//! End-to-end harness: the dojo's autoscaling pipeline, as real processes around a real
//! Kubernetes control plane (see `ebb_testkit::control_plane`).
//!
//! ```text
//!  Redis list "padok" ──▶ redis_exporter ──scrape 5s──▶ Prometheus (rule redis_items_in_queue)
//!                                                            │
//!   kube-controller-manager (HPA) ──▶ kube-apiserver ──▶ prometheus-adapter (custom.metrics.k8s.io)
//!          │
//!          └──▶ Deployment `consumer` scale subresource
//! ```
//!
//! - [`values`]: the dojo's Helm values files, read the way the charts would use them.
//! - [`charts`]: helm lint / template / install of `helm/charts/*`.
//! - [`daemon`]: a child process with its log file, killed on drop.
//! - [`exporter`], [`prometheus`], [`adapter`]: the three hops between Redis and the HPA.
//! - [`pipeline`]: all of it wired together, for the e2e tests and the `bench/` reaction timer.
//! - [`metrics_api`]: `ebb metrics-api` installed from its chart and registered, and the Go
//!   oracle `tools/metrics-check`.
//! - [`node`]: ebb's servers as pods on the test node (the metrics API).

pub mod adapter;
pub mod charts;
pub mod daemon;
pub mod error;
pub mod exporter;
pub mod load;
pub mod metrics_api;
pub mod node;
pub mod pipeline;
pub mod prometheus;
pub mod recorder;
pub mod values;

pub use error::{Error, Result};
