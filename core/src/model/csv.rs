//! Bulk provisioning: accounts from a CSV file (the "distribute to all similar accounts" step).
//!
//! [`parse_accounts_csv`] is a pure function from the file's text to one outcome per data row: an
//! account ready to store, or the reason it is invalid, each with its line number. It reads what
//! spreadsheets write: a UTF-8 byte order mark, `;` (Excel with a German locale), `,` or tab as
//! separator (taken from the header line, or from an Excel `sep=;` first line), quoted fields
//! with `""` escapes and line breaks, CRLF, LF or CR line ends, blank lines. Header names are
//! case-insensitive; spaces and `-` count as `_`.
//!
//! | column | meaning |
//! |---|---|
//! | `mailbox` (or `email`, `address`) | required: the mailbox address |
//! | `id` (or `account`) | the account id; empty or absent: the mailbox address |
//! | `login` (or `user`, `upn`, `delegate`) | who signs in, for shared mailboxes |
//! | `flow` | `browser`, `device_code` (`device`), `client_credentials` (`app`); empty: the default |
//! | `imap_host`, `imap_port`, `imap_security` (and `pop3_…`, `smtp_…`) | the mail servers; a protocol with a host is used, one without is not (no server column at all: the provider's servers) |
//! | `name`, `display_name`, `comment`, `note`, `description` | ignored |
//!
//! Any other column makes the whole file invalid (a misspelt `login` must not silently provision
//! shared mailboxes for the wrong identity). The function never panics, whatever the input.

use super::Security;
use super::{validate_account, Account, AccountOptions, Flow, ServerConfig, Servers};

/// What every imported account gets unless its row says otherwise.
#[derive(Debug, Clone, Default)]
pub struct CsvDefaults {
    /// The registration id every account uses.
    pub registration: String,
    /// The flow for rows without one (default: browser).
    pub flow: Option<Flow>,
}

/// One data row's outcome.
#[derive(Debug, Clone)]
pub struct CsvRow {
    /// The line the row starts on (1-based, counting the header and blank lines).
    pub line: u64,
    /// The account, or why the row is invalid.
    pub outcome: Result<Account, CsvRowError>,
}

/// Why a row is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRowError {
    /// The column (account field) at fault, when one is.
    pub field: Option<String>,
    /// A sentence for people.
    pub reason: String,
}

/// The parsed file.
#[derive(Debug, Clone)]
pub struct CsvImport {
    /// The separator used.
    pub delimiter: char,
    /// The recognised columns, as account fields, in file order.
    pub columns: Vec<String>,
    /// One entry per non-blank data row, in file order.
    pub rows: Vec<CsvRow>,
}

/// Why the whole file cannot be read (no header, unknown or repeated columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFileError {
    /// The line at fault.
    pub line: u64,
    /// A sentence for people.
    pub reason: String,
}

impl std::fmt::Display for CsvFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CsvFileError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Imap,
    Pop3,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerField {
    Host,
    Port,
    Security,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Mailbox,
    Login,
    Flow,
    Server(Proto, ServerField),
    Ignored,
}

impl Column {
    fn name(self) -> String {
        match self {
            Column::Id => "id".into(),
            Column::Mailbox => "mailbox".into(),
            Column::Login => "login".into(),
            Column::Flow => "flow".into(),
            Column::Ignored => String::new(),
            Column::Server(p, f) => format!(
                "{}_{}",
                match p {
                    Proto::Imap => "imap",
                    Proto::Pop3 => "pop3",
                    Proto::Smtp => "smtp",
                },
                match f {
                    ServerField::Host => "host",
                    ServerField::Port => "port",
                    ServerField::Security => "security",
                }
            ),
        }
    }
}

const KNOWN: &str = "id, mailbox, login, flow, imap_host, imap_port, imap_security, pop3_host, pop3_port, pop3_security, smtp_host, smtp_port, smtp_security (and name, comment, note, which are ignored)";

