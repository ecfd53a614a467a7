//! Reading a mailbox over Microsoft Graph: folders (well-known names and display names), a
//! folder's messages newest first with paging (`@odata.nextLink`, followed as given), a
//! message's MIME (`$value`), marking read, moving and deleting.

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::{segment, Body, GraphMailbox, Repeat};
use crate::error::{Error, ErrorKind, Result};

/// Graph's well-known folder names, and the IMAP names people use for the same folders.
const WELL_KNOWN: [(&str, &[&str]); 6] = [
    ("inbox", &["inbox"]),
    (
        "sentitems",
        &["sent", "sent items", "sent messages", "gesendete elemente"],
    ),
    ("drafts", &["draft", "entwürfe"]),
    (
        "deleteditems",
        &["trash", "deleted items", "deleted", "gelöschte elemente"],
    ),
    ("junkemail", &["junk", "junk email", "spam", "junk-e-mail"]),
    ("archive", &["archiv"]),
];

/// Graph returns at most 1,000 messages a page.
const MAX_PAGE: usize = 1000;

/// A message in a folder listing.
#[derive(Debug, Clone, Serialize)]
pub struct GraphMessage {
    /// Graph's message id (opaque; changes when the message is moved).
    pub id: String,
    /// When it arrived (ISO 8601, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// Whether it is read.
    pub is_read: bool,
    /// The subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The `Message-ID` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_message_id: Option<String>,
}

/// A mail folder.
#[derive(Debug, Clone, Serialize)]
pub struct GraphFolder {
    /// Graph's folder id.
    pub id: String,
    /// The name people see.
    pub display_name: String,
    /// Its well-known name (`inbox`, `sentitems`, ...), if it is one of those.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub well_known: Option<&'static str>,
}

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only messages received on or after this day (UTC).
    pub since: Option<time::Date>,
    /// Only unread messages.
    pub unread_only: bool,
    /// At most this many, the newest (default: all).
    pub limit: Option<usize>,
}

/// The well-known name `folder` stands for, if any (case and the usual IMAP names do not matter).
pub(crate) fn well_known(folder: &str) -> Option<&'static str> {
    let f = folder.trim().to_lowercase();
    WELL_KNOWN
        .iter()
        .find(|(name, aliases)| *name == f || aliases.contains(&f.as_str()))
        .map(|(name, _)| *name)
}

