//! OData query options of message lists (`$top`, `$skip`, `$select`, `$filter`, `$orderby`,
//! `$skiptoken`) and the upload session's `Content-Range`.

use std::collections::HashMap;

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::errors::{bad_request, GraphError};

/// What a filter is evaluated on: the message facts known without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// `receivedDateTime` (IMAP INTERNALDATE), Unix seconds.
    pub received: i64,
    pub is_read: bool,
    pub is_draft: bool,
    pub flagged: bool,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A `$filter` expression over the supported properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Received(Op, i64),
    IsRead(bool),
    IsDraft(bool),
    Flagged(bool),
}

impl Filter {
    pub fn matches(&self, f: &Facts) -> bool {
        match self {
            Filter::And(a, b) => a.matches(f) && b.matches(f),
            Filter::Or(a, b) => a.matches(f) || b.matches(f),
            Filter::Not(a) => !a.matches(f),
            Filter::Received(op, t) => match op {
                Op::Eq => f.received == *t,
                Op::Ne => f.received != *t,
                Op::Gt => f.received > *t,
                Op::Ge => f.received >= *t,
                Op::Lt => f.received < *t,
                Op::Le => f.received <= *t,
            },
            Filter::IsRead(v) => f.is_read == *v,
            Filter::IsDraft(v) => f.is_draft == *v,
            Filter::Flagged(v) => f.flagged == *v,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Str(String),
}

fn syntax(detail: &str) -> GraphError {
    bad_request(format!("Invalid filter clause: {detail}"))
}

fn invalid_nodes() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ErrorInvalidUrlQueryFilter",
        "The query filter contains one or more invalid nodes.",
    )
}

fn tokenize(s: &str) -> Result<Vec<Tok>, GraphError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '\'' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        Some('\'') => break,
                        Some(x) => v.push(x),
                        None => return Err(syntax("unterminated string literal")),
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_whitespace() || x == '(' || x == ')' || x == '\'' {
                        break;
                    }
                    w.push(x);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.and()?;
        while self.peek_word().as_deref() == Some("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.unary()?;
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, GraphError> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let inner = self.or()?;
            if self.toks.get(self.pos) != Some(&Tok::Close) {
                return Err(syntax("')' expected"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, GraphError> {
        let prop = match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err(syntax("a property name expected")),
        };
        let op = match self.toks.get(self.pos + 1) {
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => Op::Eq,
                "ne" => Op::Ne,
                "gt" => Op::Gt,
                "ge" => Op::Ge,
                "lt" => Op::Lt,
                "le" => Op::Le,
                _ => return Err(syntax(&format!("unknown operator '{w}'"))),
            },
            _ => return Err(syntax("an operator expected")),
        };
        let value = self
            .toks
            .get(self.pos + 2)
            .cloned()
            .ok_or_else(|| syntax("a value expected"))?;
        self.pos += 3;
        let boolean = |v: &Tok| match v {
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Ok(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(invalid_nodes()),
        };
        let negate = |f: Filter| match op {
            Op::Eq => Ok(f),
            Op::Ne => Ok(Filter::Not(Box::new(f))),
            _ => Err(invalid_nodes()),
        };
        match prop.to_ascii_lowercase().as_str() {
            "receiveddatetime" => {
                let raw = match &value {
                    Tok::Word(w) => w.clone(),
                    Tok::Str(s) => s.clone(),
                    _ => return Err(invalid_nodes()),
                };
                let t = parse_datetime(&raw).ok_or_else(|| {
                    bad_request(format!(
                        "The DateTimeOffset text '{raw}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range."
                    ))
                })?;
                Ok(Filter::Received(op, t))
            }
            "isread" => negate(Filter::IsRead(boolean(&value)?)),
            "isdraft" => negate(Filter::IsDraft(boolean(&value)?)),
            "flag/flagstatus" => match &value {
                Tok::Str(s) if s.eq_ignore_ascii_case("flagged") => negate(Filter::Flagged(true)),
                Tok::Str(s) if s.eq_ignore_ascii_case("notflagged") => {
                    negate(Filter::Flagged(false))
                }
                _ => Err(invalid_nodes()),
            },
            _ => Err(invalid_nodes()),
        }
    }
}

/// Parse a `$filter` (properties `receivedDateTime`, `isRead`, `isDraft`, `flag/flagStatus`;
/// `eq ne gt ge lt le`, `and`, `or`, `not`, parentheses).
pub(crate) fn parse_filter(s: &str) -> Result<Filter, GraphError> {
    let mut p = Parser {
        toks: tokenize(s)?,
        pos: 0,
    };
    if p.toks.is_empty() {
        return Err(syntax("empty expression"));
    }
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(syntax("unexpected text after the expression"));
    }
    Ok(f)
}

/// An OData DateTimeOffset (`2024-05-01T10:00:00Z`, with fractions or an offset, or a date).
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp())
}

