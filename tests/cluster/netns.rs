//! Workers in their own network namespaces (`ip netns`, veth), whose links are cut and
//! restored.

use super::*;

/// A network namespace joined to this one by a veth pair (host side `HOST_IP`, namespace side
/// `NS_IP`), removed on drop.
struct Namespace {
    name: String,
    host_link: String,
    host_ip: String,
}

impl Namespace {
    /// `None` (with the reason) where namespaces cannot be made: not root, no `ip`.
    fn create() -> Result<Namespace, String> {
        let id = std::process::id();
        let subnet = id % 250;
        let ns = Namespace {
            name: format!("chorus-test-{id}"),
            host_link: format!("chh{}", id % 100_000),
            host_ip: format!("10.231.{subnet}.1"),
        };
        let ns_link = format!("chn{}", id % 100_000);
        let ns_ip = format!("10.231.{subnet}.2");
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.name.clone()],
            vec![
                "link".into(),
                "add".into(),
                ns.host_link.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns_link.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                ns_link.clone(),
                "netns".into(),
                ns.name.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", ns.host_ip),
                "dev".into(),
                ns.host_link.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                ns.host_link.clone(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.name.clone(),
                "addr".into(),
                "add".into(),
                format!("{ns_ip}/30"),
                "dev".into(),
                ns_link.clone(),
            ],
            vec![
                "-n".into(),
                ns.name.clone(),
                "link".into(),
                "set".into(),
                ns_link,
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.name.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for step in steps {
            let output = Command::new("ip")
                .args(&step)
                .output()
                .map_err(|err| format!("`ip` cannot run: {err}"))?;
            if !output.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    step.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        Ok(ns)
    }

    fn set_link(&self, state: &str) {
        let status = Command::new("ip")
            .args(["link", "set", &self.host_link, state])
            .status()
            .unwrap();
        assert!(status.success(), "ip link set {} {state}", self.host_link);
    }

    /// A `chorus` process inside the namespace.
    fn chorus(&self, name: &str, args: &[&str], dir: &Path) -> Process {
        let mut all = vec!["netns", "exec", &self.name, env!("CARGO_BIN_EXE_chorus")];
        all.extend_from_slice(args);
        let mut command = Command::new("ip");
        command.args(&all).current_dir(dir);
        Process::spawn(name, command)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Workers in their own network namespace reach the master over a veth link; cutting the
/// link (`ip link set ... down`) is seen on both sides, and restoring it lets the worker join
/// again. Needs root (skipped with the reason otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_behind_a_cut_link_is_missed_and_rejoins_when_it_is_restored() {
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("skipped: network namespaces are not available here ({why})");
            return;
        }
    };
    let dir = output_dir("cluster_network_namespace");
    let app = chorus::demo::App::new(AppOptions::default());
    let server = chorus::demo::serve(&app, format!("{}:0", ns.host_ip).parse().unwrap())
        .await
        .unwrap();
    let host = server.url();
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "host: {host}\nflows:\n  - name: a\n    steps:\n      - get: /api/course\n        \
             expect_status: [401]\n      - think: 200ms\n"
        ),
    )
    .unwrap();
    let bind = format!("{}:0", ns.host_ip);
    let mut master = Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "4",
            "-r",
            "20",
            "-t",
            "30s",
            "--master",
            "--master-bind",
            &bind,
            "--expect-workers",
            "2",
            "--cluster-token",
            "t0ken",
            "--json",
            "run.json",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let _near = worker(&dir, &address, "near", &["--cluster-token", "t0ken"]);
    let mut far = ns.chorus(
        "far",
        &[
            "worker",
            "--master",
            &address,
            "--name",
            "far",
            "--cluster-token",
            "t0ken",
        ],
        &dir,
    );
    far.wait_for("its users running", |l| l.contains("running 2 user(s)"));
    ns.set_link("down");
    let missing = master.wait_for("that far went missing", |l| {
        l.contains("\"far\"") && l.contains("went missing")
    });
    assert!(missing.contains("no word from it"), "{missing}");
    let lost = far.wait_for("that it lost the master", |l| l.contains("lost the master"));
    assert!(lost.contains("no word from it"), "{lost}");
    master.wait_for("the users on near", |l| {
        l.starts_with("4 users on ") && l.contains("near running (4 users")
    });
    ns.set_link("up");
    far.wait_for("that it joined again", |l| l.contains("joined the master"));
    far.wait_for("its share again", |l| l.contains("running 2 user(s)"));
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.total.failures, 0, "{output}");
    assert!(
        result.errors.iter().any(|e| e.message.contains("\"far\"")),
        "{:#?}",
        result.errors
    );
    server.shutdown().await;
}
