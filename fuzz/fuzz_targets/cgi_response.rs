//! The CGI response parser (RFC 3875 §6): script output is untrusted, so
//! any bytes give a disposition, "need more" or a refusal, never a panic;
//! a complete head is found at the same place in any longer buffer, and
//! never in a prefix of itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhttpd::cgi::response::{Disposition, parse_head};

fuzz_target!(|data: &[u8]| {
    match parse_head(data) {
        Ok(Some((disposition, used))) => {
            assert!(used <= data.len());
            if let Disposition::Respond { status, .. } = &disposition {
                assert!((200..600).contains(&status.as_u16()), "{status}");
            }
            // The same head in the head alone.
            let again = parse_head(&data[..used]);
            assert!(matches!(again, Ok(Some((_, n))) if n == used), "{again:?}");
            if used > 0 {
                assert!(!matches!(parse_head(&data[..used - 1]), Ok(Some(_))));
            }
        }
        Ok(None) | Err(_) => {}
    }
});
