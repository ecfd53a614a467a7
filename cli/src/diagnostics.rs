//! `mailconnect diagnostics reference`: the diagnostics reference an admin searches
//! (`docs/diagnostics.md`, `docs/diagnostics.de.md`), generated from the catalog
//! (`core/src/diagnose/catalog.json`) and the recognition rules the matcher evaluates
//! (`mailconnect_core::diagnose::recognised`), so the raw texts it lists are the ones mailconnect
//! really recognises. `cli/tests/diagnostics_reference.rs` fails when the committed files differ.

use std::path::PathBuf;

use clap::Subcommand;
use mailconnect_core::diagnose::rules::{OAuthField, When};
use mailconnect_core::diagnose::{self, Category, Fixer, Recognised};
use mailconnect_core::Language;

#[derive(Subcommand)]
pub enum DiagnosticsCommand {
    /// Write the diagnostics reference (Markdown) in the language of --lang: every catalog entry
    /// with who fixes it, the explanation, the fix and the raw texts it is recognised by
    /// (docs/diagnostics.md is `--lang en`, docs/diagnostics.de.md `--lang de`).
    Reference {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: DiagnosticsCommand, lang: Language) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        DiagnosticsCommand::Reference { out } => {
            let text = reference(lang);
            match out {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// The command that writes the reference in `lang`, as its header names it.
pub fn command(lang: Language) -> String {
    format!(
        "mailconnect diagnostics reference --lang {} --out {}",
        lang.tag(),
        file(lang)
    )
}

fn file(lang: Language) -> &'static str {
    match lang {
        Language::En => "docs/diagnostics.md",
        Language::De => "docs/diagnostics.de.md",
    }
}

/// Words of the reference in one language.
struct Words {
    title: &'static str,
    intro: &'static str,
    matching: &'static str,
    contents: (&'static str, &'static str, &'static str),
    fixer_label: &'static str,
    area_label: &'static str,
    explanation_label: &'static str,
    fix_label: &'static str,
    recognised_label: &'static str,
    raised: &'static str,
    links_label: &'static str,
}

fn words(lang: Language) -> Words {
    match lang {
        Language::En => Words {
            title: "mailconnect: diagnostics reference",
            intro: "Every failure mailconnect reports ends in one of these codes. The application shows the \
                    title, explanation and fix in the user's language; `mailconnect test` and the other \
                    commands print them; the C ABI hands them over as JSON (`mc_error_diagnostic_get`). \
                    Search this page for the text of the error message you have: an `AADSTS` number \
                    (`AADSTS50173`), a mail server's reply (`5.7.139`, `AccessTokenExpired`, \
                    `User is authenticated but not connected`), a Microsoft Graph error code \
                    (`ErrorAccessDenied`) or the diagnostic code (`MC-…`). Each entry lists the raw texts \
                    mailconnect recognises as it. Deutsch: [diagnostics.de.md](diagnostics.de.md). Setting \
                    up Entra ID and Exchange: the [admin guide](admin-guide.md).",
            matching: "How the texts are matched: the code the failure was raised with wins; then a \
                       Microsoft Entra `AADSTS` number; then the OAuth `suberror` and `error`; then the \
                       mail server's reply, which matches when it contains every listed text anywhere, \
                       in any case, and the entries are tried in the order mailconnect checks them (so \
                       `535 5.7.139 … disabled for the Tenant` is `MC-SMTP-AUTH-DISABLED-TENANT`, not the \
                       general `MC-SMTP-AUTH-POLICY`); Microsoft Graph answers by their error code or HTTP \
                       status. \"Who fixes it\": **user** (sign in again, choose the right account), \
                       **mailbox admin** (Exchange settings of one mailbox), **tenant admin** (Entra ID, app \
                       registration, policies, organisation-wide Exchange settings), **vendor** (the \
                       application's developer or support; often a transient condition that goes away on \
                       its own).",
            contents: ("code", "title", "who fixes it"),
            fixer_label: "Who fixes it",
            area_label: "Area",
            explanation_label: "What happened",
            fix_label: "What to do",
            recognised_label: "Recognised by",
            raised: "Raised by mailconnect itself, from its own state, a check it made or the kind of \
                     failure (no server text to match); the message names what failed.",
            links_label: "Links",
        },
        Language::De => Words {
            title: "mailconnect: Referenz der Diagnosen",
            intro: "Jeder Fehler, den mailconnect meldet, endet in einem dieser Codes. Die Anwendung zeigt \
                    Titel, Erklärung und Abhilfe in der Sprache des Benutzers; `mailconnect test` und die \
                    anderen Befehle geben sie aus; über die C-Schnittstelle kommen sie als JSON \
                    (`mc_error_diagnostic_get`). Suchen Sie auf dieser Seite nach dem Text der \
                    Fehlermeldung, die Sie vor sich haben: einer `AADSTS`-Nummer (`AADSTS50173`), der \
                    Antwort eines Mailservers (`5.7.139`, `AccessTokenExpired`, \
                    `User is authenticated but not connected`), einem Fehlercode von Microsoft Graph \
                    (`ErrorAccessDenied`) oder dem Diagnosecode (`MC-…`). Jeder Eintrag nennt die \
                    Rohtexte, an denen mailconnect ihn erkennt. English: [diagnostics.md](diagnostics.md). \
                    Einrichtung von Entra ID und Exchange: der \
                    [Leitfaden für Administratoren](admin-guide.de.md).",
            matching: "Wie die Texte verglichen werden: Der Code, mit dem der Fehler gemeldet wurde, geht \
                       vor; dann eine `AADSTS`-Nummer von Microsoft Entra; dann `suberror` und `error` der \
                       OAuth-Antwort; dann die Antwort des Mailservers, die passt, wenn sie jeden genannten \
                       Text irgendwo enthält, gleich in welcher Schreibweise, wobei die Einträge in der \
                       Reihenfolge geprüft werden, in der mailconnect sie prüft (`535 5.7.139 … disabled \
                       for the Tenant` ist also `MC-SMTP-AUTH-DISABLED-TENANT`, nicht das allgemeine \
                       `MC-SMTP-AUTH-POLICY`); Antworten von Microsoft Graph an ihrem Fehlercode oder \
                       HTTP-Status. „Wer behebt es“: **Benutzer** (neu anmelden, richtiges Konto wählen), \
                       **Postfachadministrator** (Exchange-Einstellungen eines Postfachs), \
                       **Mandantenadministrator** (Entra ID, App-Registrierung, Richtlinien, \
                       organisationsweite Exchange-Einstellungen), **Hersteller** (Entwicklung oder Support \
                       der Anwendung; oft ein vorübergehender Zustand, der sich von selbst erledigt).",
            contents: ("Code", "Titel", "Wer behebt es"),
            fixer_label: "Wer behebt es",
            area_label: "Bereich",
            explanation_label: "Was geschehen ist",
            fix_label: "Was zu tun ist",
            recognised_label: "Erkannt an",
            raised: "Von mailconnect selbst gemeldet, aus dem eigenen Zustand, einer eigenen Prüfung oder \
                     der Art des Fehlers (kein Servertext zum Vergleichen); die Meldung nennt, was \
                     fehlschlug.",
            links_label: "Links",
        },
    }
}

fn fixer(f: Fixer, lang: Language) -> &'static str {
    match (f, lang) {
        (Fixer::User, Language::En) => "user",
        (Fixer::MailboxAdmin, Language::En) => "mailbox admin",
        (Fixer::TenantAdmin, Language::En) => "tenant admin",
        (Fixer::Vendor, Language::En) => "vendor",
        (Fixer::User, Language::De) => "Benutzer",
        (Fixer::MailboxAdmin, Language::De) => "Postfachadministrator",
        (Fixer::TenantAdmin, Language::De) => "Mandantenadministrator",
        (Fixer::Vendor, Language::De) => "Hersteller",
    }
}

fn category(c: Category, lang: Language) -> &'static str {
    match (c, lang) {
        (Category::Configuration, Language::En) => {
            "configuration (app registration, program settings)"
        }
        (Category::Consent, Language::En) => "consent",
        (Category::Account, Language::En) => "user account or mailbox",
        (Category::TenantPolicy, Language::En) => "tenant policy",
        (Category::Network, Language::En) => "network, proxy, TLS",
        (Category::Server, Language::En) => "server (identity provider or mail server)",
        (Category::Local, Language::En) => "this computer",
        (Category::Configuration, Language::De) => {
            "Konfiguration (App-Registrierung, Programmeinstellungen)"
        }
        (Category::Consent, Language::De) => "Zustimmung",
        (Category::Account, Language::De) => "Benutzerkonto oder Postfach",
        (Category::TenantPolicy, Language::De) => "Richtlinie des Mandanten",
        (Category::Network, Language::De) => "Netzwerk, Proxy, TLS",
        (Category::Server, Language::De) => "Server (Identitätsanbieter oder Mailserver)",
        (Category::Local, Language::De) => "dieser Computer",
    }
}

/// `text` as inline code (the texts never contain a backtick; a test keeps it so).
fn code(text: &str) -> String {
    format!("`{text}`")
}

/// `texts` as inline code, joined by `sep`.
fn list(texts: &[&str], sep: &str) -> String {
    texts.iter().map(|t| code(t)).collect::<Vec<_>>().join(sep)
}

/// Catalog prose as Markdown: `<mailbox>` must not be read as an HTML tag.
fn prose(text: &str) -> String {
    text.replace('<', "\\<").replace('>', "\\>")
}

fn when(w: When, lang: Language) -> &'static str {
    match (w, lang) {
        (When::Always, _) => "",
        (When::OtherProtocolAccepted, Language::En) => {
            ", when another protocol accepted the same token in the same Test"
        }
        (When::Delegate, Language::En) => {
            ", when the mailbox is opened by a delegate (shared mailbox)"
        }
        (When::OtherProtocolAccepted, Language::De) => {
            ", wenn ein anderes Protokoll im selben Test dasselbe Token angenommen hat"
        }
        (When::Delegate, Language::De) => {
            ", wenn das Postfach von einem Stellvertreter geöffnet wird (freigegebenes Postfach)"
        }
    }
}

