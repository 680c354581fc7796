//! Fuzz properties of the HTTP/2 client's readers (docs/security.md, "Fuzzing"): any bytes, and
//! frames that are mostly valid, fed to a connection's state in any pieces, and any header
//! block fed to the HPACK decoder, never panic and stay within their bounds of memory.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::frames::{self, MAX_FRAME_SIZE};
use super::hpack::{self, Decoder, MAX_HEADER_LIST, TABLE_SIZE};
use super::state::State;
use crate::fuzzing::{config, pieces};

/// A state with streams 1 and 3 open (one with a body still to send), as a server finds it.
fn with_streams() -> State {
    let mut state = State::default();
    state.open(&[0x82], true);
    state.open(&[0x83], false);
    state
}

/// Feeds `bytes` in `cuts` pieces as `link` does, reading the streams' answers as a request's
/// task would; checks the bounds after each piece.
fn feed(state: &mut State, bytes: &[u8], cuts: &[usize]) {
    let mut read = BytesMut::new();
    let mut body = Bytes::from_static(&[7; 70_000]);
    for piece in pieces(bytes, cuts) {
        read.extend_from_slice(piece);
        state.take_frames(&mut read);
        assert!(read.len() < frames::HEADER_LEN + MAX_FRAME_SIZE || state.ended());
        for id in [1, 3] {
            let _ = state.head(id);
            let mut taken = 0;
            let _ = state.body(id, &mut |data| taken += data.len());
            assert!(taken <= 65_535, "more than a window's data on one stream");
        }
        let _ = state.send_data(3, &mut body);
        // What is owed: acks and updates (bounded), and the body the windows allowed.
        assert!(
            state.out.len() <= 1024 * 1024 + 200_000,
            "{}",
            state.out.len()
        );
        state.out.clear();
    }
}

/// One frame of a type a server sends, with flags, stream and payload mostly as they come.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![0u8..=9, Just(0xfa)];
    let flags = prop_oneof![
        Just(0u8),
        Just(1),
        Just(4),
        Just(5),
        Just(8),
        Just(0x24),
        any::<u8>()
    ];
    let stream = prop_oneof![Just(0u32), Just(1), Just(3), Just(5), any::<u32>()];
    let payload = prop_oneof![
        3 => hpack_block(),
        2 => vec(any::<u8>(), 0..24),
        1 => Just(vec![0, 0, 0, 1]),
        1 => Just(vec![0, 4, 0, 0, 0xff, 0xff]),
        1 => Just(vec![0, 3, 0, 0, 0, 1, 0, 4, 0x7f, 0xff, 0xff, 0xff]),
        1 => vec(any::<u8>(), 0..300),
    ];
    (kind, flags, stream, payload).prop_map(|(kind, flags, stream, payload)| {
        let length = (payload.len() as u32).to_be_bytes();
        let mut out = vec![length[1], length[2], length[3], kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend(payload);
        out
    })
}

/// A header block mostly as servers write it: fields encoded, indexed, with size updates,
/// and bytes of anything between.
fn hpack_block() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => ("[a-z:-]{0,12}", "[ -~]{0,40}").prop_map(|(name, value)| {
            let mut out = Vec::new();
            hpack::encode_field(&mut out, name.as_bytes(), value.as_bytes());
            out
        }),
        2 => ("[a-z-]{1,12}", "[ -~]{0,120}").prop_map(|(name, value)| {
            // With incremental indexing, the name and value as plain literals.
            let mut out = vec![0x40, name.len() as u8];
            out.extend(name.as_bytes());
            out.push(value.len() as u8);
            out.extend(value.as_bytes());
            out
        }),
        2 => (0x80u8..=0xff).prop_map(|index| vec![index]),
        1 => Just(vec![0x3f, 0xe1, 0x1f]),
        1 => Just(vec![0x20]),
        1 => vec(any::<u8>(), 0..8),
    ];
    vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_from_a_server_are_bounded(
        bytes in vec(any::<u8>(), 0..2048),
        cuts in vec(0usize..2048, 0..6),
    ) {
        feed(&mut with_streams(), &bytes, &cuts);
    }

    #[test]
    fn frames_mostly_valid_are_bounded(
        frames in vec(frame(), 0..24),
        cuts in vec(0usize..4096, 0..6),
    ) {
        let mut state = with_streams();
        let mut bytes = Vec::new();
        frames::put_settings(&mut bytes, &[(4, 100)]);
        bytes.extend(frames.concat());
        feed(&mut state, &bytes, &cuts);
    }

    #[test]
    fn any_header_block_decodes_or_fails_within_bounds(
        blocks in vec(prop_oneof![hpack_block(), vec(any::<u8>(), 0..64)], 1..6),
    ) {
        let mut decoder = Decoder::default();
        for block in blocks {
            let mut listed = 0;
            let decoded = decoder.decode(&block, &mut |name, value| {
                listed += name.len() + value.len() + 32;
            });
            prop_assert!(listed <= MAX_HEADER_LIST);
            if decoded.is_err() {
                break;
            }
            prop_assert!(decoder.size() <= TABLE_SIZE);
        }
    }
}
