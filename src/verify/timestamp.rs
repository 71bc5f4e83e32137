//! Signed Unix timestamps: strict parsing and the tolerance window, checked
//! both ways so that stale (replayed) and future-dated requests are told apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::VerifyError;

/// More digits than any plausible Unix time in seconds (and no i64 overflow).
const MAX_DIGITS: usize = 15;

/// Parses Unix seconds written as plain ASCII digits: no sign, no fraction, no spaces.
pub(super) fn parse(raw: &[u8]) -> Result<i64, VerifyError> {
    if raw.is_empty() || raw.len() > MAX_DIGITS || !raw.iter().all(u8::is_ascii_digit) {
        return Err(VerifyError::MalformedTimestamp);
    }
    Ok(raw.iter().fold(0i64, |n, digit| n * 10 + i64::from(digit - b'0')))
}

/// Whole seconds since the Unix epoch (negative before it).
pub(super) fn unix_seconds(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Accepts `signed` when it lies within `tolerance` of `now`, either side, bounds included.
pub(super) fn check(signed: i64, now: SystemTime, tolerance: Duration) -> Result<(), VerifyError> {
    let now = i128::from(unix_seconds(now));
    let tolerance = i128::from(tolerance.as_secs());
    let signed = i128::from(signed);
    if signed < now - tolerance {
        Err(VerifyError::StaleTimestamp)
    } else if signed > now + tolerance {
        Err(VerifyError::FutureTimestamp)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn parses_plain_digits_only() {
        assert_eq!(parse(b"1614265330"), Ok(1_614_265_330));
        assert_eq!(parse(b"0"), Ok(0));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"+1",
            b"-1",
            b"1.5",
            b"1e9",
            b"abc",
            b"\xff",
            b"1234567890123456",
        ] {
            assert_eq!(parse(bad), Err(VerifyError::MalformedTimestamp), "{bad:?}");
        }
        assert_eq!(parse(b"999999999999999"), Ok(999_999_999_999_999));
    }

    #[test]
    fn window_is_inclusive_and_reports_the_side() {
        let now = at(1_000_000);
        assert_eq!(check(1_000_000, now, FIVE_MINUTES), Ok(()));
        assert_eq!(check(1_000_000 - 300, now, FIVE_MINUTES), Ok(()));
        assert_eq!(check(1_000_000 + 300, now, FIVE_MINUTES), Ok(()));
        assert_eq!(
            check(1_000_000 - 301, now, FIVE_MINUTES),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            check(1_000_000 + 301, now, FIVE_MINUTES),
            Err(VerifyError::FutureTimestamp)
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(check(i64::MAX, at(0), huge), Ok(()));
        assert_eq!(check(i64::MAX, at(0), FIVE_MINUTES), Err(VerifyError::FutureTimestamp));
        assert_eq!(
            check(0, at(u64::MAX / 4), FIVE_MINUTES),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
