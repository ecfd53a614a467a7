//! The answer to one `UID FETCH`, read straight from the connection.
//!
//! async-imap's `uid_fetch` is correct but costly for bulk reads, and the bulk read is what a mail
//! import does. Per response it takes its 4 KiB read buffer away, allocates a new zeroed one and
//! copies what follows the response into it, boxes a future, and each `Fetch` keeps its own block
//! until the caller has collected them all: 10,000 small messages cost 10,000 allocations, about
//! 20 MB of copying and zeroing, and 40 MB held at once (profile in BENCHMARKS.md, issue 18).
//!
//! Here the command is written on the session's stream with a tag of its own, and the answer is
//! parsed in place with the parser async-imap uses (imap-proto) from one buffer that is compacted
//! once per read and grows only for a literal larger than it. Each message's bytes are copied
//! once, into the [`Message`] handed to the caller. Untagged answers other than `FETCH` (`EXISTS`,
//! `EXPUNGE`, `FLAGS`, ...) are skipped, as async-imap's unsolicited channel, which nothing here
//! reads, would hold them. A `BYE`, the end of the stream, a `NO`/`BAD` for the tag, or bytes that
//! are not IMAP end the read with an error; the caller then drops the session (it may be in the
//! middle of an answer).

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::{AttributeValue, MessageSection, Response, SectionPath, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::imap::Message;

/// The buffer's size at the start: a read takes up to this much from the TLS layer.
const FIRST: usize = 64 * 1024;
/// The largest single answer accepted (async-imap's limit too).
const MAX: usize = 512 * 1024 * 1024;

/// What of each message is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `BODY[]`: the whole message.
    Whole,
    /// `BODY[HEADER]`.
    Header,
}

/// Send `{tag} UID FETCH {set} {items}` and read the answer up to the tagged completion.
pub(crate) async fn uid_fetch<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    tag: &str,
    set: &str,
    items: &str,
    part: Part,
) -> Result<Vec<Message>, ImapError> {
    let command = format!("{tag} UID FETCH {set} {items}\r\n");
    io.write_all(command.as_bytes()).await?;
    io.flush().await?;
    read_answer(io, tag, part).await
}

