//! The latency histogram every part of `stats` shares: HDR, microseconds, 1 µs to 1 h at three
//! significant digits, serialised as base64 of the HDR V2 deflate format. It owns the bounds
//! so that every histogram in a run (and in a merged run) adds exactly.
//!
//! Memory: a histogram starts covering 1 µs to about 1 s (11 × 1,024 counters, 88 KiB) and
//! grows 8 KiB per doubling of its largest latency, up to 1 h (23 × 1,024 counters, 184 KiB).
//! There is one per request name per worker, plus one per name in the aggregate.

use std::fmt;
use std::time::Duration;

use base64::prelude::*;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// The highest latency a histogram tracks: one hour, in microseconds. Longer latencies are
/// recorded as one hour (the exact maximum is kept beside the histogram).
pub const MAX_MICROS: u64 = 3_600_000_000;
/// What a new histogram covers before it grows.
const INITIAL_MAX_MICROS: u64 = 1_000_000;
const SIGFIG: u8 = 3;

/// An HDR histogram of latencies in microseconds.
#[derive(Clone)]
pub struct Histogram(hdrhistogram::Histogram<u64>);

impl Histogram {
    /// An empty histogram with chorus's bounds.
    pub fn new() -> Self {
        Self::covering(INITIAL_MAX_MICROS)
    }

    /// An empty histogram already as large as `self` (so refilling it does not grow it).
    pub fn empty_like(&self) -> Self {
        Self::covering(self.0.high())
    }

    fn covering(high: u64) -> Self {
        // The bounds are within what hdrhistogram accepts; a failure here is a bug.
        let mut histogram =
            hdrhistogram::Histogram::new_with_bounds(1, high.clamp(2, MAX_MICROS), SIGFIG)
                .expect("histogram bounds are valid");
        histogram.auto(true);
        Self(histogram)
    }

    /// Records one latency in microseconds (clamped to one hour).
    #[inline]
    pub fn record_micros(&mut self, micros: u64) {
        let micros = micros.min(MAX_MICROS);
        // `record` grows the histogram (auto-resize); `saturating_record` would not.
        if self.0.record(micros).is_err() {
            self.0.saturating_record(micros);
        }
    }

    /// Records one latency.
    #[inline]
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(micros_of(latency));
    }

    /// Adds every sample of `other`: exact, since both have the same precision (this one
    /// grows if `other` holds larger values).
    pub fn add(&mut self, other: &Histogram) {
        // Same precision on both sides and auto-resize on, so `add` cannot fail on range.
        let _ = self.0.add(&other.0);
    }

    /// How many samples were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The latency at `quantile` (0.0 to 1.0) in microseconds; 0 when empty.
    pub fn quantile_micros(&self, quantile: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.value_at_quantile(quantile)
    }

    /// The latency at `percentile` (0 to 100) in microseconds; 0 when empty.
    pub fn percentile_micros(&self, percentile: f64) -> u64 {
        self.quantile_micros(percentile / 100.0)
    }

    /// Clears every count.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The underlying hdrhistogram, for callers that need more than the above.
    pub fn inner(&self) -> &hdrhistogram::Histogram<u64> {
        &self.0
    }

    /// Base64 of the HDR V2 deflate serialisation (what `HistogramLogProcessor` and other HDR
    /// tools read).
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail for IO reasons; a histogram of our bounds always encodes.
        let _ = V2DeflateSerializer::new().serialize(&self.0, &mut bytes);
        BASE64_STANDARD.encode(bytes)
    }

    /// Reads what [`Histogram::to_base64`] wrote. Samples above our bounds are refused.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64_STANDARD
            .decode(text.trim())
            .map_err(|err| format!("histogram is not valid base64: {err}"))?;
        let decoded: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|err| format!("histogram is not an HDR V2 serialisation: {err:?}"))?;
        let mut histogram = Self::new();
        histogram.0.add(&decoded).map_err(|err| {
            format!(
                "histogram holds values outside 1 µs..1 h (max {}): {err:?}",
                decoded.max()
            )
        })?;
        Ok(histogram)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Equal when they hold the same samples (whatever their current size).
impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .eq(other
                    .0
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value())))
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("len", &self.len())
            .field("p50_us", &self.quantile_micros(0.5))
            .field("max_us", &self.quantile_micros(1.0))
            .finish()
    }
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Histogram::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// A duration in whole microseconds, saturating.
#[inline]
pub(crate) fn micros_of(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_keeps_every_count() {
        let mut h = Histogram::new();
        for v in [0, 1, 17, 999, 1_000, 123_456, 9_999_999, MAX_MICROS + 5] {
            h.record_micros(v);
        }
        let back = Histogram::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 8);
        assert_eq!(back.quantile_micros(1.0), h.quantile_micros(1.0));
    }

    #[test]
    fn grows_to_one_hour_and_compares_by_samples() {
        let mut small = Histogram::new();
        let mut large = Histogram::new();
        large.record_micros(MAX_MICROS);
        assert!(large.inner().high() >= MAX_MICROS);
        large.reset();
        small.record_micros(1_234);
        large.record_micros(1_234);
        assert_eq!(small, large);
        assert_ne!(small.inner().high(), large.inner().high());
        large.record_micros(7);
        assert_ne!(small, large);
        let refill = large.empty_like();
        assert_eq!(
            refill.inner().distinct_values(),
            large.inner().distinct_values()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Histogram::from_base64("not base64!").is_err());
        assert!(Histogram::from_base64("AAAA").is_err());
    }
}
