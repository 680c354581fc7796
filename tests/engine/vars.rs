//! `chorus run --var NAME=VALUE` on the command line, headless and with `--check`: nginx's
//! access log says which paths were asked for.

use crate::util::nginx::Nginx;
use crate::util::{chorus, output_dir};

#[test]
fn run_var_replaces_and_adds_scenario_variables() {
    let dir = output_dir("run_var");
    let nginx = Nginx::start(&dir.join("nginx"), true, None);
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "host: {}\nvars:\n  tenant: default\n  pages: 1\n\
             flows:\n  - name: browse\n    steps:\n      - get: \"/{{{{ tenant }}}}/{{{{ pages * 2 }}}}/{{{{ extra }}}}\"\n      - think: 100ms\n",
            nginx.url("")
        ),
    )
    .unwrap();
    let vars = [
        "--var",
        "tenant=acme",
        "--var",
        "pages=3",
        "--var",
        "extra=a=b",
    ];
    let mut headless = vec!["run", "s.yaml", "--headless", "-q", "-u", "2", "-t", "1s"];
    headless.extend(vars);
    let output = chorus(&headless, &dir);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let served = nginx.requests();
    assert!(!served.is_empty());
    assert!(
        served.iter().all(|line| line == "GET /acme/6/a=b HTTP/1.1"),
        "{served:#?}"
    );

    let mut check = vec!["run", "s.yaml", "--check"];
    check.extend(vars);
    let before = served.len();
    let output = chorus(&check, &dir);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let served = nginx.requests();
    assert_eq!(
        served.len() - before,
        4,
        "2 users, each flow twice: {served:#?}"
    );
    assert!(
        served[before..]
            .iter()
            .all(|line| line == "GET /acme/6/a=b HTTP/1.1")
    );

    let output = chorus(&["run", "s.yaml", "--check", "--var", "novalue"], &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("expected NAME=VALUE such as classes=200, found \"novalue\""),
        "{stderr}"
    );
}
