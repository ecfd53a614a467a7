//! The emulator's Microsoft Graph v1.0 mail endpoints against real Dovecot and Postfix, over
//! plain HTTP (reqwest): this tests the emulator, not core. Needs root and the stack's Debian
//! packages (sandbox/stack/install-deps.sh), like tests/mail_stack.rs.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mailconnect_sandbox::testing::{
    self, access_token, claims, graph_app_token, refresh, refresh_token,
};
use mailconnect_sandbox::{GraphSettings, GraphThrottle};
use mailconnect_tests::*;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls;

const GRAPH_MAIL: &str = "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send offline_access";
const CONSENT: &str = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/Mail.Send.Shared https://graph.microsoft.com/Mail.ReadWrite.Shared offline_access openid profile";

/// Graph over HTTP, as a client would call graph.microsoft.com.
struct Graph {
    http: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl Graph {
    fn new(w: &GraphWorld) -> Graph {
        Graph {
            http: testing::http_builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            base: w.env.emulator.graph_base_url(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<Answer> {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if !body.is_empty() {
            r = r.header("content-type", content_type).body(body);
        }
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.try_call(method.clone(), path, Some(token), "application/json", bytes)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    /// GET `path`, which Graph refuses with `status` and `code`.
    async fn get_refused(&self, path: &str, token: &str, status: u16, code: &str) {
        assert_graph_error(&self.get(path, token).await, status, code);
    }

    /// The message `id` is no longer there.
    async fn assert_gone(&self, token: &str, id: &str) {
        let path = format!("/me/messages/{id}");
        self.get_refused(&path, token, 404, "ErrorItemNotFound")
            .await;
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// POST `body` as `text/plain`, as sendMail and message creation take base64 MIME.
    async fn try_post_text(
        &self,
        path: &str,
        token: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<Answer> {
        self.try_call(Method::POST, path, Some(token), "text/plain", body)
            .await
    }

    async fn mime(&self, path: &str, token: &str, mime: &[u8]) -> Answer {
        self.try_post_text(path, token, STANDARD.encode(mime).into_bytes())
            .await
            .unwrap()
    }

    /// POST a MIME message to a `sendMail` `path`: 202 Accepted.
    async fn send_mime(&self, path: &str, token: &str, mime: &[u8]) -> Answer {
        let a = self.mime(path, token, mime).await;
        assert_eq!(a.status, 202, "{}", a.text());
        a
    }

    /// Subjects and ids of the newest messages of a folder.
    async fn subjects(&self, token: &str, folder: &str) -> Vec<(String, String)> {
        let a = self
            .get(
                &format!("/me/mailFolders/{folder}/messages?$top=100&$select=subject"),
                token,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
        a.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["subject"].as_str().unwrap_or_default().to_string(),
                    m["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Wait until a message with `subject` is in `folder`; its id.
    async fn arrived(&self, token: &str, folder: &str, subject: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some((_, id)) = self
                .subjects(token, folder)
                .await
                .into_iter()
                .find(|(s, _)| s == subject)
            {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "'{subject}' never arrived in {folder}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn assert_graph_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text());
    let v = a.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].as_str().is_some(), "{v}");
    let inner = &v["error"]["innerError"];
    assert!(inner["date"].as_str().is_some(), "{v}");
    assert_eq!(
        inner["request-id"].as_str(),
        Some(a.header("request-id").as_str()),
        "{v}"
    );
    assert!(inner["client-request-id"].as_str().is_some(), "{v}");
}

/// Sign `user` in with `scope` (consenting); the token response of the code redemption (an
/// Exchange token when the first scope is Exchange's, and a refresh token).
async fn sign_in(w: &GraphWorld, user: &str, scope: &str) -> Value {
    let t = testing::sign_in(&w.env.emulator, user, scope, None).await;
    assert!(t["refresh_token"].is_string(), "{t}");
    t
}

/// A Graph world (standard sandbox), a Graph client on it, and alice's delegated Graph token
/// (consented to Graph mail at sign-in) and Exchange token, both from the same sign-in.
async fn alice_world() -> (GraphWorld, Graph, String, String) {
    let w = graph_world(|_| {}).await;
    let g = Graph::new(&w);
    let t = sign_in(&w, "alice@example.test", CONSENT).await;
    let r = refresh(&w.env.emulator, refresh_token(&t), GRAPH_MAIL).await;
    let graph = r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("Graph token from the Exchange sign-in's refresh token: {r}"))
        .to_string();
    let exchange = access_token(&t).to_string();
    (w, g, graph, exchange)
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_mail_mime_and_json_arrive_and_are_in_sent_items() {
    let (w, g, token, _) = alice_world().await;
    let c = claims(&token);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert!(c["scp"].as_str().unwrap().contains("Mail.Send"), "{c}");

    let me = g.get("/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["userPrincipalName"], "alice@example.test");
    assert_eq!(me["mail"], "alice@example.test");
    assert_eq!(me["displayName"], "Alice Example");
    assert!(me["id"].as_str().is_some());

    // MIME: the body arrives byte for byte; Bcc reaches carol but is not in the delivered copy.
    let body = "Hello Bob,\r\n.leading dot and trailing spaces   \r\n\r\n\u{e4}\u{f6}\u{fc} 8bit\r\n-- \r\nAlice\r\n";
    let mime = format!(
        "From: Alice Example <alice@example.test>\r\nTo: bob@example.test\r\nBcc: carol@example.test\r\nSubject: graph mime 1\r\nMessage-ID: <graph-mime-1@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    );
    let a = g.send_mime("/me/sendMail", &token, mime.as_bytes()).await;
    assert!(a.body.is_empty());
    assert!(!a.header("request-id").is_empty());
    let deadline = Instant::now() + Duration::from_secs(90);
    let delivered = loop {
        let bob = w.stack.stored_messages("bob@example.test", None);
        let carol = w.stack.stored_messages("carol@example.test", None);
        if let (Some(b), Some(c)) = (
            bob.into_iter().find(|m| find(m, b"graph-mime-1@")),
            carol.into_iter().find(|m| find(m, b"graph-mime-1@")),
        ) {
            break (b, c);
        }
        assert!(Instant::now() < deadline, "the MIME message never arrived");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for m in [&delivered.0, &delivered.1] {
        let text = String::from_utf8_lossy(m);
        assert!(m.ends_with(format!("\r\n\r\n{body}").as_bytes()), "{text}");
        assert!(!text.to_ascii_lowercase().contains("\nbcc:"), "{text}");
        assert!(
            text.contains("Authenticated sender: alice@example.test"),
            "{text}"
        );
    }
    let sent = g.arrived(&token, "sentitems", "graph mime 1").await;
    let v = g.get(&format!("/me/messages/{sent}/$value"), &token).await;
    assert_eq!(v.status, 200);
    assert!(
        v.text().contains("Bcc: carol@example.test"),
        "Sent Items keeps Bcc"
    );

    // JSON with an attachment, to alice herself.
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let a = g
        .post(
            "/me/sendMail",
            &token,
            json!({
                "message": {
                    "subject": "graph json 1",
                    "body": {"contentType": "HTML", "content": "<p>See <b>attached</b>.</p>"},
                    "toRecipients": [{"emailAddress": {"address": "alice@example.test", "name": "Alice"}}],
                    "ccRecipients": [{"emailAddress": {"address": "bob@example.test"}}],
                    "internetMessageHeaders": [{"name": "X-Sandbox-Test", "value": "yes"}],
                    "attachments": [{
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "data.bin", "contentType": "application/octet-stream",
                        "contentBytes": STANDARD.encode(&bytes)
                    }]
                },
                "saveToSentItems": false
            }),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text());
    let id = g.arrived(&token, "inbox", "graph json 1").await;
    let m = g.get(&format!("/me/messages/{id}"), &token).await.json();
    assert_eq!(m["hasAttachments"], true, "{m}");
    assert_eq!(m["from"]["emailAddress"]["address"], "alice@example.test");
    assert_eq!(
        m["ccRecipients"][0]["emailAddress"]["address"],
        "bob@example.test"
    );
    assert_eq!(m["body"]["contentType"], "html");
    assert_eq!(m["bodyPreview"], "See attached .");
    assert_eq!(m["isRead"], false);
    assert_eq!(
        m["parentFolderId"],
        g.get("/me/mailFolders/inbox", &token).await.json()["id"]
    );
    let atts = g
        .get(&format!("/me/messages/{id}/attachments"), &token)
        .await
        .json();
    assert_eq!(atts["value"][0]["name"], "data.bin", "{atts}");
    assert_eq!(
        STANDARD
            .decode(atts["value"][0]["contentBytes"].as_str().unwrap())
            .unwrap(),
        bytes
    );
    let raw = g.get(&format!("/me/messages/{id}/$value"), &token).await;
    assert!(raw.text().contains("X-Sandbox-Test: yes"));
    // saveToSentItems false: no copy.
    assert!(!g
        .subjects(&token, "sentitems")
        .await
        .iter()
        .any(|(s, _)| s == "graph json 1"));

    // Malformed MIME base64; no recipients; a request over 4 MB.
    let a = g
        .try_post_text("/me/sendMail", &token, b"@@not base64@@".to_vec())
        .await
        .unwrap();
    assert_graph_error(&a, 400, "ErrorMimeContentInvalidBase64String");
    let a = g
        .mime("/me/sendMail", &token, b"Subject: nobody\r\n\r\nx\r\n")
        .await;
    assert_graph_error(&a, 400, "ErrorInvalidRecipients");
    let big = vec![b'A'; 4 * 1024 * 1024 + 10];
    let a = g.try_post_text("/me/sendMail", &token, big).await.unwrap();
    assert_graph_error(&a, 413, "RequestEntityTooLarge");
    // Sending as someone else is refused.
    let a = g
        .mime(
            "/me/sendMail",
            &token,
            b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: spoof\r\n\r\nx\r\n",
        )
        .await;
    assert_graph_error(&a, 403, "ErrorSendAsDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_through_a_draft_and_an_upload_session() {
    let (w, g, token, _) = alice_world().await;
    let draft = g
        .post(
            "/me/messages",
            &token,
            json!({
                "subject": "graph large 1",
                "body": {"contentType": "Text", "content": "Ten megabytes follow."},
                "toRecipients": [{"emailAddress": {"address": "alice@example.test"}}],
                "bccRecipients": [{"emailAddress": {"address": "bob@example.test"}}]
            }),
        )
        .await;
    assert_eq!(draft.status, 201, "{}", draft.text());
    let draft = draft.json();
    assert_eq!(draft["isDraft"], true);
    let id = draft["id"].as_str().unwrap().to_string();
    let drafts_id = g.get("/me/mailFolders/drafts", &token).await.json()["id"].clone();
    assert_eq!(draft["parentFolderId"], drafts_id);

    let size = 10 * 1024 * 1024 + 12_345;
    let data: Vec<u8> = (0..size as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let s = g
        .post(
            &format!("/me/messages/{id}/attachments/createUploadSession"),
            &token,
            json!({"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": size,
                   "contentType": "application/octet-stream"}}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text());
    let s = s.json();
    assert_eq!(s["nextExpectedRanges"], json!(["0-"]));
    assert!(s["expirationDateTime"].as_str().is_some());
    let upload = s["uploadUrl"].as_str().unwrap().to_string();
    assert!(
        upload.contains("/AttachmentSessions('") && upload.contains("authtoken="),
        "{upload}"
    );

    let put = |start: usize, end: usize, auth: Option<&str>| {
        let mut r = g
            .http
            .put(&upload)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("bytes {start}-{}/{size}", end - 1))
            .body(data[start..end].to_vec());
        if let Some(t) = auth {
            r = r.bearer_auth(t);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value =
                serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null);
            (status, location, body)
        }
    };
    // The upload URL is pre-authenticated: a bearer token is refused.
    let (status, _, body) = put(0, 1000, Some(&token)).await;
    assert_eq!(status, 401, "{body}");
    let chunk = 4 * 1024 * 1024;
    let mut start = 0;
    let mut last = None;
    while start < size {
        let end = (start + chunk).min(size);
        let (status, location, body) = put(start, end, None).await;
        if end < size {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["nextExpectedRanges"], json!([end.to_string()]));
            // Out of order is refused.
            let (again, _, _) = put(start, end, None).await;
            assert_eq!(again, 416);
        } else {
            assert_eq!(status, 201, "{body}");
            last = location;
        }
        start = end;
    }
    let location = last.expect("the final PUT names the attachment");
    assert!(location.contains("/Attachments('"), "{location}");

    // The draft keeps its id, has the attachment, and goes out.
    let m = g.get(&format!("/me/messages/{id}"), &token).await;
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(m.json()["hasAttachments"], true);
    let a = g
        .post(&format!("/me/messages/{id}/send"), &token, json!(null))
        .await;
    assert_eq!(a.status, 202, "{}", a.text());
    g.assert_gone(&token, &id).await;
    let got = g.arrived(&token, "inbox", "graph large 1").await;
    let atts = g
        .get(&format!("/me/messages/{got}/attachments"), &token)
        .await
        .json();
    assert_eq!(atts["value"][0]["name"], "big.bin");
    assert_eq!(atts["value"][0]["size"], size);
    assert!(
        STANDARD
            .decode(atts["value"][0]["contentBytes"].as_str().unwrap())
            .unwrap()
            == data,
        "the attachment arrives byte for byte"
    );
    g.arrived(&token, "sentitems", "graph large 1").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !w
        .stack
        .stored_messages("bob@example.test", None)
        .iter()
        .any(|m| find(m, b"graph large 1"))
    {
        assert!(Instant::now() < deadline, "the Bcc recipient never got it");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Over the mailbox's message size: ErrorMessageSizeExceeded.
    w.env.emulator.set_graph_settings(GraphSettings {
        max_message_bytes: 1_000_000,
        ..GraphSettings::default()
    });
    let a = g
        .post(
            "/me/sendMail",
            &token,
            json!({"message": {"subject": "too big",
                "toRecipients": [{"emailAddress": {"address": "alice@example.test"}}],
                "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "x.bin",
                                 "contentBytes": STANDARD.encode(&data[..1_500_000])}]}}),
        )
        .await;
    assert_graph_error(&a, 400, "ErrorMessageSizeExceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_through_next_links_and_messages_change() {
    let (w, g, token, _) = alice_world().await;
    let seeded: Vec<Vec<u8>> = (0..1050)
        .map(|i| {
            format!("From: seed@example.test\r\nTo: alice@example.test\r\nSubject: seed {i:04}\r\nMessage-ID: <seed-{i}@example.test>\r\n\r\nSeed message {i}.\r\n").into_bytes()
        })
        .collect();
    w.stack.lmtp_deliver("alice@example.test", &seeded).await;

    let mut next = Some(
        "/me/mailFolders/inbox/messages?$top=100&$select=subject,receivedDateTime,isRead"
            .to_string(),
    );
    let mut ids = Vec::new();
    let mut dates = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let a = g.get(&url, &token).await;
        assert_eq!(a.status, 200, "{url}: {}", a.text());
        let v = a.json();
        let value = v["value"].as_array().unwrap();
        pages += 1;
        assert!(value.len() <= 100);
        for m in value {
            assert!(
                m.get("body").is_none(),
                "$select limits the properties: {m}"
            );
            ids.push(m["id"].as_str().unwrap().to_string());
            dates.push(m["receivedDateTime"].as_str().unwrap().to_string());
        }
        next = v["@odata.nextLink"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with(&g.base) && n.contains("%24skiptoken="), "{n}");
        }
    }
    assert_eq!(pages, 11);
    assert_eq!(ids.len(), 1050);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1050, "no message twice");
    let mut sorted = dates.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(dates, sorted, "newest first");

    // Defaults, $filter, $top bounds.
    let a = g.get("/me/messages", &token).await.json();
    assert_eq!(a["value"].as_array().unwrap().len(), 10);
    assert_eq!(unread(&g, &token).await, 1050);
    let a = g
        .get(
            "/me/messages?$filter=receivedDateTime ge 2999-01-01T00:00:00Z",
            &token,
        )
        .await
        .json();
    assert_eq!(a["value"], json!([]));
    g.get_refused("/me/messages?$top=1001", &token, 400, "BadRequest")
        .await;
    g.get_refused(
        "/me/messages?$filter=subject eq 'x'",
        &token,
        400,
        "ErrorInvalidUrlQueryFilter",
    )
    .await;

    // $value is what Dovecot holds.
    let id = ids.last().unwrap().clone();
    let m = g.get(&format!("/me/messages/{id}"), &token).await.json();
    let subject = m["subject"].as_str().unwrap().to_string();
    let raw = g.get(&format!("/me/messages/{id}/$value"), &token).await;
    assert_eq!(raw.status, 200);
    let stored = w
        .stack
        .stored_messages("alice@example.test", None)
        .into_iter()
        .find(|s| find(s, format!("Subject: {subject}\r\n").as_bytes()))
        .expect("the message is in the maildir");
    assert_eq!(raw.body, stored);

    // Mark read, move, delete.
    let a = g
        .call(
            Method::PATCH,
            &format!("/me/messages/{id}"),
            &token,
            Some(json!({"isRead": true})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["isRead"], true);
    assert_eq!(unread(&g, &token).await, 1049);
    let moved = g
        .post(
            &format!("/me/messages/{id}/move"),
            &token,
            json!({"destinationId": "archive"}),
        )
        .await;
    assert_eq!(moved.status, 201, "{}", moved.text());
    let moved = moved.json();
    let new_id = moved["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, id);
    assert_eq!(moved["subject"], subject.as_str());
    assert_eq!(
        moved["parentFolderId"],
        g.get("/me/mailFolders/archive", &token).await.json()["id"]
    );
    g.assert_gone(&token, &id).await;
    let a = g
        .call(
            Method::DELETE,
            &format!("/me/messages/{new_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text());
    let in_trash = g.subjects(&token, "deleteditems").await;
    let (_, trash_id) = in_trash
        .iter()
        .find(|(s, _)| *s == subject)
        .expect("DELETE moves to Deleted Items")
        .clone();
    let a = g
        .call(
            Method::DELETE,
            &format!("/me/messages/{trash_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    assert!(!g
        .subjects(&token, "deleteditems")
        .await
        .iter()
        .any(|(s, _)| *s == subject));
    g.get_refused(
        "/me/messages/AAMkbm9wZQ==",
        &token,
        400,
        "ErrorInvalidIdMalformed",
    )
    .await;

    // Folders.
    let f = g.get("/me/mailFolders", &token).await.json();
    let names: Vec<&str> = f["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["displayName"].as_str().unwrap())
        .collect();
    for want in [
        "Inbox",
        "Sent Items",
        "Drafts",
        "Deleted Items",
        "Junk Email",
        "Archive",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let archive = g
        .get(
            "/me/mailFolders?$filter=displayName eq 'Archive'&$select=id,displayName",
            &token,
        )
        .await
        .json();
    assert_eq!(archive["value"].as_array().unwrap().len(), 1, "{archive}");
    assert_eq!(
        archive["value"][0]["id"],
        g.get("/me/mailFolders/archive", &token).await.json()["id"]
    );
    assert!(archive["value"][0].get("totalItemCount").is_none());
    let inbox = g.get("/me/mailFolders/Inbox", &token).await.json();
    assert_eq!(inbox["totalItemCount"], 1049);
    assert_eq!(inbox["unreadItemCount"], 1049);
    g.get_refused(
        "/me/mailFolders/nosuchfolder",
        &token,
        400,
        "ErrorInvalidIdMalformed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_permissions_shared_mailboxes_and_the_access_policy() {
    let (w, g, alice, alice_exchange) = alice_world().await;

    // Wrong audience (an Exchange token), no token, a forged one.
    for bad in [alice_exchange.as_str(), "", "a.b.c"] {
        let a = g
            .try_call(
                Method::GET,
                "/me/messages",
                (!bad.is_empty()).then_some(bad),
                "",
                vec![],
            )
            .await
            .unwrap();
        assert_graph_error(&a, 401, "InvalidAuthenticationToken");
        let challenge = a.header("www-authenticate");
        assert_eq!(
            challenge,
            format!(
                "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                w.env.emulator.base_url()
            )
        );
    }

    // bob consented to Graph User.Read only: reading and sending are denied.
    let bob = sign_in(
        &w,
        "bob@example.test",
        "https://outlook.office.com/SMTP.Send offline_access",
    )
    .await;
    let bob_graph = refresh(&w.env.emulator, refresh_token(&bob), "User.Read").await;
    let bob_graph = access_token(&bob_graph).to_string();
    assert_eq!(g.get("/me", &bob_graph).await.status, 200);
    let a = g.get("/me/messages", &bob_graph).await;
    assert_graph_error(&a, 403, "ErrorAccessDenied");
    assert_eq!(
        a.json()["error"]["message"],
        "Access is denied. Check credentials and try again."
    );
    assert_graph_error(
        &g.mime(
            "/me/sendMail",
            &bob_graph,
            b"To: alice@example.test\r\nSubject: x\r\n\r\nx\r\n",
        )
        .await,
        403,
        "ErrorAccessDenied",
    );
    // Without consent to Graph mail, the refresh token gets no Graph mail token.
    let r = refresh(&w.env.emulator, refresh_token(&bob), GRAPH_MAIL).await;
    assert_eq!(r["error"], "invalid_grant", "{r}");
    assert_eq!(r["error_codes"], json!([65001]), "{r}");

    // Delegated send as the shared mailbox alice has FullAccess to.
    g.send_mime(
        "/users/sales@example.test/sendMail",
        &alice,
        b"From: Sales <sales@example.test>\r\nTo: alice@example.test\r\nSubject: graph shared delegated\r\n\r\nfrom sales\r\n",
    )
    .await;
    g.arrived(&alice, "inbox", "graph shared delegated").await;
    // Another user's mailbox without FullAccess.
    g.get_refused(
        "/users/bob@example.test/messages",
        &alice,
        403,
        "ErrorAccessDenied",
    )
    .await;
    g.get_refused(
        "/users/nobody@example.test/messages",
        &alice,
        404,
        "ErrorInvalidUser",
    )
    .await;

    // App-only: Graph roles, send as the shared mailbox, the access policy (RAOP).
    let app = graph_app_token(&w.env.emulator).await;
    let app = access_token(&app).to_string();
    let c = claims(&app);
    assert_eq!(c["roles"], json!(["Mail.Send", "Mail.ReadWrite"]), "{c}");
    g.get_refused("/me", &app, 400, "BadRequest").await;
    let a = g
        .post(
            "/users/sales@example.test/sendMail",
            &app,
            json!({"message": {"subject": "graph shared app",
                "body": {"contentType": "Text", "content": "app-only"},
                "toRecipients": [{"emailAddress": {"address": "alice@example.test"}}]}}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text());
    let id = g.arrived(&alice, "inbox", "graph shared app").await;
    let m = g.get(&format!("/me/messages/{id}"), &alice).await.json();
    assert_eq!(m["from"]["emailAddress"]["address"], "sales@example.test");
    let sent = g
        .get(
            "/users/sales@example.test/mailFolders/sentitems/messages?$select=subject",
            &app,
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert!(sent.text().contains("graph shared app"));
    for (method, path) in [
        (Method::POST, "/users/bob@example.test/sendMail"),
        (Method::GET, "/users/bob@example.test/messages"),
    ] {
        let body = (method == Method::POST).then(|| {
            json!({"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": "alice@example.test"}}]}})
        });
        let a = g.call(method, path, &app, body).await;
        assert_graph_error(&a, 403, "ErrorAccessDenied");
        assert_eq!(
            a.json()["error"]["message"],
            "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
        );
    }

    // A mailbox not enabled for REST.
    let mut alice_cfg = w.env.emulator.user("alice@example.test").unwrap();
    alice_cfg.rest_enabled = false;
    w.env.emulator.put_user(alice_cfg);
    g.get_refused("/me/messages", &alice, 404, "MailboxNotEnabledForRESTAPI")
        .await;
    assert_eq!(
        g.get("/me", &alice).await.status,
        200,
        "the profile is not the mailbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_a_lost_answer_after_send_mail() {
    let (w, g, token, _) = alice_world().await;
    w.env.emulator.set_graph_settings(GraphSettings {
        throttle: Some(GraphThrottle {
            requests: 2,
            retry_after_secs: 7,
            send_mail_only: true,
            ..GraphThrottle::default()
        }),
        ..GraphSettings::default()
    });
    let msg = |s: &str| format!("To: alice@example.test\r\nSubject: {s}\r\n\r\nx\r\n").into_bytes();
    assert_eq!(
        g.get("/me/messages", &token).await.status,
        200,
        "reads pass"
    );
    for _ in 0..2 {
        let a = g.mime("/me/sendMail", &token, &msg("throttled")).await;
        assert_graph_error(&a, 429, "ApplicationThrottled");
        assert_eq!(a.header("retry-after"), "7");
    }
    g.send_mime("/me/sendMail", &token, &msg("after throttling"))
        .await;
    assert_eq!(
        w.env.emulator.graph_settings().throttle,
        None,
        "the switch ran out"
    );
    w.env.emulator.set_graph_settings(GraphSettings {
        throttle: Some(GraphThrottle {
            requests: 1,
            status: 503,
            retry_after_secs: 3,
            ..GraphThrottle::default()
        }),
        ..GraphSettings::default()
    });
    let a = g.get("/me/messages", &token).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), "3");

    // The answer is lost, the message is not: submitted exactly once.
    w.env.emulator.set_graph_settings(GraphSettings {
        lose_send_answers: 1,
        ..GraphSettings::default()
    });
    let before = w.env.emulator.stats().graph_messages_submitted;
    let lost = g
        .try_post_text(
            "/me/sendMail",
            &token,
            STANDARD.encode(msg("graph lost answer")).into_bytes(),
        )
        .await;
    assert!(lost.is_err(), "no answer: {:?}", lost.map(|a| a.status));
    assert_eq!(w.env.emulator.stats().graph_messages_submitted, before + 1);
    g.arrived(&token, "inbox", "graph lost answer").await;
    let copies = g
        .subjects(&token, "inbox")
        .await
        .into_iter()
        .filter(|(s, _)| s == "graph lost answer")
        .count();
    assert_eq!(copies, 1);
    assert_eq!(w.env.emulator.graph_settings().lose_send_answers, 0);
    let a = g.mime("/me/sendMail", &token, &msg("answered again")).await;
    assert_eq!(a.status, 202);
}

/// An SMTP session to `port` with STARTTLS and `AUTH XOAUTH2` (two steps, or one line): the
/// final AUTH reply.
async fn smtp_auth(
    stack: &MailStack,
    port: (u16, bool),
    user: &str,
    token: &str,
    one_line: bool,
) -> String {
    let (port, implicit) = port;
    async fn reply<S: tokio::io::AsyncRead + Unpin>(io: &mut BufReader<S>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            io.read_line(&mut line).await.unwrap();
            assert!(!line.is_empty(), "closed after: {all}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut stack.ca_pem().as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    if !implicit {
        let mut io = BufReader::new(tcp);
        assert!(reply(&mut io).await.starts_with("220"));
        io.get_mut().write_all(b"EHLO test\r\n").await.unwrap();
        assert!(reply(&mut io).await.contains("STARTTLS"));
        io.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
        assert!(reply(&mut io).await.starts_with("220"));
        tcp = io.into_inner();
    }
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut io = BufReader::new(tls);
    if implicit {
        assert!(reply(&mut io).await.starts_with("220"));
    }

    io.get_mut().write_all(b"EHLO test\r\n").await.unwrap();
    assert!(reply(&mut io).await.contains("XOAUTH2"));
    let ir = STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
    let r = if one_line {
        io.get_mut()
            .write_all(format!("AUTH XOAUTH2 {ir}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut io).await
    } else {
        io.get_mut().write_all(b"AUTH XOAUTH2\r\n").await.unwrap();
        assert!(reply(&mut io).await.starts_with("334"));
        io.get_mut()
            .write_all(format!("{ir}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut io).await
    };
    let r = if r.starts_with("334") {
        io.get_mut().write_all(b"\r\n").await.unwrap();
        reply(&mut io).await
    } else {
        r
    };
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    r.trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_auth_switch_answers_5_7_139_on_the_submission_port() {
    let (w, g, alice_graph, alice) = alice_world().await;
    let bob = sign_in(
        &w,
        "bob@example.test",
        "https://outlook.office.com/SMTP.Send offline_access",
    )
    .await;
    let bob = access_token(&bob).to_string();
    let front = (w.front.smtp_starttls, false);
    assert_eq!(
        smtp_auth(&w.stack, front, "alice@example.test", &alice, false).await,
        "235 2.7.0 Authentication successful",
        "the front relays Postfix's answer"
    );
    let user = |upn: &str| w.env.emulator.user(upn).unwrap();
    let mut a = user("alice@example.test");
    a.smtp_client_authentication_disabled = Some(true);
    w.env.emulator.put_user(a);
    for one_line in [false, true] {
        assert_eq!(
            smtp_auth(&w.stack, front, "alice@example.test", &alice, one_line).await,
            mailconnect_sandbox::DISABLED_MAILBOX
        );
    }
    assert_eq!(
        smtp_auth(&w.stack, front, "bob@example.test", &bob, false).await,
        "235 2.7.0 Authentication successful",
        "another mailbox still authenticates"
    );
    // A bad token is still Postfix's answer.
    assert!(
        smtp_auth(&w.stack, front, "bob@example.test", "nope", false)
            .await
            .starts_with("535 5.7.8")
    );
    // Graph is not affected by the switch.
    g.send_mime(
        "/me/sendMail",
        &alice_graph,
        b"To: bob@example.test\r\nSubject: graph while smtp off\r\n\r\nx\r\n",
    )
    .await;

    // The tenant switch, and a mailbox that overrides it.
    let mut t = w
        .env
        .emulator
        .config()
        .tenants
        .into_iter()
        .find(|t| t.id == TENANT)
        .unwrap();
    t.smtp_client_authentication_disabled = true;
    w.env.emulator.put_tenant(t);
    assert_eq!(
        smtp_auth(&w.stack, front, "bob@example.test", &bob, false).await,
        mailconnect_sandbox::DISABLED_TENANT
    );
    assert_eq!(
        smtp_auth(
            &w.stack,
            (w.front.smtp_tls, true),
            "bob@example.test",
            &bob,
            true
        )
        .await,
        mailconnect_sandbox::DISABLED_TENANT,
        "implicit TLS port"
    );
    let mut b = user("bob@example.test");
    b.smtp_client_authentication_disabled = Some(false);
    w.env.emulator.put_user(b);
    assert_eq!(
        smtp_auth(&w.stack, front, "bob@example.test", &bob, false).await,
        "235 2.7.0 Authentication successful"
    );
}

async fn unread(g: &Graph, token: &str) -> u64 {
    let v = g
        .get(
            "/me/mailFolders/inbox/messages?$filter=isRead eq false&$count=true&$top=1",
            token,
        )
        .await
        .json();
    v["@odata.count"].as_u64().unwrap_or_else(|| panic!("{v}"))
}
