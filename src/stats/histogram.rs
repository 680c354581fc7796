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

    /// Reads what [`Histogram::to_base64`] wrote. Samples above our bounds are refused, and
    /// so is anything that is not a histogram of our precision: the text may come from a
    /// cluster worker or a result file, and hdrhistogram's reader takes the sizes it
    /// allocates from the header (4 bytes can ask for 4 GiB), so the header is checked first.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64_STANDARD
            .decode(text.trim())
            .map_err(|err| format!("histogram is not valid base64: {err}"))?;
        let v2 = serialised::inflate(&bytes)?;
        let decoded: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut v2.as_slice())
            .map_err(|err| format!("histogram is not an HDR V2 serialisation: {err:?}"))?;
        // `max` is the top of the largest sample's bucket, which may pass the hour itself.
        if decoded.max() > decoded.highest_equivalent(MAX_MICROS) {
            return Err(format!(
                "histogram holds values outside 1 µs..1 h (max {})",
                decoded.max()
            ));
        }
        let mut histogram = Self::new();
        histogram
            .0
            .add(&decoded)
            .map_err(|err| format!("histogram could not be added: {err:?}"))?;
        Ok(histogram)
    }
}

/// The HDR V2 format checked before hdrhistogram reads it.
mod serialised {
    use std::io::Read as _;

    use super::{Histogram, MAX_MICROS, SIGFIG};

