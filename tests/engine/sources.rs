//! `--source-addrs`: connections leave from the local addresses given, as nginx's access log
//! (`$remote_addr`) shows; addresses this machine does not have, and more connections than
//! the addresses' ports hold, are refused before any traffic.

use std::collections::BTreeMap;

use chorus::stats::RunResult;

use crate::util::nginx::Nginx;
use crate::util::{chorus, output_dir};

/// Requests per client address in nginx's access log (its first field, `$remote_addr`).
fn requests_by_address(nginx: &Nginx) -> BTreeMap<String, u64> {
    let mut seen = BTreeMap::new();
    for line in nginx.access_log() {
        let address = line.split(' ').next().unwrap_or_default().to_owned();
        *seen.entry(address).or_default() += 1;
    }
    seen
}

fn addresses(seen: &BTreeMap<String, u64>) -> Vec<&str> {
    seen.keys().map(String::as_str).collect()
}

#[test]
fn connections_leave_from_each_source_address() {
    let dir = output_dir("source_addrs");
    let nginx = Nginx::start(&dir.join("nginx"), true, None);
    let url = nginx.url("/");
    let base = [
        "run",
        "--url",
        &url,
        "--headless",
        "-u",
        "6",
        "-r",
        "100",
        "-t",
        "2s",
        "-q",
        "--source-addrs",
        "127.0.0.2-127.0.0.4",
        "--json",
        "run.json",
    ];
    let output = chorus(&base, &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let result =
        RunResult::from_json(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let seen = requests_by_address(&nginx);
    assert_eq!(addresses(&seen), ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    assert_eq!(seen.values().sum::<u64>(), result.total.requests);
    assert_eq!(result.total.failures, 0);

    // Three worker processes, an address each: nginx counts what the one report says.
    let dir = output_dir("source_addrs_processes");
    let nginx = Nginx::start(&dir.join("nginx"), true, None);
    let url = nginx.url("/");
    let mut args = base.to_vec();
    args[2] = &url;
    args.extend(["--processes", "3"]);
    let output = chorus(&args, &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let result =
        RunResult::from_json(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let seen = requests_by_address(&nginx);
    assert_eq!(addresses(&seen), ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    assert_eq!(seen.values().sum::<u64>(), result.total.requests);
    assert!(result.total.requests > 0);
    assert_eq!(result.total.failures, 0);
}

#[test]
fn source_addresses_that_cannot_work_are_refused_before_any_traffic() {
    let dir = output_dir("source_addrs_refused");
    let nginx = Nginx::start(&dir.join("nginx"), true, None);
    let url = nginx.url("/");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--url", &url, "--headless", "-t", "2s"];
        args.extend_from_slice(extra);
        let output = chorus(&args, &dir);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // 192.0.2.1 is a documentation address: no machine has it.
    let (code, stderr) = run(&["-u", "2", "--source-addrs", "127.0.0.2,192.0.2.1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--source-addrs: connections cannot leave from 192.0.2.1"),
        "{stderr}"
    );
    // One address cannot hold 60,000 connections to one server address.
    let (code, stderr) = run(&["-u", "60000", "--source-addrs", "127.0.0.2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("about 60000 connections to one server address need 3 source addresses, but 1 source address(es) hold(s) about")
            && stderr.contains("give --source-addrs 127.0.0.1-127.0.0.3"),
        "{stderr}"
    );
    assert!(nginx.access_log().is_empty());
}

/// In a network namespace of its own (root, `unshare -n`) whose ephemeral range is ten
/// ports: one run holds nine of them, a second one wants five. Its users that find no port
/// fail with one sentence saying so, said once on stderr for the whole run.
#[test]
fn running_out_of_source_ports_is_one_clear_message() {
    let dir = output_dir("source_ports_exhausted");
    let script = r#"
set -u
ip link set lo up || exit 97
echo "40000 40009" > /proc/sys/net/ipv4/ip_local_port_range || exit 97
"$0" demo --serve-only --listen 127.0.0.1:8001 >server.log 2>&1 &
server=$!
ready=""
for i in $(seq 400); do
    (exec 3<>/dev/tcp/127.0.0.1/8001) 2>/dev/null && { ready=1; break; }
    sleep 0.05
done
[ -n "$ready" ] || { echo "the demo app did not listen" >&2; kill $server; exit 98; }
"$0" run --url http://127.0.0.1:8001/ --headless -u 9 -r 1000 -t 60s -q >holder.log 2>&1 &
holder=$!
held=""
for i in $(seq 400); do
    n=$(ss -Htn state established '( dport = :8001 )' | wc -l)
    [ "$n" -ge 9 ] && { held=1; break; }
    sleep 0.05
done
[ -n "$held" ] || { echo "the first run did not hold nine connections" >&2; kill $holder $server; exit 98; }
"$0" run --url http://127.0.0.1:8001/ --headless -u 5 -r 1000 -t 2s -q --json run.json
status=$?
kill $holder $server
wait
exit $status
"#;
    let output = std::process::Command::new("unshare")
        .args(["-n", "bash", "-c", script, env!("CARGO_BIN_EXE_chorus")])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(97) || stderr.contains("unshare failed") {
        eprintln!("skipped: no network namespace here (needs root): {stderr}");
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let said = "no source port left on this machine (the kernel's ephemeral port range is used up); spread the connections over more local addresses with --source-addrs";
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
    let result =
        RunResult::from_json(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let messages: Vec<&str> = result
        .entries
        .iter()
        .flat_map(|entry| &entry.failures_by_kind)
        .map(|failure| failure.message.as_str())
        .collect();
    assert!(
        !messages.is_empty() && messages.iter().all(|m| m.contains(said)),
        "{messages:#?}"
    );
    // The one user with a port ran.
    assert!(result.total.requests > result.total.failures, "{stderr}");
}
