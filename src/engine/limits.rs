//! The limits of the machine a run must fit: open files. Each user holds a socket per origin
//! it talks to; past the process's open-files limit every new socket fails at once. chorus
//! raises its own soft limit to the hard limit when it starts, and refuses a run that cannot
//! fit before any traffic, with the numbers and what to do.

/// Descriptors chorus holds besides the users' sockets: the runtime, the worker threads, the
/// page and its connections, report and log files.
pub const OVERHEAD: u64 = 256;

/// A run that cannot get the sockets it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{users} users need about {needed} open files (a connection per user, {OVERHEAD} more for chorus itself), but this process may open only {limit} (`ulimit -n`; its hard limit is {hard}). Raise the limit before starting chorus (`ulimit -n {needed}` as root, `LimitNOFILE={needed}` in a systemd unit, `--ulimit nofile={needed}` for docker), or spread the users over several machines (`chorus run --master` and `chorus worker`)"
)]
pub struct OpenFilesError {
    pub users: u64,
    pub needed: u64,
    pub limit: u64,
    pub hard: String,
}

/// The open files `users` users need, about.
pub fn needed_open_files(users: u64) -> u64 {
    users.saturating_add(OVERHEAD)
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
fn open_files_limits() -> (Option<u64>, Option<u64>) {
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

/// Refuses `users` users when this process cannot open the files they need.
pub fn check_open_files(users: u64) -> Result<(), OpenFilesError> {
    let (soft, hard) = open_files_limits();
    fits(users, soft, hard)
}

/// Whether `users` fit a soft limit of `soft` open files (`None`: unlimited).
pub fn fits(users: u64, soft: Option<u64>, hard: Option<u64>) -> Result<(), OpenFilesError> {
    let needed = needed_open_files(users);
    match soft {
        Some(limit) if needed > limit => Err(OpenFilesError {
            users,
            needed,
            limit,
            hard: hard.map_or_else(|| "unlimited".to_owned(), |hard| hard.to_string()),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_must_fit_the_open_files_limit() {
        assert_eq!(fits(768, Some(1024), Some(1024)), Ok(()));
        assert_eq!(fits(u64::MAX, None, None), Ok(()));
        let err = fits(3000, Some(1024), Some(4096)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3000 users need about 3256 open files (a connection per user, 256 more for chorus itself), but this process may open only 1024 (`ulimit -n`; its hard limit is 4096). Raise the limit before starting chorus (`ulimit -n 3256` as root, `LimitNOFILE=3256` in a systemd unit, `--ulimit nofile=3256` for docker), or spread the users over several machines (`chorus run --master` and `chorus worker`)"
        );
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        if let Some((_, after)) = raise_open_files_limit() {
            assert_eq!(after, open_files_limits().1);
        }
    }
}
