//! URL path → file path: whatever the request path, the result stays
//! beneath the root (no `..`, no absolute path, no NUL, no empty or `.`
//! segment), or it is refused with a 400.
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;
use wasmhttpd::safe_path::UrlPath;

fuzz_target!(|data: &[u8]| {
    match UrlPath::parse(data) {
        Ok(url) => {
            let relative = url.relative();
            for component in relative.components() {
                assert!(
                    matches!(component, Component::Normal(_) | Component::CurDir),
                    "{relative:?} from {data:?}"
                );
            }
            let bytes = relative.as_os_str().as_encoded_bytes();
            assert!(!bytes.contains(&0), "NUL in {relative:?}");
            assert!(!bytes.starts_with(b"/"));
            assert!(
                !bytes.windows(2).any(|w| w == b"//"),
                "empty segment in {relative:?}"
            );
            assert!(url.display().starts_with('/'));
        }
        Err(error) => assert_eq!(error.status().as_u16(), 400),
    }
});
