// The version resource (ffi/windows/version.rc) for a Windows target, shared by ffi/build.rs (the
// DLL) and cli/build.rs (mailconnect.exe) with `include!`. Does nothing for other targets.
// embed-resource runs the target's windres (MinGW's `x86_64-w64-mingw32-windres` here).

/// Compile `version.rc` at `rc` for an artifact of type `file_type` (`VFT_DLL`, `VFT_APP`) named
/// `file_name`, and link it into the cdylib (`dll`) or the binaries.
fn link_version_resource(rc: &str, file_type: &str, file_name: &str, dll: bool) {
    println!("cargo:rerun-if-changed={rc}");
    if !std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "windows") {
        return;
    }
    let v = |k: &str| std::env::var(k).unwrap_or_default();
    let macros = [
        format!("MC_VER_MAJOR={}", v("CARGO_PKG_VERSION_MAJOR")),
        format!("MC_VER_MINOR={}", v("CARGO_PKG_VERSION_MINOR")),
        format!("MC_VER_PATCH={}", v("CARGO_PKG_VERSION_PATCH")),
        format!("MC_VER_STRING={}", v("CARGO_PKG_VERSION")),
        format!("MC_FILE_TYPE={file_type}"),
        format!("MC_FILE_NAME={file_name}"),
    ];
    let result = if dll {
        embed_resource::compile_for_cdylib(rc, &macros)
    } else {
        embed_resource::compile(rc, &macros)
    };
    result
        .manifest_optional()
        .expect("the version resource compiles (MinGW windres)");
}
