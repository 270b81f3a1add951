//! A counter exposed under its bare name, as istiod exposes its sums
//! (`pilot_xds_pushes{type="cds"} 3`, with no `_total` suffix).

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A monotonic counter whose sample carries the metric's own name.
#[derive(Debug, Clone, Default)]
pub struct Sum(Counter);

impl Sum {
    /// Adds one.
    pub fn inc(&self) -> u64 {
        self.0.inc()
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for Sum {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Sum {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The gauge sample is the bare `name{labels} value` line.
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
