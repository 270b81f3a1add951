//! The explicit proxy's first request head, as any client can send it:
//! classifying never panics, and a CONNECT it takes is taken the same
//! once cut where its head ends.

#![no_main]

use data_plane::proxy::explicit::head::{Head, classify};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Head::Connect { len, .. } = classify(bytes) {
        assert!(len <= bytes.len());
        assert_eq!(classify(&bytes[..len]), classify(bytes));
    }
});
