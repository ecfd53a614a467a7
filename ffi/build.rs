//! Generates the C header into OUT_DIR; a test compares it with the committed
//! `include/mailconnect.h`. Set `MAILCONNECT_WRITE_HEADER=1` to write the committed header.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=MAILCONNECT_WRITE_HEADER");
    let mut config =
        cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let patch = std::env::var("CARGO_PKG_VERSION_PATCH").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let extra = format!(
        "\n#define MAILCONNECT_VERSION_MAJOR {major}\n#define MAILCONNECT_VERSION_MINOR {minor}\n#define MAILCONNECT_VERSION_PATCH {patch}\n#define MAILCONNECT_VERSION \"{version}\"\n\n#if defined(_WIN32) && !defined(MAILCONNECT_STATIC)\n#  ifdef MAILCONNECT_BUILD\n#    define MC_API __declspec(dllexport)\n#  else\n#    define MC_API __declspec(dllimport)\n#  endif\n#elif defined(__GNUC__)\n#  define MC_API __attribute__((visibility(\"default\")))\n#else\n#  define MC_API\n#endif\n"
    );
    config.after_includes = Some(format!(
        "{}{}",
        config.after_includes.unwrap_or_default(),
        extra
    ));
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    bindings.write_to_file(format!("{out}/mailconnect.h"));
    #[cfg(feature = "cxx")]
    {
        println!("cargo:rerun-if-changed=cpp/events.h");
        cxx_build::bridge("src/cxx_bridge.rs")
            .std("c++17")
            .compile("mailconnect_cxxbridge");
    }
    if std::env::var("MAILCONNECT_WRITE_HEADER").is_ok_and(|v| v == "1") {
        bindings.write_to_file(format!("{dir}/../include/mailconnect.h"));
    }
}
