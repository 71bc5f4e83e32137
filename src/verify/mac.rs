//! HMAC building blocks shared by the symmetric schemes: keyed states built
//! once per secret and cloned per request, fixed-size tags that live on the
//! stack, signature decoding, and the constant-time search over secrets and
//! candidate signatures.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use hmac::{Hmac, Mac};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::VerifyError;
use crate::config::{HmacAlgorithm, SignatureEncoding};

/// Largest tag or signature handled: HMAC-SHA512 and Ed25519 both give 64 bytes.
pub(super) const MAX_TAG: usize = 64;

/// Most signatures one header may carry; rotation sends two or three.
pub(super) const MAX_CANDIDATES: usize = 8;

/// Standard-alphabet base64; encodes with padding, decodes with or without it
/// (senders differ, and padding carries no authenticated information).
pub(super) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest base64 text that can decode to `MAX_TAG` bytes (padded).
const MAX_BASE64_TEXT: usize = MAX_TAG.div_ceil(3) * 4;

/// Length in bytes of the tags an HMAC with `algorithm` produces.
pub(super) fn tag_len(algorithm: HmacAlgorithm) -> usize {
    match algorithm {
        HmacAlgorithm::Sha1 => 20,
        HmacAlgorithm::Sha256 => 32,
        HmacAlgorithm::Sha512 => 64,
    }
}

/// An HMAC key schedule for one secret, ready to be cloned for each request.
#[derive(Clone)]
pub(super) enum MacKey {
    /// HMAC-SHA1.
    Sha1(Hmac<sha1::Sha1>),
    /// HMAC-SHA256.
    Sha256(Hmac<sha2::Sha256>),
    /// HMAC-SHA512.
    Sha512(Hmac<sha2::Sha512>),
}

impl MacKey {
    /// Keys the chosen digest with a secret.
    pub(super) fn new(algorithm: HmacAlgorithm, secret: &[u8]) -> Self {
        match algorithm {
            HmacAlgorithm::Sha1 => Self::Sha1(keyed(secret)),
            HmacAlgorithm::Sha256 => Self::Sha256(keyed(secret)),
            HmacAlgorithm::Sha512 => Self::Sha512(keyed(secret)),
        }
    }

    /// The tag of the concatenation of `chunks`, without concatenating them.
    pub(super) fn tag<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> Tag {
        match self {
            Self::Sha1(key) => run(key, chunks),
            Self::Sha256(key) => run(key, chunks),
            Self::Sha512(key) => run(key, chunks),
        }
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Sha1(_) => "sha1",
            Self::Sha256(_) => "sha256",
            Self::Sha512(_) => "sha512",
        };
        write!(f, "MacKey({name}, [redacted])")
    }
}

fn keyed<M: Mac + hmac::digest::KeyInit>(secret: &[u8]) -> M {
    // HMAC hashes long keys and pads short ones, so every length is accepted.
    <M as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn run<'a, M: Mac + Clone>(key: &M, chunks: impl IntoIterator<Item = &'a [u8]>) -> Tag {
    let mut mac = key.clone();
    for chunk in chunks {
        Mac::update(&mut mac, chunk);
    }
    Tag::from_slice(&mac.finalize().into_bytes())
}

/// Up to 64 bytes: a computed MAC or a signature decoded from a header.
#[derive(Clone, Copy)]
pub(super) struct Tag {
    bytes: [u8; MAX_TAG],
    len: usize,
}

impl Tag {
    const EMPTY: Tag = Tag {
        bytes: [0; MAX_TAG],
        len: 0,
    };

    /// Copies `bytes`, which callers guarantee to be at most `MAX_TAG` long.
    fn from_slice(bytes: &[u8]) -> Self {
        let mut tag = Self::EMPTY;
        tag.bytes[..bytes.len()].copy_from_slice(bytes);
        tag.len = bytes.len();
        tag
    }