fn column(header: &str) -> Option<Column> {
    let h: String = header
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .map(|c| match c {
            ' ' | '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let c = match h.as_str() {
        "" => Column::Ignored,
        "id" | "account" | "account_id" | "accountid" => Column::Id,
        "mailbox" | "email" | "e_mail" | "mail" | "address" | "email_address" | "smtp_address" => {
            Column::Mailbox
        }
        "login" | "user" | "username" | "upn" | "sign_in" | "delegate" => Column::Login,
        "flow" => Column::Flow,
        "name" | "display_name" | "comment" | "comments" | "note" | "notes" | "description" => {
            Column::Ignored
        }
        other => {
            let (p, f) = other.split_once('_')?;
            let p = match p {
                "imap" => Proto::Imap,
                "pop3" | "pop" => Proto::Pop3,
                "smtp" => Proto::Smtp,
                _ => return None,
            };
            let f = match f {
                "host" | "server" => ServerField::Host,
                "port" => ServerField::Port,
                "security" | "tls" | "encryption" => ServerField::Security,
                _ => return None,
            };
            Column::Server(p, f)
        }
    };
    Some(c)
}

/// The separator: an Excel `sep=X` line wins, else the most frequent of `;`, `,` and tab outside
/// quotes in the header line (`,` on a tie). Returns the separator and whether to skip line 1.
fn sniff(text: &str) -> (u8, bool) {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if let Some(rest) = first.trim().strip_prefix("sep=") {
        if let [b] = rest.as_bytes() {
            if matches!(*b, b';' | b',' | b'\t' | b'|') {
                return (*b, true);
            }
        }
    }
    let (mut semi, mut comma, mut tab, mut quoted) = (0usize, 0usize, 0usize, false);
    for c in first.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => semi += 1,
            ',' if !quoted => comma += 1,
            '\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    let d = if semi > comma && semi >= tab {
        b';'
    } else if tab > comma && tab > semi {
        b'\t'
    } else {
        b','
    };
    (d, false)
}

fn invalid(field: Option<&str>, reason: impl Into<String>) -> CsvRowError {
    CsvRowError {
        field: field.map(str::to_string),
        reason: reason.into(),
    }
}

fn parse_security(s: &str) -> Option<Security> {
    match s.trim().to_ascii_lowercase().as_str() {
        "tls" | "ssl" | "ssl/tls" | "implicit" => Some(Security::Tls),
        "starttls" | "start_tls" | "stls" => Some(Security::Starttls),
        "none" | "plain" => Some(Security::None),
        _ => None,
    }
}

fn default_port(p: Proto, s: Security) -> u16 {
    match (p, s) {
        (Proto::Imap, Security::Tls) => 993,
        (Proto::Imap, _) => 143,
        (Proto::Pop3, Security::Tls) => 995,
        (Proto::Pop3, _) => 110,
        (Proto::Smtp, Security::Tls) => 465,
        (Proto::Smtp, _) => 587,
    }
}

#[derive(Default)]
struct ServerCells {
    host: String,
    port: String,
    security: String,
}

fn server(p: Proto, cells: &ServerCells) -> Result<Option<ServerConfig>, CsvRowError> {
    let prefix = Column::Server(p, ServerField::Host).name();
    let prefix = prefix.trim_end_matches("_host");
    if cells.host.is_empty() {
        if !cells.port.is_empty() || !cells.security.is_empty() {
            return Err(invalid(
                Some(&format!("{prefix}_host")),
                format!("{prefix}_port or {prefix}_security is given without {prefix}_host"),
            ));
        }
        return Ok(None);
    }
    let security = if cells.security.is_empty() {
        if p == Proto::Smtp {
            Security::Starttls
        } else {
            Security::Tls
        }
    } else {
        parse_security(&cells.security).ok_or_else(|| {
            invalid(
                Some(&format!("{prefix}_security")),
                format!(
                    "{prefix}_security must be tls, starttls or none, not '{}'",
                    cells.security
                ),
            )
        })?
    };
    let port = if cells.port.is_empty() {
        default_port(p, security)
    } else {
        match cells.port.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(invalid(
                    Some(&format!("{prefix}_port")),
                    format!("{prefix}_port must be 1-65535, not '{}'", cells.port),
                ))
            }
        }
    };
    Ok(Some(ServerConfig {
        host: cells.host.clone(),
        port,
        security,
        mechanism: None,
        danger_accept_invalid_certs: false,
    }))
}

