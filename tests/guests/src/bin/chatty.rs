//! Writes lines to stderr, one with a terminal escape, then responds.
fn main() {
    eprintln!("first line");
    eprintln!("second line \x1b[31mred\x1b[0m");
    test_guests::respond("ok");
}
