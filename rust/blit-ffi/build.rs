//! Links libblit.so with the version script `blit.map`, so that it exports
//! only `blit_` symbols, and with the SONAME `libblit.so.1`.

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let map = format!("{manifest_dir}/blit.map");
    println!("cargo:rerun-if-changed=blit.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libblit.so.1");
}
