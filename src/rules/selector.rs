//! Prometheus series selectors (`metric{label="v",code!~"5.."}`): parsing and matching.
//! Selectors only, not PromQL.

/// A parsed series selector. (Implementation in progress by the rules-language work.)
#[derive(Debug, Clone)]
pub struct Selector {
    /// Metric name, if given before the braces.
    pub metric: Option<String>,
}
