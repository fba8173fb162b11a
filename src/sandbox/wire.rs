//! What the gateway and a render worker say to each other over the worker's stdin and
//! stdout: length-prefixed frames, JSON for the small structured parts and raw bytes for
//! bodies (a webhook body goes to the worker exactly as it arrived) and for a composed
//! message's title and text, the bulk of every answer: as JSON strings they were escaped by
//! the worker and unescaped by the gateway, a seventh of the gateway's share of a job.

use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{PayloadError, Status};
use crate::channel::{Button, Channel, Mention, MessageKind};
use crate::compose::{Composed, Cut};
use crate::preview::{Preview, PreviewError};
use crate::render::{Part, RenderError};
use crate::state::Identity;

/// Frames longer than this are refused: webhook bodies are capped well below it.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// One piece of work for a worker; a frame of raw bytes (the body, possibly empty) follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Job {
    /// Parse a webhook body and compose the profile's message within `cap` bytes, with the
    /// built-in templates when `builtin` (the profile's passed a bound).
    Compose {
        profile: String,
        #[serde(with = "chrono::serde::ts_nanoseconds")]
        now: DateTime<Utc>,
        cap: usize,
        builtin: bool,
    },
    /// Build a preview from a preview request body; `template` and `sample` come from the
    /// query string and count when the body names none.
    Preview {
        profile: String,
        #[serde(with = "chrono::serde::ts_nanoseconds")]
        now: DateTime<Utc>,
        template: Option<String>,
        sample: Option<String>,
    },
    /// Render one part of a profile against the built-in samples.
    SelfTest {
        profile: String,
        part: Part,
        #[serde(with = "chrono::serde::ts_nanoseconds")]
        now: DateTime<Utc>,
    },
}

/// A worker's answer to one [`Job`]. On the wire (see [`write_reply`]) a composed message is
/// a small JSON head and its title and text as raw frames; any other answer is JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The composed message, and what the webhook answer reports of the payload.
    Composed {
        alerts: usize,
        status: Status,
        /// What makes it the same notification as another (duplicate suppression).
        identity: Identity,
        composed: Box<Composed>,
    },
    /// The webhook body is not an Alertmanager payload.
    BadPayload(PayloadError),
    /// Neither the profile's template nor the built-in one rendered.
    Render(RenderError),
    /// A preview, or why none could be made.
    Preview(Result<Box<Preview>, PreviewError>),
    /// The self-test's outcome.
    SelfTest(Result<(), RenderError>),
    /// The job panicked (a bug of ours or of a library); the worker carries on.
    Panicked(String),
}

/// Writes one frame.
pub(crate) fn write_frame(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(&frame_len(bytes.len())?)?;
    out.write_all(bytes)
}

/// Reads one frame; `Ok(None)` at a clean end of input.
pub(crate) fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    match read_len(input)? {
        Some(len) => read_body(input, len).map(Some),
        None => Ok(None),
    }
}

/// Reads a frame's length, so the reader can make room before it takes the rest;
/// `Ok(None)` at a clean end of input.
pub(crate) fn read_len(input: &mut impl Read) -> io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    Ok(Some(len))
}

/// Reads the `len` bytes of a frame after its length.
pub(crate) fn read_body(input: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; len];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Appends a job's frame and its body's length, so the body's bytes can follow in the same
/// write.
pub(crate) fn put_job(out: &mut Vec<u8>, job: &Job, body_len: usize) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, job).map_err(io::Error::other)?;
    let len = frame_len(out.len() - start - 4)?;
    out[start..start + 4].copy_from_slice(&len);
    out.extend_from_slice(&frame_len(body_len)?);
    Ok(())
}

fn frame_len(len: usize) -> io::Result<[u8; 4]> {
    u32::try_from(len)
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .map(u32::to_le_bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))
}

/// The first byte of a reply's first frame: a composed message's head, two raw frames
/// (title, text) following.
const COMPOSED: u8 = b'C';
/// The first byte of a reply's only frame: the rest is the [`Reply`] as JSON.
const JSON: u8 = b'J';

/// A composed message but for its title and text, as the worker sends it.
#[derive(Serialize)]
struct HeadOut<'a> {
    alerts: usize,
    status: Status,
    identity: Identity,
    channel: Channel,
    kind: &'a MessageKind,
    mention: &'a Mention,
    mentions_skipped: usize,
    message_status: Status,
    link: &'a str,
    buttons: &'a [Button],
    buttons_left_out: &'a [String],
    omitted: usize,
    cut: Cut,
    fallback: &'a Option<RenderError>,
}

/// The same, as the gateway reads it.
#[derive(Deserialize)]
struct HeadIn {
    alerts: usize,
    status: Status,
    identity: Identity,
    channel: Channel,
    kind: MessageKind,
    mention: Mention,
    mentions_skipped: usize,
    message_status: Status,
    link: String,
    #[serde(default)]
    buttons: Vec<Button>,
    #[serde(default)]
    buttons_left_out: Vec<String>,
    omitted: usize,
    cut: Cut,
    fallback: Option<RenderError>,
}

