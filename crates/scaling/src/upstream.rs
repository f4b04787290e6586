//! What the upstream HPA computes where ebb deliberately differs, kept as executable
//! documentation next to the code that differs (see the crate's named tests).

/// Go's `int64(x)` for a float64 `x` on amd64 (instruction CVTTSD2SQ): NaN and values out of
/// the int64 range give the "integer indefinite" −2⁶³. The Go spec leaves this
/// implementation-defined; amd64 is what the dojo's kind cluster runs on.
pub fn go_int64_from_float64(x: f64) -> i64 {
    // 2⁶³ as f64; every finite value in [−2⁶³, 2⁶³) converts exactly after truncation.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

/// The per-replica average the HPA writes into its status for an Object or External metric
/// with an AverageValue target: `usage = int64(math.Ceil(float64(usage) /
/// float64(statusReplicas)))` in `GetObjectPerPodMetricReplicas` (replica_calculator.go),
/// in milli-units. At 0 replicas it divides by zero, in every release up to 1.37.
pub fn hpa_status_average_milli(usage_milli: i64, status_replicas: i32) -> i64 {
    go_int64_from_float64((usage_milli as f64 / f64::from(status_replicas)).ceil())
}