/// Read the accounts in a CSV file. File-level problems (no header line, no `mailbox` column,
/// an unknown or repeated column) are an error; everything else is reported per row, with
/// duplicate ids invalid from their second occurrence on. Never panics.
pub fn parse_accounts_csv(text: &str, defaults: &CsvDefaults) -> Result<CsvImport, CsvFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (delimiter, skip_sep_line) = sniff(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::None)
        .from_reader(text.as_bytes());

    let lines = LineIndex::new(text);
    let mut header: Option<(u64, Vec<Column>)> = None;
    let mut rows = Vec::new();
    let mut seen_ids: std::collections::HashMap<String, u64> = Default::default();
    let mut record = ::csv::StringRecord::new();
    let mut skipped_sep = !skip_sep_line;
    loop {
        let line_before = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // Only I/O or UTF-8 errors are possible on a &str with `flexible`; report, stop.
                let line = e.position().map(|p| p.line()).unwrap_or(line_before.max(1));
                if header.is_none() {
                    return Err(CsvFileError {
                        line,
                        reason: format!("the file cannot be read as CSV: {e}"),
                    });
                }
                rows.push(CsvRow {
                    line,
                    outcome: Err(invalid(None, format!("the row cannot be read as CSV: {e}"))),
                });
                break;
            }
        }
        let line = record
            .position()
            .map(|p| lines.line_at(p.byte()))
            .unwrap_or(line_before);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if !skipped_sep {
            skipped_sep = true;
            continue;
        }
        let Some((_, columns)) = &header else {
            header = Some((line, read_header(&record, line)?));
            continue;
        };
        let outcome = read_row(&record, columns, defaults).and_then(|a| {
            let key = a.id.to_lowercase();
            match seen_ids.get(&key) {
                Some(first) => Err(invalid(
                    Some("id"),
                    format!("the id '{}' is used again (first on line {first})", a.id),
                )),
                None => {
                    seen_ids.insert(key, line);
                    Ok(a)
                }
            }
        });
        rows.push(CsvRow { line, outcome });
    }
    let Some((_, columns)) = header else {
        return Err(CsvFileError {
            line: 1,
            reason: format!("the file has no header line; it needs at least a 'mailbox' column (known columns: {KNOWN})"),
        });
    };
    Ok(CsvImport {
        delimiter: delimiter as char,
        columns: columns
            .iter()
            .filter(|c| **c != Column::Ignored)
            .map(|c| c.name())
            .collect(),
        rows,
    })
}

/// Line numbers by byte offset. The csv crate's own record positions point at the end of the
/// previous line (its terminator) and count CRLF and blank lines in its own way; people want the
/// line their editor shows.
struct LineIndex<'a> {
    text: &'a [u8],
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let b = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\r' if b.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { text: b, starts }
    }

    /// The 1-based line of the first character at or after `offset` that is not a line end.
    fn line_at(&self, offset: u64) -> u64 {
        let mut o = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while matches!(self.text.get(o), Some(b'\r' | b'\n')) {
            o += 1;
        }
        self.starts.partition_point(|&s| s <= o) as u64
    }
}

fn read_header(record: &::csv::StringRecord, line: u64) -> Result<Vec<Column>, CsvFileError> {
    let mut columns = Vec::new();
    for cell in record.iter() {
        let c = column(cell).ok_or_else(|| CsvFileError {
            line,
            reason: format!("unknown column '{}' (known columns: {KNOWN})", cell.trim()),
        })?;
        if c != Column::Ignored && columns.contains(&c) {
            return Err(CsvFileError {
                line,
                reason: format!("the column '{}' appears twice", c.name()),
            });
        }
        columns.push(c);
    }
    if !columns.contains(&Column::Mailbox) {
        return Err(CsvFileError {
            line,
            reason: format!("the header has no 'mailbox' column (known columns: {KNOWN})"),
        });
    }
    Ok(columns)
}

