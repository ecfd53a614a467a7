//! Every C export stays a thin translation: its body (the lines between the function's braces,
//! `call(|| {` and `})` included; doc comments and the signature are not counted) is at most
//! [`MAX_BODY_LINES`] lines. Work that does not fit belongs in a helper in ffi/src or in core.
//! Run with `--nocapture` to print every export's size.

use std::path::Path;

const MAX_BODY_LINES: usize = 15;

/// One export: its file, name, first line and body length in lines.
#[derive(Debug)]
struct Export {
    file: String,
    name: String,
    line: usize,
    body_lines: usize,
}

/// The byte offset of the `}` closing the block whose `{` is at `open`, skipping braces in
/// comments, string, byte-string, raw-string and char literals.
fn matching_brace(src: &str, open: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/")?;
                i += end + 4;
                continue;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let hashes = src[i + 1..].bytes().take_while(|c| *c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let start = i + 2 + hashes;
                i = start + src[start..].find(&close)? + close.len();
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' => {
                // A char literal ('{', '\'', '\u{7b}'), not a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 2;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The `pub extern "C"` / `pub unsafe extern "C"` functions of one source file.
fn exports_of(file: &str, src: &str) -> Vec<Export> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (n, line) in src.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let t = line.trim_start();
        let Some(rest) = t
            .strip_prefix("pub unsafe extern \"C\" fn ")
            .or_else(|| t.strip_prefix("pub extern \"C\" fn "))
        else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let open = start
            + src[start..]
                .find('{')
                .unwrap_or_else(|| panic!("{file}: no body for {name}"));
        let close =
            matching_brace(src, open).unwrap_or_else(|| panic!("{file}: unclosed body of {name}"));
        let body_lines = src[open..close].lines().count().saturating_sub(1);
        out.push(Export {
            file: file.to_string(),
            name,
            line: n + 1,
            body_lines,
        });
    }
    out
}

fn all_exports() -> Vec<Export> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("ffi/src")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).expect("source file");
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        all.extend(exports_of(&format!("ffi/src/{name}"), &src));
    }
    all
}

#[test]
fn every_export_body_is_short() {
    let all = all_exports();
    for e in &all {
        println!("{:>3} {}:{} {}", e.body_lines, e.file, e.line, e.name);
    }
    // The scan found the exports (a broken scan must not pass by finding none).
    for name in [
        "mc_client_open",
        "mc_client_free",
        "mc_account_connect",
        "mc_mail_fetch",
        "mc_events_next",
        "mc_log_callback_set",
        "mc_result_name_get",
        "mc_client_open_with_store",
    ] {
        assert!(
            all.iter().any(|e| e.name == name),
            "{name} not found among {} exports",
            all.len()
        );
    }
    assert!(all.len() >= 40, "only {} exports found", all.len());
    let long: Vec<String> = all
        .iter()
        .filter(|e| e.body_lines > MAX_BODY_LINES)
        .map(|e| format!("{}:{} {} ({} lines)", e.file, e.line, e.name, e.body_lines))
        .collect();
    assert!(
        long.is_empty(),
        "export bodies longer than {MAX_BODY_LINES} lines; move the work into a helper or core:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_counter_counts_body_lines_and_skips_braces_in_literals() {
    let src = r####"
/// Doc lines do not count { }.
#[no_mangle]
pub unsafe extern "C" fn mc_a(
    x: *mut c_char,
) -> i32 {
    call(|| {
        let s = "}}}"; // }
        let c = '}';
        let r = r#"{"a": "}"}"#;
        /* } */
        Ok(())
    })
}

pub extern "C" fn mc_b() -> u32 { 1 }

pub fn not_an_export() {
}
"####;
    let e = exports_of("t.rs", src);
    let got: Vec<(&str, usize)> = e.iter().map(|e| (e.name.as_str(), e.body_lines)).collect();
    assert_eq!(got, [("mc_a", 7), ("mc_b", 0)]);
    assert_eq!(e[0].line, 4);
}