/// Writes a worker's answer (the worker flushes it as one write).
pub(crate) fn write_reply(out: &mut impl Write, reply: &Reply) -> io::Result<()> {
    let mut head = Vec::with_capacity(256);
    match reply {
        Reply::Composed {
            alerts,
            status,
            identity,
            composed,
        } => {
            // Every field named: one added to `Composed` must be added to the head too.
            let Composed {
                channel,
                kind,
                title,
                text,
                mention,
                mentions_skipped,
                status: message_status,
                link,
                buttons,
                buttons_left_out,
                omitted,
                cut,
                fallback,
            } = &**composed;
            head.push(COMPOSED);
            let fields = HeadOut {
                alerts: *alerts,
                status: *status,
                identity: *identity,
                channel: *channel,
                kind,
                mention,
                mentions_skipped: *mentions_skipped,
                message_status: *message_status,
                link,
                buttons,
                buttons_left_out,
                omitted: *omitted,
                cut: *cut,
                fallback,
            };
            serde_json::to_writer(&mut head, &fields).map_err(io::Error::other)?;
            write_frame(out, &head)?;
            write_frame(out, title.as_bytes())?;
            write_frame(out, text.as_bytes())
        }
        other => {
            head.push(JSON);
            serde_json::to_writer(&mut head, other).map_err(io::Error::other)?;
            write_frame(out, &head)
        }
    }
}

/// Reads a worker's answer to a job from its stdout. The end of input is an error: the
/// worker died.
pub(crate) fn read_reply(input: &mut impl Read) -> io::Result<Reply> {
    let head = read_whole_frame(input)?;
    match head.split_first() {
        Some((&COMPOSED, head)) => {
            let head: HeadIn = serde_json::from_slice(head).map_err(io::Error::other)?;
            let title = read_text(input)?;
            let text = read_text(input)?;
            Ok(Reply::Composed {
                alerts: head.alerts,
                status: head.status,
                identity: head.identity,
                composed: Box::new(Composed {
                    channel: head.channel,
                    kind: head.kind,
                    title,
                    text,
                    mention: head.mention,
                    mentions_skipped: head.mentions_skipped,
                    status: head.message_status,
                    link: head.link,
                    buttons: head.buttons,
                    buttons_left_out: head.buttons_left_out,
                    omitted: head.omitted,
                    cut: head.cut,
                    fallback: head.fallback,
                }),
            })
        }
        Some((&JSON, json)) => serde_json::from_slice(json).map_err(io::Error::other),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a worker's answer",
        )),
    }
}

fn read_text(input: &mut impl Read) -> io::Result<String> {
    crate::utf8::string(read_whole_frame(input)?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a text that is not UTF-8"))
}

/// Reads one frame; the end of input is an error.
fn read_whole_frame(input: &mut impl Read) -> io::Result<Vec<u8>> {
    read_frame(input)?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written_and_the_end_of_input_is_none() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut input = buf.as_slice();
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"hello");
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"");
        assert!(read_frame(&mut input).unwrap().is_none());
    }

    #[test]
    fn a_frame_cut_short_is_an_error_not_a_short_read() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        buf.truncate(6);
        assert!(read_frame(&mut buf.as_slice()).is_err());
    }

    #[test]
    fn a_composed_message_and_any_other_answer_read_back_as_written() {
        let composed = Composed {
            channel: Channel::Feishu,
            kind: MessageKind::Card,
            title: "[FIRING:1] \"quoted\" ✓".into(),
            text: "line\nnext \\ <font color=\"red\">x</font>".into(),
            mention: Mention {
                all: true,
                ..Mention::default()
            },
            mentions_skipped: 3,
            buttons: vec![Button {
                title: "静默".into(),
                url: "http://am/#/silences/new?filter=%7B%7D".into(),
            }],
            buttons_left_out: vec!["button \"x\" is left out".into()],
            status: Status::Firing,
            link: "http://am:9093/\"x".into(),
            omitted: 2,
            cut: Cut {
                title: Some(600),
                text: None,
            },
            fallback: None,
        };
        let replies = [
            Reply::Composed {
                alerts: 3,
                status: Status::Resolved,
                identity: Identity([7; 32]),
                composed: Box::new(composed.clone()),
            },
            Reply::Panicked("boom".into()),
        ];
        let mut out = Vec::new();
        for reply in &replies {
            write_reply(&mut out, reply).unwrap();
        }
        let mut input = out.as_slice();
        match read_reply(&mut input).unwrap() {
            Reply::Composed {
                alerts: 3,
                status: Status::Resolved,
                identity,
                composed: read,
            } => {
                assert_eq!(*read, composed);
                assert_eq!(identity, Identity([7; 32]));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read_reply(&mut input).unwrap(), Reply::Panicked(m) if m == "boom"));
        assert!(read_reply(&mut input).is_err());
    }

    #[test]
    fn a_job_put_for_one_write_reads_back_as_a_job_and_its_body() {
        let job = Job::SelfTest {
            profile: "p".into(),
            part: Part::Body,
            now: DateTime::UNIX_EPOCH,
        };
        let mut out = Vec::new();
        put_job(&mut out, &job, 3).unwrap();
        out.extend_from_slice(b"abc");
        let mut input = out.as_slice();
        let read: Job = serde_json::from_slice(&read_frame(&mut input).unwrap().unwrap()).unwrap();
        assert!(matches!(read, Job::SelfTest { profile, .. } if profile == "p"));
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"abc");
    }
}