/// The bullets of what an entry is recognised by.
fn recognised_lines(rules: &[Recognised], lang: Language) -> Vec<String> {
    let de = lang == Language::De;
    let and = if de { " und " } else { " and " };
    let mut lines = Vec::new();
    let aadsts: Vec<String> = rules
        .iter()
        .filter_map(|r| match r {
            Recognised::Aadsts { number } => Some(code(&format!("AADSTS{number}"))),
            _ => None,
        })
        .collect();
    if !aadsts.is_empty() {
        let label = if de {
            "Fehlercode von Microsoft Entra (Anmeldung, Token)"
        } else {
            "Microsoft Entra error code (sign-in, token)"
        };
        lines.push(format!("{label}: {}", aadsts.join(", ")));
    }
    for r in rules {
        let line = match r {
            Recognised::Aadsts { .. } => continue,
            Recognised::OAuth { field, value } => {
                let f = match field {
                    OAuthField::Error => "error",
                    OAuthField::Suberror => "suberror",
                };
                if de {
                    format!("OAuth-Fehlerantwort mit `{f}`: {}", code(value))
                } else {
                    format!("OAuth error response with `{f}`: {}", code(value))
                }
            }
            Recognised::Reply { all, any, when: w } => {
                let mut parts: Vec<String> = all.iter().map(|t| code(t)).collect();
                match any.len() {
                    0 => {}
                    1 => parts.push(code(any[0])),
                    _ => parts.push(format!(
                        "{} {}",
                        if de { "einem von" } else { "one of" },
                        list(any, ", ")
                    )),
                }
                if de {
                    format!(
                        "Antwort des Mailservers (SMTP, IMAP, POP3) mit {}{}",
                        parts.join(and),
                        when(*w, lang)
                    )
                } else {
                    format!(
                        "Mail server reply (SMTP, IMAP, POP3) containing {}{}",
                        parts.join(and),
                        when(*w, lang)
                    )
                }
            }
            Recognised::ReplyExample { text, when: w } => {
                if de {
                    format!(
                        "Beispiel einer Serverantwort: {}{}",
                        code(text),
                        when(*w, lang)
                    )
                } else {
                    format!(
                        "Example of a server reply: {}{}",
                        code(text),
                        when(*w, lang)
                    )
                }
            }
            Recognised::Graph {
                codes,
                statuses,
                message_any,
            } => {
                let or = if de { " oder " } else { " or " };
                let statuses: Vec<String> = statuses
                    .iter()
                    .map(|(lo, hi)| {
                        if lo == hi {
                            format!("HTTP {lo}")
                        } else {
                            format!("HTTP {lo}–{hi}")
                        }
                    })
                    .collect();
                let mut what = Vec::new();
                if !codes.is_empty() {
                    what.push(if de {
                        format!("mit dem Fehlercode {}", list(codes, or))
                    } else {
                        format!("with the error code {}", list(codes, or))
                    });
                }
                if !statuses.is_empty() {
                    what.push(if de {
                        format!("mit {}", statuses.join(or))
                    } else {
                        format!("with {}", statuses.join(or))
                    });
                }
                let mut line = if de {
                    format!("Antwort von Microsoft Graph {}", what.join(or))
                } else {
                    format!("Microsoft Graph answer {}", what.join(or))
                };
                if !message_any.is_empty() {
                    line.push_str(&if de {
                        format!(", die Meldung enthält {}", list(message_any, or))
                    } else {
                        format!(", the message containing {}", list(message_any, or))
                    });
                }
                line
            }
            Recognised::GraphOther => if de {
                "jede andere Fehlerantwort von Microsoft Graph"
            } else {
                "any other error answer of Microsoft Graph"
            }
            .to_string(),
            Recognised::IdpHttpStatus { status } => {
                if de {
                    format!("HTTP {status} vom Anmeldedienst (Identitätsanbieter)")
                } else {
                    format!("HTTP {status} from the sign-in service (identity provider)")
                }
            }
        };
        lines.push(line);
    }
    lines
}