/// Read untagged `FETCH` answers until the completion tagged `tag`.
pub(crate) async fn read_answer<S: AsyncRead + Unpin>(
    io: &mut S,
    tag: &str,
    part: Part,
) -> Result<Vec<Message>, ImapError> {
    let mut buf = vec![0u8; FIRST];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::new();
    loop {
        // Every whole answer in the buffer. A partial one (a literal not all here yet) costs
        // one parse of its first line per read.
        loop {
            let (used, done) = match Response::parse(&buf[start..end]) {
                Ok((rest, response)) => {
                    let used = (end - start) - rest.len();
                    match response {
                        Response::Fetch(_, attributes) => {
                            if let Some(m) = message(&attributes, part) {
                                out.push(m);
                            }
                            (used, None)
                        }
                        Response::Done {
                            tag: t,
                            status,
                            outcome,
                        } if t.0 == tag => {
                            let text = outcome.information.as_deref().unwrap_or("").to_string();
                            (
                                used,
                                Some(match status {
                                    Status::Ok => Ok(()),
                                    Status::No => Err(ImapError::No(text)),
                                    _ => Err(ImapError::Bad(text)),
                                }),
                            )
                        }
                        Response::Data {
                            status: Status::Bye,
                            ..
                        } => (used, Some(Err(ImapError::ConnectionLost))),
                        _ => (used, None),
                    }
                }
                Err(e) if e.is_incomplete() => break,
                Err(_) => {
                    let shown = buf[start..end.min(start + 200)].to_vec();
                    return Err(ImapError::Parse(async_imap::error::ParseError::Invalid(
                        shown,
                    )));
                }
            };
            start += used;
            match done {
                Some(Ok(())) => return Ok(out),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        // More bytes: move what is left to the front, grow when it fills the buffer, read.
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            if buf.len() >= MAX {
                return Err(ImapError::Io(std::io::Error::other(
                    "an answer larger than 512 MiB",
                )));
            }
            let size = buf.len().saturating_mul(2).min(MAX);
            buf.resize(size, 0);
        }
        let n = io.read(&mut buf[end..]).await?;
        if n == 0 {
            return Err(ImapError::ConnectionLost);
        }
        end += n;
    }
}

/// The message in one `FETCH` answer, without a UID: `None` (a server's flag update for a
/// message, not one asked for).
fn message(attributes: &[AttributeValue<'_>], part: Part) -> Option<Message> {
    let mut uid = None;
    let mut size = None;
    let mut flags = Vec::new();
    let mut internal_date = None;
    let mut data: Option<&[u8]> = None;
    for a in attributes {
        match a {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::Rfc822Size(s) => size = Some(*s),
            AttributeValue::Flags(fl) => {
                flags.extend(
                    fl.iter()
                        .map(|f| format!("{:?}", async_imap::types::Flag::from(f.as_ref()))),
                );
            }
            AttributeValue::InternalDate(d) => internal_date = rfc3339(d),
            AttributeValue::BodySection {
                section,
                data: Some(d),
                ..
            } if data.is_none() => {
                let wanted = match part {
                    Part::Whole => section.is_none(),
                    Part::Header => {
                        matches!(section, Some(SectionPath::Full(MessageSection::Header)))
                    }
                };
                if wanted {
                    data = Some(d);
                }
            }
            AttributeValue::Rfc822(Some(d)) if part == Part::Whole && data.is_none() => {
                data = Some(d);
            }
            AttributeValue::Rfc822Header(Some(d)) if part == Part::Header && data.is_none() => {
                data = Some(d);
            }
            _ => {}
        }
    }
    Some(Message {
        uid: uid?,
        size,
        flags,
        internal_date,
        data: data.map(<[u8]>::to_vec).unwrap_or_default(),
    })
}

/// An IMAP `date-time` (` 3-Dec-2026 10:00:00 +0100`) in RFC 3339 (`2026-12-03T10:00:00+01:00`);
/// `None` when it is not a valid one.
pub(crate) fn rfc3339(s: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let (date, rest) = s.trim_start().split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut d = date.split('-');
    let day: u8 = d.next()?.parse().ok()?;
    let month_name = d.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| *m == month_name)? as u8 + 1;
    let year_text = d.next()?;
    if d.next().is_some() || year_text.len() != 4 {
        return None;
    }
    let year: i32 = year_text.parse().ok()?;
    let mut t = time.split(':');
    let mut field = || -> Option<u8> {
        let f = t.next()?;
        (f.len() == 2).then_some(())?;
        f.parse().ok()
    };
    let (hour, minute, second) = (field()?, field()?, field()?);
    if t.next().is_some() {
        return None;
    }
    let zone = zone.trim_end().as_bytes();
    if zone.len() != 5
        || !matches!(zone[0], b'+' | b'-')
        || !zone[1..].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let (zh, zm) = (
        (zone[1] - b'0') * 10 + (zone[2] - b'0'),
        (zone[3] - b'0') * 10 + (zone[4] - b'0'),
    );
    // Validity as chrono checked it: a real calendar day, a real time, an offset under 24 h.
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    time::Time::from_hms(hour, minute, second).ok()?;
    if zh > 23 || zm > 59 {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}{zh:02}:{zm:02}",
        zone[0] as char
    ))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    /// A server's bytes, delivered in pieces of at most `chunk` bytes.
    struct Chunked {
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self
                .chunk
                .min(buf.remaining())
                .min(self.data.len() - self.pos);
            let pos = self.pos;
            buf.put_slice(&self.data[pos..pos + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    fn read(data: &[u8], chunk: usize, part: Part) -> Result<Vec<Message>, ImapError> {
        let mut s = Chunked {
            data: data.to_vec(),
            pos: 0,
            chunk,
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read_answer(&mut s, "mc7", part))
    }

    fn answer(n: usize, body_len: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        let mut bodies = Vec::new();
        out.extend_from_slice(b"* 3 EXISTS\r\n");
        for i in 1..=n {
            let mut body = format!("Subject: m{i}\r\n\r\n").into_bytes();
            while body.len() < body_len {
                body.push(b'a' + (i % 26) as u8);
            }
            out.extend_from_slice(
                format!(
                    "* {i} FETCH (UID {} RFC822.SIZE {} FLAGS (\\Seen $Label1) INTERNALDATE \" 3-Dec-2026 10:0{}:00 +0100\" BODY[] {{{}}}\r\n",
                    i + 100,
                    body.len(),
                    i % 10,
                    body.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(&body);
            out.extend_from_slice(b")\r\n");
            bodies.push(body);
        }
        out.extend_from_slice(b"* 2 FETCH (FLAGS (\\Deleted))\r\n");
        out.extend_from_slice(b"mc7 OK Fetch completed.\r\n");
        (out, bodies)
    }

    #[test]
    fn every_message_arrives_whatever_the_reads_look_like() {
        let (data, bodies) = answer(40, 300);
        for chunk in [1, 2, 7, 64, 1000, 1 << 20] {
            let got = read(&data, chunk, Part::Whole).unwrap();
            assert_eq!(got.len(), 40, "chunk {chunk}");
            for (i, m) in got.iter().enumerate() {
                assert_eq!(m.uid, i as u32 + 101);
                assert_eq!(m.size, Some(bodies[i].len() as u32));
                assert_eq!(m.data, bodies[i]);
                assert_eq!(m.flags, vec!["Seen", "Custom(\"$Label1\")"]);
                assert_eq!(
                    m.internal_date.as_deref(),
                    Some(format!("2026-12-03T10:0{}:00+01:00", (i + 1) % 10).as_str())
                );
            }
        }
    }

    #[test]
    fn a_literal_larger_than_the_buffer_grows_it() {
        let (data, bodies) = answer(3, 3 * FIRST + 17);
        for chunk in [4096, 1 << 20] {
            let got = read(&data, chunk, Part::Whole).unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(got[2].data, bodies[2]);
        }
    }

    #[test]
    fn headers_only_keeps_the_header_section() {
        let data = b"* 1 FETCH (UID 9 BODY[HEADER] {12}\r\nSubject: x\r\n)\r\nmc7 OK done\r\n";
        let got = read(data, 5, Part::Header).unwrap();
        assert_eq!(got[0].data, b"Subject: x\r\n");
        assert_eq!(got[0].internal_date, None);
        // Asked for the whole message, a header section is not it.
        assert!(read(data, 5, Part::Whole).unwrap()[0].data.is_empty());
    }

    #[test]
    fn refusals_and_broken_answers_are_errors() {
        let no = read(
            b"* 1 FETCH (UID 9)\r\nmc7 NO [SERVERBUG] Internal error\r\n",
            3,
            Part::Whole,
        );
        assert!(
            matches!(&no, Err(ImapError::No(t)) if t == "[SERVERBUG] Internal error"),
            "{no:?}"
        );
        assert!(matches!(
            read(b"mc7 BAD Error in IMAP command\r\n", 100, Part::Whole),
            Err(ImapError::Bad(_))
        ));
        // Another tag's completion is not ours: the stream then ends.
        assert!(matches!(
            read(b"A1 OK other\r\n", 100, Part::Whole),
            Err(ImapError::ConnectionLost)
        ));
        assert!(matches!(
            read(b"* BYE shutting down\r\n", 100, Part::Whole),
            Err(ImapError::ConnectionLost)
        ));
        assert!(matches!(
            read(b"* 1 FETCH (UID 9 BODY[] {5}\r\nab", 1, Part::Whole),
            Err(ImapError::ConnectionLost)
        ));
        assert!(matches!(
            read(b"\x00\x01garbage\r\n", 100, Part::Whole),
            Err(ImapError::Parse(_))
        ));
        // A literal announced above the limit, cut short: an error, nothing allocated for it.
        let huge = format!("* 1 FETCH (UID 9 BODY[] {{{}}}\r\nab", MAX + 1);
        assert!(read(huge.as_bytes(), 100, Part::Whole).is_err());
    }

    #[test]
    fn internal_dates_as_chrono_read_them() {
        assert_eq!(
            rfc3339(" 3-Dec-2026 10:00:00 +0000").as_deref(),
            Some("2026-12-03T10:00:00+00:00")
        );
        assert_eq!(
            rfc3339("17-jul-1996 02:44:25 -0700").as_deref(),
            Some("1996-07-17T02:44:25-07:00")
        );
        for bad in [
            "31-Feb-2026 10:00:00 +0000",
            "3-Dec-2026 24:00:00 +0000",
            "3-Dec-2026 10:00:00 0000",
            "3-Dez-2026 10:00:00 +0000",
            "3-Dec-26 10:00:00 +0000",
            "3-Dec-2026 10:00 +0000",
            "",
            "garbage",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }
}
