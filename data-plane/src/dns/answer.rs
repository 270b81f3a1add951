//! One DNS query, decided as pilot-agent's DNS proxy decides it: answered from the lookup table (authoritative, NOERROR even with no record of the asked type), forwarded upstream as it came, or refused with SERVFAIL when it has no question or no table has arrived yet.

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};

use super::table::{Lookup, LookupTable};

/// How a query came, which bounds the size of a local answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Ask upstream; relay its answer as it is.
    Forward(Forward),
    /// Not a DNS query: nothing to answer.
    Drop,
}

/// A query to forward, and the SERVFAIL to answer if upstream cannot.
#[derive(Debug, PartialEq, Eq)]
pub struct Forward {
    pub query: Vec<u8>,
    pub failure: Vec<u8>,
}

/// Decides what answers the encoded query `bytes`, given the table in
/// force (`None` before the control plane sent one).
pub fn decide(bytes: &[u8], table: Option<&LookupTable>, transport: Transport) -> Decision {
    let Ok(request) = Message::from_vec(bytes) else {
        return Decision::Drop;
    };
    if request.metadata.message_type != MessageType::Query {
        return Decision::Drop;
    }
    let Some(question) = request.queries.first() else {
        return reply(&failure(&request), &request, transport);
    };
    let Some(table) = table else {
        tracing::debug!(name = %question.name(), "DNS query before the name table arrived");
        return reply(&failure(&request), &request, transport);
    };
    let lookup = if request.metadata.op_code == OpCode::Query {
        table.lookup(question.name(), question.query_type())
    } else {
        Lookup::Forward
    };
    match lookup {
        Lookup::Answer(records) => {
            let mut response = response_to(&request);
            response.metadata.authoritative = true;
            response.add_answers(records);
            reply(&response, &request, transport)
        }
        Lookup::Forward => match failure(&request).to_vec() {
            Ok(failure) => Decision::Forward(Forward {
                query: bytes.to_vec(),
                failure,
            }),
            Err(_) => Decision::Drop,
        },
    }
}

/// A response to `request` with its questions and no records yet.
fn response_to(request: &Message) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.add_queries(request.queries.iter().cloned());
    response
}

/// SERVFAIL for `request`.
fn failure(request: &Message) -> Message {
    let mut response = response_to(request);
    response.metadata.response_code = ResponseCode::ServFail;
    response
}

/// `response` encoded; over UDP, truncated (TC set, records dropped) when
/// larger than the client said it can take (512 bytes without EDNS).
fn reply(response: &Message, request: &Message, transport: Transport) -> Decision {
    let Ok(encoded) = response.to_vec() else {
        return Decision::Drop;
    };
    if transport == Transport::Udp && encoded.len() > usize::from(request.max_payload()) {
        return match response.truncate().to_vec() {
            Ok(truncated) => Decision::Reply(truncated),
            Err(_) => Decision::Drop,
        };
    }
    Decision::Reply(encoded)
}

#[cfg(test)]
mod tests;
