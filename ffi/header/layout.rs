// Included by build.rs: arranges cbindgen's items into the two committed headers.
//
// cbindgen writes constants, then types, then functions, each in source order. A C programmer
// reads a header by topic instead: version, errors and memory first, then the client and what it
// manages, in the order a host uses them. Each item goes to the section whose prefix matches
// the longest part of its name; an item no section claims stops the build, so a new export is
// placed on purpose. Within a section: constants, types, functions (cbindgen's order).
// The host-store section goes to its own header, `mailconnect_store.h` (libgit2's `sys/` habit).

/// One header section: its title, a line for the reader, and the name prefixes it holds
/// (an exact name is a prefix of itself).
struct Section {
    title: &'static str,
    about: &'static str,
    prefixes: &'static [&'static str],
    store: bool,
}

const SECTIONS: &[Section] = &[
    Section {
        title: "Version",
        about: "Which library is loaded; check the ABI before anything else.",
        prefixes: &["MC_ABI_VERSION", "mc_abi_version_get", "mc_version_get"],
        store: false,
    },
    Section {
        title: "Results and errors",
        about: "Every fallible call returns MC_OK or an MC_E_* code; the calling thread's last error holds the details.",
        prefixes: &["MC_OK", "MC_E_", "mc_result_", "mc_error_"],
        store: false,
    },
    Section {
        title: "Memory and cancellation",
        about: "Strings mailconnect returns are freed with mc_string_free; an mc_cancel ends a blocking call.",
        prefixes: &["mc_string_", "mc_cancel"],
        store: false,
    },
    Section {
        title: "Logging",
        about: "Route mailconnect's log to the host's own log (it never carries secrets or mail content).",
        prefixes: &["MC_LOG_", "mc_log_"],
        store: false,
    },
    Section {
        title: "Client",
        about: "One client per token store; thread-safe.",
        prefixes: &["mc_client"],
        store: false,
    },
    Section {
        title: "Network",
        about: "The proxy every connection takes, stored sealed with its password for every program on the store.",
        prefixes: &["mc_proxy_"],
        store: false,
    },
    Section {
        title: "App registrations",
        about: "The Azure (or other OAuth) app registrations accounts sign in through; one may serve many accounts.",
        prefixes: &["mc_registration_"],
        store: false,
    },
    Section {
        title: "Accounts",
        about: "Mailboxes, their settings and their status (read from the store only).",
        prefixes: &["mc_account_"],
        store: false,
    },
    Section {
        title: "Sign-in: Connect and Disconnect",
        about: "The one-call Connect with optional callbacks, or the steps for hosts with their own web view.",
        prefixes: &[
            "MC_CONNECT_",
            "mc_connect_",
            "mc_account_connect",
            "mc_account_disconnect",
            "mc_authorization_",
        ],
        store: false,
    },
    Section {
        title: "Tenant setup",
        about: "A setup wizard's two calls (after Connect: they take its callbacks): create the app registration through Microsoft Graph with one administrator sign-in, and check one.",
        prefixes: &["mc_admin_"],
        store: false,
    },
    Section {
        title: "Mail and tokens",
        about: "Test the configuration, send and fetch mail, or take a fresh token for your own mail code.",
        prefixes: &[
            "MC_PROTO_",
            "MC_TEST_",
            "mc_account_test",
            "mc_mail_",
            "mc_folder_",
            "mc_token_",
            "mc_graph_",
            "mc_message_",
            "mc_sasl_",
        ],
        store: false,
    },
    Section {
        title: "Events",
        about: "What changed (status, re-authorization needed, refresh failures), for a host that polls.",
        prefixes: &["mc_events_"],
        store: false,
    },
    Section {
        title: "Background refresher",
        about: "Keeps tokens fresh ahead of expiry, in the host's process or a service beside it.",
        prefixes: &["mc_refresher_"],
        store: false,
    },
    Section {
        title: "Host-owned store",
        about: "The host keeps mailconnect's encrypted records in its own database.",
        prefixes: &["MC_STORE_", "mc_store_", "mc_client_open_with_store"],
        store: true,
    },
];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ItemKind {
    Constant,
    Type,
    Function,
}

/// One cbindgen item: its name, kind and text (documentation included).
struct Item {
    name: String,
    kind: ItemKind,
    text: String,
}

/// The identifier that ends just before byte `end` of `s`.
fn ident_before(s: &str, end: usize) -> String {
    let start = s[..end]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    s[start..end].to_string()
}

/// The name and kind of one definition (its lines without documentation).
fn name_of(def: &str) -> (String, ItemKind) {
    let first = def.lines().next().unwrap_or_default().trim();
    if let Some(rest) = first.strip_prefix("#define ") {
        let name = rest.split_whitespace().next().unwrap_or_default();
        return (name.to_string(), ItemKind::Constant);
    }
    if first.starts_with("typedef") {
        if first.ends_with('{') {
            let last = def.trim_end().trim_end_matches(';');
            return (ident_before(last, last.len()), ItemKind::Type);
        }
        if let Some(p) = def.find("(*") {
            let after = &def[p + 2..];
            let end = after.find(')').unwrap_or(after.len());
            return (after[..end].trim().to_string(), ItemKind::Type);
        }
        let last = def.trim_end().trim_end_matches(';');
        return (ident_before(last, last.len()), ItemKind::Type);
    }
    let paren = def.find('(').unwrap_or(def.len());
    (ident_before(def, paren), ItemKind::Function)
}

