//! Generates the C headers into OUT_DIR; a test compares them with the committed
//! `include/mailconnect.h` and `include/mailconnect_store.h`. Set `MAILCONNECT_WRITE_HEADER=1` to
//! write the committed headers.
//!
//! The headers are cbindgen's items arranged by topic (`header/layout.rs`: sections in the order
//! a C programmer reads them; the host-owned store in its own header), with one addition
//! cbindgen cannot make: the calling convention
//! `MC_CALL` (`__cdecl` on Windows) on every function and every callback type, so a host compiled
//! with another default convention (MSVC `/Gz`, GCC `-mrtd`, Delphi's `register`) still calls the
//! library, and is called back by it, the way the Rust side expects (`extern "C"` is cdecl on x86).
//!
//! For Windows targets it also links a version resource (file and product version, product name,
//! copyright) into the DLL, from `windows/version.rc` (embed-resource runs MinGW's windres).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=header");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=MAILCONNECT_WRITE_HEADER");
    let config =
        cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let patch = std::env::var("CARGO_PKG_VERSION_PATCH").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let defines = format!(
        "\n#define MAILCONNECT_VERSION_MAJOR {major}\n#define MAILCONNECT_VERSION_MINOR {minor}\n#define MAILCONNECT_VERSION_PATCH {patch}\n#define MAILCONNECT_VERSION \"{version}\"\n\n#if defined(_WIN32) && !defined(MAILCONNECT_STATIC)\n#  ifdef MAILCONNECT_BUILD\n#    define MC_API __declspec(dllexport)\n#  else\n#    define MC_API __declspec(dllimport)\n#  endif\n#elif defined(__GNUC__)\n#  define MC_API __attribute__((visibility(\"default\")))\n#else\n#  define MC_API\n#endif\n\n/* The calling convention of every function and callback: cdecl on Windows (it matters on x86,\n   where Delphi needs `cdecl;` and .NET `CallingConvention.Cdecl`), the platform's C convention\n   elsewhere. Callbacks you pass must be declared with MC_CALL too. */\n#if defined(_WIN32)\n#  define MC_CALL __cdecl\n#else\n#  define MC_CALL\n#endif\n"
    );
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut raw = Vec::new();
    bindings.write(&mut raw);
    let read = |name: &str| {
        std::fs::read_to_string(format!("{dir}/header/{name}"))
            .unwrap_or_else(|e| panic!("ffi/header/{name}: {e}"))
    };
    let (main_header, store_header) = headers(
        &String::from_utf8(raw).expect("UTF-8 header"),
        &read("mailconnect.prologue.h"),
        &read("mailconnect_store.prologue.h"),
        &defines,
    );
    std::fs::write(format!("{out}/mailconnect.h"), &main_header).expect("write header");
    std::fs::write(format!("{out}/mailconnect_store.h"), &store_header).expect("write header");
    #[cfg(feature = "cxx")]
    {
        println!("cargo:rerun-if-changed=cpp/events.h");
        cxx_build::bridge("src/cxx_bridge.rs")
            .include("../include")
            .std("c++17")
            .compile("mailconnect_cxxbridge");
    }
    if std::env::var("MAILCONNECT_WRITE_HEADER").is_ok_and(|v| v == "1") {
        std::fs::write(format!("{dir}/../include/mailconnect.h"), &main_header)
            .expect("write include/mailconnect.h");
        std::fs::write(
            format!("{dir}/../include/mailconnect_store.h"),
            &store_header,
        )
        .expect("write include/mailconnect_store.h");
    }
    link_version_resource("windows/version.rc", "VFT_DLL", "mailconnect.dll", true);
}

include!("windows/resource.rs");
include!("header/layout.rs");
