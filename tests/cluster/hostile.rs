//! Issue 14: what a party without the cluster token can do to a master or a worker. Eight
//! connections announcing 255 MiB frames are refused without the master holding the memory;
//! a `--stay` worker is not sent away for good by a master that cannot prove the token; a
//! worker given an unusable `--master` address says so at once.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use chorus::cluster::auth::VERSION;
use chorus::cluster::protocol::{PROTOCOL, ToMaster, ToWorker, encode};

use super::*;

/// The resident memory of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Reads one whole frame (4-byte length and body) from a blocking socket.
fn read_raw_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

#[test]
fn frames_announced_huge_before_the_token_is_proven_are_refused_without_holding_memory() {
    let dir = output_dir("cluster_big_frames");
    std::fs::write(
        dir.join("s.yaml"),
        "host: http://127.0.0.1:9\nflows:\n  - name: a\n    steps:\n      - get: /\n",
    )
    .unwrap();
    let mut master = Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "1",
            "-t",
            "60s",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--cluster-token",
            "secret",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let pid = master.child.id();
    let before = rss_kib(pid);
    // Each connection: the challenge, then a 255 MiB length and up to 32 MiB of it.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let challenge = read_raw_frame(&mut stream);
        assert!(
            String::from_utf8_lossy(&challenge).contains("\"challenge\""),
            "the master opens with its challenge"
        );
        stream.write_all(&(255u32 << 20).to_be_bytes()).unwrap();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..32 {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
        held.push(stream);
    }
    let after = rss_kib(pid);
    println!("master RSS {before} KiB before, {after} KiB with 8 connections held");
    assert!(
        after < before + 48 * 1024,
        "the master's RSS grew from {before} KiB to {after} KiB"
    );
    // Each was refused: the master closed it.
    for stream in &mut held {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte);
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the connection is still open: {read:?}"
        );
    }
    let line = master.wait_for("the refusal", |l| l.contains("refused a connection"));
    assert!(
        line.contains("a frame of 267386880 bytes is larger than the 16384 bytes allowed"),
        "{line}"
    );
    drop(held);
    master.kill();
}

/// A master that cannot prove the token: it sends the challenge, reads the hello, and answers
/// with `answer(worker's nonce)`.
fn rogue_session(listener: &std::net::TcpListener, answer: &dyn Fn() -> ToWorker) {
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .write_all(&encode(&ToWorker::Challenge {
            protocol: PROTOCOL,
            version: VERSION.to_owned(),
            nonce: "00".repeat(16),
        }))
        .unwrap();
    let body = read_raw_frame(&mut stream);
    let hello: ToMaster = serde_json::from_slice(&body).unwrap();
    assert!(matches!(hello, ToMaster::Hello { .. }), "{hello:?}");
    stream.write_all(&encode(&answer())).unwrap();
    let _ = stream.flush();
}

#[test]
fn a_staying_worker_is_not_sent_away_by_a_master_that_cannot_prove_the_token() {
    let dir = output_dir("cluster_rogue_master");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut worker = worker(
        &dir,
        &address,
        "pool",
        &["--stay", "--cluster-token", "secret"],
    );
    rogue_session(&listener, &|| ToWorker::Refused {
        message: "go away (from an impostor)".to_owned(),
    });
    let said = worker.wait_for("the refusal", |l| l.contains("go away"));
    assert!(said.contains("trying again in 1 s (--stay)"), "{said}");
    // It comes back, and a welcome without the master's proof does not send it away either.
    let bundle =
        chorus::cluster::bundle::Bundle::from_urls(&["http://127.0.0.1:9/rogue".to_owned()], None);
    rogue_session(&listener, &|| ToWorker::Welcome {
        id: 1,
        proof: None,
        bundle: Box::new(bundle.clone()),
    });
    let said = worker.wait_for("the missing proof", |l| {
        l.contains("did not prove it knows the cluster token")
    });
    assert!(said.contains("trying again in 2 s (--stay)"), "{said}");
    let (_third, _) = listener.accept().unwrap();
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker is still there"
    );
    worker.kill();
}

#[test]
fn a_worker_with_an_unusable_master_address_says_so_at_once() {
    let dir = output_dir("cluster_bad_address");
    for (address, said) in [
        ("nonsense", "\"nonsense\" has no port"),
        (
            "127.0.0.1:99999",
            "the port \"99999\" is not a number from 1 to 65535",
        ),
    ] {
        let started = Instant::now();
        let (status, output) =
            Process::start("worker", &["worker", "--master", address], &dir).finish();
        assert_eq!(status.code(), Some(2), "{output}");
        assert!(output.contains(said), "{output}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "it took {:?}",
            started.elapsed()
        );
    }
}
