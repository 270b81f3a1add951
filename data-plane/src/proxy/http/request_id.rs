//! `x-request-id` values: random UUID v4 text, made without allocating.

use http::HeaderValue;

use crate::proxy::fast_random;

/// A new request id in UUID v4 form.
pub(super) fn new() -> HeaderValue {
    let a = fast_random();
    let b = fast_random();
    HeaderValue::from_bytes(&uuid_v4(a, b)).unwrap_or(HeaderValue::from_static(
        "00000000-0000-4000-8000-000000000000",
    ))
}

/// The UUID v4 text of two random numbers, written without `format!` (one
/// per request).
fn uuid_v4(a: u64, b: u64) -> [u8; 36] {
    fn hex(out: &mut [u8], mut value: u64) {
        for digit in out.iter_mut().rev() {
            *digit = b"0123456789abcdef"[(value & 0xf) as usize];
            value >>= 4;
        }
    }
    let mut text = [b'-'; 36];
    hex(&mut text[0..8], a >> 32);
    hex(&mut text[9..13], (a >> 16) & 0xffff);
    hex(&mut text[14..18], 0x4000 | (a & 0x0fff));
    hex(&mut text[19..23], ((b >> 48) & 0x3fff) | 0x8000);
    hex(&mut text[24..36], b & 0xffff_ffff_ffff);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        let (a, b) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let expected = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            a as u16 & 0x0fff,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        );
        assert_eq!(std::str::from_utf8(&uuid_v4(a, b)).unwrap(), expected);
        assert_eq!(expected, "01234567-89ab-4def-bedc-ba9876543210");
        let id = new();
        let id = id.to_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
