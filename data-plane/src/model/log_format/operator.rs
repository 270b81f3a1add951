//! One command operator of a format: its name, argument and length read as
//! Envoy reads them, resolved to the value the agent keeps for it.

use super::start_time::TimeFormat;

/// A command operator, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub value: Value,
    /// `:LEN`: at most this many bytes of the value (`REQ` and `RESP`).
    pub max_length: Option<usize>,
}

/// What an operator writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `%START_TIME%` (RFC 3339 UTC with milliseconds) or
    /// `%START_TIME(format)%`.
    StartTime(Option<TimeFormat>),
    /// `%REQ(main?alternative)%`: the first header present.
    Request {
        main: RequestHeader,
        alternative: Option<RequestHeader>,
    },
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%`.
    UpstreamServiceTime,
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    ConnectionTerminationDetails,
    UpstreamTransportFailureReason,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamHost,
    /// `%UPSTREAM_CLUSTER%` and `%UPSTREAM_CLUSTER_RAW%` (the agent's
    /// clusters have no `alt_stat_name`).
    UpstreamCluster,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamLocalAddressWithoutPort,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    RequestedServerName,
    RouteName,
    /// `%DOWNSTREAM_PEER_URI_SAN%`: the client's SPIFFE id (mesh mTLS).
    DownstreamPeerUriSan,
}

/// The request headers the agent keeps for its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestHeader {
    Method,
    /// `:PATH`, and `X-ENVOY-ORIGINAL-PATH` as Istio's `X-ENVOY-ORIGINAL-PATH?:PATH`
    /// reads it: the path the client sent.
    Path,
    /// `:AUTHORITY` (also spelled `HOST`).
    Authority,
    ForwardedFor,
    UserAgent,
    RequestId,
}

impl RequestHeader {
    fn named(name: &str) -> Option<Self> {
        const NAMES: &[(&str, RequestHeader)] = &[
            (":METHOD", RequestHeader::Method),
            (":PATH", RequestHeader::Path),
            (":AUTHORITY", RequestHeader::Authority),
            ("HOST", RequestHeader::Authority),
            ("X-FORWARDED-FOR", RequestHeader::ForwardedFor),
            ("USER-AGENT", RequestHeader::UserAgent),
            ("X-REQUEST-ID", RequestHeader::RequestId),
        ];
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, header)| *header)
    }
}

/// The operators without an argument, by name.
const PLAIN: &[(&str, Value)] = &[
    ("PROTOCOL", Value::Protocol),
    ("RESPONSE_CODE", Value::ResponseCode),
    ("RESPONSE_FLAGS", Value::ResponseFlags),
    ("RESPONSE_CODE_DETAILS", Value::ResponseCodeDetails),
    (
        "CONNECTION_TERMINATION_DETAILS",
        Value::ConnectionTerminationDetails,
    ),
    (
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
        Value::UpstreamTransportFailureReason,
    ),
    ("BYTES_RECEIVED", Value::BytesReceived),
    ("BYTES_SENT", Value::BytesSent),
    ("DURATION", Value::Duration),
    ("UPSTREAM_HOST", Value::UpstreamHost),
    ("UPSTREAM_CLUSTER", Value::UpstreamCluster),
    ("UPSTREAM_CLUSTER_RAW", Value::UpstreamCluster),
    ("UPSTREAM_LOCAL_ADDRESS", Value::UpstreamLocalAddress),
    ("DOWNSTREAM_LOCAL_ADDRESS", Value::DownstreamLocalAddress),
    (
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        Value::DownstreamLocalAddressWithoutPort,
    ),
    ("DOWNSTREAM_REMOTE_ADDRESS", Value::DownstreamRemoteAddress),
    (
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        Value::DownstreamRemoteAddressWithoutPort,
    ),
    ("REQUESTED_SERVER_NAME", Value::RequestedServerName),
    ("ROUTE_NAME", Value::RouteName),
    ("DOWNSTREAM_PEER_URI_SAN", Value::DownstreamPeerUriSan),
];

/// An operator as written: `%NAME(argument):LEN%`.
struct Spelled<'a> {
    name: &'a str,
    argument: Option<&'a str>,
    max_length: Option<usize>,
}

impl Operator {
    /// Reads the operator that `text` (what follows its opening `%`, which
    /// is at byte `offset` of the format) starts with; returns it and the
    /// text after its closing `%`.
    pub(super) fn parse(text: &str, offset: usize) -> Result<(Self, &str), String> {
        let (spelled, rest) = Spelled::read(text, offset)?;
        Ok((spelled.compile()?, rest))
    }
}

impl<'a> Spelled<'a> {
    fn read(text: &'a str, offset: usize) -> Result<(Self, &'a str), String> {
        let name_len = text
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_len];
        if name.is_empty() {
            return Err(format!(
                "a '%' at byte {offset} starts no command operator (a literal % is %%)"
            ));
        }
        let mut tail = &text[name_len..];
        let argument = match tail.strip_prefix('(') {
            Some(open) => {
                let close = open
                    .find(')')
                    .ok_or_else(|| format!("%{name}( has no closing parenthesis"))?;
                tail = &open[close + 1..];
                Some(&open[..close])
            }
            None => None,
        };
        let max_length = match tail.strip_prefix(':') {
            Some(digits) => {
                let len = digits
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(digits.len());
                let length = digits[..len]
                    .parse()
                    .map_err(|_| format!("%{name}: a ':' must be followed by a length"))?;
                tail = &digits[len..];
                Some(length)
            }
            None => None,
        };
        let rest = tail
            .strip_prefix('%')
            .ok_or_else(|| format!("%{name} is not closed by '%'"))?;
        let spelled = Self {
            name,
            argument,
            max_length,
        };
        Ok((spelled, rest))
    }

    fn compile(self) -> Result<Operator, String> {
        let name = self.name;
        let value = match name {
            "START_TIME" => {
                if self.max_length.is_some() {
                    return Err("START_TIME does not allow length to be specified".into());
                }
                let format = self
                    .argument
                    .filter(|argument| !argument.is_empty())
                    .map(TimeFormat::parse)
                    .transpose()?;
                Value::StartTime(format)
            }
            "REQ" => self.request()?,
            "RESP" => match self.header_argument()? {
                (header, None) if header.eq_ignore_ascii_case("X-ENVOY-UPSTREAM-SERVICE-TIME") => {
                    Value::UpstreamServiceTime
                }
                _ => {
                    return Err(format!(
                        "the agent keeps no response header but x-envoy-upstream-service-time: cannot render %RESP({})%",
                        self.argument.unwrap_or_default()
                    ));
                }
            },
            _ => {
                let value = PLAIN
                    .iter()
                    .find(|(known, _)| *known == name)
                    .map(|(_, value)| value.clone())
                    .ok_or_else(|| format!("the agent cannot render command operator %{name}%"))?;
                if self.argument.is_some() || self.max_length.is_some() {
                    return Err(format!("{name} does not take any parameters or length"));
                }
                value
            }
        };
        Ok(Operator {
            value,
            max_length: self.max_length,
        })
    }

    /// `REQ(main?alternative)`, both headers the agent keeps.
    fn request(&self) -> Result<Value, String> {
        let (main, alternative) = self.header_argument()?;
        if main.eq_ignore_ascii_case("X-ENVOY-ORIGINAL-PATH")
            && alternative.is_some_and(|a| a.eq_ignore_ascii_case(":PATH"))
        {
            return Ok(Value::Request {
                main: RequestHeader::Path,
                alternative: None,
            });
        }
        let known = |header: &str| {
            RequestHeader::named(header).ok_or_else(|| {
                format!(
                    "the agent keeps no request header {}: cannot render %REQ({})%",
                    header.to_ascii_lowercase(),
                    self.argument.unwrap_or_default()
                )
            })
        };
        Ok(Value::Request {
            main: known(main)?,
            alternative: alternative.map(known).transpose()?,
        })
    }

    /// The header and its alternative of a `REQ` or `RESP` operator.
    fn header_argument(&self) -> Result<(&'a str, Option<&'a str>), String> {
        let argument = self
            .argument
            .filter(|argument| !argument.is_empty())
            .ok_or_else(|| format!("{} requires parameters", self.name))?;
        let mut parts = argument.split('?');
        let main = parts.next().unwrap_or_default();
        let alternative = parts.next();
        if parts.next().is_some() {
            return Err(format!(
                "More than 1 alternative header specified in token: {argument}"
            ));
        }
        Ok((main, alternative))
    }
}
