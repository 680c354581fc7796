//! The connection's rules without a socket: frames in, frames owed and answers out.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::engine::http::http2::frames::{self, Frame};
use crate::engine::http::http2::hpack;

/// Frames as a server writes them.
fn server(build: impl FnOnce(&mut Vec<u8>)) -> BytesMut {
    let mut out = Vec::new();
    build(&mut out);
    BytesMut::from(&out[..])
}

fn head_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        hpack::encode_field(&mut block, name.as_bytes(), value.as_bytes());
    }
    block
}

/// The frames `state` owes, parsed (after the preface, when it is there).
fn owed(state: &mut State) -> Vec<String> {
    let out = std::mem::take(&mut state.out);
    let mut rest = out.strip_prefix(frames::PREFACE).unwrap_or(&out);
    let mut said = Vec::new();
    while let Ok(Some((frame, used))) = frames::parse(rest) {
        said.push(match frame {
            Frame::Settings { ack, parameters } => {
                format!(
                    "SETTINGS ack={ack} {:?}",
                    frames::settings(parameters).collect::<Vec<_>>()
                )
            }
            Frame::WindowUpdate { stream, increment } => {
                format!("WINDOW_UPDATE {stream} {increment}")
            }
            Frame::Reset { stream, code } => format!("RST_STREAM {stream} {code}"),
            Frame::Ping { ack, .. } => format!("PING ack={ack}"),
            Frame::GoAway { code, .. } => format!("GOAWAY {code}"),
            Frame::Data {
                stream,
                data,
                end_stream,
                ..
            } => {
                format!("DATA {stream} {} end={end_stream}", data.len())
            }
            Frame::Headers {
                stream, end_stream, ..
            } => format!("HEADERS {stream} end={end_stream}"),
            other => format!("{other:?}"),
        });
        rest = &rest[used..];
    }
    said
}

fn body_of(state: &mut State, id: u32) -> (Vec<u8>, Option<Result<bool, Failure>>) {
    let mut got = Vec::new();
    let answer = state.body(id, &mut |data| got.extend_from_slice(data));
    (got, answer)
}

