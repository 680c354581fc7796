//! The limits of the machine a run must fit: open files. Each user holds a socket per origin
//! it talks to (and a `parallel:` repeat one more per iteration running at once); past the
//! process's open-files limit every new socket fails at once. chorus raises its own soft limit
//! to the hard limit when it starts, and refuses a run that cannot fit before any traffic,
//! with the numbers and what to do (`--processes N`, or a higher `ulimit -n`).

use crate::scenario::{Count, Scenario, Step, StepKind};

/// Descriptors chorus holds besides the users' sockets: the runtime, the worker threads, the
/// page and its connections, report and log files.
pub const OVERHEAD: u64 = 256;

/// A run that cannot get the sockets it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{users} users need about {needed} open files ({per_user} connection(s) per user, {OVERHEAD} more for chorus itself), but {whom} may open only {limit} (`ulimit -n`; its hard limit is {hard}). Run the users in {processes} processes of this machine (`--processes {processes}`, or `--processes auto`, which counts the users `-u` or `--stages` give when chorus starts), or raise the hard limit before starting chorus (`ulimit -n {needed}` as root, `LimitNOFILE={needed}` in a systemd unit, `--ulimit nofile={needed}` for docker)"
)]
pub struct OpenFilesError {
    /// Users one process would run.
    pub users: u64,
    pub per_user: u64,
    pub needed: u64,
    pub limit: u64,
    pub hard: String,
    /// "this process", or "each of the N processes".
    pub whom: String,
    /// How many processes would hold the whole run.
    pub processes: u64,
}

/// Connections one user may hold at once: one per origin the scenario may send to, for the
/// user itself and for each `parallel:` iteration running beside it (each has its own
/// connections). A `parallel:` given by a template counts as 1: its value is known only per
/// user.
pub fn connections_per_user(scenario: &Scenario) -> u64 {
    let origins = scenario.allowed_hosts.len().max(1) as u64;
    origins.saturating_mul(connections_per_origin(scenario))
}

/// Connections one user may hold at once to one origin: its own and one for each
/// `parallel:` iteration running beside it.
pub fn connections_per_origin(scenario: &Scenario) -> u64 {
    let forks = [&scenario.on_start, &scenario.on_stop]
        .into_iter()
        .chain(scenario.flows.iter().map(|flow| &flow.steps))
        .map(|steps| forks(steps))
        .max()
        .unwrap_or(0);
    forks.saturating_add(1)
}

