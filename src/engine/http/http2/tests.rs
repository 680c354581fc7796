//! The request's header block, the failure texts, and users on a real socket against the `h2`
//! crate's server.
use std::time::Duration;

use super::*;

#[test]
fn a_request_says_its_target_as_pseudo_headers_and_drops_connection_headers() {
    let origin = Endpoint {
        https: true,
        host: "example.org".to_owned(),
        port: 8443,
    };
    let (parts, ()) = http::Request::post("/a?b=1")
        .header("connection", "keep-alive")
        .header("te", "gzip")
        .header("cookie", "a=1")
        .header("content-length", "99")
        .body(())
        .unwrap()
        .into_parts();
    let block = request_block(&origin, &parts, &Bytes::from_static(b"xyz"));
    let mut fields = Vec::new();
    hpack::Decoder::default()
        .decode(&block, &mut |name, value| {
            let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
            fields.push(format!("{}: {}", text(name), text(value)));
        })
        .unwrap();
    assert_eq!(
        fields,
        [
            ":method: POST",
            ":scheme: https",
            ":authority: example.org:8443",
            ":path: /a?b=1",
            "cookie: a=1",
            "content-length: 3"
        ]
    );
}

#[test]
fn a_user_holds_no_http2_state_until_it_forks_and_its_copy_shares_it() {
    let user = Shared::default();
    assert!(user.0.get().is_none(), "allocated before HTTP/2 or a fork");
    let copy = user.share();
    assert!(Arc::ptr_eq(user.connections(), copy.connections()));
    let later = copy.share();
    assert!(Arc::ptr_eq(user.connections(), later.connections()));
}

#[test]
fn resets_goaways_and_stalls_say_what_happened() {
    let target = "127.0.0.1:8443";
    let (kind, message) = failure_text(&Failure::Reset(7), target);
    assert_eq!(kind, FailureKind::StreamReset);
    assert!(
        message.contains("reset the HTTP/2 stream (REFUSED_STREAM)"),
        "{message}"
    );
    let (kind, message) = failure_text(&Failure::GoAway(0xb), target);
    assert_eq!(kind, FailureKind::GoAway);
    assert!(
        message.contains("sent GOAWAY (ENHANCE_YOUR_CALM) before"),
        "{message}"
    );
    let closed = Failure::ClosedAfterGoAway {
        last: 3,
        code: 2,
        detail: "the server closed it".to_owned(),
    };
    let (kind, message) = failure_text(&closed, target);
    assert_eq!(kind, FailureKind::GoAway);
    assert!(
        message.contains("(INTERNAL_ERROR, last stream 3)"),
        "{message}"
    );
    let (_, message) = failure_text(&Failure::Reset(0x1234), target);
    assert!(message.contains("(error code 0x1234)"), "{message}");
    let stalled = stall(target, Duration::from_secs(2), Duration::ZERO);
    assert_eq!(stalled.kind, FailureKind::FlowControlStall);
    assert!(stalled.message.contains("within the timeout of 2s"));
}

/// An h2c server (the `h2` crate's) that reads each request's body to its end and answers
/// with `size` bytes and the length of the body it read; counts connections and requests.
async fn server(
    size: usize,
    streams: u32,
) -> (std::net::SocketAddr, Arc<[std::sync::atomic::AtomicU64; 2]>) {
    use std::sync::atomic::Ordering::Relaxed;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<[std::sync::atomic::AtomicU64; 2]> = Arc::default();
    let counted = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted[0].fetch_add(1, Relaxed);
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut connection = h2::server::Builder::new()
                    .max_concurrent_streams(streams)
                    .handshake::<_, Bytes>(socket)
                    .await
                    .unwrap();
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    counted[1].fetch_add(1, Relaxed);
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        let mut read = 0;
                        while let Some(Ok(data)) = body.data().await {
                            read += data.len();
                            let _ = body.flow_control().release_capacity(data.len());
                        }
                        let response = http::Response::builder()
                            .header("x-read", read)
                            .header("server", "h2-test")
                            .body(())
                            .unwrap();
                        let mut send = respond.send_response(response, false).unwrap();
                        send.send_data(Bytes::from(vec![b'z'; size]), true).unwrap();
                    });
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn streams_share_one_connection_whose_buffers_go_when_it_is_idle() {
    use std::sync::atomic::Ordering::Relaxed;
    let (addr, seen) = server(200_000, 100).await;
    let (mut user, origin) = super::super::test_session(addr);
    let mut copy = user.fork();
    let post = |body: usize| {
        http::Request::post("/up")
            .body(http_body_util::Full::new(Bytes::from(vec![b'a'; body])))
            .unwrap()
    };
    let all = |_: u16, _: &HeaderMap| true;
    let first = user
        .send(&origin, post(0), HttpVersion::Http2, all)
        .await
        .unwrap();
    assert_eq!((first.status, first.body.len()), (200, 200_000));
    // Two at once on the one connection: bodies past the 64 KiB windows both ways.
    let (a, b) = tokio::join!(
        user.send(&origin, post(150_000), HttpVersion::Http2, all),
        copy.send(&origin, post(70_000), HttpVersion::Http2, all),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.headers["x-read"], "150000");
    assert_eq!(b.headers["x-read"], "70000");
    assert_eq!((a.body.len(), b.body.len()), (200_000, 200_000));
    assert_eq!((seen[0].load(Relaxed), seen[1].load(Relaxed)), (1, 3));
    let link = user.http2.ready(&origin).unwrap();
    assert_eq!(
        link.buffers(),
        (0, 0, 0),
        "an idle connection holds no buffer"
    );
}

#[tokio::test]
async fn parallel_requests_wait_for_the_servers_stream_limit() {
    use std::sync::atomic::Ordering::Relaxed;
    let (addr, seen) = server(50_000, 1).await;
    let (mut user, origin) = super::super::test_session(addr);
    let get = || {
        http::Request::get("/")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap()
    };
    let all = |_: u16, _: &HeaderMap| true;
    // The first request learns the server's limit (its SETTINGS), the next three wait on it.
    let first = user.send(&origin, get(), HttpVersion::Http2, all).await;
    assert_eq!(first.unwrap().status, 200);
    let (mut a, mut b, mut c) = (user.fork(), user.fork(), user.fork());
    let (a, b, c) = tokio::join!(
        a.send(&origin, get(), HttpVersion::Http2, all),
        b.send(&origin, get(), HttpVersion::Http2, all),
        c.send(&origin, get(), HttpVersion::Http2, all),
    );
    for reply in [a, b, c] {
        assert_eq!(reply.unwrap().body.len(), 50_000);
    }
    assert_eq!((seen[0].load(Relaxed), seen[1].load(Relaxed)), (1, 4));
}
