//! The latency histogram every part of `stats` shares: HDR, microseconds, 1 µs to 1 h at three
//! significant digits, serialised as base64 of the HDR V2 deflate format. It owns the bounds
//! so that every histogram in a run (and in a merged run) adds exactly.
//!
//! Memory: a dense HDR histogram covers 1 µs to about 1 s with 11 × 1,024 counters (96 KiB)
//! and grows 8 KiB per doubling of its largest latency, up to 1 h (23 × 1,024 counters, 184
//! KiB). There is one per request name and phase in every engine thread's tally, in each
//! second's snapshot and in the aggregate, so a histogram starts as the list of its samples
//! (4 bytes each) and becomes dense only past [`SAMPLES_MAX`] of them: a name that gets a few
//! requests a second costs bytes, not 96 KiB per holder. Both forms answer every question
//! exactly as the dense one would (a quantile of the list is the HDR value of the sample at
//! that rank).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use base64::prelude::*;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// The highest latency a histogram tracks: one hour, in microseconds. Longer latencies are
/// recorded as one hour (the exact maximum is kept beside the histogram).
pub const MAX_MICROS: u64 = 3_600_000_000;
/// What a new dense histogram covers before it grows.
const INITIAL_MAX_MICROS: u64 = 1_000_000;
const SIGFIG: u8 = 3;
/// The most samples a histogram keeps as a list (16 KiB) before it turns dense (96 KiB and
/// more, whatever the samples). A quantile of a list copies and partly sorts it, so the list
/// stays short enough for the page to ask each row's percentiles every second.
const SAMPLES_MAX: usize = 4 * 1024;

/// An HDR histogram of latencies in microseconds.
#[derive(Clone)]
pub struct Histogram(Counts);

#[derive(Clone)]
enum Counts {
    /// Each sample as recorded (at most [`MAX_MICROS`], which fits a `u32`), in no order.
    Samples(Vec<u32>),
    Dense(hdrhistogram::Histogram<u64>),
}

impl Histogram {
    /// An empty histogram with chorus's bounds.
    pub fn new() -> Self {
        Self(Counts::Samples(Vec::new()))
    }

    /// An empty histogram for what `self` held: as long a list, or as large a dense
    /// histogram (so refilling it grows nothing).
    pub fn empty_like(&self) -> Self {
        match &self.0 {
            Counts::Samples(samples) => Self(Counts::Samples(Vec::with_capacity(samples.len()))),
            Counts::Dense(dense) => Self(Counts::Dense(dense_covering(dense.high()))),
        }
    }

