//! The body decoder, fed the same bytes under arbitrary splits: every
//! split gives what one read gives (the same body, the same bytes left
//! over, or an error), and an error is final.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmhttpd::http1::body::{BodyDecoder, Decoded};
use wasmhttpd::http1::parse::Framing;

/// Decodes `input` arriving in pieces of the sizes in `steps` (repeated):
/// the body and how many bytes were left after it, or `None` on an error
/// or when the input ends first.
fn decode(framing: Framing, input: &[u8], steps: &[usize]) -> Option<(Vec<u8>, usize)> {
    let mut decoder = BodyDecoder::new(framing);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut fed = 0;
    let mut sizes = steps.iter().cycle();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Data(bytes)) => {
                assert!(!bytes.is_empty(), "no empty data");
                body.extend_from_slice(&bytes);
            }
            Ok(Decoded::End) => {
                assert!(decoder.is_done());
                return Some((body, buf.len() + input.len() - fed));
            }
            Ok(Decoded::NeedMore) => {
                assert!(buf.is_empty() || !matches!(framing, Framing::Length(_)));
                if fed == input.len() {
                    return None;
                }
                let step = sizes.next().copied().unwrap_or(usize::MAX).max(1);
                let end = fed.saturating_add(step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            Err(_) => {
                assert!(decoder.has_failed());
                // Final: no later byte is ever read as framing again.
                buf.extend_from_slice(&input[fed..]);
                assert!(decoder.decode(&mut buf).is_err());
                assert!(!decoder.is_done());
                return None;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split_len = (usize::from(mode >> 2) % 16).min(rest.len());
    let (splits, input) = rest.split_at(split_len);
    let framing = match mode & 3 {
        0 | 1 => Framing::Chunked,
        2 => Framing::Length(u64::from(splits.first().copied().unwrap_or(7))),
        _ => Framing::Empty,
    };
    let whole = decode(framing, input, &[usize::MAX]);
    assert_eq!(decode(framing, input, &[1]), whole, "one byte at a time");
    let steps: Vec<usize> = splits.iter().map(|&s| usize::from(s)).collect();
    if !steps.is_empty() {
        assert_eq!(
            decode(framing, input, &steps),
            whole,
            "in steps of {steps:?}"
        );
    }
    if let (Some((body, _)), Framing::Length(n)) = (&whole, framing) {
        assert_eq!(body.len() as u64, n);
    }
});
