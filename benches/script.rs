//! Scripts (`scripts:`): what calling JavaScript costs.
//!
//! 1. A template that calls a small exported function (`{{ js.add(vu, 1) }}`) against the
//!    same template computed natively (`{{ vu + 1 }}`), rendered in a loop in this process:
//!    the time per render and the difference, the cost of one call (target <= 5 µs).
//! 2. `chorus run` against nginx (nginx on core 1, chorus on core 0, one worker, 20 users
//!    without pauses) three times: plain GETs (no script loaded); each GET signed by a template calling a JS
//!    function (`js.sign`); each GET signed by a `before_request` hook. Prints requests per
//!    CPU-second of chorus for each and the ratios (target >= 0.5 x).
//!
//! `cargo bench --bench script` (CHORUS_BENCH_SECS per run, 5 by default).

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;
#[path = "util/turns.rs"]
#[allow(dead_code)]
mod turns;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chorus::scenario::{LoadOptions, StepKind, Vars};

const SIGN_JS: &str = r#"
export function add(a, b) { return a + b; }

export function sign(vu, iteration, secret) {
  return chorus.hmac_sha256(secret, "GET /\n" + vu + "." + iteration);
}

export function before_request(request, vars) {
  return { "X-Signature": chorus.hmac_sha256(vars.secret, request.method + " " + request.url + "\n" + request.body) };
}
"#;

/// Nanoseconds per render of the first request's URL template of `scenario_text`.
fn render_ns(dir: &Path, url: &str) -> f64 {
    let text = format!(
        "host: http://127.0.0.1:1\nscripts: [sign.js]\nflows:\n  - steps:\n      - get: \"{url}\"\n"
    );
    let scenario = chorus::scenario::load_str(&text, &dir.join("t.yaml"), &LoadOptions::default())
        .unwrap_or_else(|err| panic!("{err}"));
    let StepKind::Request(request) = &scenario.flows[0].steps[0].kind else {
        panic!("a request")
    };
    let vars = Vars::for_user(&scenario, 3).expect("vars");
    assert_eq!(request.url.render(&vars).expect("renders"), "/4");
    let rounds = 200_000;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(request.url.render(&vars).expect("renders"));
    }
    start.elapsed().as_nanos() as f64 / rounds as f64
}

/// Nanoseconds per `before_request` hook call on a GET of `/` (the same call `chorus run`
/// makes before every request), headers and all: the part of a signed request the hook adds.
fn hook_ns(dir: &Path) -> f64 {
    let text = "host: http://127.0.0.1:1\nscripts: [sign.js]\nvars:\n  secret: s3cret\nflows:\n  - steps:\n      - get: /\n";
    let scenario = chorus::scenario::load_str(text, &dir.join("t.yaml"), &LoadOptions::default())
        .unwrap_or_else(|err| panic!("{err}"));
    let scripts = scenario.scripts.clone().expect("scripts");
    let vars = Vars::for_user(&scenario, 3).expect("vars");
    let url = url::Url::parse("http://127.0.0.1:1/").expect("a URL");
    let body = bytes::Bytes::new();
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, "127.0.0.1:1".parse().expect("a value"));
    headers.insert(http::header::USER_AGENT, "chorus".parse().expect("a value"));
    let method = http::Method::GET;
    // CPU time, not wall time: the machines this runs on are shared, and a call waiting
    // for a core is not a call costing more.
    let rounds = 400_000;
    let start = turns::own_cpu_seconds();
    for _ in 0..rounds {
        let mut sent = headers.clone();
        (scripts.before_request(&method, &url, &mut sent, &body, &vars)).expect("signs");
        std::hint::black_box(sent);
    }
    let elapsed = (turns::own_cpu_seconds() - start) * 1e9 / rounds as f64;
    let mut sent = headers.clone();
    (scripts.before_request(&method, &url, &mut sent, &body, &vars)).expect("signs");
    assert!(sent.contains_key("x-signature"), "{sent:?}");
    elapsed
}