/// Graph's date-time text (`2024-05-01T10:00:00Z`).
pub(crate) fn format_datetime(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Where the next page starts: the sort key of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// receivedDateTime.
    pub r: i64,
    /// Folder.
    pub f: String,
    /// UID.
    pub u: u32,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()
    }
}

/// The properties of a message resource the emulator renders (for `$select`).
pub(crate) const MESSAGE_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
];

/// The query options of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub top: usize,
    pub skip: usize,
    pub select: Option<Vec<String>>,
    pub filter: Option<Filter>,
    pub descending: bool,
    pub after: Option<Cursor>,
}

/// Parse the query options of a message list.
pub(crate) fn list_query(q: &HashMap<String, String>) -> Result<ListQuery, GraphError> {
    for k in q.keys() {
        if k.starts_with('$')
            && !matches!(
                k.as_str(),
                "$top" | "$skip" | "$select" | "$filter" | "$orderby" | "$skiptoken" | "$count"
            )
        {
            return Err(bad_request(format!(
                "Query option '{k}' is not supported by the sandbox emulator."
            )));
        }
    }
    let top = match q.get("$top") {
        None => 10,
        Some(v) => {
            let n: u64 = v.trim().parse().map_err(|_| {
                bad_request(format!("Invalid value '{v}' for query option '$top'."))
            })?;
            if n > 1000 {
                return Err(bad_request(format!(
                    "The limit of '1000' for Top query has been exceeded. The value from the incoming request is '{n}'."
                )));
            }
            n as usize
        }
    };
    let skip = match q.get("$skip") {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad_request(format!("Invalid value '{v}' for query option '$skip'.")))?,
    };
    let select = parse_select(q, MESSAGE_PROPERTIES, "microsoft.graph.message")?;
    let filter = match q.get("$filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => Some(parse_filter(f)?),
    };
    let descending = match q.get("$orderby").map(|o| o.trim().to_ascii_lowercase()) {
        None => true,
        Some(o) => {
            let mut it = o.split_whitespace();
            let prop = it.next().unwrap_or_default();
            let dir = it.next().unwrap_or("asc");
            if prop != "receiveddatetime" || it.next().is_some() || !matches!(dir, "asc" | "desc") {
                return Err(bad_request(format!(
                    "The sandbox emulator orders messages by receivedDateTime only ('$orderby={o}')."
                )));
            }
            dir == "desc"
        }
    };
    let after = match q.get("$skiptoken") {
        None => None,
        Some(t) => {
            Some(Cursor::decode(t).ok_or_else(|| bad_request("The $skiptoken is not valid."))?)
        }
    };
    Ok(ListQuery {
        top,
        skip,
        select,
        filter,
        descending,
        after,
    })
}

