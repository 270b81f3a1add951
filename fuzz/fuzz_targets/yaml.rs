//! The control plane's config loader: any text, read as a file of Istio
//! resources (then validated, as `serve` and `validate` do) or as a mesh
//! config (the first byte picks which), is loaded or refused with errors,
//! never a panic, and in time linear enough for libFuzzer's timeout.

#![no_main]

use std::path::Path;

use control_plane::config::load::{load_str, parse_mesh};
use control_plane::config::validate::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if kind % 2 == 0 {
        if let Ok(snapshot) = load_str(Path::new("fuzz.yaml"), text) {
            let _ = validate(&snapshot);
        }
    } else {
        let _ = parse_mesh(Path::new("mesh.yaml"), text);
    }
});
