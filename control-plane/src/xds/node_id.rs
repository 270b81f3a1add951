//! What a node id may hold before anything reads or logs it: Istio's
//! `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`, bounded
//! and without control characters, so that no proxy can forge or garble
//! the control plane's log lines with its id.

use tonic::Status;

/// Longer than any id made of Kubernetes names (a pod name is at most 253
/// bytes, a namespace 63).
const MAX_LEN: usize = 1024;
const FORMAT: &str = "<sidecar|router>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local";

/// Refuses an id with a control character (newline, escape...) or too long,
/// with INVALID_ARGUMENT saying what an id looks like.
pub fn check(id: &str) -> Result<(), Status> {
    if id.len() > MAX_LEN {
        return Err(Status::invalid_argument(format!(
            "the node id is {} bytes, more than {MAX_LEN}: a node id is {FORMAT}",
            id.len()
        )));
    }
    if let Some((at, c)) = id.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Status::invalid_argument(format!(
            "the node id {id:?} holds the control character {c:?} at byte {at}: \
             a node id is {FORMAT}, in printable characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn istio_node_ids_are_accepted() {
        check("sidecar~10.0.0.1~sleep-1.default~default.svc.cluster.local").expect("valid");
        check("router~10.0.0.2~istio-egressgateway-1.istio-system~istio-system.svc.cluster.local")
            .expect("valid");
    }

    #[test]
    fn a_newline_is_refused_and_the_status_shows_it_escaped() {
        let status = check("sidecar~1.1.1.1~a.b~b.svc.cluster.local\nINFO forged").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(!status.message().contains('\n'), "{}", status.message());
        assert!(
            status.message().contains("'\\n' at byte 39"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn an_ansi_escape_is_refused() {
        let status = check("sidecar~1.1.1.1~\x1b[31ma.b~b.svc.cluster.local").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(!status.message().contains('\x1b'));
    }

    #[test]
    fn an_id_longer_than_kubernetes_names_make_is_refused() {
        let status = check(&"a".repeat(MAX_LEN + 1)).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
}