/// `$select`: the named properties of `type_name` as `properties` spells them.
fn parse_select(
    q: &HashMap<String, String>,
    properties: &[&str],
    type_name: &str,
) -> Result<Option<Vec<String>>, GraphError> {
    let Some(v) = q.get("$select") else {
        return Ok(None);
    };
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            properties
                .iter()
                .find(|k| k.eq_ignore_ascii_case(p))
                .map(|k| k.to_string())
                .ok_or_else(|| {
                    GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "RequestBroker--ParseUri",
                        format!("Could not find a property named '{p}' on type '{type_name}'."),
                    )
                })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The query options of a folder list: `$top`, `$select`, and `$filter=displayName eq '…'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FolderQuery {
    pub top: usize,
    pub select: Option<Vec<String>>,
    pub display_name: Option<String>,
}

/// The properties of a mailFolder resource.
pub(crate) const FOLDER_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
];

/// Parse the query options of `GET mailFolders` and `GET mailFolders/{id}`.
pub(crate) fn folder_query(q: &HashMap<String, String>) -> Result<FolderQuery, GraphError> {
    let top = match q.get("$top") {
        None => 10,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 1000)
            .ok_or_else(|| bad_request(format!("Invalid value '{v}' for query option '$top'.")))?,
    };
    let select = parse_select(q, FOLDER_PROPERTIES, "microsoft.graph.mailFolder")?;
    let display_name = match q.get("$filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => {
            let toks = tokenize(f)?;
            match toks.as_slice() {
                [Tok::Word(p), Tok::Word(op), Tok::Str(v)]
                    if p.eq_ignore_ascii_case("displayName") && op.eq_ignore_ascii_case("eq") =>
                {
                    Some(v.clone())
                }
                _ => return Err(invalid_nodes()),
            }
        }
    };
    Ok(FolderQuery {
        top,
        select,
        display_name,
    })
}

/// `Content-Range: bytes {start}-{end}/{total}` (inclusive end).
pub(crate) fn content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let (start, end, total): (u64, u64, u64) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end && end < total).then_some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(received: i64, is_read: bool) -> Facts {
        Facts {
            received,
            is_read,
            is_draft: false,
            flagged: false,
        }
    }

    #[test]
    fn filters_on_received_time_and_read_state() {
        let t = parse_datetime("2024-05-01T10:00:00Z").unwrap();
        let f = parse_filter("receivedDateTime ge 2024-05-01T10:00:00Z").unwrap();
        assert_eq!(f, Filter::Received(Op::Ge, t));
        assert!(f.matches(&facts(t, true)));
        assert!(!f.matches(&facts(t - 1, true)));

        let f = parse_filter("isRead eq false").unwrap();
        assert!(f.matches(&facts(0, false)) && !f.matches(&facts(0, true)));
        let f = parse_filter("isRead ne true").unwrap();
        assert!(f.matches(&facts(0, false)) && !f.matches(&facts(0, true)));

        let f = parse_filter(
            "receivedDateTime ge 2024-05-01T10:00:00.000+02:00 and (isRead eq false or isDraft eq true)",
        )
        .unwrap();
        let t2 = t - 7200;
        assert!(f.matches(&facts(t2, false)));
        assert!(!f.matches(&facts(t2, true)));
        assert!(!f.matches(&facts(t2 - 1, false)));
        let f = parse_filter("not (isRead eq true) and flag/flagStatus eq 'flagged'").unwrap();
        let mut x = facts(0, false);
        assert!(!f.matches(&x));
        x.flagged = true;
        assert!(f.matches(&x));
        // A date alone is midnight UTC; quoted values are accepted for dates too.
        assert_eq!(
            parse_filter("receivedDateTime lt '2024-05-02'").unwrap(),
            Filter::Received(Op::Lt, parse_datetime("2024-05-02T00:00:00Z").unwrap())
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for (f, code) in [
            ("subject eq 'x'", "ErrorInvalidUrlQueryFilter"),
            ("isRead gt true", "ErrorInvalidUrlQueryFilter"),
            ("isRead eq 'yes'", "ErrorInvalidUrlQueryFilter"),
            ("isRead eq", "BadRequest"),
            ("isRead eq false and", "BadRequest"),
            ("(isRead eq false", "BadRequest"),
            ("receivedDateTime ge yesterday", "BadRequest"),
            ("isRead like false", "BadRequest"),
            ("subject eq 'unterminated", "BadRequest"),
            ("", "BadRequest"),
        ] {
            let e = parse_filter(f).expect_err(f);
            assert_eq!(e.code, code, "{f}: {}", e.message);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn list_options() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let l = list_query(&q(&[])).unwrap();
        assert_eq!((l.top, l.skip, l.descending), (10, 0, true));
        let l = list_query(&q(&[
            ("$top", "1000"),
            ("$select", "subject, isRead,RECEIVEDDATETIME"),
            ("$orderby", "receivedDateTime asc"),
        ]))
        .unwrap();
        assert_eq!(l.top, 1000);
        assert!(!l.descending);
        assert_eq!(
            l.select.unwrap(),
            vec!["subject", "isRead", "receivedDateTime"]
        );
        assert!(list_query(&q(&[("$top", "1001")])).is_err());
        assert!(list_query(&q(&[("$top", "-1")])).is_err());
        assert_eq!(
            list_query(&q(&[("$select", "nope")])).unwrap_err().code,
            "RequestBroker--ParseUri"
        );
        assert!(list_query(&q(&[("$orderby", "subject")])).is_err());
        assert!(list_query(&q(&[("$expand", "attachments")])).is_err());
        assert!(list_query(&q(&[("$skiptoken", "!!")])).is_err());
        let c = Cursor {
            r: 5,
            f: "INBOX".into(),
            u: 9,
        };
        let l = list_query(&q(&[("$skiptoken", &c.encode())])).unwrap();
        assert_eq!(l.after, Some(c));
    }

    #[test]
    fn folder_options() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let f = folder_query(&q(&[
            ("$filter", "displayName eq 'Rechnungen ''2024'''"),
            ("$select", "id,displayName"),
            ("$top", "100"),
        ]))
        .unwrap();
        assert_eq!(f.display_name.as_deref(), Some("Rechnungen '2024'"));
        assert_eq!(f.top, 100);
        assert_eq!(f.select.unwrap(), vec!["id", "displayName"]);
        assert_eq!(folder_query(&q(&[])).unwrap().top, 10);
        assert!(folder_query(&q(&[("$filter", "totalItemCount gt 1")])).is_err());
        assert!(folder_query(&q(&[("$select", "subject")])).is_err());
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            content_range("bytes 0-2097151/3483322"),
            Some((0, 2097151, 3483322))
        );
        assert_eq!(
            content_range("bytes 2097152-3483321/3483322"),
            Some((2097152, 3483321, 3483322))
        );
        assert_eq!(content_range("bytes 0-0/1"), Some((0, 0, 1)));
        for bad in [
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes */10",
            "0-1/2",
            "bytes 0-1",
            "bytes a-b/c",
            "",
        ] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }
}
