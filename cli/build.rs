//! With the `libtorch` feature, the `clipline` binary links PyTorch's libtorch, which lives in
//! a Python environment rather than on the loader's path: the directory `LIBTORCH` names at
//! build time (`scripts/env.sh`'s `use_libtorch` sets it) goes into the binary's run path, so
//! it starts without LD_LIBRARY_PATH. Nothing happens in a build without the feature.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_LIBTORCH").is_none() {
        return;
    }
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", lib.display());
    }
}