/// The copies of a user that `steps` may run beside it at once (nested `parallel:` repeats
/// multiply).
fn forks(steps: &[Step]) -> u64 {
    steps
        .iter()
        .map(|step| match &step.kind {
            StepKind::Repeat(repeat) => {
                let inner = forks(&repeat.steps);
                match &repeat.parallel {
                    Some(count) => most(count).saturating_mul(inner.saturating_add(1)),
                    None => inner,
                }
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// The most a count can be (1 for a template, known only per user).
fn most(count: &Count) -> u64 {
    match count {
        Count::Fixed(n) => (*n).max(1),
        Count::Range(low, high) => (*low).max(*high).max(1),
        Count::Template(_) => 1,
    }
}

/// The open files `users` users need, about, with `per_user` connections each.
pub fn needed_open_files(users: u64, per_user: u64) -> u64 {
    users.saturating_mul(per_user).saturating_add(OVERHEAD)
}

/// The processes that together hold `users` users of `per_user` connections each, when each
/// may open `limit` files (`None`: unlimited). At least 1.
pub fn processes_needed(users: u64, per_user: u64, limit: Option<u64>) -> u64 {
    let Some(limit) = limit else { return 1 };
    // A process keeps at least a few users' room even when the limit is tiny.
    let room = limit.saturating_sub(OVERHEAD).max(per_user.max(1));
    users.saturating_mul(per_user.max(1)).div_ceil(room).max(1)
}

/// The users each of `processes` processes runs (the largest share).
pub fn users_per_process(users: u64, processes: u64) -> u64 {
    users.div_ceil(processes.max(1))
}

/// Raises this process's soft open-files limit to its hard limit. Returns the soft limit
/// before and after (`None`: unlimited), or `None` when the limits cannot be read.
pub fn raise_open_files_limit() -> Option<(Option<u64>, Option<u64>)> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limits = getrlimit(Resource::Nofile);
        let before = limits.current;
        if limits.current != limits.maximum {
            let raised = Rlimit {
                current: limits.maximum,
                maximum: limits.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_err() {
                return Some((before, before));
            }
        }
        Some((before, getrlimit(Resource::Nofile).current))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The soft and hard open-files limits now (`None`: unlimited or unknown).
pub fn open_files_limits() -> (Option<u64>, Option<u64>) {
    #[cfg(unix)]
    {
        let limits = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        (limits.current, limits.maximum)
    }
    #[cfg(not(unix))]
    {
        (None, None)
    }
}

/// Refuses `users` users of `per_user` connections each when this process cannot open the
/// files they need.
pub fn check_open_files(users: u64, per_user: u64) -> Result<(), OpenFilesError> {
    let (soft, hard) = open_files_limits();
    fits(users, per_user, 1, soft, hard)
}

/// Whether `users` users of `per_user` connections each, shared over `processes` processes,
/// fit a soft limit of `soft` open files per process (`None`: unlimited).
pub fn fits(
    users: u64,
    per_user: u64,
    processes: u64,
    soft: Option<u64>,
    hard: Option<u64>,
) -> Result<(), OpenFilesError> {
    let share = users_per_process(users, processes);
    let needed = needed_open_files(share, per_user);
    match soft {
        Some(limit) if needed > limit => Err(OpenFilesError {
            users: share,
            per_user,
            needed,
            limit,
            hard: hard.map_or_else(|| "unlimited".to_owned(), |hard| hard.to_string()),
            whom: match processes {
                0 | 1 => "this process".to_owned(),
                n => format!("each of the {n} processes"),
            },
            processes: processes_needed(users, per_user, Some(limit)),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_must_fit_the_open_files_limit() {
        assert_eq!(fits(768, 1, 1, Some(1024), Some(1024)), Ok(()));
        assert_eq!(fits(u64::MAX, 3, 1, None, None), Ok(()));
        let err = fits(3000, 1, 1, Some(1024), Some(4096)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3000 users need about 3256 open files (1 connection(s) per user, 256 more for chorus itself), but this process may open only 1024 (`ulimit -n`; its hard limit is 4096). Run the users in 4 processes of this machine (`--processes 4`, or `--processes auto`, which counts the users `-u` or `--stages` give when chorus starts), or raise the hard limit before starting chorus (`ulimit -n 3256` as root, `LimitNOFILE=3256` in a systemd unit, `--ulimit nofile=3256` for docker)"
        );
    }

    #[test]
    fn processes_share_the_users() {
        // 100,000 users under this machine's limit of 20,000: six processes.
        assert_eq!(processes_needed(100_000, 1, Some(20_000)), 6);
        assert_eq!(fits(100_000, 1, 6, Some(20_000), Some(20_000)), Ok(()));
        let err = fits(100_000, 1, 3, Some(20_000), Some(20_000)).unwrap_err();
        assert_eq!(
            (err.users, err.needed, err.processes, err.whom.as_str()),
            (33_334, 33_590, 6, "each of the 3 processes")
        );
        // Two connections per user (two origins, or a `parallel: 1` beside the user) need twice the room.
        assert_eq!(processes_needed(100_000, 2, Some(20_000)), 11);
        assert_eq!(processes_needed(10, 1, Some(20_000)), 1);
        assert_eq!(processes_needed(10, 1, None), 1);
        assert_eq!(processes_needed(0, 1, Some(20_000)), 1);
        // A limit below chorus's own overhead still gives each process some room.
        assert_eq!(processes_needed(10, 1, Some(100)), 10);
        assert_eq!(users_per_process(10, 3), 4);
    }

    #[test]
    fn connections_follow_origins_and_parallel_repeats() {
        let scenario = |yaml: &str| {
            let options = crate::scenario::LoadOptions::default();
            crate::scenario::load_str(yaml, std::path::Path::new("s.yaml"), &options).unwrap()
        };
        let plain = scenario(
            "host: http://127.0.0.1:1\nflows:\n  - name: a\n    steps:\n      - get: /a\n",
        );
        assert_eq!(connections_per_user(&plain), 1);
        let two_hosts = scenario(
            "host: http://127.0.0.1:1\nflows:\n  - name: a\n    steps:\n      - get: /a\n      - get: http://127.0.0.2:2/b\n",
        );
        assert_eq!(connections_per_user(&two_hosts), 2);
        // The user's own connection stays open beside four copies, each with its own; a
        // nested `parallel: 2` doubles each copy's.
        let parallel = scenario(
            "host: http://127.0.0.1:1\nflows:\n  - name: a\n    steps:\n      - repeat: 8\n        parallel: 4\n        steps:\n          - get: /a\n          - repeat: 2\n            parallel: 2\n            steps:\n              - get: /b\n",
        );
        assert_eq!(connections_per_user(&parallel), 1 + 4 * (1 + 2));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        if let Some((_, after)) = raise_open_files_limit() {
            assert_eq!(after, open_files_limits().1);
        }
    }
}