    /// Records one latency in microseconds (clamped to one hour).
    #[inline]
    pub fn record_micros(&mut self, micros: u64) {
        let micros = micros.min(MAX_MICROS);
        match &mut self.0 {
            Counts::Samples(samples) if samples.len() < SAMPLES_MAX => {
                // MAX_MICROS fits a u32.
                samples.push(micros as u32);
            }
            Counts::Samples(_) => {
                let dense = self.make_dense();
                record_dense(dense, micros);
            }
            Counts::Dense(dense) => record_dense(dense, micros),
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
        match (&mut self.0, &other.0) {
            (Counts::Samples(mine), Counts::Samples(theirs))
                if mine.len() + theirs.len() <= SAMPLES_MAX =>
            {
                mine.extend_from_slice(theirs);
            }
            (_, theirs) => {
                let dense = self.make_dense();
                match theirs {
                    Counts::Samples(samples) => {
                        for &micros in samples {
                            record_dense(dense, u64::from(micros));
                        }
                    }
                    // Same precision on both sides and auto-resize on, so `add` cannot fail
                    // on range.
                    Counts::Dense(other) => {
                        let _ = dense.add(other);
                    }
                }
            }
        }
    }

    /// How many samples were recorded.
    pub fn len(&self) -> u64 {
        match &self.0 {
            Counts::Samples(samples) => samples.len() as u64,
            Counts::Dense(dense) => dense.len(),
        }
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The latency at `quantile` (0.0 to 1.0) in microseconds; 0 when empty.
    pub fn quantile_micros(&self, quantile: f64) -> u64 {
        match &self.0 {
            Counts::Samples(samples) if samples.is_empty() => 0,
            Counts::Samples(samples) => {
                // As hdrhistogram counts: the sample at rank ceil(q × n) (at least the
                // first), answered as the top of its bucket (the bottom for q = 0).
                let quantile = quantile.min(1.0);
                let rank =
                    ((quantile * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
                let mut sorted = samples.clone();
                let (_, at, _) = sorted.select_nth_unstable(rank - 1);
                let shape = shape();
                if quantile == 0.0 {
                    shape.lowest_equivalent(u64::from(*at))
                } else {
                    shape.highest_equivalent(u64::from(*at))
                }
            }
            Counts::Dense(dense) if dense.is_empty() => 0,
            Counts::Dense(dense) => dense.value_at_quantile(quantile),
        }
    }

    /// The latency at `percentile` (0 to 100) in microseconds; 0 when empty.
    pub fn percentile_micros(&self, percentile: f64) -> u64 {
        self.quantile_micros(percentile / 100.0)
    }

    /// Clears every count.
    pub fn reset(&mut self) {
        match &mut self.0 {
            Counts::Samples(samples) => samples.clear(),
            Counts::Dense(dense) => dense.reset(),
        }
    }

    /// The samples as an hdrhistogram, for callers that need more than the above.
    pub fn inner(&self) -> Cow<'_, hdrhistogram::Histogram<u64>> {
        match &self.0 {
            Counts::Samples(samples) => Cow::Owned(dense_of(samples)),
            Counts::Dense(dense) => Cow::Borrowed(dense),
        }
    }

    /// Base64 of the HDR V2 deflate serialisation (what `HistogramLogProcessor` and other HDR
    /// tools read).
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail for IO reasons; a histogram of our bounds always encodes.
        let _ = V2DeflateSerializer::new().serialize(&*self.inner(), &mut bytes);
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
        let mut histogram = dense_covering(INITIAL_MAX_MICROS);
        histogram
            .add(&decoded)
            .map_err(|err| format!("histogram could not be added: {err:?}"))?;
        Ok(Self(Counts::Dense(histogram)))
    }

    /// Turns the list into a dense histogram (if it is one) and returns that.
    fn make_dense(&mut self) -> &mut hdrhistogram::Histogram<u64> {
        if let Counts::Samples(samples) = &self.0 {
            self.0 = Counts::Dense(dense_of(samples));
        }
        match &mut self.0 {
            Counts::Dense(dense) => dense,
            Counts::Samples(_) => unreachable!("made dense above"),
        }
    }
}

/// An empty dense histogram of chorus's precision covering 1 µs to `high`, growing as needed.
fn dense_covering(high: u64) -> hdrhistogram::Histogram<u64> {
    // The bounds are within what hdrhistogram accepts; a failure here is a bug.
    let mut histogram =
        hdrhistogram::Histogram::new_with_bounds(1, high.clamp(2, MAX_MICROS), SIGFIG)
            .expect("histogram bounds are valid");
    histogram.auto(true);
    histogram
}

/// A dense histogram of `samples`.
fn dense_of(samples: &[u32]) -> hdrhistogram::Histogram<u64> {
    let mut dense = dense_covering(INITIAL_MAX_MICROS);
    for &micros in samples {
        record_dense(&mut dense, u64::from(micros));
    }
    dense
}

#[inline]
fn record_dense(dense: &mut hdrhistogram::Histogram<u64>, micros: u64) {
    // `record` grows the histogram (auto-resize); `saturating_record` would not.
    if dense.record(micros).is_err() {
        dense.saturating_record(micros);
    }
}

/// A histogram of chorus's precision, for its bucket arithmetic (which depends only on the
/// precision and the lowest value, not on what was recorded).
fn shape() -> &'static hdrhistogram::Histogram<u64> {
    static SHAPE: std::sync::OnceLock<hdrhistogram::Histogram<u64>> = std::sync::OnceLock::new();
    SHAPE.get_or_init(|| dense_covering(2))
}

/// The HDR V2 format checked before hdrhistogram reads it.
mod serialised {
    use std::io::Read as _;