    const V2: u32 = 0x1c84_9303 | 0x10;
    const V2_DEFLATE: u32 = 0x1c84_9304 | 0x10;
    /// Cookie, payload length, normalising offset, significant digits, lowest and highest
    /// trackable values, integer-to-double ratio.
    const HEADER: usize = 40;
    /// The most a histogram of ours decodes to: at most 24 × 1,024 counters (1 µs to 1 h at
    /// three digits) of at most 9 bytes each, and the header.
    const MAX_INFLATED: usize = 256 * 1024;

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[at..at + 4]);
        u32::from_be_bytes(word)
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(word)
    }

    /// The uncompressed V2 serialisation inside a V2 deflate one, once its header says it is
    /// a histogram of our precision and bounds and its counts are all readable.
    pub(super) fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
        let not_ours = |why: &str| format!("histogram is not an HDR V2 serialisation: {why}");
        if bytes.len() < 8 || u32_at(bytes, 0) != V2_DEFLATE {
            return Err(not_ours("no V2 deflate cookie"));
        }
        let length = u32_at(bytes, 4) as usize;
        if length != bytes.len() - 8 {
            return Err(not_ours("its length is not the length of what follows"));
        }
        let mut v2 = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[8..])
            .take(MAX_INFLATED as u64 + 1)
            .read_to_end(&mut v2)
            .map_err(|err| not_ours(&format!("it does not inflate ({err})")))?;
        if v2.len() > MAX_INFLATED {
            return Err(not_ours("it inflates to more than any histogram of chorus"));
        }
        if v2.len() < HEADER || u32_at(&v2, 0) != V2 {
            return Err(not_ours("no V2 cookie inside"));
        }
        if u32_at(&v2, 4) as usize != v2.len() - HEADER {
            return Err(not_ours("its counts are not as long as it says"));
        }
        let (digits, low, high) = (u32_at(&v2, 12), u64_at(&v2, 16), u64_at(&v2, 24));
        let largest = largest_high();
        if digits != u32::from(SIGFIG) || low != 1 || !(2..=largest).contains(&high) {
            return Err(not_ours(&format!(
                "{digits} significant digits from {low} to {high}, not chorus's {SIGFIG} from 1 to at most {largest}"
            )));
        }
        if !counts_are_readable(&v2[HEADER..]) {
            return Err(not_ours("a count is not a number hdrhistogram can read"));
        }
        Ok(v2)
    }

    /// The largest `high` a histogram of chorus reaches: hdrhistogram grows it to the end of
    /// the bucket that holds the largest value recorded, [`MAX_MICROS`] (2^32 - 1, past it).
    fn largest_high() -> u64 {
        static LARGEST: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *LARGEST.get_or_init(|| {
            let mut histogram = Histogram::new();
            histogram.record_micros(MAX_MICROS);
            histogram.0.high()
        })
    }

    /// Whether every count is a whole varint whose zig-zag value is not `i64::MIN` (whose
    /// negation hdrhistogram would overflow).
    fn counts_are_readable(mut payload: &[u8]) -> bool {
        while !payload.is_empty() {
            let mut value: u64 = 0;
            let mut used = 0;
            loop {
                let Some(&byte) = payload.get(used) else {
                    return false;
                };
                if used == 8 {
                    // The ninth byte of a varint is taken whole.
                    value |= u64::from(byte) << 56;
                    used += 1;
                    break;
                }
                value |= u64::from(byte & 0x7f) << (7 * used);
                used += 1;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            if value == u64::MAX {
                // Zig-zag of u64::MAX is i64::MIN.
                return false;
            }
            payload = &payload[used..];
        }
        true
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
    use proptest::collection::vec;
    use proptest::prelude::*;

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

    /// A V2 header with these fields and counts, deflated when `deflate`.
    fn serialised(digits: u32, low: u64, high: u64, counts: &[u8], deflate: bool) -> String {
        use std::io::Write as _;
        let mut v2 = Vec::new();
        v2.extend_from_slice(&(0x1c84_9303u32 | 0x10).to_be_bytes());
        v2.extend_from_slice(&(counts.len() as u32).to_be_bytes());
        v2.extend_from_slice(&0u32.to_be_bytes());
        v2.extend_from_slice(&digits.to_be_bytes());
        v2.extend_from_slice(&low.to_be_bytes());
        v2.extend_from_slice(&high.to_be_bytes());
        v2.extend_from_slice(&1.0f64.to_be_bytes());
        v2.extend_from_slice(counts);
        if !deflate {
            return BASE64_STANDARD.encode(v2);
        }
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&v2).unwrap();
        let deflated = encoder.finish().unwrap();
        let mut bytes = (0x1c84_9304u32 | 0x10).to_be_bytes().to_vec();
        bytes.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&deflated);
        BASE64_STANDARD.encode(bytes)
    }

    #[test]
    fn a_header_that_asks_for_gigabytes_is_refused_before_anything_is_allocated() {
        // Regression: hdrhistogram sized its buffer from the header's payload length (here
        // 4 GiB, from 56 bytes of base64) and its counters from the header's bounds (50 MB for
        // 5 digits up to u64::MAX).
        let mut huge = serialised(3, 1, 1000, &[], false);
        let mut bytes = BASE64_STANDARD.decode(&huge).unwrap();
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        huge = BASE64_STANDARD.encode(bytes);
        let info = allocation_counter::measure(|| {
            assert!(Histogram::from_base64(&huge).is_err());
        });
        assert!(info.bytes_max < 1 << 20, "{} bytes", info.bytes_max);

        let wide = serialised(5, 1, u64::MAX, &[2], true);
        let info = allocation_counter::measure(|| {
            let err = Histogram::from_base64(&wide).unwrap_err();
            assert!(err.contains("5 significant digits"), "{err}");
        });
        assert!(info.bytes_max < 1 << 20, "{} bytes", info.bytes_max);
    }

    #[test]
    fn a_count_hdrhistogram_cannot_negate_is_refused() {
        // Regression: the zig-zag varint of i64::MIN overflowed hdrhistogram's negation (a
        // panic in a debug build).
        let min = [0xff; 9];
        let err = Histogram::from_base64(&serialised(3, 1, 1000, &min, true)).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        let ok = serialised(3, 1, 1000, &[0x02], true);
        assert_eq!(Histogram::from_base64(&ok).unwrap().len(), 1);
    }

    /// The fuzz properties (`cargo test fuzz`; docs/security.md, "Fuzzing").
    mod fuzz {
        use super::*;

        proptest! {
            // Each case writes and reads a whole histogram (some hundred KiB of counters).
            #![proptest_config(crate::fuzzing::config(256))]

            #[test]
            fn what_chorus_writes_it_reads_back(values in vec(any::<u64>(), 0..20)) {
                // The check of the header must let through every histogram of ours: one
                // holding an hour had grown past the hour and was refused.
                let mut histogram = Histogram::new();
                for value in values {
                    histogram.record_micros(value % (2 * MAX_MICROS));
                }
                let back = Histogram::from_base64(&histogram.to_base64());
                prop_assert_eq!(back.as_ref(), Ok(&histogram));
            }
        }

        proptest! {
            #![proptest_config(crate::fuzzing::config(2048))]

            #[test]
            fn any_text_reads_as_a_histogram_or_an_error_within_bounds(
                text in prop_oneof![
                    vec(any::<u8>(), 0..80).prop_map(|bytes| BASE64_STANDARD.encode(bytes)),
                    (vec(0u64..5_000_000_000, 0..20), any::<usize>(), any::<u8>()).prop_map(
                        |(values, at, byte)| {
                            let mut histogram = Histogram::new();
                            for value in values {
                                histogram.record_micros(value);
                            }
                            let mut bytes = BASE64_STANDARD.decode(histogram.to_base64()).unwrap();
                            let at = at % bytes.len();
                            bytes[at] ^= byte;
                            BASE64_STANDARD.encode(bytes)
                        }
                    ),
                    (0u32..8, any::<u64>(), any::<u64>(), vec(any::<u8>(), 0..40), any::<bool>())
                        .prop_map(|(digits, low, high, counts, deflate)| {
                            serialised(digits, low % 4, high, &counts, deflate)
                        }),
                ],
            ) {
                let info = allocation_counter::measure(|| {
                    if let Ok(histogram) = Histogram::from_base64(&text) {
                        let inner = histogram.inner();
                    assert!(inner.max() <= inner.highest_equivalent(MAX_MICROS));
                    }
                });
                prop_assert!(info.bytes_max < 2 << 20, "{} bytes", info.bytes_max);
            }
        }
    }
}
