//! The `notAfter` instant of an X.509 certificate, read straight from its DER bytes.
//!
//! A probe only needs one field of the server's leaf certificate, so instead of a full X.509
//! parser this is a small, bounded DER walker down to `TBSCertificate.validity.notAfter`
//! (RFC 5280 section 4.1). It reads lengths defensively, never indexes out of bounds and never
//! panics, whatever the input: it is fed bytes chosen by whoever runs the probed server.

/// One DER element: its tag byte and its contents.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Splits the first DER element off `input`, returning it and the rest.
///
/// Only the forms a certificate uses are accepted: a single-byte tag, and a definite length in
/// short form or in long form of at most four bytes (no certificate is 4 GiB).
fn next_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        // High tag numbers never occur on the path to the validity field.
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, after) = rest.split_at(n);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (body, rest) = rest.split_at(len);
    Some((Tlv { tag, body }, rest))
}

/// Like [`next_tlv`] but requires the element to carry `tag`.
fn expect_tlv(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (tlv, rest) = next_tlv(input)?;
    (tlv.tag == tag).then_some((tlv, rest))
}

/// The `notAfter` instant of a DER-encoded certificate, in milliseconds since the Unix epoch,
/// or `None` when the bytes are not a certificate this walker understands.
pub fn not_after_ms(der: &[u8]) -> Option<i64> {
    let (cert, _) = expect_tlv(der, SEQUENCE)?;
    let (tbs, _) = expect_tlv(cert.body, SEQUENCE)?;
    let mut rest = tbs.body;
    // version [0] EXPLICIT is optional (absent means v1).
    let (first, after) = next_tlv(rest)?;
    if first.tag == VERSION {
        rest = after;
    }
    let (_serial, rest) = expect_tlv(rest, INTEGER)?;
    let (_signature, rest) = expect_tlv(rest, SEQUENCE)?;
    let (_issuer, rest) = expect_tlv(rest, SEQUENCE)?;
    let (validity, _) = expect_tlv(rest, SEQUENCE)?;
    let (_not_before, rest) = next_tlv(validity.body)?;
    let (not_after, _) = next_tlv(rest)?;
    asn1_time_ms(not_after.tag, not_after.body)
}

/// Decodes a UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049 per RFC 5280) or a GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) into milliseconds since the epoch. Other forms (offsets, fractions,
/// missing seconds) are forbidden in certificates by RFC 5280 and refused here.
fn asn1_time_ms(tag: u8, body: &[u8]) -> Option<i64> {
    let (year, rest) = match tag {
        UTC_TIME if body.len() == 13 => {
            let yy = digits(&body[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &body[2..])
        }
        GENERALIZED_TIME if body.len() == 15 => (digits(&body[..4])?, &body[4..]),
        _ => return None,
    };
    // rest is exactly MMDDHHMMSSZ here.
    if rest[10] != b'Z' {
        return None;
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// The decimal value of a run of ASCII digits (at most four here, so no overflow).
fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps `body` in a DER element with `tag`, using the long length form when needed.
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            let bytes = (body.len() as u32).to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (4 - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(body);
        out
    }

    fn cert_with_validity(with_version: bool, not_after: (u8, &str)) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(VERSION, &der(INTEGER, &[2])));
        }
        tbs.extend(der(INTEGER, &[1, 2, 3]));
        tbs.extend(der(SEQUENCE, &der(0x06, &[0x2A, 0x86, 0x48])));
        // A long issuer so the long length form is exercised.
        tbs.extend(der(SEQUENCE, &[0x31; 300]));
        let mut validity = der(UTC_TIME, b"200101000000Z");
        validity.extend(der(not_after.0, not_after.1.as_bytes()));
        tbs.extend(der(SEQUENCE, &validity));
        tbs.extend(der(SEQUENCE, &[]));
        let mut cert = der(SEQUENCE, &tbs);
        cert.extend(der(SEQUENCE, &[]));
        der(SEQUENCE, &cert)
    }

    /// 1950-01-01T00:00:00Z, the earliest UTCTime.
    const EARLIEST: i64 = -631_152_000_000;
    /// 9999-12-31T23:59:59Z (beyond jiff's range, so the well-known constant).
    const LATEST: i64 = 253_402_300_799_000;

    fn jiff_ms(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> i64 {
        jiff::civil::datetime(y, mo, d, h, mi, s, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .expect("valid date")
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn utc_and_generalized_times() {
        let c = cert_with_validity(true, (UTC_TIME, "491231235959Z"));
        assert_eq!(not_after_ms(&c), Some(jiff_ms(2049, 12, 31, 23, 59, 59)));
        let c = cert_with_validity(false, (UTC_TIME, "500101000000Z"));
        assert_eq!(not_after_ms(&c), Some(jiff_ms(1950, 1, 1, 0, 0, 0)));
        let c = cert_with_validity(true, (GENERALIZED_TIME, "20510229120000Z"));
        assert_eq!(not_after_ms(&c), None, "2051 is not a leap year");
        let c = cert_with_validity(true, (GENERALIZED_TIME, "20520229120001Z"));
        assert_eq!(not_after_ms(&c), Some(jiff_ms(2052, 2, 29, 12, 0, 1)));
        let c = cert_with_validity(true, (GENERALIZED_TIME, "99981231235959Z"));
        assert_eq!(not_after_ms(&c), Some(jiff_ms(9998, 12, 31, 23, 59, 59)));
        let c = cert_with_validity(true, (GENERALIZED_TIME, "99991231235959Z"));
        assert_eq!(not_after_ms(&c), Some(LATEST));
        assert_eq!(EARLIEST, jiff_ms(1950, 1, 1, 0, 0, 0));
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in [
            "4912312359Z",   // no seconds
            "491231235959+", // not Z
            "491331235959Z", // month 13
            "491232235959Z", // day 32
            "491231245959Z", // hour 24
            "49123123595AZ", // not a digit
        ] {
            let c = cert_with_validity(true, (UTC_TIME, bad));
            assert_eq!(not_after_ms(&c), None, "{bad}");
        }
        let c = cert_with_validity(true, (0x04, "491231235959Z"));
        assert_eq!(not_after_ms(&c), None, "octet string is not a time");
    }

    #[test]
    fn truncations_never_panic() {
        let c = cert_with_validity(true, (UTC_TIME, "491231235959Z"));
        for n in 0..c.len() {
            // Every strict prefix cuts the outer SEQUENCE short, so none decodes.
            assert_eq!(not_after_ms(&c[..n]), None, "prefix {n}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let (lo, hi) = (EARLIEST, LATEST);
            if let Some(ms) = not_after_ms(&bytes) {
                proptest::prop_assert!((lo..=hi).contains(&ms));
            }
        }

        #[test]
        fn mutated_certificates_never_panic(pos in 0usize..400, val in proptest::num::u8::ANY) {
            let mut c = cert_with_validity(true, (UTC_TIME, "491231235959Z"));
            let i = pos % c.len();
            c[i] = val;
            let (lo, hi) = (EARLIEST, LATEST);
            if let Some(ms) = not_after_ms(&c) {
                proptest::prop_assert!((lo..=hi).contains(&ms));
            }
        }
    }
}
