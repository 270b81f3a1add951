//! WebSocket (RFC 6455) as the tests speak it: the handshake an app sends
//! and its masked frames, and the upstream's side ([`crate::upstream`]):
//! a handshake with RFC 6455's sample key is switched (101 with its accept
//! value) and each frame echoed back unmasked; any other key is answered
//! 400, as a server refusing the handshake does.

use std::io::Read;

use anyhow::{Result, ensure};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// RFC 6455's sample key and the accept value it gives.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzrIGzo2ooo=";
/// A well-formed key the upstream refuses.
pub const REFUSED_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEA==";

/// An HTTP/1.1 request for `target` at `authority` asking to upgrade to
/// `upgrade` (`websocket`, or another protocol) with `key`.
pub fn handshake(authority: &str, target: &str, upgrade: &str, key: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\n\
         Upgrade: {upgrade}\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads a message head (through its blank line), lower-cased.
pub fn read_head(stream: &mut impl Read) -> Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        ensure!(stream.read(&mut byte)? == 1, "closed in the head: {head:?}");
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).to_ascii_lowercase())
}

/// A final text frame of `payload` (shorter than 126 bytes), masked as a
/// client must.
pub fn masked_text_frame(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u8::try_from(payload.len())
        .ok()
        .filter(|len| *len < 126)
        .ok_or_else(|| anyhow::anyhow!("a payload of {} bytes", payload.len()))?;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | len];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    Ok(frame)
}

/// The frame the upstream echoes for [`masked_text_frame`]`(payload)`.
pub fn echoed_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81, u8::try_from(payload.len()).unwrap_or(0x7f)];
    frame.extend_from_slice(payload);
    frame
}

/// The upstream's answer to a request asking to upgrade to `websocket`
/// (`None` for any other request): 101 for RFC 6455's sample key, with
/// the connection then echoing (`upgrade`), else 400.
pub(crate) fn answer(headers: &HeaderMap, upgrade: OnUpgrade) -> Option<Response<Full<Bytes>>> {
    let has = |name, value: &str| {
        headers.get_all(name).iter().any(|header| {
            header
                .to_str()
                .unwrap_or_default()
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(value))
        })
    };
    if !(has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")) {
        return None;
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    if headers
        .get("sec-websocket-key")
        .and_then(|key| key.to_str().ok())
        != Some(KEY)
    {
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Some(response);
    }
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let switched = response.headers_mut();
    switched.insert(UPGRADE, HeaderValue::from_static("websocket"));
    switched.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    switched.insert("sec-websocket-accept", HeaderValue::from_static(ACCEPT));
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            // The app closing the session ends the echo.
            let _ = echo(TokioIo::new(upgraded)).await;
        }
    });
    Some(response)
}

/// Sends each client frame's payload back unmasked, until the stream ends.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> std::io::Result<()> {
    loop {
        let mut header = [0; 2];
        stream.read_exact(&mut header).await?;
        let len = match header[1] & 0x7f {
            126 => usize::from(stream.read_u16().await?),
            127 => usize::try_from(stream.read_u64().await?).unwrap_or(usize::MAX),
            len => usize::from(len),
        };
        let mut mask = [0; 4];
        if header[1] & 0x80 != 0 {
            stream.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0; len];
        stream.read_exact(&mut payload).await?;
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        let mut frame = vec![header[0]];
        match u16::try_from(len) {
            Ok(short) if short < 126 => frame.push(u8::try_from(short).unwrap_or(0)),
            Ok(short) => {
                frame.push(126);
                frame.extend_from_slice(&short.to_be_bytes());
            }
            Err(_) => {
                frame.push(127);
                frame.extend_from_slice(&u64::try_from(len).unwrap_or(u64::MAX).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        stream.write_all(&frame).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_back_unmasked() {
        let (mut client, server) = tokio::io::duplex(256);
        tokio::spawn(echo(server));
        client
            .write_all(&masked_text_frame(b"ping").unwrap())
            .await
            .unwrap();
        let mut echoed = [0; 6];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed.to_vec(), echoed_text_frame(b"ping"));
        assert_eq!(&echoed, b"\x81\x04ping");
    }

    #[test]
    fn heads_are_read_to_the_blank_line() {
        let mut bytes = &b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\nrest"[..];
        assert_eq!(
            read_head(&mut bytes).unwrap(),
            "http/1.1 101 switching\r\nupgrade: websocket\r\n\r\n"
        );
        assert_eq!(bytes, b"rest");
        assert!(read_head(&mut &b"HTTP/1.1 101"[..]).is_err());
    }
}
