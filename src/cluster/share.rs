//! How the load is shared out: users and the spawn rate split evenly over the workers
//! (within what each one's rows allow), and `unique` data rows handed out so that no row is
//! ever given to two workers, not even after one was lost (it may still be running, cut off).
//! Plain functions over numbers.

/// Splits `total` users as evenly as possible over workers that can run at most `caps[i]`
/// each; what one cannot take goes to the others. The sum is less than `total` only when the
/// caps do not add up to it.
pub fn split_users(total: u64, caps: &[u64]) -> Vec<u64> {
    let mut shares = vec![0u64; caps.len()];
    let mut order: Vec<usize> = (0..caps.len()).collect();
    order.sort_by_key(|&i| caps[i]);
    let mut left = total;
    for (k, &i) in order.iter().enumerate() {
        let remaining = (order.len() - k) as u64;
        if caps[i] <= left / remaining {
            shares[i] = caps[i];
            left -= caps[i];
            continue;
        }
        // Every worker left can take an even share: spread what is left, the remainder to
        // the first ones.
        let mut rest = order[k..].to_vec();
        rest.sort_unstable();
        let each = left / remaining;
        let extra = left % remaining;
        for (j, &r) in rest.iter().enumerate() {
            shares[r] = each + u64::from((j as u64) < extra);
        }
        break;
    }
    shares
}

/// Each worker's spawn rate, so that all of them reach their share at the same time.
pub fn split_rate(rate: f64, shares: &[u64]) -> Vec<f64> {
    let total: u64 = shares.iter().sum();
    let count = shares.len().max(1) as f64;
    shares
        .iter()
        .map(|&share| {
            if total == 0 || share == 0 {
                rate / count
            } else {
                rate * share as f64 / total as f64
            }
        })
        .collect()
}

/// Open model: each worker's arrival rate and most users, from the shares of `max_users`.
/// The rates follow the shares and add up to `rate`; a worker whose share is 0 (fewer users
/// than workers) still gets one user, so every worker that gets a rate can start it.
pub fn split_arrivals(rate: f64, shares: &[u64]) -> Vec<(f64, u64)> {
    let users: Vec<u64> = shares.iter().map(|&share| share.max(1)).collect();
    let total: u64 = users.iter().sum();
    users
        .iter()
        .map(|&users| (rate * users as f64 / total.max(1) as f64, users))
        .collect()
}

/// The `unique` rows not given out yet. A row goes to one worker for the rest of the run.
#[derive(Debug, Clone)]
pub struct RowPool {
    /// Lowest first.
    free: std::collections::VecDeque<u32>,
}

impl RowPool {
    pub fn new(rows: u64) -> RowPool {
        RowPool {
            free: (0..rows.min(u64::from(u32::MAX)) as u32).collect(),
        }
    }

    pub fn free(&self) -> u64 {
        self.free.len() as u64
    }

    /// Takes up to `count` rows.
    pub fn take(&mut self, count: u64) -> Vec<u32> {
        let count = count.min(self.free()) as usize;
        self.free.drain(..count).collect()
    }
}

/// How many rows to give each of the workers being started, whose shares of the peak users
/// are `peak_shares`, out of `free` rows: its share first, then as many more as it would
/// need to take over a lost worker's users, while leaving some for a worker that joins later.
pub fn rows_to_give(peak_shares: &[u64], running: usize, free: u64) -> Vec<u64> {
    let starting = peak_shares.len();
    let needed: u64 = peak_shares.iter().sum();
    let mut give: Vec<u64> = Vec::with_capacity(starting);
    let mut left = free;
    for &share in peak_shares {
        let take = share.min(left);
        give.push(take);
        left -= take;
    }
    let workers = (running + starting) as u64;
    let peak_total = needed * workers / (starting.max(1) as u64);
    // With one worker fewer, each would run this many users.
    let after_loss = peak_total.div_ceil(workers.saturating_sub(1).max(1));
    let reserve_each = left / (starting as u64 + 1);
    for (i, share) in peak_shares.iter().enumerate() {
        let extra = after_loss.saturating_sub(*share).min(reserve_each);
        give[i] += extra;
    }
    give
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_split_evenly_within_caps() {
        assert_eq!(split_users(10, &[u64::MAX; 3]), [4, 3, 3]);
        assert_eq!(split_users(10, &[2, u64::MAX, u64::MAX]), [2, 4, 4]);
        assert_eq!(split_users(10, &[2, 3, 1]), [2, 3, 1]);
        assert_eq!(split_users(0, &[5, 5]), [0, 0]);
        assert!(split_users(7, &[]).is_empty());
        for total in 0..40 {
            let caps = [3, 7, 20, 1];
            let shares = split_users(total, &caps);
            assert_eq!(
                shares.iter().sum::<u64>(),
                total.min(31),
                "{total}: {shares:?}"
            );
            assert!(shares.iter().zip(caps).all(|(s, c)| *s <= c));
        }
    }

    #[test]
    fn rates_follow_the_shares() {
        assert_eq!(split_rate(10.0, &[6, 2, 2]), [6.0, 2.0, 2.0]);
        assert_eq!(split_rate(9.0, &[0, 0, 0]), [3.0, 3.0, 3.0]);
        assert!(split_rate(9.0, &[4, 0]).iter().all(|r| *r > 0.0));
    }

    #[test]
    fn arrival_rates_follow_the_shares_and_add_up() {
        assert_eq!(
            split_arrivals(90.0, &[100, 100, 100]),
            [(30.0, 100), (30.0, 100), (30.0, 100)]
        );
        assert_eq!(split_arrivals(30.0, &[2, 1]), [(20.0, 2), (10.0, 1)]);
        assert_eq!(split_arrivals(10.0, &[1, 0]), [(5.0, 1), (5.0, 1)]);
        let rates = split_arrivals(100.0, &split_users(1000, &[u64::MAX; 7]));
        let sum: f64 = rates.iter().map(|(rate, _)| rate).sum();
        assert!((sum - 100.0).abs() < 1e-9, "{sum}");
        assert!(split_arrivals(5.0, &[]).is_empty());
    }

    #[test]
    fn rows_are_never_given_twice_and_cover_a_loss() {
        let mut pool = RowPool::new(100);
        let shares = split_users(30, &[u64::MAX; 3]);
        let give = rows_to_give(&shares, 0, pool.free());
        // Each can take over a third of a lost worker's users: 15 each with one lost.
        assert_eq!(give, [15, 15, 15]);
        let mut seen = std::collections::BTreeSet::new();
        for count in give {
            for row in pool.take(count) {
                assert!(seen.insert(row));
            }
        }
        // A worker joining later still finds rows.
        let later = rows_to_give(&[10], 3, pool.free());
        assert!(later[0] >= 10, "{later:?}");
        // Exactly enough rows: every worker gets its share, nothing more.
        assert_eq!(rows_to_give(&[10, 10, 10], 0, 30), [10, 10, 10]);
        assert_eq!(RowPool::new(3).take(5), [0, 1, 2]);
    }
}
