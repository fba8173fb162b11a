//! What the gateway and a render worker say to each other over the worker's stdin and
//! stdout: length-prefixed frames, JSON for the small structured parts and raw bytes for
//! bodies (a webhook body goes to the worker exactly as it arrived).

use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{PayloadError, Status};
use crate::compose::Composed;
use crate::preview::{Preview, PreviewError};
use crate::render::{Part, RenderError};

/// Frames longer than this are refused: webhook bodies are capped well below it.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// One piece of work for a worker; a frame of raw bytes (the body, possibly empty) follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Job {
    /// Parse a webhook body and compose the profile's message within `cap` bytes, with the
    /// built-in templates when `builtin` (the profile's passed a bound).
    Compose {
        profile: String,
        now: DateTime<Utc>,
        cap: usize,
        builtin: bool,
    },
    /// Build a preview from a preview request body; `template` and `sample` come from the
    /// query string and count when the body names none.
    Preview {
        profile: String,
        now: DateTime<Utc>,
        template: Option<String>,
        sample: Option<String>,
    },
    /// Render one part of a profile against the built-in samples.
    SelfTest {
        profile: String,
        part: Part,
        now: DateTime<Utc>,
    },
}

/// A worker's answer to one [`Job`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The composed message, and what the webhook answer reports of the payload.
    Composed {
        alerts: usize,
        status: Status,
        composed: Composed,
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
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    out.write_all(&len.to_le_bytes())?;
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
}
