//! The Confluent Schema Registry wire format of a protobuf record value:
//! magic byte 0, the schema id as 4 bytes big-endian, the message-index
//! list (zigzag varints; the list `[0]`, the first message of the file, is
//! written as the single byte 0), then the protobuf bytes. A plain envelope
//! never starts with byte 0 (a protobuf tag is never 0), so framed and
//! plain values tell themselves apart.

use prost::Message as _;

use super::WebhookEnvelope;

/// First byte of a framed value.
pub const MAGIC: u8 = 0;

/// Why a framed value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Fewer than the 5 bytes of magic byte and schema id.
    #[error("framed value shorter than its 5-byte header")]
    Short,
    /// The message-index list is cut short or malformed.
    #[error("malformed message-index list")]
    Indexes,
    /// The indexes name a message other than `WebhookEnvelope` (the first of envelope.proto).
    #[error("message index {0:?} is not hookgate.v1.WebhookEnvelope")]
    OtherMessage(Vec<i64>),
}

/// Length of the bytes before the protobuf bytes of a framed value.
pub const HEADER_LEN: usize = 6;

/// The bytes before the protobuf bytes of a value framed for schema `id`:
/// the magic byte, the id, and the message indexes `[0]` (`WebhookEnvelope`
/// is the first message of envelope.proto).
pub fn header(id: u32) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = id.to_be_bytes();
    [MAGIC, a, b, c, d, 0]
}

/// Encodes `envelope` framed for schema `id`.
pub fn frame(envelope: &WebhookEnvelope, id: u32) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_LEN + envelope.encoded_len());
    value.extend_from_slice(&header(id));
    envelope
        .encode(&mut value)
        .expect("a Vec grows as needed, so encoding cannot run out of space");
    value
}

/// True when `value` is framed (starts with the magic byte).
pub fn is_framed(value: &[u8]) -> bool {
    value.first() == Some(&MAGIC)
}

/// Splits a framed value into its schema id and the protobuf bytes, checking
/// that the message indexes name `WebhookEnvelope`.
pub fn unframe(value: &[u8]) -> Result<(u32, &[u8]), FramingError> {
    if value.len() < 5 {
        return Err(FramingError::Short);
    }
    let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    let mut rest = &value[5..];
    let count = zigzag(&mut rest)?;
    let indexes = if count == 0 {
        vec![0]
    } else {
        let count = usize::try_from(count).map_err(|_| FramingError::Indexes)?;
        if count > rest.len() {
            return Err(FramingError::Indexes);
        }
        (0..count).map(|_| zigzag(&mut rest)).collect::<Result<Vec<_>, _>>()?
    };
    if indexes != [0] {
        return Err(FramingError::OtherMessage(indexes));
    }
    Ok((id, rest))
}

/// Reads one zigzag-encoded varint.
fn zigzag(buf: &mut &[u8]) -> Result<i64, FramingError> {
    let raw = prost::encoding::decode_varint(buf).map_err(|_| FramingError::Indexes)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_envelope_carries_the_id_and_decodes_back() {
        let envelope = WebhookEnvelope {
            id: "x".into(),
            source: "s".into(),
            ..Default::default()
        };
        let value = frame(&envelope, 0x0102_0304);
        assert_eq!(&value[..6], &[0, 1, 2, 3, 4, 0]);
        assert!(is_framed(&value));
        assert!(!is_framed(&envelope.to_bytes()));
        let (id, bytes) = unframe(&value).unwrap();
        assert_eq!(id, 0x0102_0304);
        assert_eq!(WebhookEnvelope::from_bytes(bytes).unwrap(), envelope);
    }

    #[test]
    fn the_long_form_of_the_index_list_is_read_too() {
        // count 1 (zigzag 2), index 0: what some serializers write instead of the short form.
        let value = [0, 0, 0, 0, 7, 2, 0, 0x0a, 1, b'x'];
        assert_eq!(unframe(&value), Ok((7, &value[7..])));
    }

    #[test]
    fn other_messages_and_cut_headers_are_refused() {
        assert_eq!(unframe(&[0, 0, 0]), Err(FramingError::Short));
        assert_eq!(
            unframe(&[0, 0, 0, 0, 1, 2, 2]),
            Err(FramingError::OtherMessage(vec![1]))
        );
        assert_eq!(unframe(&[0, 0, 0, 0, 1, 0x80]), Err(FramingError::Indexes));
        assert_eq!(unframe(&[0, 0, 0, 0, 1, 40]), Err(FramingError::Indexes));
    }
}
