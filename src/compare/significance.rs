//! The statistics of a comparison: bootstrap confidence intervals of each percentile's and the
//! mean's ratio, drawn from the HDR histograms with the sample size shrunk by the run's design
//! effect (latencies within a run are not independent), and normal intervals for the
//! throughput and the failure rate. docs/compare.md says why.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

use super::{Change, MIN_FAILURE_RATE_CHANGE, MIN_SAMPLES, Metric, Verdict};
use crate::stats::{EntryStats, PERCENTILES, RunResult};

/// Bootstrap replicates per metric.
const REPLICATES: usize = 1000;
/// The design effect of a run whose history is too short to estimate one.
pub(super) const DEFAULT_DESIGN_EFFECT: f64 = 2.0;
/// The largest design effect believed (a run that varies more than this is noise).
const MAX_DESIGN_EFFECT: f64 = 100.0;
/// Seconds of history a design effect needs, and requests in each of them.
const MIN_SECONDS: usize = 4;
const MIN_SECOND_REQUESTS: u64 = 30;

/// The standard normal quantile of `p` (0 < p < 1), Acklam's rational approximation (relative
/// error below 1.2e-9).
pub(super) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// One side of one request: its counts and its latency distribution as a cumulative table.
pub(super) struct Side<'a> {
    entry: &'a EntryStats,
    /// (highest value of a bucket in µs, samples up to and including it), by value.
    cumulative: Vec<(u64, u64)>,
    design_effect: f64,
    seconds: f64,
}

impl<'a> Side<'a> {
    pub(super) fn of(entry: &'a EntryStats, design_effect: f64, seconds: f64) -> Self {
        let inner = entry.histogram.inner();
        let mut running = 0u64;
        let cumulative = inner
            .iter_recorded()
            .map(|bucket| {
                running += bucket.count_at_value();
                (
                    inner.highest_equivalent(bucket.value_iterated_to()),
                    running,
                )
            })
            .collect();
        Self {
            entry,
            cumulative,
            design_effect: design_effect.max(1.0),
            seconds: seconds.max(0.001),
        }
    }

    fn samples(&self) -> u64 {
        self.cumulative.last().map_or(0, |last| last.1)
    }

    /// The latency at `quantile` (0..1) in µs, within the exact min and max.
    fn quantile(&self, quantile: f64) -> f64 {
        let n = self.samples();
        let rank = ((quantile.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n.max(1));
        let at = self.cumulative.partition_point(|(_, count)| *count < rank);
        let value = self.cumulative.get(at).map_or(0, |bucket| bucket.0);
        let (min, max) = (self.entry.min_us, self.entry.max_us);
        (if min <= max {
            value.clamp(min, max)
        } else {
            value
        }) as f64
    }

    /// How many independent samples this side is worth.
    fn effective(&self, samples: u64) -> f64 {
        (samples as f64 / self.design_effect).max(1.0)
    }
}

/// The two sides of one request.
pub(super) struct Sides<'a> {
    pub(super) base: Side<'a>,
    pub(super) new: Side<'a>,
    pub(super) seed: u64,
    pub(super) min_effect: f64,
    /// The normal quantile each interval reaches to (the family's confidence shared out).
    pub(super) z: f64,
}