#[test]
fn a_new_connection_says_its_preface_and_settings_and_acks_the_servers() {
    let mut state = State::default();
    assert!(state.out.starts_with(frames::PREFACE));
    assert_eq!(owed(&mut state), ["SETTINGS ack=false [(2, 0)]"]);
    let mut read = server(|out| {
        frames::put_settings(out, &[(3, 100), (4, 1_000_000)]);
        out.extend_from_slice(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    });
    state.take_frames(&mut read);
    assert!(read.is_empty());
    assert_eq!(owed(&mut state), ["SETTINGS ack=true []", "PING ack=true"]);
    let id = state.open(&head_block(&[(":method", "GET")]), true);
    assert_eq!(id, 1);
    assert_eq!(state.send_windows(1), (WINDOW, Some(1_000_000)));
    assert_eq!(owed(&mut state), ["HEADERS 1 end=true"]);
}

#[test]
fn a_response_is_its_head_then_its_body_and_windows_reopen_as_it_is_read() {
    let mut state = State::default();
    let id = state.open(&[0x82], true);
    owed(&mut state);
    let mut read = server(|out| {
        let block = head_block(&[(":status", "200"), ("content-type", "text/plain")]);
        frames::put_headers(out, id, &block, false);
        frames::put_data(out, id, &[b'a'; 16_384], false);
        frames::put_data(out, id, &[b'b'; 16_384], false);
    });
    state.take_frames(&mut read);
    let head = state.head(id).unwrap().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-type"], "text/plain");
    let (got, answer) = body_of(&mut state, id);
    assert_eq!((got.len(), answer), (32_768, Some(Ok(false))));
    // Half a window read: both windows reopen by what was read.
    assert_eq!(
        owed(&mut state),
        ["WINDOW_UPDATE 0 32768", "WINDOW_UPDATE 1 32768"]
    );
    let mut read = server(|out| frames::put_data(out, id, b"end", true));
    state.take_frames(&mut read);
    let (got, answer) = body_of(&mut state, id);
    assert_eq!((got, answer), (b"end".to_vec(), Some(Ok(true))));
    state.close(id);
    assert!(state.idle());
    assert_eq!(
        owed(&mut state),
        Vec::<String>::new(),
        "a complete stream is not reset"
    );
}

#[test]
fn a_server_that_sends_past_the_window_breaks_the_connection() {
    let mut state = State::default();
    let id = state.open(&[0x82], true);
    owed(&mut state);
    let mut read = server(|out| {
        frames::put_headers(out, id, &head_block(&[(":status", "200")]), false);
        for _ in 0..4 {
            frames::put_data(out, id, &[0; 16_384], false);
        }
        frames::put_data(out, id, &[0; 16], false);
    });
    state.take_frames(&mut read);
    let (_, answer) = body_of(&mut state, id);
    match answer {
        Some(Err(Failure::Protocol(detail))) => assert!(detail.contains("flow-control window")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_body_waits_on_the_servers_windows() {
    let mut state = State::default();
    let mut read = server(|out| frames::put_settings(out, &[(4, 10)]));
    state.take_frames(&mut read);
    let id = state.open(&[0x83], false);
    owed(&mut state);
    let mut body = Bytes::from(vec![1u8; 25]);
    assert_eq!(state.send_data(id, &mut body), Ok(false));
    assert_eq!(body.len(), 15);
    assert_eq!(owed(&mut state), ["DATA 1 10 end=false"]);
    assert_eq!(
        state.send_data(id, &mut body),
        Ok(false),
        "the window is shut"
    );
    let mut read = server(|out| frames::put_window_update(out, id, 100));
    state.take_frames(&mut read);
    assert_eq!(state.send_data(id, &mut body), Ok(true));
    assert_eq!(owed(&mut state), ["DATA 1 15 end=true"]);
    assert_eq!(state.send_windows(id), (WINDOW - 25, Some(85)));
    // The connection's window bounds every stream.
    let id = state.open(&[0x83], false);
    let mut big = Bytes::from(vec![2u8; 100_000]);
    let mut read = server(|out| frames::put_window_update(out, id, 1_000_000));
    state.take_frames(&mut read);
    assert_eq!(state.send_data(id, &mut big), Ok(false));
    assert_eq!(big.len(), 100_000 - (WINDOW as usize - 25));
}

#[test]
fn resets_and_goaways_fail_the_streams_they_name() {
    let mut state = State::default();
    let (one, three, five) = (
        state.open(&[0x82], true),
        state.open(&[0x82], true),
        state.open(&[0x82], true),
    );
    let mut read = server(|out| {
        frames::put_reset(out, one, 7);
        frames::put_goaway(out, three, 0xb);
    });
    state.take_frames(&mut read);
    assert_eq!(state.head(one).unwrap().unwrap_err(), Failure::Reset(7));
    assert_eq!(state.head(five).unwrap().unwrap_err(), Failure::GoAway(0xb));
    assert!(
        state.head(three).is_none(),
        "covered by the GOAWAY: still answered"
    );
    assert!(!state.usable());
    state.end(Failure::Closed("the server closed it".to_owned()));
    assert_eq!(
        state.head(three).unwrap().unwrap_err(),
        Failure::ClosedAfterGoAway {
            last: 3,
            code: 0xb,
            detail: "the server closed it".to_owned()
        }
    );
}

#[test]
fn the_servers_stream_limit_holds_new_streams() {
    let mut state = State::default();
    let mut read = server(|out| frames::put_settings(out, &[(3, 1)]));
    state.take_frames(&mut read);
    let waker = std::task::Waker::noop();
    assert!(state.room(waker));
    let id = state.open(&[0x82], true);
    assert!(!state.room(waker));
    state.close(id);
    assert!(state.room(waker));
    assert_eq!(
        owed(&mut state).last().unwrap(),
        "RST_STREAM 1 8",
        "given up: cancelled"
    );
}

#[test]
fn heads_in_pieces_informational_heads_and_trailers() {
    let mut state = State::default();
    let id = state.open(&[0x82], true);
    let block = head_block(&[(":status", "200"), ("x-long", &"v".repeat(40_000))]);
    let mut read = server(|out| {
        frames::put_headers(out, id, &head_block(&[(":status", "103")]), false);
        frames::put_headers(out, id, &block, false);
        frames::put_data(out, id, b"x", false);
        frames::put_headers(out, id, &head_block(&[("grpc-status", "0")]), true);
    });
    state.take_frames(&mut read);
    let head = state.head(id).unwrap().unwrap();
    assert_eq!((head.status, head.headers["x-long"].len()), (200, 40_000));
    assert_eq!(body_of(&mut state, id), (b"x".to_vec(), Some(Ok(true))));
}

#[test]
fn malformed_heads_reset_their_stream_and_bad_frames_end_the_connection() {
    let mut state = State::default();
    let (one, three) = (state.open(&[0x82], true), state.open(&[0x82], true));
    owed(&mut state);
    let mut read = server(|out| {
        frames::put_headers(
            out,
            one,
            &head_block(&[("server", "x"), (":status", "200")]),
            true,
        );
    });
    state.take_frames(&mut read);
    assert!(matches!(state.head(one), Some(Err(Failure::Protocol(_)))));
    assert_eq!(owed(&mut state), ["RST_STREAM 1 1"]);
    let mut read = BytesMut::from(&[0, 0, 0, 5, 0, 0, 0, 0, 2][..]);
    state.take_frames(&mut read);
    assert!(
        matches!(state.head(three), Some(Err(Failure::Protocol(detail))) if detail.contains("PUSH_PROMISE"))
    );
    assert_eq!(owed(&mut state), ["GOAWAY 1"]);
    assert!(!state.usable());
}

#[test]
fn an_http1_answer_to_the_preface_says_so() {
    let mut state = State::default();
    let id = state.open(&[0x82], true);
    let mut read = BytesMut::from(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]);
    state.take_frames(&mut read);
    match state.head(id) {
        Some(Err(Failure::Protocol(detail))) => assert!(detail.contains("HTTP/1.x"), "{detail}"),
        other => panic!("{other:?}"),
    }
}
