//! The open file limit, raised at startup to its hard limit as Envoy and
//! ztunnel raise theirs: every connection costs a descriptor (two when it
//! is proxied), and the usual soft limit of 1024 runs out long before the
//! connection limits do.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft open file limit to the hard one; returns the limit in
/// force. Failing to raise it is logged and the limit kept.
pub fn raise_to_hard_limit() -> Option<u64> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open file limit");
            return None;
        }
    };
    if soft >= hard {
        tracing::info!(limit = soft, "open file limit (already the hard limit)");
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!(
                limit = hard,
                was = soft,
                "open file limit raised to the hard limit"
            );
            Some(hard)
        }
        Err(error) => {
            tracing::warn!(limit = soft, hard, %error, "cannot raise the open file limit; keeping it");
            Some(soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = raise_to_hard_limit().expect("the limit is readable");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
        assert_eq!(limit, hard);
    }
}
