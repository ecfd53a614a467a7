//! Submission to the real Postfix as the mailbox (STARTTLS, AUTH XOAUTH2 with the internal
//! Exchange token), as Exchange hands a Graph message to transport.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::backend::{xoauth2, Stack};
use super::errors::{
    internal, invalid_recipients, message_size_exceeded, store_unavailable, GraphError,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// An SMTP reply: code and text lines.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

async fn read_reply<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Reply, GraphError> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(|e| store_unavailable(&format!("SMTP read: {e}")))?;
        if n == 0 {
            return Err(store_unavailable("the SMTP server closed the connection"));
        }
        let line = line.trim_end().to_string();
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| internal(&format!("SMTP answer '{line}'")))?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(Reply { code, lines });
        }
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    line: &str,
) -> Result<Reply, GraphError> {
    send(io, format!("{line}\r\n").as_bytes()).await?;
    read_reply(io).await
}

/// Write `bytes` and flush.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    bytes: &[u8],
) -> Result<(), GraphError> {
    let w = io.get_mut();
    async {
        w.write_all(bytes).await?;
        w.flush().await
    }
    .await
    .map_err(|e| store_unavailable(&format!("SMTP write: {e}")))
}

fn expect(r: Reply, want: u16, what: &str) -> Result<Reply, GraphError> {
    if r.code == want {
        Ok(r)
    } else {
        Err(internal(&format!("SMTP {what}: {}", r.text())))
    }
}

/// `data` with CRLF line ends, dot-stuffed, ending in `CRLF.CRLF`.
pub(crate) fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 50 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Submit `data` from `from` to `rcpts`, logged in as `login` (the mailbox) with `token`.
pub(crate) async fn submit(
    stack: &Stack,
    login: &str,
    token: &str,
    from: &str,
    rcpts: &[String],
    data: &[u8],
) -> Result<(), GraphError> {
    let tcp = stack.tcp_connect(stack.cfg.smtp_starttls).await?;
    let mut io = BufReader::new(tcp);
    expect(read_reply(&mut io).await?, 220, "greeting")?;
    expect(command(&mut io, "EHLO graph.sandbox").await?, 250, "EHLO")?;
    expect(command(&mut io, "STARTTLS").await?, 220, "STARTTLS")?;
    let tls = stack.tls_over(io.into_inner()).await?;
    let mut io = BufReader::new(tls);
    let ehlo = expect(command(&mut io, "EHLO graph.sandbox").await?, 250, "EHLO")?;
    let eight_bit = ehlo.lines.iter().any(|l| l.contains("8BITMIME"));
    // Two steps: Postfix refuses one-line initial responses over 2,048 characters.
    expect(command(&mut io, "AUTH XOAUTH2").await?, 334, "AUTH")?;
    let auth = command(&mut io, &STANDARD.encode(xoauth2(login, token))).await?;
    if auth.code == 334 {
        let _ = command(&mut io, "").await;
        return Err(store_unavailable(&format!(
            "the mail stack refused the emulator's token for {login}"
        )));
    }
    expect(auth, 235, "AUTH")?;
    let body = if eight_bit { " BODY=8BITMIME" } else { "" };
    let r = command(
        &mut io,
        &format!("MAIL FROM:<{from}>{body} SIZE={}", data.len()),
    )
    .await?;
    if r.code == 552 {
        return Err(message_size_exceeded());
    }
    expect(r, 250, "MAIL FROM")?;
    for rcpt in rcpts {
        let r = command(&mut io, &format!("RCPT TO:<{rcpt}>")).await?;
        if r.code / 100 != 2 {
            let _ = command(&mut io, "RSET").await;
            return Err(invalid_recipients(&format!("{rcpt}: {}", r.text())));
        }
    }
    expect(command(&mut io, "DATA").await?, 354, "DATA")?;
    send(&mut io, &dot_stuff(data)).await?;
    let r = read_reply(&mut io).await?;
    if r.code == 552 {
        return Err(message_size_exceeded());
    }
    expect(r, 250, "end of DATA")?;
    let _ = command(&mut io, "QUIT").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dot_stuff;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x\nb"), b"..x\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\r\n"), b"a\r\n.\r\n");
    }
}
