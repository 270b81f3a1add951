//! A DestinationRule's `outlierDetection` on a cluster, as istiod applies
//! it: success-rate ejection off, each consecutive-error detector enforced
//! at 100% when its count is set above zero, and the panic threshold set
//! to `minHealthPercent` (0 unless given, so Envoy never balances across
//! ejected hosts by default).

use proto::pb::envoy::config::cluster::v3::{Cluster, OutlierDetection, cluster::CommonLbConfig};
use proto::pb::envoy::r#type::v3::Percent;

use crate::config::model::OutlierDetection as IstioOutlierDetection;
use crate::translate::filters;

/// Applies `outlier` to `cluster`; nothing when the rule has none.
pub fn apply(cluster: &mut Cluster, outlier: Option<&IstioOutlierDetection>) {
    let Some(outlier) = outlier else {
        return;
    };
    let enforcing = |count: u32| filters::u32_value(if count > 0 { 100 } else { 0 });
    cluster.outlier_detection = Some(OutlierDetection {
        enforcing_success_rate: Some(filters::u32_value(0)),
        consecutive_5xx: outlier.consecutive_5xx_errors.map(filters::u32_value),
        enforcing_consecutive_5xx: outlier.consecutive_5xx_errors.map(enforcing),
        consecutive_gateway_failure: outlier.consecutive_gateway_errors.map(filters::u32_value),
        enforcing_consecutive_gateway_failure: outlier.consecutive_gateway_errors.map(enforcing),
        interval: outlier.interval.map(|d| filters::duration(d.0)),
        base_ejection_time: outlier.base_ejection_time.map(|d| filters::duration(d.0)),
        max_ejection_percent: outlier
            .max_ejection_percent
            .filter(|p| *p > 0)
            .map(|p| filters::u32_value(p.unsigned_abs())),
        ..Default::default()
    });
    let min_health = outlier.min_health_percent.unwrap_or(0).max(0);
    cluster
        .common_lb_config
        .get_or_insert_with(CommonLbConfig::default)
        .healthy_panic_threshold = Some(Percent {
        value: f64::from(min_health),
    });
}
