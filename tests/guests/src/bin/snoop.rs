//! Tries what a sandboxed plugin must not be able to do, and reports.
fn main() {
    let passwd = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => format!("READ {} bytes", text.len()),
        Err(e) => format!("denied ({e})"),
    };
    let root = match std::fs::read_dir("/") {
        Ok(entries) => format!("LISTED {} entries", entries.count()),
        Err(e) => format!("denied ({e})"),
    };
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    test_guests::respond(&format!("passwd: {passwd}\nroot: {root}\nvars: {}\n", vars.join(" ")));
}