/// The reference in `lang`, as Markdown.
pub fn reference(lang: Language) -> String {
    let w = words(lang);
    let mut out = String::new();
    out.push_str(&format!(
        "<!-- Generated by `{}` from core/src/diagnose/catalog.json and the recognition rules in \
         core/src/diagnose (aadsts.rs, rules.rs). Do not edit: change the catalog or the rules and run \
         the command again; cli/tests/diagnostics_reference.rs fails while this file is stale. -->\n\n",
        command(lang)
    ));
    out.push_str(&format!(
        "# {}\n\n{}\n\n{}\n\n",
        w.title, w.intro, w.matching
    ));
    let (c, t, f) = w.contents;
    out.push_str(&format!("| {c} | {t} | {f} |\n|---|---|---|\n"));
    for e in diagnose::catalog() {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {} |\n",
            e.code,
            e.code.to_ascii_lowercase(),
            prose(&e.texts(lang).title),
            fixer(e.fixer, lang)
        ));
    }
    for e in diagnose::catalog() {
        let t = e.texts(lang);
        out.push_str(&format!("\n## {}\n\n**{}**\n\n", e.code, prose(&t.title)));
        out.push_str(&format!(
            "* {}: {}\n* {}: {}\n\n",
            w.fixer_label,
            fixer(e.fixer, lang),
            w.area_label,
            category(e.category, lang)
        ));
        out.push_str(&format!(
            "**{}.** {}\n\n**{}.** {}\n\n",
            w.explanation_label,
            prose(&t.explanation),
            w.fix_label,
            prose(&t.fix)
        ));
        out.push_str(&format!("**{}:**\n\n", w.recognised_label));
        for line in recognised_lines(&diagnose::recognised(&e.code), lang) {
            out.push_str(&format!("* {line}\n"));
        }
        if diagnose::raised_by_library(&e.code) {
            out.push_str(&format!("* {}\n", w.raised));
        }
        if !e.links.is_empty() {
            out.push_str(&format!("\n**{}:**\n\n", w.links_label));
            for l in &e.links {
                out.push_str(&format!("* <{l}>\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_and_every_recognised_text_is_in_both_references() {
        for lang in [Language::En, Language::De] {
            let text = reference(lang);
            for e in diagnose::catalog() {
                assert!(text.contains(&format!("\n## {}\n", e.code)), "{}", e.code);
                for r in diagnose::recognised(&e.code) {
                    let needle = match &r {
                        Recognised::Aadsts { number } => format!("AADSTS{number}"),
                        Recognised::OAuth { value, .. } => value.to_string(),
                        Recognised::Reply { all, any, .. } => {
                            format!("{} {}", all.join(" "), any.join(" "))
                        }
                        Recognised::ReplyExample { text, .. } => text.to_string(),
                        Recognised::Graph {
                            codes,
                            statuses,
                            message_any,
                        } => format!(
                            "{} {} {}",
                            codes.join(" "),
                            statuses
                                .iter()
                                .map(|(lo, _)| lo.to_string())
                                .collect::<Vec<_>>()
                                .join(" "),
                            message_any.join(" ")
                        ),
                        _ => continue,
                    };
                    for part in needle.split(' ').filter(|p| !p.is_empty()) {
                        assert!(text.contains(part), "{}: {part}", e.code);
                    }
                    assert!(!needle.contains('`'), "{needle}");
                }
            }
        }
    }

    #[test]
    fn the_texts_admins_paste_are_findable() {
        let en = reference(Language::En);
        for needle in [
            "`5.7.139`",
            "`AccessTokenExpired`",
            "`authenticated but not connected`",
            "`AADSTS50173`",
            "`ErrorSendAsDenied`",
            "Set-CASMailbox -Identity \\<mailbox\\>",
        ] {
            assert!(en.contains(needle), "{needle}");
        }
    }
}
