//! Issue 14 (network exposure): a recorder beyond loopback needs `--proxy-auth` (or
//! `--i-know-this-is-open`); with it, forward mode asks for `Proxy-Authorization` with a 407
//! and reverse mode for `Authorization` with a 401, and neither header reaches the
//! application or the capture.

use std::net::SocketAddr;

use base64::Engine as _;
use chorus::record::RecordOptions;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::util::record::*;
use crate::util::{self};

/// An application that sends the head of every request it gets to the channel and answers
/// `200 ok`.
async fn app_that_tells_heads() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut stream).await {
                    let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Sends `request` on a new connection to `proxy` and returns the answer's head.
async fn ask(proxy: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await.expect("an answer");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        stream.read_to_end(&mut rest),
    )
    .await;
    String::from_utf8_lossy(&head).into_owned()
}

fn basic(credentials: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(credentials)
}

#[test]
fn a_recorder_beyond_loopback_without_a_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["record", "--forward", "--listen", "0.0.0.0:0"][..],
        &[
            "record",
            "--target",
            "http://127.0.0.1:9",
            "--listen",
            "0.0.0.0:0",
        ][..],
    ] {
        let output = util::chorus(args, dir.path());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with(
                "error: --listen 0.0.0.0:0: the recorder would be reachable from other machines \
                 without a password"
            ) && stderr.contains("add --proxy-auth USER:PASS"),
            "{stderr}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no capture was started"
    );
}

#[tokio::test]
async fn forward_mode_asks_for_proxy_credentials_and_keeps_them_to_itself() {
    let (app, mut seen) = app_that_tells_heads().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(RecordOptions {
        target: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        output: dir.path().join("c.har"),
        proxy_auth: Some("rec:s3cret".to_owned()),
        ..RecordOptions::default()
    })
    .await;
    let proxy = recorder.local_addr();

    let refused = ask(
        proxy,
        &format!("GET http://{app}/a HTTP/1.1\r\nHost: {app}\r\n\r\n"),
    )
    .await;
    assert!(
        refused.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
        "{refused}"
    );
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("proxy-authenticate: basic realm=\"chorus record\""),
        "{refused}"
    );
    let tunnel = ask(
        proxy,
        &format!("CONNECT {app} HTTP/1.1\r\nHost: {app}\r\n\r\n"),
    )
    .await;
    assert!(tunnel.starts_with("HTTP/1.1 407 "), "{tunnel}");
    let wrong = ask(
        proxy,
        &format!(
            "GET http://{app}/a HTTP/1.1\r\nHost: {app}\r\nProxy-Authorization: Basic {}\r\n\r\n",
            basic("rec:guess")
        ),
    )
    .await;
    assert!(wrong.starts_with("HTTP/1.1 407 "), "{wrong}");
    assert!(seen.try_recv().is_err(), "nothing reached the application");

    let answered = ask(
        proxy,
        &format!(
            "GET http://{app}/b HTTP/1.1\r\nHost: {app}\r\nProxy-Authorization: Basic {}\r\nConnection: close\r\n\r\n",
            basic("rec:s3cret")
        ),
    )
    .await;
    assert!(answered.starts_with("HTTP/1.1 200 "), "{answered}");
    let head = seen.recv().await.unwrap();
    assert!(head.starts_with("GET /b HTTP/1.1\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("proxy-authorization"),
        "{head}"
    );
    let summary = recorder.shutdown().await;
    let har = std::fs::read_to_string(&summary.path).unwrap();
    assert_eq!(summary.exchanges, 1);
    assert!(!har.to_ascii_lowercase().contains("proxy-authorization"));
    assert!(!har.contains(&basic("rec:s3cret")));
}

#[tokio::test]
async fn reverse_mode_asks_for_basic_credentials_and_keeps_them_from_the_application() {
    let (app, mut seen) = app_that_tells_heads().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(RecordOptions {
        proxy_auth: Some("rec:s3cret".to_owned()),
        ..reverse(&format!("http://{app}"), &dir.path().join("c.har"))
    })
    .await;
    let proxy = recorder.local_addr();
    let refused = ask(proxy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"chorus record\""),
        "{refused}"
    );
    assert!(seen.try_recv().is_err(), "nothing reached the application");
    let answered = ask(
        proxy,
        &format!(
            "GET /page HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
            basic("rec:s3cret")
        ),
    )
    .await;
    assert!(answered.starts_with("HTTP/1.1 200 "), "{answered}");
    let head = seen.recv().await.unwrap();
    assert!(head.starts_with("GET /page HTTP/1.1\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
    let summary = recorder.shutdown().await;
    let har = std::fs::read_to_string(&summary.path).unwrap();
    assert!(!har.contains(&basic("rec:s3cret")), "{har}");
}

/// Issue 14 row 65: a CA key other users can read is refused, said once, with what to do.
#[cfg(unix)]
#[test]
fn a_ca_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    chorus::record::mitm::Ca::load_or_create(&ca).unwrap();
    let key = ca.join("chorus-ca-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = util::chorus(
        &[
            "record",
            "--forward",
            "--mitm",
            "--ca-dir",
            ca.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "-o",
            "c.har",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("this private key can be read by other users (mode 0644)")
            && stderr.contains(&format!("run chmod 600 {}", key.display())),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("can be read by other users").count(),
        1,
        "said once: {stderr}"
    );
}
