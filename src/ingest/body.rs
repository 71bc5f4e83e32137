//! Reading a request body under a size limit and a time limit. An oversized
//! body is refused as soon as its declared length (Content-Length, as hyper
//! parsed it) or its streamed bytes pass the limit, never after buffering all of it.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::error::IngestError;

/// Reads the whole body, at most `limit` bytes, by `deadline`.
pub(super) async fn read_limited<B>(body: B, limit: u64, deadline: Instant) -> Result<Bytes, IngestError>
where
    B: Body<Data = Bytes>,
{
    // hyper parsed Content-Length already (and refused a malformed one); a chunked body has none.
    let declared = body.size_hint().exact();
    if declared.is_some_and(|length| length > limit) {
        return Err(IngestError::TooLarge { limit });
    }
    match tokio::time::timeout_at(deadline.into(), collect(body, limit, declared)).await {
        Ok(result) => result,
        Err(_) => Err(IngestError::BodyTimeout),
    }
}

/// The body's frames, joined; done as soon as the declared length arrived.
async fn collect<B>(body: B, limit: u64, declared: Option<u64>) -> Result<Bytes, IngestError>
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
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
        buffer.extend_from_slice(&data);
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use http_body_util::{Full, StreamBody};

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = Full::new(Bytes::from_static(b"hello"));
        assert_eq!(read_limited(body, 5, soon()).await.unwrap(), "hello");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let body = Full::new(Bytes::from_static(b"hello!"));
        assert!(matches!(
            read_limited(body, 5, soon()).await,
            Err(IngestError::TooLarge { limit: 5 })
        ));
    }

    #[tokio::test]
    async fn a_streamed_body_is_refused_once_it_passes_the_limit() {
        let frames = (0..4).map(|_| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from_static(b"abc"))));
        let body = StreamBody::new(futures::stream::iter(frames));
        assert!(matches!(
            read_limited(body, 10, soon()).await,
            Err(IngestError::TooLarge { limit: 10 })
        ));
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        let body = StreamBody::new(futures::stream::pending::<
            Result<hyper::body::Frame<Bytes>, std::io::Error>,
        >());
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(matches!(
            read_limited(body, 10, deadline).await,
            Err(IngestError::BodyTimeout)
        ));
    }
}