    use super::{INITIAL_MAX_MICROS, MAX_MICROS, SIGFIG, dense_covering, record_dense};

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
            let mut histogram = dense_covering(INITIAL_MAX_MICROS);
            record_dense(&mut histogram, MAX_MICROS);
            histogram.high()
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

/// Equal when they hold the same samples (whatever their form or current size).
impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        let (mine, theirs) = (self.inner(), other.inner());
        mine.len() == theirs.len()
            && mine
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .eq(theirs
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

    /// A dense histogram holding `micros` once (a list past its limit, then emptied of all
    /// but that one).
    fn dense_with(micros: u64) -> Histogram {
        let mut dense = Histogram::new();
        for _ in 0..=SAMPLES_MAX {
            dense.record_micros(MAX_MICROS);
        }
        assert!(matches!(dense.0, Counts::Dense(_)));
        dense.reset();
        dense.record_micros(micros);
        dense
    }

    #[test]
    fn grows_to_one_hour_and_compares_by_samples() {
        let mut small = Histogram::new();
        small.record_micros(1_234);
        let mut large = dense_with(1_234);
        assert!(large.inner().high() >= MAX_MICROS);
        assert_eq!(small, large);
        assert_ne!(small.inner().high(), large.inner().high());
        large.record_micros(7);
        assert_ne!(small, large);
        let refill = large.empty_like();
        assert!(matches!(refill.0, Counts::Dense(_)));
        assert_eq!(
            refill.inner().distinct_values(),
            large.inner().distinct_values()
        );
    }

    #[test]
    fn a_list_turns_dense_past_its_limit_and_loses_no_sample() {
        let mut histogram = Histogram::new();
        for micros in 0..SAMPLES_MAX as u64 {
            histogram.record_micros(micros);
        }
        assert!(matches!(histogram.0, Counts::Samples(_)));
        let list = histogram.clone();
        histogram.record_micros(5);
        assert!(matches!(histogram.0, Counts::Dense(_)));
        assert_eq!(histogram.len(), SAMPLES_MAX as u64 + 1);
        let mut expected = list.inner().into_owned();
        expected.record(5).unwrap();
        assert_eq!(
            histogram.inner().value_at_quantile(0.5),
            expected.value_at_quantile(0.5)
        );
        // Two lists that together pass the limit add into a dense one.
        let mut sum = list.clone();
        sum.add(&list);
        assert!(matches!(sum.0, Counts::Dense(_)));
        assert_eq!(sum.len(), 2 * SAMPLES_MAX as u64);
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
            #![proptest_config(crate::fuzzing::config(256))]

            #[test]
            fn a_list_answers_every_question_as_the_dense_histogram_does(
                values in vec(0u64..2 * MAX_MICROS, 0..60),
                more in vec(0u64..10_000_000, 0..60),
                quantiles in vec(-0.5f64..1.5, 1..8),
            ) {
                let mut list = Histogram::new();
                let mut dense = dense_covering(INITIAL_MAX_MICROS);
                for &value in &values {
                    list.record_micros(value);
                    record_dense(&mut dense, value.min(MAX_MICROS));
                }
                let mut other = Histogram::new();
                for &value in &more {
                    other.record_micros(value);
                    record_dense(&mut dense, value);
                }
                list.add(&other);
                prop_assert!(matches!(list.0, Counts::Samples(_)));
                prop_assert_eq!(list.len(), dense.len());
                for quantile in quantiles.into_iter().chain([0.0, 1.0]) {
                    let expected = if dense.is_empty() { 0 } else { dense.value_at_quantile(quantile) };
                    prop_assert_eq!(list.quantile_micros(quantile), expected, "q {}", quantile);
                }
                let as_dense = Histogram(Counts::Dense(dense));
                prop_assert_eq!(&list, &as_dense);
                let back = Histogram::from_base64(&list.to_base64());
                prop_assert_eq!(back.as_ref(), Ok(&as_dense));
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
