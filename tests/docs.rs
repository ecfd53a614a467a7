//! Documentation drift. The guides in `docs/` are checked against what they describe, at test time:
//! every diagnostic code of the catalog has a row (with its title) in the English and the German
//! admin guide, every `mc_` function the header exports is named in the integration guide, and
//! every `mailconnect …` command line in the guides names subcommands and flags the built
//! `mailconnect` binary has.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use mailconnect_tests::header::{all_exports, exported_functions, names_identifier};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

const GUIDES: [&str; 3] = [
    "docs/admin-guide.md",
    "docs/admin-guide.de.md",
    "docs/integration.md",
];

// ---------------------------------------------------------------------------------------------
// Diagnostics index

/// The rows of a diagnostics index: code -> the whole table row.
fn index_rows(guide: &str) -> (HashMap<String, String>, Vec<String>) {
    let mut rows = HashMap::new();
    let mut duplicates = Vec::new();
    for line in guide.lines() {
        let Some(rest) = line.strip_prefix("| `MC-") else {
            continue;
        };
        let Some(end) = rest.find('`') else { continue };
        let code = format!("MC-{}", &rest[..end]);
        if rows.insert(code.clone(), line.to_string()).is_some() {
            duplicates.push(code);
        }
    }
    (rows, duplicates)
}

/// What is wrong with `guide`'s index, compared with the catalog in language `lang`.
fn index_problems(
    catalog: &serde_json::Value,
    guide_name: &str,
    guide: &str,
    lang: &str,
) -> Vec<String> {
    let entries = catalog.as_array().expect("the catalog is a JSON array");
    let (rows, duplicates) = index_rows(guide);
    let mut problems: Vec<String> = duplicates
        .into_iter()
        .map(|c| format!("{guide_name}: {c} is listed twice"))
        .collect();
    let mut known = BTreeSet::new();
    for e in entries {
        let code = e["code"].as_str().expect("every entry has a code");
        let title = e[lang]["title"].as_str().expect("every entry has a title");
        known.insert(code.to_string());
        match rows.get(code) {
            None => problems.push(format!(
                "{guide_name}: no index row for {code}; add: | `{code}` | {title} | … |"
            )),
            Some(row) if !row.contains(&format!("| {title} |")) => problems.push(format!(
                "{guide_name}: the row of {code} does not carry the catalog's {lang} title '{title}': {row}"
            )),
            Some(_) => {}
        }
    }
    for code in rows.keys() {
        if !known.contains(code) {
            problems.push(format!(
                "{guide_name}: {code} is indexed but not in the catalog (renamed or removed?)"
            ));
        }
    }
    problems.sort();
    problems
}

#[test]
fn every_diagnostic_code_is_indexed_in_both_admin_guides_with_its_title() {
    let catalog: serde_json::Value =
        serde_json::from_str(&read("core/src/diagnose/catalog.json")).expect("catalog JSON");
    assert!(
        catalog.as_array().is_some_and(|a| a.len() > 10),
        "the catalog looks empty"
    );
    let mut problems = index_problems(
        &catalog,
        "docs/admin-guide.md",
        &read("docs/admin-guide.md"),
        "en",
    );
    problems.extend(index_problems(
        &catalog,
        "docs/admin-guide.de.md",
        &read("docs/admin-guide.de.md"),
        "de",
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_index_check_notices_a_missing_row_a_stale_row_and_a_changed_title() {
    let catalog = serde_json::json!([
        {"code": "MC-ONE", "en": {"title": "One"}},
        {"code": "MC-TWO", "en": {"title": "Two"}},
    ]);
    let guide = "| code | title | who |\n|---|---|---|\n| `MC-ONE` | Uno | user |\n| `MC-GONE` | Gone | user |\n";
    let problems = index_problems(&catalog, "g.md", guide, "en");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("no index row for MC-TWO")));
    assert!(problems
        .iter()
        .any(|p| p.contains("MC-GONE is indexed but not in the catalog")));
    assert!(problems.iter().any(|p| p.contains("title 'One'")));
}

// ---------------------------------------------------------------------------------------------
// C ABI functions

#[test]
fn every_function_the_headers_export_is_named_in_the_integration_guide() {
    let exported = all_exports();
    let guide = read("docs/integration.md");
    let missing: Vec<&String> = exported
        .iter()
        .filter(|f| !names_identifier(&guide, f))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/integration.md does not mention these functions of the headers: {missing:?}"
    );
}

