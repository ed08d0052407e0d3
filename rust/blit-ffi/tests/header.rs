//! Checks that the committed `include/blit.h` matches what cbindgen
//! generates from the crate, so that the header never drifts from the
//! library. Set `BLIT_UPDATE_HEADER=1` to write the header instead.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("rust/blit-ffi/cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header from rust/blit-ffi");
    let mut header = Vec::new();
    bindings.write(&mut header);
    String::from_utf8(header).expect("the generated header is UTF-8")
}

#[test]
fn committed_header_is_current() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = crate_dir.join("../../include/blit.h");
    let generated = generate();

    if std::env::var_os("BLIT_UPDATE_HEADER").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/blit.h differs from the header that cbindgen generates from rust/blit-ffi; \
         run `BLIT_UPDATE_HEADER=1 cargo test -p blit-ffi --test header` and commit the result"
    );
}
