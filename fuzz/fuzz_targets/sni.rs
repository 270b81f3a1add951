//! SNI parsing of a connection's first bytes: never panics, and what it
//! decides from a prefix of the bytes never changes as more bytes arrive.

#![no_main]

use data_plane::proxy::sni::{self, ClientHello};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = sni::parse(data);
    if let ClientHello::Tls(Some(name)) = &whole {
        assert!(!name.is_empty() && name.len() <= 255, "{name:?}");
        assert!(!name.contains('\0'), "{name:?}");
        assert_eq!(name, &name.to_ascii_lowercase());
    }
    // A few prefixes: a decided one agrees with the whole input.
    for cut in [1, 5, 6, 9, 43, data.len() / 2, data.len().saturating_sub(1)] {
        if cut >= data.len() {
            continue;
        }
        let prefix = sni::parse(&data[..cut]);
        if prefix != ClientHello::Incomplete {
            assert_eq!(prefix, whole, "decided at {cut} bytes");
        }
    }

});