impl GraphMailbox<'_> {
    /// GET `url`, which must answer 200 with JSON.
    pub(super) async fn get_json(&mut self, url: &url::Url, what: &str) -> Result<Value> {
        self.call_json(Method::GET, url, None, Repeat::Safe, &[200], what)
            .await
    }

    /// Walk a listing from `first` through its `@odata.nextLink` pages, handing each item to
    /// `take` until it returns `false` (no further page is read then).
    async fn each_item(
        &mut self,
        first: url::Url,
        what: &str,
        mut take: impl FnMut(&Value) -> bool,
    ) -> Result<()> {
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let v = self.get_json(&url, what).await?;
            for item in v["value"].as_array().into_iter().flatten() {
                if !take(item) {
                    return Ok(());
                }
            }
            next = next_link(&v)?;
        }
        Ok(())
    }

    /// The path of `folder`: a well-known name as it is, another name looked up by display name.
    async fn folder_path(&mut self, folder: &str) -> Result<String> {
        if let Some(w) = well_known(folder) {
            return Ok(format!("mailFolders/{w}"));
        }
        let name = folder.replace('\'', "''");
        let url = self.url(
            "mailFolders",
            &[
                ("$filter", format!("displayName eq '{name}'")),
                ("$select", "id,displayName".into()),
            ],
        )?;
        let v = self.get_json(&url, "finding the folder").await?;
        let id = v["value"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|f| f["id"].as_str())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the mailbox has no folder '{}'",
                        crate::error::quote(folder)
                    ),
                )
                .with_code("MC-GRAPH-NOT-FOUND")
            })?;
        Ok(format!("mailFolders/{}", segment(id)))
    }

    /// The mailbox's top-level folders, with their well-known names.
    pub async fn folders(&mut self) -> Result<Vec<GraphFolder>> {
        let mut out = Vec::new();
        let first = self.url(
            "mailFolders",
            &[("$top", "100".into()), ("$select", "id,displayName".into())],
        )?;
        self.each_item(first, "listing the folders", |f| {
            out.push(GraphFolder {
                id: f["id"].as_str().unwrap_or_default().to_string(),
                display_name: f["displayName"].as_str().unwrap_or_default().to_string(),
                well_known: None,
            });
            true
        })
        .await?;
        // Which folder is which well-known one is told by asking for each by that name.
        for (name, _) in WELL_KNOWN {
            let url = self.url(&format!("mailFolders/{name}"), &[("$select", "id".into())])?;
            let resp = self
                .call(Method::GET, &url, None, Repeat::Safe, "reading a folder")
                .await?;
            if resp.status != 200 {
                continue;
            }
            let id = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string));
            if let Some(f) = out.iter_mut().find(|f| Some(&f.id) == id.as_ref()) {
                f.well_known = Some(name);
            }
        }
        Ok(out)
    }

    /// The messages of `folder`, newest first, following `@odata.nextLink` until `q.limit`.
    pub async fn list(&mut self, folder: &str, q: &ListQuery) -> Result<Vec<GraphMessage>> {
        let path = self.folder_path(folder).await?;
        let mut filters = Vec::new();
        if let Some(d) = q.since {
            filters.push(format!(
                "receivedDateTime ge {:04}-{:02}-{:02}T00:00:00Z",
                d.year(),
                u8::from(d.month()),
                d.day()
            ));
        }
        if q.unread_only {
            filters.push("isRead eq false".into());
        }
        let page = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let mut query = vec![
            ("$top", page.to_string()),
            (
                "$select",
                "id,receivedDateTime,isRead,subject,internetMessageId".into(),
            ),
            ("$orderby", "receivedDateTime desc".into()),
        ];
        if !filters.is_empty() {
            query.push(("$filter", filters.join(" and ")));
        }
        let first = self.url(&format!("{path}/messages"), &query)?;
        let mut out = Vec::new();
        if q.limit == Some(0) {
            return Ok(out);
        }
        self.each_item(first, "listing messages", |m| {
            let text = |k: &str| m[k].as_str().map(str::to_string);
            out.push(GraphMessage {
                id: text("id").unwrap_or_default(),
                received: text("receivedDateTime"),
                is_read: m["isRead"].as_bool().unwrap_or(false),
                subject: text("subject"),
                internet_message_id: text("internetMessageId"),
            });
            q.limit.is_none_or(|l| out.len() < l)
        })
        .await?;
        Ok(out)
    }

    /// The message's MIME, as the mailbox holds it.
    pub async fn raw(&mut self, id: &str) -> Result<Vec<u8>> {
        let url = self.url(&format!("messages/{}/$value", segment(id)), &[])?;
        let resp = self
            .call(Method::GET, &url, None, Repeat::Safe, "reading a message")
            .await?;
        super::errors::expect(&url, &resp, &[200], "reading a message")?;
        Ok(resp.body.to_vec())
    }

    /// Mark the message read (or unread).
    pub async fn mark_read(&mut self, id: &str, read: bool) -> Result<()> {
        let url = self.url(&format!("messages/{}", segment(id)), &[])?;
        self.call_json(
            Method::PATCH,
            &url,
            Some(&Body::json(&json!({ "isRead": read }))),
            Repeat::Safe,
            &[200],
            "marking a message read",
        )
        .await
        .map(|_| ())
    }

    /// Move the message to `folder` (a well-known name or a display name); returns its new id.
    pub async fn move_to(&mut self, id: &str, folder: &str) -> Result<String> {
        let dest = match well_known(folder) {
            Some(w) => w.to_string(),
            None => self
                .folder_path(folder)
                .await?
                .trim_start_matches("mailFolders/")
                .to_string(),
        };
        let url = self.url(&format!("messages/{}/move", segment(id)), &[])?;
        let v = self
            .call_json(
                Method::POST,
                &url,
                Some(&Body::json(&json!({ "destinationId": dest }))),
                Repeat::Never,
                &[200, 201],
                "moving a message",
            )
            .await?;
        Ok(v["id"].as_str().unwrap_or_default().to_string())
    }

    /// Delete the message (Graph moves it to Deleted Items).
    pub async fn delete(&mut self, id: &str) -> Result<()> {
        let url = self.url(&format!("messages/{}", segment(id)), &[])?;
        let resp = self
            .call(
                Method::DELETE,
                &url,
                None,
                Repeat::Safe,
                "deleting a message",
            )
            .await?;
        // A repeated delete finds nothing: the message is gone either way.
        if resp.status == 404 {
            return Ok(());
        }
        super::errors::expect(&url, &resp, &[204, 200], "deleting a message")
    }
}

/// The next page of a listing, followed verbatim (Graph's paging rule).
fn next_link(v: &Value) -> Result<Option<url::Url>> {
    match v["@odata.nextLink"].as_str() {
        None => Ok(None),
        Some(s) => url::Url::parse(s).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::MailServer,
                format!("Microsoft Graph's @odata.nextLink is not a URL: {e}"),
            )
            .with_code("MC-GRAPH-UNAVAILABLE")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_names_map_to_graphs_well_known_folders() {
        assert_eq!(well_known("INBOX"), Some("inbox"));
        assert_eq!(well_known("Sent"), Some("sentitems"));
        assert_eq!(well_known("Gesendete Elemente"), Some("sentitems"));
        assert_eq!(well_known("Trash"), Some("deleteditems"));
        assert_eq!(well_known("junkemail"), Some("junkemail"));
        assert_eq!(well_known("Projects/2026"), None);
    }

    #[test]
    fn next_links_are_followed_as_given() {
        let v = json!({"@odata.nextLink": "https://graph.microsoft.com/v1.0/me/messages?$skiptoken=abc%3D"});
        assert_eq!(
            next_link(&v).unwrap().unwrap().as_str(),
            "https://graph.microsoft.com/v1.0/me/messages?$skiptoken=abc%3D"
        );
        assert!(next_link(&json!({})).unwrap().is_none());
        assert!(next_link(&json!({"@odata.nextLink": "not a url"})).is_err());
    }
}
