//! Lists and appends to /data (a granted directory): GET lists, POST adds
//! the body as a file, and tries to escape the grant with `..`.
use std::io::Write;

fn main() {
    let method = std::env::var("REQUEST_METHOD").unwrap_or_default();
    if method == "POST" {
        let body = test_guests::body();
        let written = std::fs::File::create("/data/note.txt").and_then(|mut f| f.write_all(&body));
        test_guests::respond(&format!("write: {:?}\n", written.map_err(|e| e.kind())));
        return;
    }
    let mut names: Vec<String> = match std::fs::read_dir("/data") {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) => vec![format!("error {e}")],
    };
    names.sort();
    let escape = match std::fs::read_dir("/data/..") {
        Ok(entries) => format!("escaped: {} entries", entries.count()),
        Err(e) => format!("denied ({e})"),
    };
    test_guests::respond(&format!("files: {}\n..: {escape}\n", names.join(" ")));
}
