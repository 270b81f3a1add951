//! Packing messages into `google.protobuf.Any`.

use prost::Message;
use proto::wkt::Any;

/// Packs `message` with the full `type_url` (`type.googleapis.com/...`).
pub fn pack<M: Message>(type_url: &str, message: &M) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

/// Packs `message` whose full protobuf name is `type_name`.
pub fn pack_named<M: Message>(type_name: &str, message: &M) -> Any {
    pack(&format!("type.googleapis.com/{type_name}"), message)
}
