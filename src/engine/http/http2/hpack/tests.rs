//! RFC 7541's examples (Appendix C), the encoder's round trip, and hostile blocks.
use super::*;
use crate::engine::http::http2::hex;

fn decoded(decoder: &mut Decoder, block: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    decoder
        .decode(&hex(block), &mut |n, v| {
            fields.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ));
        })
        .unwrap();
    fields
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn rfc_integer_examples() {
    let mut out = Vec::new();
    put_integer(&mut out, 0, 5, 10);
    put_integer(&mut out, 0, 5, 1337);
    put_integer(&mut out, 0, 8, 42);
    assert_eq!(out, [10, 31, 154, 10, 42]);
    let mut block = &out[..];
    assert_eq!(integer(&mut block, 5), Ok(10));
    assert_eq!(integer(&mut block, 5), Ok(1337));
    assert_eq!(integer(&mut block, 8), Ok(42));
    assert!(block.is_empty());
    let mut endless = &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..];
    assert!(integer(&mut endless, 5).is_err());
}

/// RFC 7541 C.5: responses without Huffman coding, a 256-byte table, evictions.
#[test]
fn rfc_c5_responses_with_evictions() {
    let mut decoder = Decoder::default();
    decoder.decode(&[0x3f, 0xe1, 0x01], &mut |_, _| {}).unwrap();
    let first = decoded(
        &mut decoder,
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    );
    assert_eq!(
        first,
        pairs(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ])
    );
    assert_eq!(decoder.size(), 222);
    let second = decoded(&mut decoder, "4803 3330 37c1 c0bf");
    assert_eq!(second[0], (":status".to_owned(), "307".to_owned()));
    assert_eq!(second[3].1, "https://www.example.com");
    assert_eq!(decoder.size(), 222);
    let third = decoded(
        &mut decoder,
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    );
    assert_eq!(
        third,
        pairs(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
            ),
        ])
    );
    assert_eq!(decoder.size(), 215);
    assert_eq!(decoder.entries.len(), 3);
}

/// RFC 7541 C.6: the same responses Huffman-coded.
#[test]
fn rfc_c6_responses_with_huffman() {
    let mut decoder = Decoder::default();
    decoder.decode(&[0x3f, 0xe1, 0x01], &mut |_, _| {}).unwrap();
    let first = decoded(
        &mut decoder,
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    );
    assert_eq!(first[2].1, "Mon, 21 Oct 2013 20:13:21 GMT");
    assert_eq!(decoder.size(), 222);
    decoded(&mut decoder, "4883 640e ff c1c0 bf");
    let third = decoded(
        &mut decoder,
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    );
    assert_eq!(
        third[5].1,
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
    );
    assert_eq!(decoder.size(), 215);
}

/// RFC 7541 C.3 (requests, no Huffman): the encoder's output decodes to what it took.
#[test]
fn rfc_c3_requests_and_the_encoder_round_trip() {
    let mut decoder = Decoder::default();
    let first = decoded(
        &mut decoder,
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    );
    assert_eq!(
        first[3],
        (":authority".to_owned(), "www.example.com".to_owned())
    );
    let second = decoded(&mut decoder, "8286 84be 5808 6e6f 2d63 6163 6865");
    assert_eq!(
        second[4],
        ("cache-control".to_owned(), "no-cache".to_owned())
    );
    let fields = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/a?b=1"),
        (":authority", "example.org:8443"),
        ("cookie", "a=1; b=2"),
        ("x-custom", "\u{7f}binary-ish"),
        ("accept-encoding", "gzip, deflate"),
    ];
    let mut block = Vec::new();
    for (n, v) in fields {
        encode_field(&mut block, n.as_bytes(), v.as_bytes());
    }
    assert_eq!(block[..2], [0x82, 0x87]);
    let mut fresh = Decoder::default();
    let mut got = Vec::new();
    fresh
        .decode(&block, &mut |n, v| got.push((n.to_vec(), v.to_vec())))
        .unwrap();
    let want: Vec<_> = fields
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(fresh.size(), 0, "the encoder never indexes");
}

#[test]
fn hostile_blocks_are_errors() {
    let mut decoder = Decoder::default();
    let mut ignore = |_: &[u8], _: &[u8]| {};
    // An index past both tables; index 0.
    assert!(decoder.decode(&[0xbe], &mut ignore).is_err());
    assert!(decoder.decode(&[0x80], &mut ignore).is_err());
    // A size update past what was offered, and one after a field.
    assert!(decoder.decode(&[0x3f, 0xe2, 0x1f], &mut ignore).is_err());
    assert!(decoder.decode(&[0x82, 0x20], &mut ignore).is_err());
    // A string longer than the block.
    assert!(decoder.decode(&[0x40, 0x05, b'a'], &mut ignore).is_err());
    // A header list past the bound: one field indexed many times.
    let many = vec![0x82; MAX_HEADER_LIST / 32];
    let error = decoder.decode(&many, &mut ignore).unwrap_err();
    assert_eq!(error.0, "a header list larger than 256 KiB");
}

#[test]
fn an_entry_larger_than_the_table_empties_it() {
    let mut decoder = Decoder::default();
    let mut long = vec![0x40, 0x01, b'a'];
    put_integer(&mut long, 0, 7, 5000);
    long.extend(vec![b'x'; 5000]);
    decoder
        .decode(&[0x40, 0x01, b'b', 0x01, b'c'], &mut |_, _| {})
        .unwrap();
    assert_eq!(decoder.size(), 34);
    decoder.decode(&long, &mut |_, _| {}).unwrap();
    assert_eq!(decoder.size(), 0);
    assert!(decoder.bytes.capacity() == 0 && decoder.entries.is_empty());
}