/// (requests, failures, CPU seconds) of a `chorus run` of `steps`.
fn run(dir: &Path, name: &str, host: &str, headers: &str, secs: u64) -> (f64, f64, f64) {
    let scenario = dir.join(format!("{name}.yaml"));
    // The plain run loads no script at all: the engine as it is without them.
    let scripts = if name == "plain" {
        ""
    } else {
        "scripts: [sign.js]\n"
    };
    std::fs::write(
        &scenario,
        format!(
            "host: {host}\n{scripts}vars:\n  secret: s3cret\nflows:\n  - steps:\n      - get: /\n{headers}"
        ),
    )
    .expect("write the scenario");
    let json = dir.join(format!("{name}.json"));
    let before = turns::children_cpu_seconds();
    let output = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_chorus")])
        .args([
            "run",
            "--headless",
            "-q",
            "--workers",
            "1",
            "-u",
            "20",
            "-r",
            "1000",
        ])
        .args(["-t", &format!("{secs}s")])
        .arg(&scenario)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("chorus runs");
    assert!(output.status.success(), "{output:?}");
    let cpu = turns::children_cpu_seconds() - before;
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the result")).expect("JSON");
    let count = |field: &str| result["total"][field].as_f64().unwrap_or(0.0);
    (count("requests"), count("failures"), cpu)
}

fn main() {
    let secs: u64 = std::env::var("CHORUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("sign.js"), SIGN_JS).expect("write the script");

    let native = render_ns(dir.path(), "/{{ vu + 1 }}");
    let scripted = render_ns(dir.path(), "/{{ js.add(vu, 1) }}");
    println!("template `/{{{{ vu + 1 }}}}`         {native:>8.0} ns per render");
    println!("template `/{{{{ js.add(vu, 1) }}}}`  {scripted:>8.0} ns per render");
    println!(
        "one call of a small JS function from a template: {:.2} µs (target <= 5 µs)",
        (scripted - native) / 1000.0
    );
    let hook = hook_ns(dir.path());
    println!(
        "one before_request hook call (signing a GET): {:.2} µs of CPU",
        hook / 1000.0
    );
    if std::env::var_os("CHORUS_BENCH_HOOK_ONLY").is_some() {
        return;
    }

    let server = nginx::Nginx::start(&dir.path().join("nginx"), false, Some(1));
    let host = server.url("");
    let host = host.trim_end_matches('/');
    let runs = [
        ("plain", String::new()),
        (
            "template",
            "        headers:\n          X-Signature: \"{{ js.sign(vu, iteration, secret) }}\"\n"
                .to_owned(),
        ),
        ("hook", String::new()),
    ];
    let mut rates = Vec::new();
    for (name, headers) in &runs {
        let (requests, failures, cpu) = if *name == "hook" {
            let hook_dir = dir.path().join("hook");
            std::fs::create_dir_all(&hook_dir).expect("a folder");
            std::fs::write(hook_dir.join("sign.js"), SIGN_JS).expect("write the script");
            run(&hook_dir, name, host, headers, secs)
        } else {
            // Without the hook: the same file, its before_request renamed.
            let plain_dir = dir.path().join("plain");
            std::fs::create_dir_all(&plain_dir).expect("a folder");
            std::fs::write(
                plain_dir.join("sign.js"),
                SIGN_JS.replace("before_request", "unused_hook"),
            )
            .expect("write the script");
            run(&plain_dir, name, host, headers, secs)
        };
        let rate = requests / cpu.max(0.01);
        println!(
            "{name:<9} {requests:>9.0} requests ({failures:.0} failed) in {cpu:>5.2} CPU-s: {rate:>8.0} per CPU-second"
        );
        rates.push(rate);
    }
    println!(
        "signed in a template: {:.2} x plain; signed by before_request: {:.2} x plain (target >= 0.5 x)",
        rates[1] / rates[0],
        rates[2] / rates[0]
    );
}