fn read_row(
    record: &::csv::StringRecord,
    columns: &[Column],
    defaults: &CsvDefaults,
) -> Result<Account, CsvRowError> {
    if record.len() > columns.len()
        && record
            .iter()
            .skip(columns.len())
            .any(|f| !f.trim().is_empty())
    {
        return Err(invalid(
            None,
            format!(
                "the row has {} fields but the header only {} columns (a separator inside a value needs quotes)",
                record.len(),
                columns.len()
            ),
        ));
    }
    let (mut id, mut mailbox, mut login, mut flow) = (None, None, None, None);
    let mut servers: [ServerCells; 3] = Default::default();
    let any_server_column = columns.iter().any(|c| matches!(c, Column::Server(..)));
    for (i, c) in columns.iter().enumerate() {
        let v = record.get(i).unwrap_or("").trim();
        match c {
            Column::Id => id = Some(v),
            Column::Mailbox => mailbox = Some(v),
            Column::Login => login = Some(v),
            Column::Flow => flow = Some(v),
            Column::Ignored => {}
            Column::Server(p, f) => {
                let [imap, pop3, smtp] = &mut servers;
                let cells = match p {
                    Proto::Imap => imap,
                    Proto::Pop3 => pop3,
                    Proto::Smtp => smtp,
                };
                let slot = match f {
                    ServerField::Host => &mut cells.host,
                    ServerField::Port => &mut cells.port,
                    ServerField::Security => &mut cells.security,
                };
                *slot = v.to_string();
            }
        }
    }
    let mailbox = mailbox.unwrap_or("");
    if mailbox.is_empty() {
        return Err(invalid(Some("mailbox"), "the mailbox is empty"));
    }
    let id = match id {
        Some(s) if !s.is_empty() => s,
        _ => mailbox,
    };
    let flow = match flow {
        Some(f) if !f.is_empty() => Flow::parse(f).ok_or_else(|| {
            invalid(
                Some("flow"),
                format!(
                    "the flow must be browser, device_code or client_credentials, not '{}'",
                    crate::error::quote(f)
                ),
            )
        })?,
        _ => defaults.flow.unwrap_or_default(),
    };
    let servers = if any_server_column {
        let [imap, pop3, smtp] = &servers;
        let s = Servers {
            imap: server(Proto::Imap, imap)?,
            pop3: server(Proto::Pop3, pop3)?,
            smtp: server(Proto::Smtp, smtp)?,
        };
        if s == Servers::default() {
            None
        } else {
            Some(s)
        }
    } else {
        None
    };
    let account = Account {
        id: id.to_string(),
        mailbox: mailbox.to_string(),
        login: login.filter(|l| !l.is_empty()).map(str::to_string),
        login_aliases: vec![],
        registration: defaults.registration.clone(),
        flow,
        servers,
        transport: Default::default(),
        options: AccountOptions::default(),
    };
    validate_account(&account).map_err(|e| CsvRowError {
        field: e.evidence().field.clone(),
        reason: e.message().to_string(),
    })?;
    Ok(account)
}

impl CsvImport {
    /// Whether the file names the account's `field` (`login`, `flow`, or `servers` for any server
    /// column); fields it does not name are left as they are when an account is updated.
    pub fn sets(&self, field: &str) -> bool {
        match field {
            "servers" => self.columns.iter().any(|c| {
                c.starts_with("imap_") || c.starts_with("pop3_") || c.starts_with("smtp_")
            }),
            f => self.columns.iter().any(|c| c == f),
        }
    }

