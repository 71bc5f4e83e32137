//! Reading a request body under a size limit and a time limit. An oversized
//! body is refused as soon as its declared length (Content-Length, as hyper
//! parsed it) or its streamed bytes pass the limit, never after buffering all of it.

use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::error::IngestError;

/// Reads the whole body, at most `limit` bytes, by `deadline` (an instant
/// rather than a duration: the caller has the clock reading already).
pub(super) async fn read_limited<B>(body: B, limit: u64, deadline: Instant) -> Result<Bytes, IngestError>
where
    B: Body<Data = Bytes> + Unpin,
{
    // hyper parsed Content-Length already (and refused a malformed one); a chunked body has none.
    let declared = body.size_hint().exact();
    if declared.is_some_and(|length| length > limit) {
        return Err(IngestError::TooLarge { limit });
    }
    // Most bodies are in hyper's buffer with the headers: try once before
    // arming a timer, which costs a clock handle and a timer-wheel entry.
    let mut collecting = std::pin::pin!(collect(body, limit, declared));
    if let Poll::Ready(result) = futures::poll!(collecting.as_mut()) {
        return result;
    }
    match tokio::time::timeout_at(deadline.into(), collecting).await {
        Ok(result) => result,
        Err(_) => Err(IngestError::BodyTimeout),
    }
}

async fn collect<B>(mut body: B, limit: u64, declared: Option<u64>) -> Result<Bytes, IngestError>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| IngestError::BodyRead)?;
        let Ok(data) = frame.into_data() else { continue };
        if buffer.len() as u64 + data.len() as u64 > limit {
            return Err(IngestError::TooLarge { limit });
        }
        if buffer.is_empty() && declared == Some(data.len() as u64) {
            // The whole body arrived in one frame: hand it on without copying.
            return Ok(data);
        }
        if buffer.capacity() == 0 {
            // Declared lengths were checked against the limit already.
            buffer.reserve(usize::try_from(declared.unwrap_or(0)).unwrap_or(0).max(data.len()));
        }
        buffer.extend_from_slice(&data);
    }
    Ok(buffer.freeze())
}
