//! Links the version resource into `mailconnect.exe` on Windows targets (file and product
//! version, product name, copyright; ffi/windows/version.rc, shared with the DLL).

fn main() {
    link_version_resource(
        "../ffi/windows/version.rc",
        "VFT_APP",
        "mailconnect.exe",
        false,
    );
}

include!("../ffi/windows/resource.rs");