    /// The account `existing` becomes when `row` (from this file) is applied to it: mailbox and
    /// registration always, `login`, `flow` and the servers when the file has those columns
    /// (`flow` also when `defaults` set one); options and login aliases are kept.
    pub fn apply(&self, existing: &Account, row: &Account, defaults: &CsvDefaults) -> Account {
        let mut a = existing.clone();
        a.mailbox = row.mailbox.clone();
        a.registration = row.registration.clone();
        if self.sets("login") {
            a.login = row.login.clone();
        }
        if self.sets("flow") || defaults.flow.is_some() {
            a.flow = row.flow;
        }
        if self.sets("servers") {
            a.servers = row.servers.clone();
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> CsvDefaults {
        CsvDefaults {
            registration: "contoso".into(),
            flow: None,
        }
    }

    fn ok_rows(imp: &CsvImport) -> Vec<&Account> {
        imp.rows
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok())
            .collect()
    }

    #[test]
    fn excel_german_semicolons_with_bom_crlf_quotes_and_blank_lines() {
        let text = "\u{feff}ID;Mailbox;Login;Flow;Name\r\n\
                    sales;sales@contoso.com;alice@contoso.com;device;\"Vertrieb; Team\"\r\n\
                    \r\n\
                    ;bob@contoso.com;;;\"Bob \"\"the builder\"\"\r\nline two\"\r\n\
                    ;;;;\r\n\
                    carol;carol@contoso.com;;Browser;\r\n";
        let imp = parse_accounts_csv(text, &defaults()).unwrap();
        assert_eq!(imp.delimiter, ';');
        assert_eq!(imp.columns, vec!["id", "mailbox", "login", "flow"]);
        assert_eq!(imp.rows.len(), 3, "{:?}", imp.rows);
        let lines: Vec<u64> = imp.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4, 7]);
        let a = ok_rows(&imp);
        assert_eq!(a.len(), 3, "{:?}", imp.rows);
        assert_eq!(a[0].id, "sales");
        assert_eq!(a[0].login.as_deref(), Some("alice@contoso.com"));
        assert_eq!(a[0].flow, Flow::DeviceCode);
        assert_eq!(a[0].registration, "contoso");
        assert_eq!(a[1].id, "bob@contoso.com", "empty id: the mailbox");
        assert_eq!(a[1].login, None);
        assert_eq!(a[1].flow, Flow::Browser);
        assert_eq!(a[2].flow, Flow::Browser);
    }

    #[test]
    fn commas_tabs_and_the_excel_sep_line() {
        let imp = parse_accounts_csv("mailbox,id\na@example.test,\"x,y\"\n", &defaults()).unwrap();
        assert_eq!(imp.delimiter, ',');
        assert_eq!(ok_rows(&imp)[0].id, "x,y");
        let imp = parse_accounts_csv("mailbox\tid\na@example.test\ta\n", &defaults()).unwrap();
        assert_eq!(imp.delimiter, '\t');
        assert_eq!(ok_rows(&imp)[0].id, "a");
        let imp =
            parse_accounts_csv("sep=;\r\nmailbox;id\r\na@example.test;a\r\n", &defaults()).unwrap();
        assert_eq!(imp.delimiter, ';');
        assert_eq!(imp.rows.len(), 1);
        assert_eq!(imp.rows[0].line, 3);
        assert_eq!(ok_rows(&imp)[0].id, "a");
        // Old Mac line ends.
        let imp =
            parse_accounts_csv("mailbox\ra@example.test\rb@example.test\r", &defaults()).unwrap();
        assert_eq!(ok_rows(&imp).len(), 2);
    }

    #[test]
    fn invalid_rows_name_line_field_and_reason_and_duplicates_are_caught() {
        let text = "id,mailbox,login,flow\n\
                    a,a@example.test,,\n\
                    b,not-an-address,,\n\
                    c,c@example.test,,carrier-pigeon\n\
                    A,x@example.test,,\n\
                    d,,,\n\
                    e,e@example.test,al ice@example.test,\n\
                    f,f@example.test,,,surplus\n\
                    g,g@example.test,,,\n";
        let imp = parse_accounts_csv(text, &defaults()).unwrap();
        let got: Vec<(u64, Option<&str>)> = imp
            .rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.outcome.as_ref().err().and_then(|e| e.field.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, None),
                (3, Some("mailbox")),
                (4, Some("flow")),
                (5, Some("id")),
                (6, Some("mailbox")),
                (7, Some("login")),
                (8, None),
                (9, None)
            ]
        );
        let errs: Vec<&CsvRowError> = imp
            .rows
            .iter()
            .filter_map(|r| r.outcome.as_ref().err())
            .collect();
        assert!(errs[0].reason.contains("not-an-address"), "{errs:?}");
        assert!(errs[1].reason.contains("carrier-pigeon"), "{errs:?}");
        assert!(errs[2].reason.contains("first on line 2"), "{errs:?}");
        assert!(errs[5].reason.contains("5 fields"), "{errs:?}");
        assert!(
            imp.rows[7].outcome.is_ok(),
            "an empty surplus field is fine"
        );
    }

    #[test]
    fn server_columns_with_defaults_by_security() {
        let text = "mailbox;imap_host;imap_port;SMTP Host;smtp-security;pop3_host;pop3_security\n\
                    a@example.test;127.0.0.1;40993;127.0.0.1;;;\n\
                    b@example.test;;;;;mail.example.test;starttls\n\
                    c@example.test;;;;;;\n\
                    d@example.test;;143;;;;\n\
                    e@example.test;h.example.test;99999;;;;\n\
                    f@example.test;;;h.example.test;quantum;;\n\
                    g@example.test;remote.example.test;;;;;\n";
        let imp = parse_accounts_csv(text, &defaults()).unwrap();
        let r = |i: usize| imp.rows[i].outcome.clone();
        let a = r(0).unwrap();
        let s = a.servers.unwrap();
        assert_eq!(s.imap.as_ref().unwrap().port, 40993);
        assert_eq!(s.imap.as_ref().unwrap().security, Security::Tls);
        assert_eq!(s.smtp.as_ref().unwrap().port, 587);
        assert_eq!(s.smtp.as_ref().unwrap().security, Security::Starttls);
        assert!(s.pop3.is_none());
        let b = r(1).unwrap().servers.unwrap();
        assert_eq!(b.pop3.as_ref().unwrap().port, 110);
        assert!(b.imap.is_none() && b.smtp.is_none());
        assert!(
            r(2).unwrap().servers.is_none(),
            "no host: provider defaults"
        );
        assert_eq!(r(3).unwrap_err().field.as_deref(), Some("imap_host"));
        assert_eq!(r(4).unwrap_err().field.as_deref(), Some("imap_port"));
        assert_eq!(r(5).unwrap_err().field.as_deref(), Some("smtp_security"));
        assert!(r(6).is_ok());
        assert!(imp.sets("servers") && !imp.sets("login"));
    }

    #[test]
    fn file_level_errors() {
        for (text, needle) in [
            ("", "no header"),
            ("\u{feff}\r\n\r\n", "no header"),
            ("id;login\nx;a@example.test\n", "no 'mailbox' column"),
            ("mailbox;mailbx\n", "unknown column 'mailbx'"),
            ("mailbox;E-Mail\n", "appears twice"),
        ] {
            let e = parse_accounts_csv(text, &defaults()).unwrap_err();
            assert!(e.reason.contains(needle), "{text:?}: {e}");
        }
        let imp = parse_accounts_csv("mailbox\n", &defaults()).unwrap();
        assert!(imp.rows.is_empty());
    }

    #[test]
    fn a_missing_registration_and_default_flow_apply_to_every_row() {
        let d = CsvDefaults {
            registration: String::new(),
            flow: Some(Flow::DeviceCode),
        };
        let imp = parse_accounts_csv("mailbox\na@example.test\n", &d).unwrap();
        assert_eq!(
            imp.rows[0].outcome.as_ref().unwrap_err().field.as_deref(),
            Some("registration")
        );
        let d = CsvDefaults {
            registration: "r".into(),
            flow: Some(Flow::DeviceCode),
        };
        let imp = parse_accounts_csv(
            "mailbox;flow\na@example.test;\nb@example.test;browser\n",
            &d,
        )
        .unwrap();
        assert_eq!(ok_rows(&imp)[0].flow, Flow::DeviceCode);
        assert_eq!(ok_rows(&imp)[1].flow, Flow::Browser);
    }

    #[test]
    fn apply_changes_only_what_the_file_names() {
        let d = defaults();
        let mut existing = Account {
            id: "a".into(),
            mailbox: "a@example.test".into(),
            login: Some("boss@example.test".into()),
            login_aliases: vec!["b@example.test".into()],
            registration: "old".into(),
            flow: Flow::DeviceCode,
            servers: None,
            transport: Default::default(),
            options: AccountOptions::default(),
        };
        existing.options.refresh_margin_secs = 60;
        let imp = parse_accounts_csv("id;mailbox\na;a@example.test\n", &d).unwrap();
        let row = imp.rows[0].outcome.clone().unwrap();
        let merged = imp.apply(&existing, &row, &d);
        assert_eq!(merged.login.as_deref(), Some("boss@example.test"));
        assert_eq!(merged.flow, Flow::DeviceCode);
        assert_eq!(merged.registration, "contoso");
        assert_eq!(merged.options.refresh_margin_secs, 60);
        assert_eq!(merged.login_aliases, existing.login_aliases);
        let imp = parse_accounts_csv("id;mailbox;login;flow\na;a@example.test;;\n", &d).unwrap();
        let row = imp.rows[0].outcome.clone().unwrap();
        let merged = imp.apply(&existing, &row, &d);
        assert_eq!(merged.login, None);
        assert_eq!(merged.flow, Flow::Browser);
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet: Vec<char> = "a@.;,\t\"\r\n \u{feff}=sep_idmailboxloginflowimap_port0é\u{0}"
            .chars()
            .collect();
        for len in 0..400 {
            let s: String = (0..len % 97)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = parse_accounts_csv(&s, &defaults());
            let _ =
                parse_accounts_csv(&format!("mailbox;id;imap_host;imap_port\n{s}"), &defaults());
        }
        let _ = parse_accounts_csv("mailbox\n\"unterminated\nquote", &defaults());
        let _ = parse_accounts_csv("sep=", &defaults());
        let _ = parse_accounts_csv("sep=;", &defaults());
    }
}
