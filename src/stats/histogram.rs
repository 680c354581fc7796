//! The latency histogram every part of `stats` shares: HDR, microseconds, 1 µs to 1 h at three
//! significant digits, serialised as base64 of the HDR V2 deflate format. It owns the bounds
//! so that every histogram in a run (and in a merged run) adds exactly.

use std::fmt;
use std::time::Duration;

use base64::prelude::*;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// The highest latency a histogram tracks: one hour, in microseconds. Longer latencies are
/// recorded as one hour (the exact maximum is kept beside the histogram).
pub const MAX_MICROS: u64 = 3_600_000_000;
const SIGFIG: u8 = 3;

/// An HDR histogram of latencies in microseconds.
#[derive(Clone, PartialEq)]
pub struct Histogram(hdrhistogram::Histogram<u64>);

impl Histogram {
    /// An empty histogram with chorus's bounds.
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts; a failure here is a bug.
        Self(
            hdrhistogram::Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG)
                .expect("constant histogram bounds are valid"),
        )
    }

    /// Records one latency in microseconds (clamped to one hour).
    #[inline]
    pub fn record_micros(&mut self, micros: u64) {
        self.0.saturating_record(micros.min(MAX_MICROS));
    }

    /// Records one latency.
    #[inline]
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(micros_of(latency));
    }

    /// Adds every sample of `other`: exact, since both have the same bounds.
    pub fn add(&mut self, other: &Histogram) {
        // Same bounds and precision on both sides, so `add` cannot fail on range.
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
    fn garbage_is_an_error_not_a_panic() {
        assert!(Histogram::from_base64("not base64!").is_err());
        assert!(Histogram::from_base64("AAAA").is_err());
    }
}
