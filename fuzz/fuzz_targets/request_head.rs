//! The request-head parser: any bytes give a head, "need more", or an
//! error with a status, never a panic; a head's bytes are split off the
//! buffer exactly, and its framing agrees with its fields.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmhttpd::http1::parse::{Framing, Limits, parse_head};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_request_line: 256,
        max_header_bytes: 1024,
        max_headers: 16,
    };
    let mut buf = BytesMut::from(data);
    match parse_head(&mut buf, &limits) {
        Ok(Some(head)) => {
            let used = data.len() - buf.len();
            assert_eq!(&data[used..], &buf[..], "the rest is left as it was");
            assert!(
                data.starts_with(&head.request_line),
                "the request line is the first line"
            );
            assert!(used <= limits.max_request_line + 2 + limits.max_header_bytes + 2);
            let chunked = head.headers.contains_key("transfer-encoding");
            assert_eq!(
                chunked,
                head.framing == Framing::Chunked,
                "framing follows the fields"
            );
            if chunked {
                assert!(!head.headers.contains_key("content-length"), "never both");
            }
            // A head is never found in less than all of it.
            let mut prefix = BytesMut::from(&data[..used - 1]);
            assert!(!matches!(parse_head(&mut prefix, &limits), Ok(Some(_))));
        }
        Ok(None) => assert_eq!(buf.len(), data.len(), "nothing is taken"),
        Err(rejected) => {
            let status = rejected.error.status().as_u16();
            assert!((400..600).contains(&status), "{status}");
        }
    }
});