#[test]
fn the_function_check_reads_the_header_format_and_matches_whole_names() {
    let header = "MC_API uint32_t mc_abi_version_get(void);\n/* mc_not_a_function( */\n\
                  MC_API int32_t mc_client_open(const char *options_json, mc_client **out);\n\
                  typedef void (*mc_log_fn)(void *user_data);\n";
    assert_eq!(
        exported_functions(header),
        vec![
            "mc_abi_version_get".to_string(),
            "mc_client_open".to_string()
        ]
    );
    assert!(names_identifier(
        "call `mc_client_open()` first",
        "mc_client_open"
    ));
    assert!(!names_identifier("see mc_client_open_ex", "mc_client_open"));
    assert!(!names_identifier("see xmc_client_open", "mc_client_open"));
}

// ---------------------------------------------------------------------------------------------
// The command line

/// Every `mailconnect …` command line in a Markdown text: lines of fenced code blocks (with `\`
/// continuations joined) and inline code spans, as token lists starting after `mailconnect`.
fn command_lines(markdown: &str) -> Vec<Vec<String>> {
    let mut candidates: Vec<String> = Vec::new();
    let mut in_fence = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            pending.clear();
            continue;
        }
        if in_fence {
            let l = line.trim_end();
            if let Some(head) = l.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            pending.push_str(l);
            candidates.push(std::mem::take(&mut pending));
        } else {
            let mut parts = line.split('`');
            parts.next();
            while let Some(span) = parts.next() {
                candidates.push(span.to_string());
                parts.next();
            }
        }
    }
    let mut out = Vec::new();
    for c in candidates {
        // A shell comment ends the command.
        let c = match c.find(" #") {
            Some(at) => &c[..at],
            None => &c[..],
        };
        let tokens: Vec<&str> = c.split_whitespace().collect();
        let Some(start) = tokens.iter().position(|t| *t == "mailconnect") else {
            continue;
        };
        // Only environment assignments may come before the command.
        let env_only = tokens[..start].iter().all(|t| {
            t.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
        });
        if !env_only {
            continue;
        }
        let args: Vec<String> = tokens[start + 1..]
            .iter()
            .take_while(|t| !matches!(**t, "|" | ";" | "&&" | "||" | "<" | ">" | "2>" | ">>"))
            .map(|t| t.to_string())
            .collect();
        if !args.is_empty() {
            out.push(args);
        }
    }
    out
}

/// A command's `--help`: its subcommands and its long options.
#[derive(Debug, Default, Clone)]
struct Help {
    commands: BTreeSet<String>,
    options: BTreeSet<String>,
    /// Options that take a value (`--interval <INTERVAL>`).
    valued: BTreeSet<String>,
}

fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = if line.starts_with("Commands") {
                "commands"
            } else if line.contains("Options") {
                "options"
            } else {
                ""
            };
            continue;
        }
        match section {
            "commands" => {
                // "  name  description"; wrapped description lines are indented further.
                if let Some(rest) = line.strip_prefix("  ") {
                    if let Some(name) = rest
                        .split_whitespace()
                        .next()
                        .filter(|_| !rest.starts_with(' '))
                    {
                        help.commands.insert(name.to_string());
                    }
                }
            }
            "options" => {
                let t = line.trim_start();
                if t.starts_with('-') {
                    // The option's own spelling ends where the description starts (two spaces).
                    let spelling = t.split("  ").next().unwrap_or(t);
                    let takes_value = spelling.contains('<');
                    for word in spelling.split([' ', ',', '=']) {
                        if let Some(name) = word.strip_prefix("--") {
                            help.options.insert(name.to_string());
                            if takes_value {
                                help.valued.insert(name.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    help
}

/// What is wrong with one command line, asking `help(path)` for each level.
fn command_problems(args: &[String], help: &mut dyn FnMut(&[String]) -> Help) -> Vec<String> {
    // Global options that take a value (they may stand before the subcommand).
    const VALUE_GLOBALS: [&str; 5] = [
        "--store",
        "--lang",
        "--key-file",
        "--key-protection",
        "--ca-file",
    ];
    let line = format!("mailconnect {}", args.join(" "));
    let mut problems = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut i = 0;
    let mut level = help(&path);
    while i < args.len() && !level.commands.is_empty() {
        let t = &args[i];
        if t.starts_with('-') {
            let name = t.trim_start_matches('-').split('=').next().unwrap_or("");
            if t.starts_with("--") && !level.options.contains(name) {
                problems.push(format!("`{line}`: option --{name} does not exist"));
            }
            i += if (VALUE_GLOBALS.contains(&t.as_str()) || level.valued.contains(name))
                && !t.contains('=')
            {
                2
            } else {
                1
            };
            continue;
        }
        if !level.commands.contains(t) {
            let known: Vec<&String> = level.commands.iter().collect();
            let parent = std::iter::once("mailconnect")
                .chain(path.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            problems.push(format!(
                "`{line}`: `{parent}` has no subcommand '{t}' (it has {known:?})"
            ));
            return problems;
        }
        path.push(t.clone());
        level = help(&path);
        i += 1;
    }
    for t in &args[i..] {
        if let Some(rest) = t.strip_prefix("--") {
            let name = rest.split('=').next().unwrap_or("");
            if !level.options.contains(name) {
                problems.push(format!(
                    "`{line}`: `mailconnect {}` has no option --{name}",
                    path.join(" ")
                ));
            }
        }
    }
    problems
}

fn cli_binary() -> PathBuf {
    let bin = mailconnect_tests::target_dir()
        .join(format!("mailconnect{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p mailconnect-cli` (tests/run-all.sh does)",
        bin.display()
    );
    // A binary older than the CLI's sources would check the guides against old subcommands.
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let src = repo().join("cli/src");
    for entry in std::fs::read_dir(&src).expect("cli/src") {
        let entry = entry.expect("cli/src entry");
        let changed = entry
            .metadata()
            .and_then(|m| m.modified())
            .expect("source mtime");
        assert!(
            changed <= built,
            "{} is older than {}: rebuild it with `cargo build -p mailconnect-cli`",
            bin.display(),
            entry.path().display()
        );
    }
    bin
}

#[test]
fn every_command_line_in_the_guides_names_real_subcommands_and_options() {
    let bin = cli_binary();
    let mut cache: HashMap<Vec<String>, Help> = HashMap::new();
    let mut help = |path: &[String]| -> Help {
        cache
            .entry(path.to_vec())
            .or_insert_with(|| {
                let out = Command::new(&bin)
                    .args(path)
                    .arg("--help")
                    .env_remove("MAILCONNECT_LANG")
                    .output()
                    .unwrap_or_else(|e| panic!("{} could not start: {e}", bin.display()));
                assert!(
                    out.status.success(),
                    "mailconnect {} --help failed: {}",
                    path.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
                parse_help(&String::from_utf8_lossy(&out.stdout))
            })
            .clone()
    };
    let top = help(&[]);
    assert!(
        top.commands.contains("connect") && top.options.contains("store"),
        "could not read `mailconnect --help`: {top:?}"
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for guide in GUIDES {
        for args in command_lines(&read(guide)) {
            checked += 1;
            problems.extend(
                command_problems(&args, &mut help)
                    .into_iter()
                    .map(|p| format!("{guide}: {p}")),
            );
        }
    }
    assert!(
        checked >= 20,
        "only {checked} command lines found in the guides"
    );
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_command_check_notices_unknown_subcommands_and_options() {
    let doc = "Run `mailconnect acount list` or\n\n```sh\nMC_X=1 mailconnect test sales \\\n    --no-such-flag   # comment --ignored\nmailconnect connect sales --flow device | tee log\n```\n\nbut not `cargo run -p mailconnect-cli -- demo` nor `the mailconnect library`.\n";
    let lines = command_lines(doc);
    assert_eq!(
        lines,
        vec![
            vec!["acount".to_string(), "list".to_string()],
            vec!["test".into(), "sales".into(), "--no-such-flag".into()],
            vec![
                "connect".into(),
                "sales".into(),
                "--flow".into(),
                "device".into()
            ],
        ]
    );
    let top = Help {
        commands: ["account", "test", "connect"].map(String::from).into(),
        options: ["store", "json", "help"].map(String::from).into(),
        valued: BTreeSet::new(),
    };
    let leaf = |opts: &[&str]| Help {
        commands: BTreeSet::new(),
        options: opts.iter().map(|s| s.to_string()).collect(),
        valued: BTreeSet::new(),
    };
    let mut help = |path: &[String]| match path.first().map(String::as_str) {
        None => top.clone(),
        Some("test") => leaf(&["smtp", "store", "help"]),
        Some("connect") => leaf(&["flow", "store", "help"]),
        _ => leaf(&["help"]),
    };
    let problems: Vec<String> = lines
        .iter()
        .flat_map(|a| command_problems(a, &mut help))
        .collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("no subcommand 'acount'"));
    assert!(problems[1].contains("no option --no-such-flag"));
}

#[test]
fn clap_help_is_read_into_commands_and_options() {
    let text = "Connect business applications\n\nUsage: mailconnect [OPTIONS] <COMMAND>\n\nCommands:\n  demo          Start the emulator\n  registration  App registrations (tenant, client id, secret) shared by many\n                accounts\n  help          Print this message\n\nOptions:\n      --lang <LANG>    Language (en, de)\n      --store <STORE>  The token store\n      --json           Machine-readable JSON output\n  -h, --help           Print help\n  -V, --version        Print version\n";
    let h = parse_help(text);
    assert_eq!(
        h.commands,
        ["demo", "registration", "help"].map(String::from).into()
    );
    assert_eq!(
        h.options,
        ["lang", "store", "json", "help", "version"]
            .map(String::from)
            .into()
    );
}
