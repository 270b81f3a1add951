//! Where an HTTP/1 connection's request bytes are: between requests, in a
//! request head, or in a body (of a `Content-Length`, or chunked), read as
//! the connection manager reads them. The head timeout needs it for a head
//! that follows another: its bytes may arrive while the request before it
//! is in flight, and sit in the connection manager's buffer until then.

/// The longest header name kept to tell which header a line is.
const NAME_MAX: usize = "transfer-encoding".len();
/// The longest value of a framing header kept; a longer one is invalid, and
/// refused by the connection manager anyway.
const VALUE_MAX: usize = 1024;

/// The position in the connection's request bytes.
#[derive(Debug, Default)]
pub(super) struct Framing {
    state: State,
    /// Request heads completed so far.
    heads: u64,
}

#[derive(Debug, Default)]
enum State {
    /// Between requests; empty lines before a request line are skipped, as
    /// the connection manager skips them.
    #[default]
    Idle,
    Head(Head),
    /// This many bytes of a `Content-Length` body to come.
    Body(u64),
    Chunked(Chunk),
}

/// A request head being read, line by line.
#[derive(Debug, Default)]
struct Head {
    /// Bytes of the current line, carriage returns aside.
    line_len: usize,
    /// The current line's header name, lowercase, until its colon.
    name: Vec<u8>,
    /// Past the colon of a header that frames the body: which, and its
    /// value so far.
    value: Option<(Framer, Vec<u8>)>,
    /// Past the colon of any other header (or a line without one).
    past_name: bool,
    content_length: u64,
    chunked: bool,
}

/// The headers that say how a request body is framed.
#[derive(Debug, Clone, Copy)]
enum Framer {
    ContentLength,
    TransferEncoding,
}

/// Where a chunked body is.
#[derive(Debug)]
enum Chunk {
    /// The size line: the size read so far, and whether an extension began.
    Size(u64, bool),
    /// This many bytes of chunk data to come.
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    /// The trailer section, this many bytes into its current line.
    Trailers(usize),
}

impl Framing {
    /// How many request heads the bytes so far complete.
    pub(super) fn heads(&self) -> u64 {
        self.heads
    }

    /// Whether the bytes so far end inside a request head.
    pub(super) fn in_head(&self) -> bool {
        matches!(self.state, State::Head(_))
    }

    /// Reads `bytes`, the next the client sent.
    pub(super) fn received(&mut self, mut bytes: &[u8]) {
        while let Some((&byte, rest)) = bytes.split_first() {
            match &mut self.state {
                State::Idle => {
                    if byte != b'\r' && byte != b'\n' {
                        let mut head = Head::default();
                        head.push(byte);
                        self.state = State::Head(head);
                    }
                }
                State::Head(head) => {
                    if byte != b'\n' {
                        head.push(byte);
                    } else if head.line_len > 0 {
                        head.end_line();
                    } else {
                        self.heads += 1;
                        self.state = head.body();
                    }
                }
                State::Body(left) => {
                    let n = skip(bytes, left);
                    if *left == 0 {
                        self.state = State::Idle;
                    }
                    bytes = &bytes[n..];
                    continue;
                }
                State::Chunked(chunk) => {
                    if let Chunk::Data(left) = chunk {
                        let n = skip(bytes, left);
                        if *left == 0 {
                            *chunk = Chunk::DataEnd;
                        }
                        bytes = &bytes[n..];
                        continue;
                    }
                    if let Some(next) = chunk.byte(byte) {
                        self.state = next;
                    }
                }
            }
            bytes = rest;
        }
    }
}

/// Skips up to `left` of `bytes`: how many.
fn skip(bytes: &[u8], left: &mut u64) -> usize {
    let n = usize::try_from(*left).map_or(bytes.len(), |left| left.min(bytes.len()));
    *left -= n as u64;
    n
}

impl Head {
    fn push(&mut self, byte: u8) {
        if byte == b'\r' {
            return;
        }
        self.line_len += 1;
        match (&mut self.value, self.past_name) {
            (Some((_, value)), _) => {
                if value.len() < VALUE_MAX {
                    value.push(byte);
                }
            }
            (None, true) => {}
            (None, false) if byte == b':' => {
                self.past_name = true;
                self.value = match self.name.as_slice() {
                    b"content-length" => Some((Framer::ContentLength, Vec::new())),
                    b"transfer-encoding" => Some((Framer::TransferEncoding, Vec::new())),
                    _ => None,
                };
            }
            (None, false) => {
                if self.name.len() <= NAME_MAX {
                    self.name.push(byte.to_ascii_lowercase());
                }
            }
        }
    }

    /// A line of the head ended: note it if it frames the body.
    fn end_line(&mut self) {
        if let Some((framer, value)) = self.value.take() {
            let value = String::from_utf8_lossy(&value);
            let value = value.trim();
            match framer {
                Framer::ContentLength => self.content_length = value.parse().unwrap_or(0),
                // The last coding says whether the body is chunked.
                Framer::TransferEncoding => {
                    self.chunked = value
                        .rsplit(',')
                        .next()
                        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
                }
            }
        }
        self.name.clear();
        self.past_name = false;
        self.line_len = 0;
    }

    /// What follows the head.
    fn body(&self) -> State {
        if self.chunked {
            State::Chunked(Chunk::Size(0, false))
        } else if self.content_length > 0 {
            State::Body(self.content_length)
        } else {
            State::Idle
        }
    }
}

impl Chunk {
    /// Reads one byte outside chunk data; the state that follows when the
    /// body ends.
    fn byte(&mut self, byte: u8) -> Option<State> {
        match self {
            Self::Size(size, extension) => match byte {
                b'\n' if *size == 0 => *self = Self::Trailers(0),
                b'\n' => *self = Self::Data(*size),
                b';' => *extension = true,
                _ if *extension => {}
                _ => {
                    if let Some(digit) = char::from(byte).to_digit(16) {
                        *size = size.saturating_mul(16).saturating_add(u64::from(digit));
                    }
                }
            },
            Self::Data(_) => {}
            Self::DataEnd => {
                if byte == b'\n' {
                    *self = Self::Size(0, false);
                }
            }
            Self::Trailers(line_len) => match byte {
                b'\n' if *line_len == 0 => return Some(State::Idle),
                b'\n' => *line_len = 0,
                b'\r' => {}
                _ => *line_len += 1,
            },
        }
        None
    }
}

#[cfg(test)]
mod tests;
