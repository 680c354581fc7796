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
    /// A Prometheus text-format endpoint; `series` are metric-name globs (none: defaults
    /// chosen by what the endpoint exposes).
    Prometheus { url: url::Url, series: Vec<String> },
}

impl Spec {
    /// Reads `process:PID`, `process:NAME`, `host` or `prometheus:URL[#series,...]`.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let text = text.trim();
        if text == "host" {
            return Ok(Spec::Host);
        }
        if let Some(target) = text.strip_prefix("prometheus:") {
            return parse_prometheus(target);
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
        Err("expected process:PID, process:NAME, host or prometheus:URL".to_owned())
    }

    /// The prefix of this monitor's series names (`process:postgres`, `host`,
    /// `prometheus:127.0.0.1:9100`: host and port, and the path unless it is `/metrics`).
    pub fn label(&self) -> String {
        match self {
            Spec::Prometheus { url, .. } => {
                let host = url.host_str().unwrap_or_default();
                let port = url.port_or_known_default().unwrap_or(80);
                match url.path() {
                    "/metrics" => format!("prometheus:{host}:{port}"),
                    path => format!("prometheus:{host}:{port}{path}"),
                }
            }
            _ => self.to_string(),
        }
    }
}

fn parse_prometheus(target: &str) -> Result<Spec, String> {
    let (address, selection) = match target.split_once('#') {
        Some((address, selection)) => (address, Some(selection)),
        None => (target, None),
    };
    let url = url::Url::parse(address).map_err(|err| {
        format!("{address:?}: {err}; write the endpoint's whole URL, e.g. prometheus:http://127.0.0.1:9100/metrics")
    })?;
    if url.scheme() != "http" {
        return Err(format!(
            "{address}: only http:// endpoints can be scraped (exporters serve plain HTTP; https is not supported yet)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{address}: the URL names no host"));
    }
    let series = match selection {
        Some(selection) => parse_selection(selection)?,
        None => Vec::new(),
    };
    Ok(Spec::Prometheus { url, series })
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Pid(pid) => write!(f, "process:{pid}"),
            Spec::Name(name) => write!(f, "process:{name}"),
            Spec::Host => f.write_str("host"),
            Spec::Prometheus { url, series } if series.is_empty() => {
                write!(f, "prometheus:{url}")
            }
            Spec::Prometheus { url, series } => {
                write!(f, "prometheus:{url}#{}", series.join(","))
            }
        }
    }
}

/// Checks a selection (`node_load1,node_network_*`): metric names with `*` and `?`.
pub(super) fn parse_selection(text: &str) -> Result<Vec<String>, String> {
    let mut patterns = Vec::new();
    for pattern in text.split(',').map(str::trim) {
        if pattern.is_empty() {
            return Err(format!(
                "#{text}: an empty series name; write metric names separated by commas, e.g. #node_load1,node_network_*"
            ));
        }
        if let Some(bad) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '*' | '?')))
        {
            return Err(format!(
                "#{text}: {bad:?} in {pattern:?}: a series is a metric name with * and ? as wildcards (letters, digits, _ and :), e.g. node_load1 or node_disk_*_bytes_total"
            ));
        }
        patterns.push(pattern.to_owned());
    }
    Ok(patterns)
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
            "expected process:PID, process:NAME, host or prometheus:URL"
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

    #[test]
    fn a_prometheus_endpoint_is_read_with_its_selection() {
        let spec =
            Spec::parse("prometheus:http://127.0.0.1:9100/metrics#node_load1,node_disk_*").unwrap();
        assert_eq!(
            spec,
            Spec::Prometheus {
                url: url::Url::parse("http://127.0.0.1:9100/metrics").unwrap(),
                series: vec!["node_load1".to_owned(), "node_disk_*".to_owned()],
            }
        );
        assert_eq!(spec.label(), "prometheus:127.0.0.1:9100");
        assert_eq!(
            spec.to_string(),
            "prometheus:http://127.0.0.1:9100/metrics#node_load1,node_disk_*"
        );
        let other = Spec::parse("prometheus:http://db:9187/stats").unwrap();
        assert_eq!(other.label(), "prometheus:db:9187/stats");
        assert!(
            Spec::parse("prometheus:127.0.0.1:9100")
                .unwrap_err()
                .contains("write the endpoint's whole URL")
        );
        assert!(
            Spec::parse("prometheus:https://x/metrics")
                .unwrap_err()
                .contains("https is not supported yet")
        );
        assert!(
            Spec::parse("prometheus:http://x/metrics#node_cpu{mode=\"idle\"}")
                .unwrap_err()
                .contains("a series is a metric name")
        );
    }
}
