//! `--monitor SPEC` and `monitors:` entries, read once at the edge.

use std::fmt;

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// One process by its PID.
    Pid(u32),
    /// Every process with this command name (`/proc/PID/comm`), summed: PostgreSQL's or
    /// nginx's workers are one series.
    Name(String),
    /// This machine.
    Host,
}

impl Spec {
    /// Reads `process:PID`, `process:NAME` or `host`.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let text = text.trim();
        if text == "host" {
            return Ok(Spec::Host);
        }
        if let Some(target) = text.strip_prefix("process:") {
            if target.is_empty() {
                return Err("say which process, e.g. process:1234 or process:postgres".to_owned());
            }
            if let Ok(pid) = target.parse::<u32>() {
                return Ok(Spec::Pid(pid));
            }
            // A command name is at most 15 bytes in /proc/PID/comm; longer names never match.
            if target.len() > 15 || target.contains('/') {
                return Err(format!(
                    "{target:?}: a process name is its command name as `ps -o comm` shows it (at most 15 characters, no path), e.g. process:postgres"
                ));
            }
            return Ok(Spec::Name(target.to_owned()));
        }
        Err("expected process:PID, process:NAME or host".to_owned())
    }

    /// The prefix of this monitor's series names (`process:postgres`, `host`).
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Pid(pid) => write!(f, "process:{pid}"),
            Spec::Name(name) => write!(f, "process:{name}"),
            Spec::Host => f.write_str("host"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_read_or_refused_with_what_to_write() {
        assert_eq!(Spec::parse("process:1234"), Ok(Spec::Pid(1234)));
        assert_eq!(
            Spec::parse("process:postgres"),
            Ok(Spec::Name("postgres".to_owned()))
        );
        assert_eq!(Spec::parse(" host "), Ok(Spec::Host));
        assert_eq!(
            Spec::parse("proc:12").unwrap_err(),
            "expected process:PID, process:NAME or host"
        );
        assert!(
            Spec::parse("process:")
                .unwrap_err()
                .contains("say which process")
        );
        assert!(
            Spec::parse("process:/usr/bin/postgres")
                .unwrap_err()
                .contains("command name")
        );
        assert_eq!(Spec::Name("nginx".into()).label(), "process:nginx");
    }
}
