//! The series a Flux controller exports beside its own, in one bundle: the
//! Receiver controller's (controller-runtime, work queue, gotk, leader
//! election), the Kubernetes API client's and the process's.

use prometheus_client::registry::Registry;

use crate::{ClientMetrics, ControllerMetrics, ProcessCollector};

/// The controller's, the API client's and the process's metrics; register
/// them once into the process's registry, then hand the controller and the
/// clients their parts.
///
/// ```
/// use fluxhook_receiver::{Metrics, RuntimeMetrics};
///
/// let runtime = RuntimeMetrics::new();
/// let mut metrics = Metrics::new();
/// runtime.register(metrics.registry_mut());
/// runtime.controller.set_leader("fluxhook-receiver-leader-election", false);
/// let text = metrics.encode();
/// assert!(text.contains("controller_runtime_reconcile_total"));
/// assert!(text.contains("leader_election_master_status"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RuntimeMetrics {
    /// The Receiver controller's series (pass it in
    /// [`ControllerConfig::metrics`](crate::controller::ControllerConfig::metrics));
    /// leader election sets `leader_election_master_status` through it.
    pub controller: ControllerMetrics,
    /// `rest_client_requests_total` (build the Kubernetes clients with
    /// [`ClientMetrics::client`]).
    pub client: ClientMetrics,
}

impl RuntimeMetrics {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every series into `registry`, the process's own collector
    /// (`process_*`) included.
    pub fn register(&self, registry: &mut Registry) {
        self.controller.register(registry);
        self.client.register(registry);
        registry.register_collector(Box::new(ProcessCollector::new()));
    }
}

#[cfg(test)]
mod tests;
