//! A command that imports an interface no server provides
//! (`test:missing/kv`): loading it must fail and name the import.
wit_bindgen::generate!({
    inline: "
        package test:missing;
        interface kv { get: func(key: string) -> string; }
        world needs-kv { import kv; }
    ",
});

fn main() {
    print!("Content-Type: text/plain\n\n{}", test::missing::kv::get("x"));
}
