//! The committed header must equal a fresh generation from the sources.

#[test]
fn committed_header_matches_a_fresh_generation() {
    let fresh = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/mailconnect.h"))
        .expect("generated header");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../include/mailconnect.h"
    ))
    .expect("include/mailconnect.h");
    assert!(
        fresh == committed,
        "include/mailconnect.h is out of date: run `MAILCONNECT_WRITE_HEADER=1 cargo build -p mailconnect-ffi` and commit it"
    );
}
