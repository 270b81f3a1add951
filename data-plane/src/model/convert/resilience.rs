//! A cluster's circuit breakers, outlier detection and healthy panic
//! threshold → model. Envoy's defaults fill unset fields; what the agent
//! cannot enforce (other priorities, retry budgets, success-rate and
//! failure-percentage ejection, split local-origin errors) is rejected.

use std::time::Duration;

use proto::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use proto::pb::envoy::config::cluster::v3::OutlierDetection as PbOutlier;
use proto::pb::envoy::config::cluster::v3::cluster::common_lb_config::LocalityConfigSpecifier;
use proto::pb::envoy::config::core::v3::RoutingPriority;

use super::{At, duration};
use crate::model::Error;
use crate::model::resilience::{CircuitBreakers, OutlierDetection, PanicThreshold};

/// The thresholds of the DEFAULT priority, Envoy's defaults for what is
/// unset.
pub(super) fn circuit_breakers(c: &PbCluster, at: &At<'_>) -> Result<CircuitBreakers, Error> {
    let mut breakers = CircuitBreakers::default();
    let Some(cb) = &c.circuit_breakers else {
        return Ok(breakers);
    };
    let at = at.field("circuit_breakers");
    if !cb.per_host_thresholds.is_empty() {
        return Err(at
            .field("per_host_thresholds")
            .error("per-host circuit breakers are not supported"));
    }
    for (i, t) in cb.thresholds.iter().enumerate() {
        let at = at.field(format!("thresholds[{i}]"));
        if t.priority != RoutingPriority::Default as i32 {
            return Err(at
                .field("priority")
                .error("only the DEFAULT priority is supported (no route here runs at HIGH)"));
        }
        if t.retry_budget.is_some() {
            return Err(at
                .field("retry_budget")
                .error("retry budgets are not supported; use max_retries"));
        }
        if t.max_connection_pools.is_some() {
            return Err(at
                .field("max_connection_pools")
                .error("a limit on connection pools is not supported"));
        }
        let value = |v: &Option<proto::wkt::UInt32Value>, default: u32| {
            v.as_ref().map_or(default, |v| v.value)
        };
        breakers = CircuitBreakers {
            max_connections: value(&t.max_connections, breakers.max_connections),
            max_pending_requests: value(&t.max_pending_requests, breakers.max_pending_requests),
            max_requests: value(&t.max_requests, breakers.max_requests),
            max_retries: value(&t.max_retries, breakers.max_retries),
            track_remaining: t.track_remaining,
        };
    }
    Ok(breakers)
}

/// Outlier detection with Envoy's defaults, if the cluster asks for it.
pub(super) fn outlier_detection(
    c: &PbCluster,
    at: &At<'_>,
) -> Result<Option<OutlierDetection>, Error> {
    let Some(o) = &c.outlier_detection else {
        return Ok(None);
    };
    let at = at.field("outlier_detection");
    unsupported(o, &at)?;
    let defaults = OutlierDetection::default();
    let value =
        |v: &Option<proto::wkt::UInt32Value>, default: u32| v.as_ref().map_or(default, |v| v.value);
    let time =
        |v: &Option<proto::wkt::Duration>, default: Duration| v.as_ref().map_or(default, duration);
    let interval = time(&o.interval, defaults.interval);
    if interval.is_zero() {
        return Err(at.field("interval").error("must be greater than 0"));
    }
    let base_ejection_time = time(&o.base_ejection_time, defaults.base_ejection_time);
    let max_ejection_time = time(
        &o.max_ejection_time,
        defaults.max_ejection_time.max(base_ejection_time),
    );
    if max_ejection_time < base_ejection_time {
        return Err(at
            .field("max_ejection_time")
            .error("cannot be smaller than base_ejection_time"));
    }
    Ok(Some(OutlierDetection {
        consecutive_5xx: value(&o.consecutive_5xx, defaults.consecutive_5xx),
        enforcing_consecutive_5xx: value(
            &o.enforcing_consecutive_5xx,
            defaults.enforcing_consecutive_5xx,
        )
        .min(100),
        consecutive_gateway_failure: value(
            &o.consecutive_gateway_failure,
            defaults.consecutive_gateway_failure,
        ),
        enforcing_consecutive_gateway_failure: value(
            &o.enforcing_consecutive_gateway_failure,
            defaults.enforcing_consecutive_gateway_failure,
        )
        .min(100),
        interval,
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent: value(&o.max_ejection_percent, defaults.max_ejection_percent)
            .min(100),
        always_eject_one_host: o.always_eject_one_host.as_ref().is_some_and(|v| v.value),
    }))
}

