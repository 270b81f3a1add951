//! Compiling formats: Envoy's operator syntax, the errors Envoy gives for
//! formats it refuses, and the operators the agent has no value for.

use shared::access_log::{ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT};

use super::*;

fn operator(value: Value, max_length: Option<usize>) -> Piece {
    Piece::Operator(Operator { value, max_length })
}

#[test]
fn reads_envoys_operator_syntax() {
    let format =
        TextFormat::parse("%%[%START_TIME%] %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):20% x").unwrap();
    assert_eq!(
        &*format.pieces,
        [
            Piece::Literal("%[".into()),
            operator(Value::StartTime(None), None),
            Piece::Literal("] ".into()),
            operator(
                Value::Request {
                    main: RequestHeader::Path,
                    alternative: None
                },
                Some(20)
            ),
            Piece::Literal(" x".into()),
        ]
    );
    assert_eq!(
        TextFormat::parse("%DURATION%").unwrap().sole_operator(),
        Some(&Operator {
            value: Value::Duration,
            max_length: None
        })
    );
    assert_eq!(
        TextFormat::parse("a %DURATION%").unwrap().sole_operator(),
        None
    );
}

#[test]
fn refuses_what_envoy_refuses() {
    let error = |format: &str| TextFormat::parse(format).unwrap_err();
    assert_eq!(
        error("100% sure"),
        "a '%' at byte 3 starts no command operator (a literal % is %%)"
    );
    assert_eq!(error("%REQ(:PATH%"), "%REQ( has no closing parenthesis");
    assert_eq!(error("%DURATION"), "%DURATION is not closed by '%'");
    assert_eq!(error("%REQ%"), "REQ requires parameters");
    assert_eq!(
        error("%REQ(A?B?C)%"),
        "More than 1 alternative header specified in token: A?B?C"
    );
    assert_eq!(
        error("%START_TIME:3%"),
        "START_TIME does not allow length to be specified"
    );
    assert_eq!(
        error("%ROUTE_NAME(x)%"),
        "ROUTE_NAME does not take any parameters or length"
    );
    assert_eq!(
        error("%BYTES_SENT:2%"),
        "BYTES_SENT does not take any parameters or length"
    );
}

#[test]
fn names_what_the_agent_cannot_render() {
    let error = |format: &str| TextFormat::parse(format).unwrap_err();
    assert_eq!(
        error("%REQ(X-B3-TRACEID)%"),
        "the agent keeps no request header x-b3-traceid: cannot render %REQ(X-B3-TRACEID)%"
    );
    assert_eq!(
        error("%REQ(:PATH?X-B3-TRACEID)%"),
        "the agent keeps no request header x-b3-traceid: cannot render %REQ(:PATH?X-B3-TRACEID)%"
    );
    assert_eq!(
        error("%RESP(CONTENT-TYPE)%"),
        "the agent keeps no response header but x-envoy-upstream-service-time: cannot render %RESP(CONTENT-TYPE)%"
    );
    assert_eq!(
        error("%UPSTREAM_PROTOCOL%"),
        "the agent cannot render command operator %UPSTREAM_PROTOCOL%"
    );
    assert_eq!(
        error("%START_TIME(%c)%"),
        "START_TIME conversion %c is not one the agent writes (%Y %y %m %d %e %j %H %M %S %s %f %Nf %E<N>S %z %Z %a %b %F %T %%)"
    );
}

#[test]
fn istios_formats_compile_whole() {
    let text = TextFormat::parse(ISTIO_TEXT_FORMAT).unwrap();
    let operators = text
        .pieces
        .iter()
        .filter(|piece| matches!(piece, Piece::Operator(_)))
        .count();
    assert_eq!(operators, 24);
    for (key, format) in ISTIO_JSON_FORMAT {
        assert!(TextFormat::parse(format).is_ok(), "{key}: {format}");
    }
}

#[test]
fn start_time_formats_compile_to_their_pieces() {
    let format = TimeFormat::parse("%F %E3S %6f%%").unwrap();
    assert_eq!(
        &*format.pieces,
        [
            TimePiece::Year,
            TimePiece::Literal("-".into()),
            TimePiece::Month,
            TimePiece::Literal("-".into()),
            TimePiece::Day,
            TimePiece::Literal(" ".into()),
            TimePiece::Second,
            TimePiece::Literal(".".into()),
            TimePiece::Fraction(3),
            TimePiece::Literal(" ".into()),
            TimePiece::Fraction(6),
            TimePiece::Literal("%".into()),
        ]
    );
    assert!(TimeFormat::parse("%0f").is_err());
    assert!(TimeFormat::parse("%Y%").is_err());
}