/// Split cbindgen's output into items. A documentation comment belongs to the definition after
/// it; a struct runs to its closing `} name;`, any other definition to its first `;`.
fn items(raw: &str) -> Vec<Item> {
    let lines: Vec<&str> = raw.lines().collect();
    let mut out = Vec::new();
    let mut doc = String::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t.is_empty() {
            i += 1;
            continue;
        }
        if t.starts_with("/*") {
            while i < lines.len() {
                doc.push_str(lines[i]);
                doc.push('\n');
                i += 1;
                if lines[i - 1].trim_end().ends_with("*/") {
                    break;
                }
            }
            continue;
        }
        let mut def = String::new();
        let block = t.starts_with("typedef struct") && t.ends_with('{');
        while i < lines.len() {
            let l = lines[i];
            def.push_str(l);
            def.push('\n');
            i += 1;
            let done = if block {
                l.starts_with('}')
            } else {
                l.starts_with("#define") || l.trim_end().ends_with(';')
            };
            if done {
                break;
            }
        }
        let (name, kind) = name_of(&def);
        assert!(!name.is_empty(), "cbindgen item without a name:\n{def}");
        out.push(Item {
            name,
            kind,
            text: format!("{}{}", std::mem::take(&mut doc), def),
        });
    }
    out
}

/// The section an item belongs to: the one with the longest matching prefix.
fn section_of(name: &str) -> usize {
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in SECTIONS.iter().enumerate() {
        for p in s.prefixes {
            if name.starts_with(p) && best.is_none_or(|(_, len)| p.len() > len) {
                best = Some((i, p.len()));
            }
        }
    }
    match best {
        Some((i, _)) => i,
        None => panic!(
            "ffi/header/layout.rs: no header section holds `{name}`; add its prefix to SECTIONS"
        ),
    }
}

const AUTOGEN: &str = "/* Generated by cbindgen from ffi/src and arranged by ffi/header/layout.rs. Do not edit: run\n   `MAILCONNECT_WRITE_HEADER=1 cargo build -p mailconnect-ffi`. */\n";

/// The sections of one header, each with a banner, in SECTIONS order.
fn body(items: &[Item], store: bool) -> String {
    let mut out = String::new();
    for (i, s) in SECTIONS.iter().enumerate() {
        if s.store != store {
            continue;
        }
        let mut mine: Vec<&Item> = items
            .iter()
            .filter(|it| section_of(&it.name) == i)
            .collect();
        if mine.is_empty() {
            continue;
        }
        mine.sort_by_key(|it| it.kind);
        out.push_str(&format!(
            "\n/* ==== {} {}\n   {} */\n",
            s.title,
            "=".repeat(88usize.saturating_sub(s.title.len())),
            s.about
        ));
        for it in mine {
            out.push('\n');
            out.push_str(&it.text);
        }
    }
    out
}

const EXTERN_C_OPEN: &str = "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n";
const EXTERN_C_CLOSE: &str = "\n#ifdef __cplusplus\n}  /* extern \"C\" */\n#endif\n";

/// `(mailconnect.h, mailconnect_store.h)` from cbindgen's output, the prologues and the
/// preprocessor definitions (version macros, MC_API, MC_CALL).
fn headers(raw: &str, prologue: &str, store_prologue: &str, defines: &str) -> (String, String) {
    let items = items(raw);
    let main = format!(
        "{prologue}\n#ifndef MAILCONNECT_H\n#define MAILCONNECT_H\n\n{AUTOGEN}\n#include <stddef.h>\n#include <stdint.h>\n{defines}{EXTERN_C_OPEN}{}{EXTERN_C_CLOSE}\n#endif  /* MAILCONNECT_H */\n",
        body(&items, false)
    );
    let store = format!(
        "{store_prologue}\n#ifndef MAILCONNECT_STORE_H\n#define MAILCONNECT_STORE_H\n\n{AUTOGEN}\n#include \"mailconnect.h\"\n{EXTERN_C_OPEN}{}{EXTERN_C_CLOSE}\n#endif  /* MAILCONNECT_STORE_H */\n",
        body(&items, true)
    );
    (
        with_calling_convention(&main),
        with_calling_convention(&store),
    )
}

/// Insert `MC_CALL` before the name of every exported function (`MC_API int32_t MC_CALL mc_x(`)
/// and inside every function-pointer declarator (`int32_t (MC_CALL *load)(`).
fn with_calling_convention(header: &str) -> String {
    let mut out = String::with_capacity(header.len() + 4096);
    for line in header.split_inclusive('\n') {
        let mut line = line.to_string();
        if line.starts_with("MC_API ") {
            if let Some(paren) = line.find('(') {
                let name_start = line[..paren]
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                line.insert_str(name_start, "MC_CALL ");
            }
        }
        if !line.trim_start().starts_with("/*") && !line.trim_start().starts_with('*') {
            line = line.replace("(*", "(MC_CALL *");
        }
        out.push_str(&line);
    }
    out
}
