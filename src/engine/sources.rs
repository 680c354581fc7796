//! Source addresses: the local addresses a run's connections leave from. One source address
//! holds only about 28,000 connections to one server address and port (the kernel's
//! ephemeral port range); `--source-addrs` spreads connections over several, and for a
//! loopback target chorus spreads over 127.0.0.0/8 by itself when the users need it. Plain
//! functions: the list's grammar, how many addresses a run needs, how they are shared over
//! processes. `engine::http` binds each connection to the next address.

use std::net::{IpAddr, Ipv4Addr};

/// The most addresses a list may name (a range over a whole /8 is a typing mistake).
pub const MAX_SOURCES: usize = 4096;

/// Connections one source address is counted on for one server address: the usual
/// ephemeral range (32768–60999) less a margin for the sockets in TIME_WAIT and other
/// programs.
pub const DEFAULT_PORTS: u64 = 28_232;

/// The share of the ephemeral range a run counts on, in percent.
const USABLE_PERCENT: u64 = 90;

/// The share of the range a loopback spread fills per address, in percent. `connect`'s
/// search for a free source port walks the range, and its cost climbs steeply as the range
/// fills: 100,000 users with four addresses about 90 % full spent most of their CPU in the
/// kernel's port search (`__inet_check_established`). Loopback has addresses to spare.
const SPREAD_PERCENT: u64 = 50;

/// A list of source addresses as the command line gives it (one value, not many: clap would
/// read a bare `Vec` as a repeated flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddrs(pub Vec<IpAddr>);

/// [`parse`] for the command line.
pub fn parse_flag(text: &str) -> Result<SourceAddrs, String> {
    parse(text).map(SourceAddrs)
}

/// `--source-addrs`: addresses and ranges, comma-separated: `127.0.0.1-127.0.0.8`,
/// `10.0.0.5,10.0.0.6`, `::1`. A range is of IPv4 addresses, in order.
pub fn parse(text: &str) -> Result<Vec<IpAddr>, String> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!(
                "{text:?}: an empty item; give addresses or ranges separated by commas, e.g. 127.0.0.1-127.0.0.8,127.0.1.1"
            ));
        }
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (address(first)?, Some(address(last)?)),
            None => (address(part)?, None),
        };
        match (first, last) {
            (ip, None) => addrs.push(ip),
            (IpAddr::V4(first), Some(IpAddr::V4(last))) => {
                let (low, high) = (u32::from(first), u32::from(last));
                if low > high {
                    return Err(format!(
                        "{part:?}: the range goes down; write the lower address first ({last}-{first})"
                    ));
                }
                if (high - low) as usize >= MAX_SOURCES {
                    return Err(too_many(part));
                }
                addrs.extend((low..=high).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            }
            _ => {
                return Err(format!(
                    "{part:?}: a range is of IPv4 addresses; list IPv6 addresses one by one"
                ));
            }
        }
        if addrs.len() > MAX_SOURCES {
            return Err(too_many(text));
        }
    }
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|ip| seen.insert(*ip));
    Ok(addrs)
}

fn address(text: &str) -> Result<IpAddr, String> {
    let text = text.trim();
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            format!(
                "{text:?} is not an IP address (e.g. 127.0.0.2, or a range 127.0.0.1-127.0.0.8)"
            )
        })
}

fn too_many(text: &str) -> String {
    format!(
        "{text:?} names more than {MAX_SOURCES} addresses; {MAX_SOURCES} hold over 100 million connections"
    )
}

/// The ports of the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`,
/// "32768\t60999"), or the usual range's when it cannot be read.
pub fn ephemeral_ports(range: Option<&str>) -> u64 {
    let parsed = range.and_then(|text| {
        let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().ok());
        let (low, high) = (numbers.next()??, numbers.next()??);
        (high >= low).then(|| high - low + 1)
    });
    parsed.unwrap_or(DEFAULT_PORTS)
}

/// This machine's ephemeral range, read now.
pub fn machine_ephemeral_ports() -> u64 {
    ephemeral_ports(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .as_deref(),
    )
}

/// Connections a run counts on per source address and server address.
pub fn usable_ports(ports: u64) -> u64 {
    (ports * USABLE_PERCENT / 100).max(1)
}

/// How many source addresses `connections` to one server address need.
pub fn sources_needed(connections: u64, ports: u64) -> u64 {
    connections.div_ceil(usable_ports(ports)).max(1)
}

/// Connections a loopback spread puts on one source address: half its range (see
/// [`SPREAD_PERCENT`]).
fn spread_ports(ports: u64) -> u64 {
    (ports * SPREAD_PERCENT / 100).max(1)
}

/// For a loopback target: 127.0.0.1, 127.0.0.2, ... enough for `connections` to fill each
/// address's port range about half (none when one address holds them so: the kernel picks,
/// as without the option).
pub fn loopback_spread(connections: u64, ports: u64) -> Vec<IpAddr> {
    let needed = connections.div_ceil(spread_ports(ports)).max(1);
    if needed <= 1 {
        return Vec::new();
    }
    let needed = needed.min(MAX_SOURCES as u64) as u32;
    (1..=needed)
        .map(|n| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::LOCALHOST) - 1 + n)))
        .collect()
}

