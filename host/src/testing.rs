//! Helpers for the parsers' unit tests: golden files and random inputs.

use std::path::{Path, PathBuf};

/// Checks every `testdata/DIR/*.EXT` against its `.out` file: `render`
/// turns an input file into the text expected there. With `UPDATE_GOLDEN`
/// set, rewrites the `.out` files instead. Fails if fewer than `at_least`
/// cases are found.
pub fn golden(dir: &str, ext: &str, at_least: usize, render: impl Fn(&Path) -> String) {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(dir);
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("testdata") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != ext) {
            continue;
        }
        cases += 1;
        let actual = render(&path);
        let golden = path.with_extension("out");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &actual).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}", golden.display()));
        assert_eq!(actual, expected, "{}", path.display());
    }
    assert!(
        cases >= at_least,
        "golden cases found in {}: {cases}",
        dir.display()
    );
}

/// `count` deterministic pseudo-random inputs of up to `max_len` bytes
/// drawn from `alphabet` (xorshift; the same inputs every run).
pub fn random_inputs(alphabet: &[u8], count: usize, max_len: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet = alphabet.to_vec();
    (0..count).map(move |_| {
        let len = (seed % max_len) as usize;
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect()
    })
}
