//! HTTP/2 frames (RFC 9113 §4, §6) as a client reads and writes them: one frame split off the
//! front of the bytes read (DATA, HEADERS, CONTINUATION, RST_STREAM, SETTINGS, PING, GOAWAY,
//! WINDOW_UPDATE; PRIORITY and unknown types ignored; padding removed), every length checked
//! against our SETTINGS_MAX_FRAME_SIZE and each type's own rules, and the frames a client
//! writes appended to a buffer. Plain functions over byte slices; no input makes them panic.

/// The client's connection preface (§3.4).
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame header's length.
pub(super) const HEADER_LEN: usize = 9;
/// The largest frame payload either side sends: the protocol's default, which the client
/// never raises (and a server never lowers: it is the least allowed).
pub(super) const MAX_FRAME_SIZE: usize = 16_384;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// SETTINGS identifiers (§6.5.2) the client reads or writes.
pub(super) const SETTINGS_ENABLE_PUSH: u16 = 2;
pub(super) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 3;
pub(super) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 4;
pub(super) const SETTINGS_MAX_FRAME_SIZE: u16 = 5;

/// One frame read from the server, its payload borrowed from the bytes read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    Data {
        stream: u32,
        data: &'a [u8],
        end_stream: bool,
        /// The whole payload's length, padding included: what flow control counts.
        flow_len: u32,
    },
    Headers {
        stream: u32,
        block: &'a [u8],
        end_stream: bool,
        end_headers: bool,
    },
    Continuation {
        stream: u32,
        block: &'a [u8],
        end_headers: bool,
    },
    Reset {
        stream: u32,
        code: u32,
    },
    /// The parameters, six bytes each (see [`settings`]).
    Settings {
        ack: bool,
        parameters: &'a [u8],
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last: u32,
        code: u32,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    /// Never sent to a client that disabled push.
    PushPromise,
    /// PRIORITY, and types this client does not know (§5.5: ignored).
    Ignored {
        kind: u8,
        stream: u32,
    },
}

/// A frame no server may send: a connection error.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FrameError(pub(super) String);

/// The frame at the front of `bytes` and its length on the wire, `None` until all of it is
/// there (then `needed` says how many bytes it takes, once its header is).
pub(super) fn parse(bytes: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let (kind, flags) = (header[3], header[4]);
    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    if length > MAX_FRAME_SIZE {
        return Err(FrameError(format!(
            "a frame of {length} bytes, past the maximum frame size of {MAX_FRAME_SIZE}"
        )));
    }
    let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + length) else {
        return Ok(None);
    };
    let on_stream = |name: &str| {
        if stream == 0 {
            Err(FrameError(format!("a {name} frame on stream 0")))
        } else {
            Ok(())
        }
    };
    let on_connection = |name: &str| {
        if stream == 0 {
            Ok(())
        } else {
            Err(FrameError(format!("a {name} frame on stream {stream}")))
        }
    };
    let exactly = |name: &str, want: usize| {
        if length == want {
            Ok(())
        } else {
            Err(FrameError(format!(
                "a {name} frame of {length} bytes (it has {want})"
            )))
        }
    };
    let frame = match kind {
        DATA => {
            on_stream("DATA")?;
            Frame::Data {
                stream,
                data: unpadded(payload, flags, "DATA")?,
                end_stream: flags & END_STREAM != 0,
                flow_len: length as u32,
            }
        }
        HEADERS => {
            on_stream("HEADERS")?;
            let mut block = unpadded(payload, flags, "HEADERS")?;
            if flags & PRIORITY_FLAG != 0 {
                block = block.get(5..).ok_or_else(|| {
                    FrameError("a HEADERS frame too short for its priority".to_owned())
                })?;
            }
            Frame::Headers {
                stream,
                block,
                end_stream: flags & END_STREAM != 0,
                end_headers: flags & END_HEADERS != 0,
            }
        }
        CONTINUATION => {
            on_stream("CONTINUATION")?;
            Frame::Continuation {
                stream,
                block: payload,
                end_headers: flags & END_HEADERS != 0,
            }
        }
        RST_STREAM => {
            on_stream("RST_STREAM")?;
            exactly("RST_STREAM", 4)?;
            Frame::Reset {
                stream,
                code: be32(payload),
            }
        }
        SETTINGS => {
            on_connection("SETTINGS")?;
            let ack = flags & ACK != 0;
            if (ack && length != 0) || !length.is_multiple_of(6) {
                return Err(FrameError(format!("a SETTINGS frame of {length} bytes")));
            }
            Frame::Settings {
                ack,
                parameters: payload,
            }
        }
        PUSH_PROMISE => Frame::PushPromise,
        PING => {
            on_connection("PING")?;
            exactly("PING", 8)?;
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(payload);
            Frame::Ping {
                ack: flags & ACK != 0,
                payload: bytes,
            }
        }
        GOAWAY => {
            on_connection("GOAWAY")?;
            if length < 8 {
                return Err(FrameError(format!("a GOAWAY frame of {length} bytes")));
            }
            Frame::GoAway {
                last: be32(payload) & 0x7fff_ffff,
                code: be32(&payload[4..]),
            }
        }
        WINDOW_UPDATE => {
            exactly("WINDOW_UPDATE", 4)?;
            Frame::WindowUpdate {
                stream,
                increment: be32(payload) & 0x7fff_ffff,
            }
        }
        _ => Frame::Ignored { kind, stream },
    };
    Ok(Some((frame, HEADER_LEN + length)))
}