    /// The tag's bytes.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Constant-time equality (lengths are public, contents are not). Every
    /// constructor leaves the bytes past `len` zero, so the whole arrays,
    /// compared as eight words, are equal exactly when the used bytes are:
    /// an eighth of the work of subtle's byte-by-byte slice comparison.
    fn ct_eq(&self, other: &Tag) -> Choice {
        if self.len != other.len {
            return Choice::from(0);
        }
        self.words()[..].ct_eq(&other.words()[..])
    }

    /// The bytes as native-endian words.
    fn words(&self) -> [u64; MAX_TAG / 8] {
        debug_assert!(
            self.bytes[self.len..].iter().all(|&b| b == 0),
            "bytes past len are zero"
        );
        std::array::from_fn(|i| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.bytes[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(word)
        })
    }

    /// Decodes exactly `len` bytes written in `encoding`; anything else is malformed.
    pub(super) fn decode(text: &[u8], encoding: SignatureEncoding, len: usize) -> Result<Self, VerifyError> {
        match encoding {
            SignatureEncoding::Hex => Self::from_hex(text, len),
            SignatureEncoding::Base64 => Self::from_base64(text, len),
        }
    }

    /// Decodes exactly `len` bytes of upper- or lower-case hex.
    pub(super) fn from_hex(text: &[u8], len: usize) -> Result<Self, VerifyError> {
        if len > MAX_TAG || text.len() != 2 * len {
            return Err(VerifyError::MalformedSignature);
        }
        let mut tag = Self { len, ..Self::EMPTY };
        const_hex::decode_to_slice(text, &mut tag.bytes[..len]).map_err(|_| VerifyError::MalformedSignature)?;
        Ok(tag)
    }

    /// Decodes exactly `len` bytes of standard base64.
    pub(super) fn from_base64(text: &[u8], len: usize) -> Result<Self, VerifyError> {
        if len > MAX_TAG || text.len() > MAX_BASE64_TEXT {
            return Err(VerifyError::MalformedSignature);
        }
        // Room for the decoder's worst-case estimate of the longest accepted text.
        let mut buffer = [0u8; MAX_TAG + 3];
        let decoded = BASE64
            .decode_slice(text, &mut buffer)
            .map_err(|_| VerifyError::MalformedSignature)?;
        if decoded != len {
            return Err(VerifyError::MalformedSignature);
        }
        Ok(Self::from_slice(&buffer[..len]))
    }

    /// The tag as text, lower-case hex or padded base64.
    pub(super) fn encode(&self, encoding: SignatureEncoding) -> String {
        match encoding {
            SignatureEncoding::Hex => const_hex::encode(self.as_bytes()),
            SignatureEncoding::Base64 => BASE64.encode(self.as_bytes()),
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tags include expected signatures, which must never be shown.
        write!(f, "Tag({} bytes)", self.len)
    }
}

/// The signatures found in one request, on the stack.
pub(super) struct Candidates {
    items: [Tag; MAX_CANDIDATES],
    len: usize,
}

impl Candidates {
    /// No signatures yet.
    pub(super) fn new() -> Self {
        Self {
            items: [Tag::EMPTY; MAX_CANDIDATES],
            len: 0,
        }
    }