/// Why `connections` to one server address cannot leave from `sources` (empty: the one
/// address the kernel picks), or `None` when they fit.
pub fn shortage(
    connections: u64,
    sources: &[IpAddr],
    ports: u64,
    loopback: bool,
) -> Option<String> {
    let count = sources.len().max(1) as u64;
    let room = count.saturating_mul(usable_ports(ports));
    if connections <= room {
        return None;
    }
    let needed = sources_needed(connections, ports);
    let from = match sources.len() {
        0 => "one source address".to_owned(),
        n => format!("{n} source address(es)"),
    };
    let advice = if loopback {
        format!(
            "give --source-addrs 127.0.0.1-127.0.0.{} (loopback has every 127.x.y.z)",
            needed.min(254)
        )
    } else {
        format!(
            "give --source-addrs with {needed} addresses of this machine (`ip -brief address` lists them; add more to the interface with `ip address add`), or spread the users over machines (--master)"
        )
    };
    Some(format!(
        "about {connections} connections to one server address need {needed} source addresses, but {from} hold(s) about {room} (the kernel's ephemeral port range has {ports} ports per source address): {advice}"
    ))
}

/// The addresses of `process` (from 0) of `processes`: its own part of the list when there
/// are enough for each to have some (two processes binding the same address share its
/// ports), else the whole list.
pub fn share(sources: &[IpAddr], process: usize, processes: usize) -> Vec<IpAddr> {
    if processes <= 1 || sources.len() < processes {
        return sources.to_vec();
    }
    sources
        .iter()
        .skip(process)
        .step_by(processes)
        .copied()
        .collect()
}

/// Whether `host` (a URL's host, as `url` writes it) is this machine's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(
            parse("127.0.0.1-127.0.0.3, 10.0.0.9,::1").unwrap(),
            [
                v4("127.0.0.1"),
                v4("127.0.0.2"),
                v4("127.0.0.3"),
                v4("10.0.0.9"),
                v4("::1")
            ]
        );
        assert_eq!(parse("127.0.0.1,127.0.0.1").unwrap(), [v4("127.0.0.1")]);
        assert_eq!(
            parse("127.0.0.1-127.0.1.0").unwrap().len(),
            256,
            "a range crosses octets"
        );
        assert_eq!(
            parse("127.0.0.8-127.0.0.1").unwrap_err(),
            "\"127.0.0.8-127.0.0.1\": the range goes down; write the lower address first (127.0.0.1-127.0.0.8)"
        );
        assert_eq!(
            parse("127.0.0.1-3").unwrap_err(),
            "\"3\" is not an IP address (e.g. 127.0.0.2, or a range 127.0.0.1-127.0.0.8)"
        );
        assert!(
            parse("127.0.0.0-127.255.255.255")
                .unwrap_err()
                .contains("more than 4096")
        );
        assert!(parse("127.0.0.1,").unwrap_err().contains("an empty item"));
        assert!(parse("::1-::2").unwrap_err().contains("IPv4"));
    }

    #[test]
    fn the_ephemeral_range_is_read_or_assumed() {
        assert_eq!(ephemeral_ports(Some("32768\t60999\n")), 28_232);
        assert_eq!(ephemeral_ports(Some("1024 65535")), 64_512);
        assert_eq!(ephemeral_ports(Some("garbage")), DEFAULT_PORTS);
        assert_eq!(ephemeral_ports(None), DEFAULT_PORTS);
    }

    #[test]
    fn loopback_spreads_past_half_a_range_of_connections() {
        assert!(loopback_spread(14_000, 28_232).is_empty());
        assert_eq!(loopback_spread(20_000, 28_232).len(), 2);
        let spread = loopback_spread(100_000, 28_232);
        assert_eq!(
            spread,
            (1..=8)
                .map(|n| v4(&format!("127.0.0.{n}")))
                .collect::<Vec<_>>()
        );
        assert_eq!(shortage(100_000, &spread, 28_232, true), None);
    }

    #[test]
    fn a_shortage_says_the_numbers_and_what_to_do() {
        assert_eq!(shortage(25_000, &[], 28_232, false), None);
        assert_eq!(
            shortage(100_000, &[], 28_232, true).unwrap(),
            "about 100000 connections to one server address need 4 source addresses, but one source address hold(s) about 25408 (the kernel's ephemeral port range has 28232 ports per source address): give --source-addrs 127.0.0.1-127.0.0.4 (loopback has every 127.x.y.z)"
        );
        let two = parse("10.0.0.1-10.0.0.2").unwrap();
        assert!(
            shortage(100_000, &two, 28_232, false)
                .unwrap()
                .contains("2 source address(es) hold(s) about 50816")
        );
    }

    #[test]
    fn processes_get_their_own_addresses() {
        let list = parse("127.0.0.1-127.0.0.5").unwrap();
        assert_eq!(
            share(&list, 0, 2),
            ["127.0.0.1", "127.0.0.3", "127.0.0.5"].map(v4)
        );
        assert_eq!(share(&list, 1, 2), ["127.0.0.2", "127.0.0.4"].map(v4));
        assert_eq!(
            share(&list, 0, 8),
            list,
            "too few to part: every process uses all"
        );
        assert_eq!(share(&list, 0, 1), list);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.3.2.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("example.org"));
    }
}