/// The detectors this agent does not run must be off.
fn unsupported(o: &PbOutlier, at: &At<'_>) -> Result<(), Error> {
    let enabled = |v: &Option<proto::wkt::UInt32Value>, default: u32| {
        v.as_ref().map_or(default, |v| v.value) > 0
    };
    if enabled(&o.enforcing_success_rate, 100) {
        return Err(at.field("enforcing_success_rate").error(
            "success-rate ejection is not supported; set enforcing_success_rate to 0 (istiod does)",
        ));
    }
    if enabled(&o.enforcing_failure_percentage, 0) {
        return Err(at
            .field("enforcing_failure_percentage")
            .error("failure-percentage ejection is not supported"));
    }
    if enabled(&o.enforcing_failure_percentage_local_origin, 0) {
        return Err(at
            .field("enforcing_failure_percentage_local_origin")
            .error("failure-percentage ejection is not supported"));
    }
    if o.split_external_local_origin_errors {
        return Err(at
            .field("split_external_local_origin_errors")
            .error("local-origin errors are counted as 5xx only (split is not supported)"));
    }
    if o.max_ejection_time_jitter
        .as_ref()
        .is_some_and(|d| !duration(d).is_zero())
    {
        return Err(at
            .field("max_ejection_time_jitter")
            .error("ejection time jitter is not supported"));
    }
    if !o.monitors.is_empty() {
        return Err(at
            .field("monitors")
            .error("outlier detection extensions are not supported"));
    }
    if o.detect_degraded_hosts.as_ref().is_some_and(|v| v.value) {
        return Err(at
            .field("detect_degraded_hosts")
            .error("degraded hosts are not supported"));
    }
    Ok(())
}

/// `common_lb_config.healthy_panic_threshold` (Envoy: 50% when unset).
///
/// The rest of `common_lb_config` is rejected where the agent would not do
/// what Envoy does: locality-weighted balancing, closing connections when
/// the hosts change, overriding a host by status, hashing by host name.
/// Zone-aware balancing needs a local cluster, which neither the agent
/// nor Istio's Envoy bootstrap names, so Envoy does none: nor does the
/// agent. The update merge window only delays updates, and the wait for a
/// first health check applies to active health checks, which no cluster
/// has here.
pub(super) fn healthy_panic_threshold(c: &PbCluster, at: &At<'_>) -> Result<PanicThreshold, Error> {
    let Some(lb) = c.common_lb_config.as_ref() else {
        return Ok(PanicThreshold::DEFAULT);
    };
    let at_lb = at.field("common_lb_config");
    if let Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_)) = lb.locality_config_specifier
    {
        return Err(at_lb
            .field("locality_weighted_lb_config")
            .error("locality-weighted balancing is not supported"));
    }
    if lb.close_connections_on_host_set_change {
        return Err(at_lb
            .field("close_connections_on_host_set_change")
            .error("closing connections when the hosts change is not supported"));
    }
    if lb.override_host_status.is_some() {
        return Err(at_lb
            .field("override_host_status")
            .error("overriding the host is not supported"));
    }
    if lb
        .consistent_hashing_lb_config
        .as_ref()
        .is_some_and(|hashing| {
            hashing.use_hostname_for_hashing || hashing.hash_balance_factor.is_some()
        })
    {
        return Err(at_lb
            .field("consistent_hashing_lb_config")
            .error("hashing by host name and bounded loads are not supported"));
    }
    let Some(percent) = lb.healthy_panic_threshold.as_ref() else {
        return Ok(PanicThreshold::DEFAULT);
    };
    if !(0.0..=100.0).contains(&percent.value) {
        return Err(at
            .field("common_lb_config.healthy_panic_threshold")
            .error(format!("{} is not a percentage", percent.value)));
    }
    Ok(PanicThreshold((percent.value * 100.0).round() as u32))
}
