//! What Linux's `/proc` says of a process and of the machine, read from the files' text.
//! Plain functions over text: the sampler reads the files, these parse them.

/// A process's counters from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStat {
    /// User and system CPU time, in clock ticks (`USER_HZ`).
    pub cpu_ticks: u64,
    pub threads: u64,
    /// When the process started, in ticks after boot: a PID reused by another process
    /// has another start.
    pub start_ticks: u64,
}

/// Reads `/proc/PID/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself: the fields are counted from the last `)`.
pub fn process_stat(text: &str) -> Option<ProcessStat> {
    let after = &text[text.rfind(')')? + 1..];
    // Fields from 3 (state) on; utime is field 14, stime 15, num_threads 20, starttime 22.
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcessStat {
        cpu_ticks: field(14)? + field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
    })
}

/// The command name in `/proc/PID/stat` (what `/proc/PID/comm` holds).
pub fn process_name(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// A `Key:   value kB` line's value in bytes, from `/proc/PID/status` or `/proc/meminfo`.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_ascii_whitespace();
        let number: u64 = parts.next()?.parse().ok()?;
        Some(match parts.next() {
            Some("kB") => number * 1024,
            _ => number,
        })
    })
}

/// Bytes a process read from and wrote to storage, from `/proc/PID/io`.
pub fn process_io(text: &str) -> Option<(u64, u64)> {
    Some((
        kib_field(text, "read_bytes")?,
        kib_field(text, "write_bytes")?,
    ))
}

/// The machine's CPU time from the `cpu` line of `/proc/stat`: (busy, total) in ticks.
/// Idle and I/O wait are not busy; guest time is already in user time.
pub fn host_cpu(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let numbers: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = numbers.iter().sum();
    let idle = numbers.get(3)? + numbers.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// How many CPUs `/proc/stat` lists (`cpu0`, `cpu1`, ...).
pub fn cpu_count(text: &str) -> usize {
    text.lines()
        .filter(|line| line.starts_with("cpu") && !line.starts_with("cpu "))
        .count()
        .max(1)
}

/// Memory in use, in percent of the total: what `MemAvailable` does not leave.
pub fn memory_used_percent(meminfo: &str) -> Option<f64> {
    let total = kib_field(meminfo, "MemTotal")? as f64;
    let available = kib_field(meminfo, "MemAvailable")? as f64;
    (total > 0.0).then(|| 100.0 * (total - available) / total)
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load1(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Bytes received and sent over every interface (loopback too: a target on this machine
/// talks over it), from `/proc/net/dev`.
pub fn network_bytes(text: &str) -> Option<(u64, u64)> {
    let mut received = 0u64;
    let mut sent = 0u64;
    let mut any = false;
    for line in text.lines().skip(2) {
        let Some((_, counters)) = line.split_once(':') else {
            continue;
        };
        let fields: Vec<u64> = counters
            .split_ascii_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if fields.len() >= 9 {
            received = received.saturating_add(fields[0]);
            sent = sent.saturating_add(fields[8]);
            any = true;
        }
    }
    any.then_some((received, sent))
}

/// Bytes read from and written to the whole disks named in `disks` (`/sys/block`'s entries
/// without loop and RAM devices: partitions would count twice), from `/proc/diskstats`.
pub fn disk_bytes(text: &str, disks: &[String]) -> Option<(u64, u64)> {
    const SECTOR: u64 = 512;
    let mut read = 0u64;
    let mut written = 0u64;
    let mut any = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 10 || !disks.iter().any(|d| d == fields[2]) {
            continue;
        }
        let (Ok(sectors_read), Ok(sectors_written)) =
            (fields[5].parse::<u64>(), fields[9].parse::<u64>())
        else {
            continue;
        };
        read = read.saturating_add(sectors_read * SECTOR);
        written = written.saturating_add(sectors_written * SECTOR);
        any = true;
    }
    any.then_some((read, written))
}

/// Whether a `/sys/block` entry is a disk worth counting.
pub fn is_counted_disk(name: &str) -> bool {
    !(name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_stat_is_read_from_after_its_name() {
        let text = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 7 0 2800323 313344 407 18446744073709551615";
        assert_eq!(
            process_stat(text),
            Some(ProcessStat {
                cpu_ticks: 200,
                threads: 7,
                start_ticks: 2800323
            })
        );
        assert_eq!(process_name(text), Some("my (odd) app"));
        assert_eq!(process_stat("4242 (cut"), None);
        assert_eq!(process_stat("4242 (x) S 1 2"), None);
    }

    #[test]
    fn status_meminfo_and_io_fields() {
        let status = "Name:\tpostgres\nVmRSS:\t   20480 kB\nThreads:\t1\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(20480 * 1024));
        assert_eq!(kib_field(status, "VmSwap"), None);
        let io = "rchar: 6976\nwchar: 0\nread_bytes: 4096\nwrite_bytes: 8192\n";
        assert_eq!(process_io(io), Some((4096, 8192)));
        let meminfo = "MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    250 kB\n";
        assert_eq!(memory_used_percent(meminfo), Some(75.0));
    }

    #[test]
    fn host_counters() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
        assert_eq!(host_cpu(stat), Some((150, 1000)));
        assert_eq!(cpu_count(stat), 2);
        assert_eq!(load1("9.02 8.27 6.87 13/197 23352\n"), Some(9.02));
        let net = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n    lo: 1000 5 0 0 0 0 0 0 2000 5 0 0 0 0 0 0\n  eth0: 10 1 0 0 0 0 0 0 20 1 0 0 0 0 0 0\n";
        assert_eq!(network_bytes(net), Some((1010, 2020)));
        let disks = "   7       0 loop0 9 0 9 0 0 0 0 0 0 0 0\n 253       0 vda 100 0 8 0 50 0 16 0 0 0 0\n 253       1 vda1 100 0 8 0 50 0 16 0 0 0 0\n";
        assert_eq!(
            disk_bytes(disks, &["vda".to_owned()]),
            Some((8 * 512, 16 * 512))
        );
        assert!(is_counted_disk("vda") && !is_counted_disk("loop3") && !is_counted_disk("zram0"));
    }
}