/// How many bytes the frame at the front of `bytes` takes, once its header is there.
pub(super) fn needed(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..HEADER_LEN)?;
    Some(HEADER_LEN + u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize)
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// A payload without its padding (§6.1).
fn unpadded<'a>(payload: &'a [u8], flags: u8, name: &str) -> Result<&'a [u8], FrameError> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(FrameError(format!(
            "a padded {name} frame with no pad length"
        )));
    };
    rest.len()
        .checked_sub(usize::from(pad))
        .map(|end| &rest[..end])
        .ok_or_else(|| FrameError(format!("a {name} frame padded past its length")))
}

/// A SETTINGS frame's parameters as (identifier, value).
pub(super) fn settings(parameters: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    parameters
        .chunks_exact(6)
        .map(|p| (u16::from_be_bytes([p[0], p[1]]), be32(&p[2..])))
}

fn put_header(out: &mut Vec<u8>, length: usize, kind: u8, flags: u8, stream: u32) {
    let length = (length as u32).to_be_bytes();
    out.extend_from_slice(&[length[1], length[2], length[3], kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// A SETTINGS frame with `parameters`.
pub(super) fn put_settings(out: &mut Vec<u8>, parameters: &[(u16, u32)]) {
    put_header(out, parameters.len() * 6, SETTINGS, 0, 0);
    for (id, value) in parameters {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub(super) fn put_settings_ack(out: &mut Vec<u8>) {
    put_header(out, 0, SETTINGS, ACK, 0);
}

pub(super) fn put_ping_ack(out: &mut Vec<u8>, payload: [u8; 8]) {
    put_header(out, 8, PING, ACK, 0);
    out.extend_from_slice(&payload);
}

pub(super) fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_header(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

pub(super) fn put_reset(out: &mut Vec<u8>, stream: u32, code: u32) {
    put_header(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

pub(super) fn put_goaway(out: &mut Vec<u8>, last: u32, code: u32) {
    put_header(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&last.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

/// One DATA frame (`data` at most [`MAX_FRAME_SIZE`] bytes).
pub(super) fn put_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { END_STREAM } else { 0 };
    put_header(out, data.len(), DATA, flags, stream);
    out.extend_from_slice(data);
}

/// A header block as a HEADERS frame and as many CONTINUATION frames as it takes.
pub(super) fn put_headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool) {
    let mut pieces = block.chunks(MAX_FRAME_SIZE).peekable();
    let first = pieces.next().unwrap_or_default();
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if pieces.peek().is_none() {
        flags |= END_HEADERS;
    }
    put_header(out, first.len(), HEADERS, flags, stream);
    out.extend_from_slice(first);
    while let Some(piece) = pieces.next() {
        let flags = if pieces.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        put_header(out, piece.len(), CONTINUATION, flags, stream);
        out.extend_from_slice(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_are_split_off_whole_and_only_whole() {
        let mut bytes = Vec::new();
        put_data(&mut bytes, 1, b"hello", true);
        put_settings(&mut bytes, &[(SETTINGS_MAX_CONCURRENT_STREAMS, 100)]);
        for cut in 0..14 {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(needed(&bytes), Some(14));
        let (frame, used) = parse(&bytes).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::Data {
                stream: 1,
                data: b"hello",
                end_stream: true,
                flow_len: 5
            }
        );
        let Some((Frame::Settings { ack, parameters }, _)) = parse(&bytes[used..]).unwrap() else {
            panic!("not SETTINGS");
        };
        assert!(!ack);
        assert_eq!(settings(parameters).collect::<Vec<_>>(), [(3, 100)]);
    }

    #[test]
    fn padding_and_priority_are_removed() {
        let padded = frame(DATA, PADDED, 3, &[2, b'a', b'b', 0, 0]);
        let (frame_read, _) = parse(&padded).unwrap().unwrap();
        assert_eq!(
            frame_read,
            Frame::Data {
                stream: 3,
                data: b"ab",
                end_stream: false,
                flow_len: 5
            }
        );
        let headers = frame(
            HEADERS,
            PADDED | PRIORITY_FLAG | END_HEADERS,
            1,
            &[1, 0, 0, 0, 0, 9, 0x88, 0],
        );
        let (frame_read, _) = parse(&headers).unwrap().unwrap();
        assert_eq!(
            frame_read,
            Frame::Headers {
                stream: 1,
                block: &[0x88],
                end_stream: false,
                end_headers: true
            }
        );
        assert!(parse(&frame(DATA, PADDED, 1, &[5, 0])).is_err());
        assert!(parse(&frame(DATA, PADDED, 1, &[])).is_err());
        assert!(parse(&frame(HEADERS, PRIORITY_FLAG, 1, &[0, 0])).is_err());
    }

    #[test]
    fn frames_no_server_may_send_are_errors() {
        let mut too_long = vec![0x00, 0x40, 0x01, DATA, 0, 0, 0, 0, 1];
        too_long.resize(HEADER_LEN + MAX_FRAME_SIZE + 1, 0);
        assert!(parse(&too_long).unwrap_err().0.contains("16385 bytes"));
        assert!(parse(&frame(DATA, 0, 0, b"x")).is_err());
        assert!(parse(&frame(SETTINGS, 0, 1, &[])).is_err());
        assert!(parse(&frame(SETTINGS, 0, 0, &[0; 5])).is_err());
        assert!(parse(&frame(SETTINGS, ACK, 0, &[0; 6])).is_err());
        assert!(parse(&frame(PING, 0, 0, &[0; 7])).is_err());
        assert!(parse(&frame(RST_STREAM, 0, 1, &[0; 5])).is_err());
        assert!(parse(&frame(GOAWAY, 0, 0, &[0; 7])).is_err());
        assert!(parse(&frame(WINDOW_UPDATE, 0, 0, &[0; 3])).is_err());
        let unknown = frame(0xfa, 0xff, 7, b"what");
        let (ignored, _) = parse(&unknown).unwrap().unwrap();
        assert_eq!(
            ignored,
            Frame::Ignored {
                kind: 0xfa,
                stream: 7
            }
        );
    }

    #[test]
    fn a_large_header_block_goes_in_continuations() {
        let block = vec![7u8; MAX_FRAME_SIZE * 2 + 10];
        let mut out = Vec::new();
        put_headers(&mut out, 5, &block, true);
        let mut rest = &out[..];
        let mut got = Vec::new();
        let mut kinds = Vec::new();
        while let Some((frame, used)) = parse(rest).unwrap() {
            match frame {
                Frame::Headers {
                    block,
                    end_stream,
                    end_headers,
                    ..
                } => {
                    assert!(end_stream && !end_headers);
                    got.extend_from_slice(block);
                    kinds.push("HEADERS");
                }
                Frame::Continuation {
                    block, end_headers, ..
                } => {
                    got.extend_from_slice(block);
                    kinds.push(if end_headers { "END" } else { "CONTINUATION" });
                }
                other => panic!("{other:?}"),
            }
            rest = &rest[used..];
        }
        assert_eq!(kinds, ["HEADERS", "CONTINUATION", "END"]);
        assert_eq!(got, block);
    }
}
