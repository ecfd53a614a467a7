//! The committed headers must equal a fresh generation from the sources, and each must compile
//! on its own (the store header includes the main one).

#[test]
fn committed_headers_match_a_fresh_generation() {
    for name in ["mailconnect.h", "mailconnect_store.h"] {
        let fresh = std::fs::read_to_string(format!("{}/{name}", env!("OUT_DIR")))
            .expect("generated header");
        let committed =
            std::fs::read_to_string(format!("{}/../include/{name}", env!("CARGO_MANIFEST_DIR")))
                .unwrap_or_else(|e| panic!("include/{name}: {e}"));
        assert!(
            fresh == committed,
            "include/{name} is out of date: run `MAILCONNECT_WRITE_HEADER=1 cargo build -p mailconnect-ffi` and commit it"
        );
    }
}

/// The order a C programmer reads: version, errors and memory before the client, the client
/// before what it manages; no consumer function in the store header and no store function in the
/// consumer header.
#[test]
fn the_header_reads_in_topic_order() {
    let h = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/mailconnect.h")).expect("header");
    let store = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/mailconnect_store.h"))
        .expect("store header");
    let at = |name: &str| {
        h.find(&format!("MC_CALL {name}("))
            .unwrap_or_else(|| panic!("{name} is not declared in mailconnect.h"))
    };
    let order = [
        "mc_abi_version_get",
        "mc_error_code_get",
        "mc_string_free",
        "mc_client_open",
        "mc_registration_put",
        "mc_account_put",
        "mc_account_connect",
        "mc_mail_send",
        "mc_events_next",
        "mc_refresher_start",
    ];
    for w in order.windows(2) {
        assert!(at(w[0]) < at(w[1]), "{} should come before {}", w[0], w[1]);
    }
    for name in [
        "mc_client_open_with_store",
        "mc_store_record_set",
        "mc_store_list_add",
    ] {
        assert!(
            !h.contains(&format!(" {name}(")),
            "{name} belongs in mailconnect_store.h"
        );
        assert!(
            store.contains(&format!(" {name}(")),
            "{name} is missing from mailconnect_store.h"
        );
    }
    assert!(
        !store.contains(" mc_account_put("),
        "the store header repeats consumer functions"
    );
    assert!(store.contains("#include \"mailconnect.h\""));
}