impl Sides<'_> {
    /// The change of `metric` with its interval and verdict.
    pub(super) fn change(&self, metric: Metric) -> Change {
        match metric {
            Metric::Throughput => self.throughput(),
            Metric::FailureRate => self.failure_rate(),
            Metric::Mean => self.mean(),
            _ => self.percentile(metric),
        }
    }

    fn enough_latencies(&self) -> bool {
        self.base.samples() >= MIN_SAMPLES && self.new.samples() >= MIN_SAMPLES
    }

    fn rng(&self, metric: Metric) -> Xoshiro256PlusPlus {
        let index = Metric::ALL.iter().position(|m| *m == metric).unwrap_or(0);
        Xoshiro256PlusPlus::seed_from_u64(self.seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9))
    }

    /// The interval of a ratio: the point `ratio` times `exp(±z·sd)`, `sd` the spread of the
    /// replicates' logs (a normal bootstrap interval: the family's shared-out confidence reaches
    /// far into the tails, where a few thousand replicates would not).
    fn interval(&self, ratio: f64, replicates: Vec<f64>) -> (f64, f64) {
        let logs: Vec<f64> = (replicates.iter())
            .filter(|r| **r > 0.0)
            .map(|r| r.ln())
            .collect();
        let count = logs.len().max(2) as f64;
        let mean = logs.iter().sum::<f64>() / count;
        let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (count - 1.0)).sqrt();
        (ratio * (-self.z * sd).exp(), ratio * (self.z * sd).exp())
    }

    fn percentile(&self, metric: Metric) -> Change {
        let percentile = metric.percentile().unwrap_or(50.0);
        let base = self.base.entry.percentile_us(percentile) as f64;
        let new = self.new.entry.percentile_us(percentile) as f64;
        if !self.enough_latencies() || base <= 0.0 {
            return not_enough(metric, base / 1000.0, new / 1000.0);
        }
        let q = percentile / 100.0;
        let spread = |side: &Side<'_>| (q * (1.0 - q) / side.effective(side.samples())).sqrt();
        let (spread_base, spread_new) = (spread(&self.base), spread(&self.new));
        let mut rng = self.rng(metric);
        let ratios = (0..REPLICATES).map(|_| {
            let old = self.base.quantile(q + spread_base * normal(&mut rng));
            let now = self.new.quantile(q + spread_new * normal(&mut rng));
            now / old.max(1.0)
        });
        let (low, high) = self.interval(new / base, ratios.collect());
        latency_change(metric, base, new, low, high, self.min_effect)
    }

    fn mean(&self) -> Change {
        let (base, new) = (self.base.entry.avg_ms(), self.new.entry.avg_ms());
        if !self.enough_latencies() || base <= 0.0 {
            return not_enough(Metric::Mean, base, new);
        }
        let error = |side: &Side<'_>| {
            let sd = side.entry.histogram.inner().stdev() / 1000.0;
            sd / side.effective(side.samples()).sqrt()
        };
        let (error_base, error_new) = (error(&self.base), error(&self.new));
        let mut rng = self.rng(Metric::Mean);
        let floor = base.min(new) / 1000.0;
        let ratios = (0..REPLICATES).map(|_| {
            let old = (base + error_base * normal(&mut rng)).max(floor);
            let now = (new + error_new * normal(&mut rng)).max(floor);
            now / old
        });
        let (low, high) = self.interval(new / base, ratios.collect());
        latency_change(
            Metric::Mean,
            base * 1000.0,
            new * 1000.0,
            low,
            high,
            self.min_effect,
        )
    }

    fn throughput(&self) -> Change {
        let (count_base, count_new) = (self.base.entry.requests, self.new.entry.requests);
        let base = count_base as f64 / self.base.seconds;
        let new = count_new as f64 / self.new.seconds;
        if count_base < MIN_SAMPLES || count_new < MIN_SAMPLES {
            return not_enough(Metric::Throughput, base, new);
        }
        // Counts vary like Poisson counts, inflated by the design effect.
        let log_error = (self.base.design_effect / count_base as f64
            + self.new.design_effect / count_new as f64)
            .sqrt();
        let ratio = new / base;
        let low = ratio * (-self.z * log_error).exp();
        let high = ratio * (self.z * log_error).exp();
        let change = ratio - 1.0;
        let verdict = if low > 1.0 && change >= self.min_effect {
            Verdict::Better
        } else if high < 1.0 && 1.0 / ratio - 1.0 >= self.min_effect {
            Verdict::Worse
        } else {
            Verdict::NoChange
        };
        Change {
            metric: Metric::Throughput,
            base,
            new,
            change,
            low: low - 1.0,
            high: high - 1.0,
            verdict,
        }
    }

    fn failure_rate(&self) -> Change {
        let (old, now) = (self.base.entry, self.new.entry);
        let (base, new) = (old.failure_percent(), now.failure_percent());
        if old.requests < MIN_SAMPLES || now.requests < MIN_SAMPLES {
            return not_enough(Metric::FailureRate, base, new);
        }
        // Agresti–Caffo: one failure and one success added to each side, so a side without
        // failures still has a spread.
        let variance = |side: &Side<'_>| {
            let entry = side.entry;
            let n = entry.requests as f64 + 2.0;
            let p = (entry.failures as f64 + 1.0) / n;
            side.design_effect * p * (1.0 - p) / n
        };
        let error = 100.0 * (variance(&self.base) + variance(&self.new)).sqrt();
        let change = new - base;
        let (low, high) = (change - self.z * error, change + self.z * error);
        let verdict = if low > 0.0 && change >= MIN_FAILURE_RATE_CHANGE {
            Verdict::Worse
        } else if high < 0.0 && -change >= MIN_FAILURE_RATE_CHANGE {
            Verdict::Better
        } else {
            Verdict::NoChange
        };
        Change {
            metric: Metric::FailureRate,
            base,
            new,
            change,
            low,
            high,
            verdict,
        }
    }
}

