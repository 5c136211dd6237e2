//! Writes its request body to stdout, byte for byte: the test chooses the
//! exact CGI output.
fn main() {
    use std::io::Write;
    let body = test_guests::body();
    let _ = std::io::stdout().write_all(&body);
}
