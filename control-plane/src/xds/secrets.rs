//! Secrets on an ADS stream: only a proxy whose identity was verified gets any, and only those of its own namespace its config names (translation makes no others); a name it may not read is refused with a log line, as istiod does.

use shared::type_url::SECRET;

use super::cache::ProxySnapshot;
use super::connection::Connection;
use super::subscription::{Subscription, WILDCARD};

/// What `connection` may be sent of `type_url`: `snapshot`, or for secrets
/// on a connection without a verified identity, nothing (`none`).
pub fn servable<'a>(
    connection: &Connection,
    type_url: &str,
    snapshot: &'a ProxySnapshot,
    none: &'a ProxySnapshot,
) -> &'a ProxySnapshot {
    if type_url == SECRET && !connection.verified {
        none
    } else {
        snapshot
    }
}

/// The secret names `subscription` asks for that `served` does not hold:
/// another namespace's, one its config does not name, undefined, or any
/// without a verified identity.
pub fn refused<'a>(subscription: &'a Subscription, served: &ProxySnapshot) -> Vec<&'a str> {
    let held = served.resources(SECRET);
    subscription
        .names()
        .filter(|name| held.is_none_or(|by_name| !by_name.contains_key(*name)))
        .collect()
}

/// Logs the secrets a proxy asked for and will not get (never their content).
/// `*` is named apart: secrets are served by name only, never all at once.
pub fn log_refused(connection: &Connection, refused: &[&str]) {
    let (wildcard, named): (Vec<&str>, Vec<&str>) =
        refused.iter().partition(|name| **name == WILDCARD);
    if !wildcard.is_empty() {
        tracing::warn!(
            id = connection.id,
            node = ?connection.proxy.id,
            namespace = ?connection.proxy.namespace,
            "proxy subscribed to every secret (`*`); secrets are sent by name only, none sent for `*`"
        );
    }
    if named.is_empty() {
        return;
    }
    let reason = if connection.verified {
        "not a credential of the proxy's namespace that its config names (a Gateway server or DestinationRule credentialName that applies to it)"
    } else {
        "the proxy has no verified identity (plaintext port)"
    };
    tracing::warn!(
        id = connection.id,
        node = ?connection.proxy.id,
        namespace = ?connection.proxy.namespace,
        secrets = ?named,
        reason,
        "proxy asked for secrets it may not read; not sent"
    );
}