    /// Adds one; more than `MAX_CANDIDATES` makes the header malformed.
    pub(super) fn push(&mut self, tag: Tag) -> Result<(), VerifyError> {
        let slot = self.items.get_mut(self.len).ok_or(VerifyError::MalformedSignature)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    /// The signatures collected so far.
    pub(super) fn as_slice(&self) -> &[Tag] {
        &self.items[..self.len]
    }

    /// True when none were found.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether `expected` equals any candidate, comparing against all of them in constant time.
pub(super) fn matches_any(expected: &Tag, candidates: &[Tag]) -> bool {
    let hit = candidates
        .iter()
        .fold(Choice::from(0), |hit, candidate| hit | expected.ct_eq(candidate));
    bool::from(hit)
}

/// Index of the first key whose tag over `chunks()` equals one of `candidates`.
pub(super) fn first_match<'a, I>(keys: &[MacKey], chunks: impl Fn() -> I, candidates: &[Tag]) -> Option<u32>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    keys.iter()
        .position(|key| matches_any(&key.tag(chunks()), candidates))
        .map(|index| u32::try_from(index).unwrap_or(u32::MAX))
}

/// The SHA-256 digest of `bytes`: static credentials are compared as
/// digests, so that the comparison takes the same time whatever their lengths.
pub(super) fn sha256(bytes: &[u8]) -> Tag {
    use sha2::Digest;
    Tag::from_slice(&sha2::Sha256::digest(bytes))
}

/// The SHA-256 of a signature's decoded bytes: what the gateway remembers
/// of a signature to recognise its replay, whatever its text encoding.
pub(super) fn fingerprint(tag: &Tag) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(tag.as_bytes()).into()
}

/// Index of the first of `candidates` equal to `expected`, compared with
/// every one of them in constant time (no early exit on a match).
pub(super) fn position(expected: &Tag, candidates: &[Tag]) -> Option<u32> {
    let mut found = Choice::from(0);
    let mut index = 0u32;
    for (i, candidate) in candidates.iter().enumerate() {
        let hit = expected.ct_eq(candidate) & !found;
        index = u32::conditional_select(&index, &u32::try_from(i).unwrap_or(u32::MAX), hit);
        found |= hit;
    }
    bool::from(found).then_some(index)
}

/// Header value from text the schemes produce themselves (hex, base64, digits, a checked prefix).
pub(super) fn ascii_header(text: String) -> http::HeaderValue {
    http::HeaderValue::try_from(text).expect("signature text is printable ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_equal_only_with_equal_length_and_every_byte_equal() {
        let bytes: Vec<u8> = (1..=64).collect();
        for len in [20, 32, 64] {
            let tag = Tag::from_slice(&bytes[..len]);
            assert!(bool::from(tag.ct_eq(&Tag::from_slice(&bytes[..len]))));
            for flip in [0, len / 2, len - 1] {
                let mut other = bytes[..len].to_vec();
                other[flip] ^= 0x80;
                assert!(!bool::from(tag.ct_eq(&Tag::from_slice(&other))), "byte {flip} of {len}");
            }
            assert!(!bool::from(tag.ct_eq(&Tag::from_slice(&bytes[..len - 1]))));
        }
        let hex = const_hex::encode(&bytes[..32]);
        let decoded = Tag::from_hex(hex.as_bytes(), 32).unwrap();
        assert!(bool::from(decoded.ct_eq(&Tag::from_slice(&bytes[..32]))));
    }

    #[test]
    fn tags_match_independent_hmac_computations() {
        // Expected values computed with Python's hmac module.
        let key = MacKey::new(HmacAlgorithm::Sha1, b"key");
        let chunks: [&[u8]; 2] = [b"1700000000.", b"hello"];
        assert_eq!(
            key.tag(chunks).encode(SignatureEncoding::Hex),
            "752fe891e30f537c9bee8ee854c4421b67988bc6"
        );
        let key = MacKey::new(HmacAlgorithm::Sha512, b"key");
        assert_eq!(
            key.tag([&b"1700000000.hello"[..]]).encode(SignatureEncoding::Base64),
            "h/4pPjRaVw9jaHpLANlxFyQSGJZ4I1DV9jTLWCVOrITqOpIO/HfEK/dptGmZ2bh9wwgYyCP6bs7NfMS2Zi1XUw=="
        );
        assert_eq!(tag_len(HmacAlgorithm::Sha512), key.tag([&b""[..]]).as_bytes().len());
        assert_eq!(tag_len(HmacAlgorithm::Sha1), 20);
    }

    #[test]
    fn chunked_and_whole_input_give_the_same_tag() {
        let key = MacKey::new(HmacAlgorithm::Sha256, b"k");
        let whole = key.tag([&b"abcdef"[..]]);
        let parts: [&[u8]; 4] = [b"a", b"", b"bcd", b"ef"];
        assert!(matches_any(&whole, &[key.tag(parts)]));
    }

    #[test]
    fn decoding_demands_the_exact_length_and_alphabet() {
        let ok = "ab".repeat(32);
        assert_eq!(Tag::from_hex(ok.as_bytes(), 32).unwrap().as_bytes(), &[0xab; 32]);
        assert_eq!(
            Tag::from_hex(ok.to_uppercase().as_bytes(), 32).unwrap().as_bytes(),
            &[0xab; 32]
        );
        for bad in [
            "",
            "ab",
            &ok[1..],
            &format!("{ok}ab"),
            &"zz".repeat(32),
            &"é".repeat(32),
            // const-hex skips a leading "0x"; a signature never carries one.
            &format!("0x{}", &ok[2..]),
            &format!("0x{ok}"),
        ] {
            assert_eq!(
                Tag::from_hex(bad.as_bytes(), 32).unwrap_err(),
                VerifyError::MalformedSignature,
                "{bad}"
            );
        }
        let b64 = BASE64.encode([7u8; 32]);
        assert_eq!(Tag::from_base64(b64.as_bytes(), 32).unwrap().as_bytes(), &[7; 32]);
        assert!(
            Tag::from_base64(b64.trim_end_matches('=').as_bytes(), 32).is_ok(),
            "padding is optional"
        );
        let long = BASE64.encode([7u8; 200]);
        for bad in ["", "!!!!", &b64[4..], long.as_str(), &BASE64.encode([7u8; 31])] {
            assert_eq!(
                Tag::from_base64(bad.as_bytes(), 32).unwrap_err(),
                VerifyError::MalformedSignature,
                "{bad}"
            );
        }
        assert!(Tag::from_base64(&[0xff; 44], 32).is_err());
        assert!(Tag::from_base64(BASE64.encode([1u8; 64]).as_bytes(), 64).is_ok());
    }

    #[test]
    fn candidates_are_bounded() {
        let mut list = Candidates::new();
        assert!(list.is_empty());
        for _ in 0..MAX_CANDIDATES {
            list.push(Tag::EMPTY).unwrap();
        }
        assert_eq!(list.push(Tag::EMPTY), Err(VerifyError::MalformedSignature));
        assert_eq!(list.as_slice().len(), MAX_CANDIDATES);
    }

    #[test]
    fn first_match_reports_the_matching_key() {
        let keys = [
            MacKey::new(HmacAlgorithm::Sha256, b"a"),
            MacKey::new(HmacAlgorithm::Sha256, b"b"),
        ];
        let body: &[u8] = b"body";
        let signed = keys[1].tag([body]);
        assert_eq!(first_match(&keys, || [body], &[signed]), Some(1));
        assert_eq!(first_match(&keys, || [&b"other"[..]], &[signed]), None);
        assert_eq!(first_match(&keys, || [body], &[]), None);
    }

    #[test]
    fn position_finds_the_first_equal_digest() {
        let digests = [sha256(b"a"), sha256(b"b"), sha256(b"b")];
        assert_eq!(position(&sha256(b"b"), &digests), Some(1));
        assert_eq!(position(&sha256(b"a"), &digests), Some(0));
        assert_eq!(position(&sha256(b"c"), &digests), None);
        assert_eq!(position(&sha256(b"a"), &[]), None);
        // Computed with Python's hashlib.
        assert_eq!(
            sha256(b"abc").encode(SignatureEncoding::Hex),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_hides_key_and_tag_material() {
        let key = MacKey::new(HmacAlgorithm::Sha256, b"hunter2");
        let tag = key.tag([&b"x"[..]]);
        let shown = format!("{key:?} {tag:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(&tag.encode(SignatureEncoding::Hex)),
            "{shown}"
        );
    }
}
