//! Reports its arguments, environment and request body.
fn main() {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    let mut text = String::new();
    for arg in std::env::args() {
        text.push_str(&format!("arg {arg}\n"));
    }
    for (k, v) in vars {
        text.push_str(&format!("{k}={v}\n"));
    }
    let body = test_guests::body();
    text.push_str(&format!("--body {} bytes--\n", body.len()));
    text.push_str(&String::from_utf8_lossy(&body));
    test_guests::respond(&text);
}