fn not_enough(metric: Metric, base: f64, new: f64) -> Change {
    let change = if metric == Metric::FailureRate {
        new - base
    } else if base > 0.0 {
        new / base - 1.0
    } else {
        0.0
    };
    Change {
        metric,
        base,
        new,
        change,
        low: f64::NEG_INFINITY,
        high: f64::INFINITY,
        verdict: Verdict::NotEnoughData,
    }
}

/// A latency change from the point values (µs) and the ratio's interval.
fn latency_change(
    metric: Metric,
    base: f64,
    new: f64,
    low: f64,
    high: f64,
    min_effect: f64,
) -> Change {
    let ratio = new / base;
    let verdict = if low > 1.0 && ratio - 1.0 >= min_effect {
        Verdict::Worse
    } else if high < 1.0 && 1.0 / ratio - 1.0 >= min_effect {
        Verdict::Better
    } else {
        Verdict::NoChange
    };
    Change {
        metric,
        base: base / 1000.0,
        new: new / 1000.0,
        change: ratio - 1.0,
        low: low - 1.0,
        high: high - 1.0,
        verdict,
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How much more a run's per-second percentiles vary than independent samples would make
/// them: the variance of the log of each second's p50 and p95 across seconds, over what
/// sampling alone gives a second of that many requests (from the run's own density at the
/// percentile). 1 for independent samples; [`DEFAULT_DESIGN_EFFECT`] when the run has fewer
/// than [`MIN_SECONDS`] full seconds besides its first and last.
pub(super) fn design_effect(run: &RunResult) -> f64 {
    // The first and the last second are partial (users starting, the stop) and differ for
    // that reason alone.
    let inner = match run.history.len() {
        0..=2 => &[][..],
        n => &run.history[1..n - 1],
    };
    let seconds: Vec<_> = (inner.iter())
        .filter(|p| p.span_seconds == 1 && p.requests >= MIN_SECOND_REQUESTS)
        .collect();
    if seconds.len() < MIN_SECONDS {
        return DEFAULT_DESIGN_EFFECT;
    }
    let total = &run.total;
    let mut effect: Option<f64> = None;
    for (index, percentile) in PERCENTILES.iter().enumerate() {
        if *percentile != 50.0 && *percentile != 95.0 {
            continue;
        }
        let q = percentile / 100.0;
        let at = |q: f64| total.histogram.quantile_micros(q) as f64;
        let (value, slope) = (at(q), (at(q + 0.02) - at(q - 0.02)) / 0.04);
        if value <= 0.0 || slope <= 0.0 {
            continue;
        }
        let logs: Vec<f64> = (seconds.iter())
            .filter_map(|p| p.percentiles_us.get(index))
            .filter(|v| **v > 0)
            .map(|v| (*v as f64).ln())
            .collect();
        if logs.len() < MIN_SECONDS {
            continue;
        }
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let observed =
            logs.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64;
        let relative_slope = slope / value;
        let expected = (seconds.iter())
            .map(|p| q * (1.0 - q) / p.requests as f64 * relative_slope.powi(2))
            .sum::<f64>()
            / seconds.len() as f64;
        let ratio = observed / expected;
        effect = Some(effect.map_or(ratio, |e: f64| e.max(ratio)));
    }
    effect.map_or(DEFAULT_DESIGN_EFFECT, |e| e.clamp(1.0, MAX_DESIGN_EFFECT))
}

/// Latency (µs) at percentiles spaced evenly on the HDR axis `-log10(1 - q)`, from 0 to
/// 99.99 %, for the HTML curves; empty without latencies.
pub(super) fn curve(entry: &EntryStats) -> Vec<(f64, u64)> {
    if entry.timed() == 0 {
        return Vec::new();
    }
    (0..=80)
        .map(|step| {
            let percentile = 100.0 * (1.0 - 10f64.powf(-f64::from(step) / 20.0));
            (percentile, entry.percentile_us(percentile).max(1))
        })
        .collect()
}
