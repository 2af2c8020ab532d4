//! Turning the HTTP body into bytes: size cap, `Content-Encoding`, and splitting a body serde
//! cannot read whole. One event holding bytes that are not UTF-8 (Latin-1 `caf\xe9`, say) or
//! broken JSON must not fail its neighbours: each such event is replaced by a marker object
//! that keeps its bytes in base64, so it is dead-lettered alone and losslessly as
//! `malformed_event`, and the rest of the body is read as usual.

use std::borrow::Cow;
use std::io::Read;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::bufread::GzDecoder;
use serde::de::IgnoredAny;

use super::IngestError;

/// Returns the body, inflated if gzip. Reads at most `max_bytes + 1` inflated bytes, so a
/// small body that inflates without bound (a gzip bomb) costs bounded memory and gets 413.
///
/// A gzip body is read whole: every member in turn (RFC 1952 §2.2, "a gzip file consists of a
/// series of members", <https://www.rfc-editor.org/rfc/rfc1952#section-2.2>), as Python's
/// `gzip`, `zcat` and Go do, and zero bytes padding the end are ignored, as Python's `gzip`
/// does. Other bytes after the last member are corrupt (400), never silently dropped.
/// `Content-Encoding` may list codings in the order applied (RFC 9110 §8.4,
/// <https://www.rfc-editor.org/rfc/rfc9110#section-8.4>): `gzip`, `x-gzip` and `identity`, at
/// most two gzip layers (`MAX_GZIP_LAYERS`).
///
/// The body's own bytes have the last word, since no JSON text starts with gzip's magic bytes
/// and no gzip stream with `{`: a body that is already JSON is read as is whatever the header
/// says (an API Gateway REST API with payload compression enabled inflates the body before the
/// Lambda sees it, <https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-gzip-compression-decompression.html>),
/// and a gzip body sent without the header is inflated, both with a WARN. Anything else under a
/// coding other than gzip is 415.
pub fn decode_body<'b>(
    raw: &'b [u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<DecodedBody<'b>, IngestError> {
    if raw.len() > max_bytes {
        return Err(IngestError::PayloadTooLarge { limit: max_bytes });
    }
    let declared = declared_gzip_layers(content_encoding);
    let mut body = Cow::Borrowed(raw);
    let mut layers = 0;
    while layers < MAX_GZIP_LAYERS && is_gzip(&body) {
        body = Cow::Owned(gunzip(&body, max_bytes)?);
        layers += 1;
    }
    match declared {
        _ if is_gzip(&body) => return Err(IngestError::UnsupportedEncoding),
        Some(declared) if declared == layers => {}
        // No bytes are the empty batch Braze sends to check credentials, however encoded.
        Some(_) if raw.is_empty() => {}
        _ if looks_like_json(&body) => {
            tracing::warn!(content_encoding = %short_header(content_encoding), gzip_layers = layers,
                "Content-Encoding does not match the body; read by its bytes.");
        }
        Some(_) => return Err(IngestError::BadRequest("the gzip body is corrupt".to_owned())),
        None => return Err(IngestError::UnsupportedEncoding),
    }
    Ok(isolate_if_needed(without_bom(body)))
}

/// The UTF-8 byte order mark some Windows tools write first.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `body` without a leading UTF-8 byte order mark. RFC 8259 §8.1 lets a parser ignore one
/// (<https://www.rfc-editor.org/rfc/rfc8259#section-8.1>), and Python's `json` does; serde
/// would refuse the whole body.
fn without_bom(body: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    match body {
        Cow::Borrowed(bytes) => Cow::Borrowed(bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)),
        Cow::Owned(mut bytes) => {
            if bytes.starts_with(UTF8_BOM) {
                bytes.drain(..UTF8_BOM.len());
            }
            Cow::Owned(bytes)
        }
    }
}

/// Most gzip layers a body may carry; one is what clients send.
pub(super) const MAX_GZIP_LAYERS: usize = 2;

/// How many times the `Content-Encoding` list says the body was gzipped; `None` when it names
/// a coding we cannot undo (`br`, `deflate`, …) or more than [`MAX_GZIP_LAYERS`] gzip layers.
fn declared_gzip_layers(content_encoding: Option<&str>) -> Option<usize> {
    let mut layers = 0;
    for coding in content_encoding.unwrap_or_default().split(',') {
        match coding.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => {}
            "gzip" | "x-gzip" => layers += 1,
            _ => return None,
        }
    }
    (layers <= MAX_GZIP_LAYERS).then_some(layers)
}

/// Whether `bytes` start with gzip's magic number, 1f 8b (RFC 1952 §2.3.1).
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Whether `bytes` are plainly JSON text: a `{` or `[` first, after white space and any UTF-8
/// byte order mark.
fn looks_like_json(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    matches!(bytes.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
}

/// The `Content-Encoding` header, cut to 64 characters, for a log line.
fn short_header(content_encoding: Option<&str>) -> String {
    content_encoding.unwrap_or("(none)").chars().take(64).collect()
}

/// Inflates every member of a gzip stream, at most `max_bytes` of output, ignoring zero bytes
/// that pad the end. An empty body is not a gzip stream and is never passed here: it stays the
/// empty batch Braze sends to check credentials, whatever `Content-Encoding` says (as Python's
/// `gzip.decompress(b"")`).
fn gunzip(raw: &[u8], max_bytes: usize) -> Result<Vec<u8>, IngestError> {
    let corrupt = |_| IngestError::BadRequest("the gzip body is corrupt".to_owned());
    let mut inflated = Vec::with_capacity(raw.len().saturating_mul(4).min(max_bytes));
    let mut rest = raw;
    while !rest.is_empty() {
        let budget = (max_bytes + 1).saturating_sub(inflated.len()) as u64;
        let mut member = GzDecoder::new(rest);
        (&mut member).take(budget).read_to_end(&mut inflated).map_err(corrupt)?;
        if inflated.len() > max_bytes {
            return Err(IngestError::PayloadTooLarge { limit: max_bytes });
        }
        rest = member.into_inner();
        if rest.iter().all(|&b| b == 0) {
            break;
        }
    }
    Ok(inflated)
}

/// A decoded body: text when it is UTF-8 (checked once, here, so the parser need not check
/// again), else the bytes as they came, to be refused whole.
#[derive(Debug)]
pub enum DecodedBody<'b> {
    /// Valid UTF-8, either as sent or after undecodable events were isolated.
    Text(Cow<'b, str>),
    /// Not UTF-8 and not an envelope even at the byte level.
    Bytes(Cow<'b, [u8]>),
}

impl std::ops::Deref for DecodedBody<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            DecodedBody::Text(text) => text.as_bytes(),
            DecodedBody::Bytes(bytes) => bytes,
        }
    }
}

/// Valid UTF-8 passes untouched (the common case costs one UTF-8 check); otherwise the body's
/// undecodable events are isolated, or it is left as is to be refused whole.
fn isolate_if_needed(body: Cow<'_, [u8]>) -> DecodedBody<'_> {
    let body = match body {
        Cow::Borrowed(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => return DecodedBody::Text(Cow::Borrowed(text)),
            Err(_) => Cow::Borrowed(bytes),
        },
        Cow::Owned(bytes) => match String::from_utf8(bytes) {
            Ok(text) => return DecodedBody::Text(Cow::Owned(text)),
            Err(error) => Cow::Owned(error.into_bytes()),
        },
    };
    match isolate_undecodable(&body).map(String::from_utf8) {
        Some(Ok(repaired)) => DecodedBody::Text(Cow::Owned(repaired)),
        _ => DecodedBody::Bytes(body),
    }
}

/// The marker field: an event object holding it stands for the raw event bytes, base64-encoded.
pub(crate) const UNDECODABLE_MARKER: &str = "undecodable_event_base64";

/// A copy of `body` as `{"events":[...]}` in which every event that is not valid UTF-8 JSON is
/// `{"undecodable_event_base64":"<base64 of its bytes>"}`. Other top-level fields are dropped
/// (they are ignored anyway). `None` when the body is not a JSON object with one `events`
/// array, even at the byte level: such a body is not a Currents envelope and earns a 400.
pub(crate) fn isolate_undecodable(body: &[u8]) -> Option<Vec<u8>> {
    let mut scan = Scan { bytes: body, pos: 0 };
    scan.eat(b'{')?;
    let mut events = None;
    if scan.peek()? != b'}' {
        loop {
            let key = scan.value()?;
            if body[key.start] != b'"' {
                return None;
            }
            scan.eat(b':')?;
            let value = scan.value()?;
            if &body[key] == b"\"events\"" {
                if events.is_some() {
                    return None;
                }
                events = Some(elements(body, value)?);
            }
            match scan.peek()? {
                b',' => scan.pos += 1,
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.pos += 1;
    scan.skip_space();
    if scan.pos != body.len() {
        return None;
    }
    let events = events?;
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(b"{\"events\":[");
    for (i, span) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_event(&mut out, &body[span]);
    }
    out.extend_from_slice(b"]}");
    Some(out)
}

/// The raw bytes a marker stands for, or `None` when `event` is not a marker.
#[cfg(test)]
fn undecodable_bytes(event: &str) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_str(event).ok()?;
    STANDARD.decode(value.get(UNDECODABLE_MARKER)?.as_str()?).ok()
}

fn push_event(out: &mut Vec<u8>, event: &[u8]) {
    let readable = std::str::from_utf8(event).is_ok() && serde_json::from_slice::<IgnoredAny>(event).is_ok();
    if readable {
        out.extend_from_slice(event);
    } else {
        let marker = serde_json::json!({ UNDECODABLE_MARKER: STANDARD.encode(event) });
        out.extend_from_slice(marker.to_string().as_bytes());
    }
}

fn elements(body: &[u8], array: Range<usize>) -> Option<Vec<Range<usize>>> {
    let mut scan = Scan {
        bytes: &body[..array.end],
        pos: array.start,
    };
    scan.eat(b'[')?;
    let mut out = Vec::new();
    if scan.peek()? == b']' {
        return Some(out);
    }
    loop {
        out.push(scan.value()?);
        match scan.peek()? {
            b',' => scan.pos += 1,
            b']' => return Some(out),
            _ => return None,
        }
    }
}

/// A cursor over JSON bytes that finds where values end without decoding any text.
struct Scan<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl Scan<'_> {
    fn skip_space(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// The span of the value at the cursor, which moves past it.
    fn value(&mut self) -> Option<Range<usize>> {
        self.skip_space();
        let start = self.pos;
        match self.peek()? {
            b'"' => self.string()?,
            b'{' | b'[' => self.nested()?,
            _ => {
                while !matches!(
                    self.bytes.get(self.pos),
                    None | Some(b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
            }
        }
        Some(start..self.pos)
    }

    fn string(&mut self) -> Option<()> {
        self.pos += 1;
        while let Some(&byte) = self.bytes.get(self.pos) {
            self.pos += 1;
            match byte {
                b'\\' => self.pos += 1,
                b'"' => return Some(()),
                _ => {}
            }
        }
        None
    }

    fn nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        while let Some(&byte) = self.bytes.get(self.pos) {
            match byte {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        self.pos += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_bodies_come_out_the_same() {
        let body = br#"{"events":[]}"#;
        assert_eq!(&*decode_body(body, None, 100).unwrap(), body);
        assert_eq!(&*decode_body(&gzip(body), Some("GZIP"), 100).unwrap(), body);
    }

    #[test]
    fn the_limit_is_inclusive_and_one_byte_over_is_refused() {
        let body = vec![b' '; 100];
        assert!(decode_body(&body, None, 100).is_ok());
        assert!(matches!(
            decode_body(&body, None, 99),
            Err(IngestError::PayloadTooLarge { .. })
        ));
        assert!(decode_body(&gzip(&body), Some("gzip"), 100).is_ok());
        assert!(matches!(
            decode_body(&gzip(&body), Some("gzip"), 99),
            Err(IngestError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it_whole() {
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < 100_000);
        assert!(matches!(
            decode_body(&bomb, Some("gzip"), 1024 * 1024),
            Err(IngestError::PayloadTooLarge { .. })
        ));
    }

    /// Issue 21, case 7: a gzip file is a series of members (RFC 1952 §2.2).
    #[test]
    fn every_gzip_member_is_read_and_bytes_after_the_last_are_corrupt() {
        let body = br#"{"events":[{"id":"a"},{"id":"b"}]}"#;
        let (head, tail) = body.split_at(14);
        let members = [gzip(head), gzip(tail)].concat();
        assert_eq!(&*decode_body(&members, Some("gzip"), 100).unwrap(), body);
        let three = [gzip(b""), gzip(head), gzip(tail)].concat();
        assert_eq!(&*decode_body(&three, Some("gzip"), 100).unwrap(), body);
        // The limit counts every member, not only the first.
        assert!(matches!(
            decode_body(&members, Some("gzip"), body.len() - 1),
            Err(IngestError::PayloadTooLarge { .. })
        ));
        assert!(decode_body(b"", Some("gzip"), 100).unwrap().is_empty());
        let garbage = [gzip(body), b"junk".to_vec()].concat();
        assert!(matches!(
            decode_body(&garbage, Some("gzip"), 100),
            Err(IngestError::BadRequest(_))
        ));
    }

    /// A leading UTF-8 byte order mark is dropped, plain or inside gzip; anywhere else it stays.
    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        let body = br#"{"events":[]}"#;
        let with_bom = [UTF8_BOM, body].concat();
        assert_eq!(&*decode_body(&with_bom, None, 100).unwrap(), body);
        assert_eq!(&*decode_body(&gzip(&with_bom), Some("gzip"), 100).unwrap(), body);
        let inner = [b" ".as_slice(), UTF8_BOM, body].concat();
        assert_eq!(&*decode_body(&inner, None, 100).unwrap(), &inner[..]);
    }

    #[test]
    fn content_encoding_lists_are_decoded_in_order_and_bounded() {
        let body = br#"{"events":[]}"#;
        for coding in ["identity, gzip", "gzip, identity", " x-gzip ", "gzip,"] {
            assert_eq!(&*decode_body(&gzip(body), Some(coding), 100).unwrap(), body, "{coding}");
        }
        assert_eq!(
            &*decode_body(&gzip(&gzip(body)), Some("gzip, gzip"), 100).unwrap(),
            body
        );
        for coding in ["gzip, br", "deflate", "gzip, gzip, gzip"] {
            assert!(
                matches!(
                    decode_body(b"\x28\xb5\x2f\xfd not json", Some(coding), 100),
                    Err(IngestError::UnsupportedEncoding)
                ),
                "{coding}"
            );
        }
        let triple = gzip(&gzip(&gzip(body)));
        assert!(matches!(
            decode_body(&triple, Some("gzip, gzip"), 100),
            Err(IngestError::UnsupportedEncoding)
        ));
    }

    /// Issue 21, case 7's class: a body standard tools read whole is read whole. The body's
    /// bytes decide, the header only names what was meant: JSON under a gzip (or `deflate`,
    /// `br`) header, as an API Gateway REST API with payload compression hands it on after
    /// inflating it; gzip with no header; and a gzip file padded with zero bytes.
    #[test]
    fn the_body_bytes_decide_when_the_header_does_not_match() {
        let body = br#"{"events":[{"id":"a"}]}"#;
        let with_bom = [b"\xEF\xBB\xBF \n".as_slice(), body].concat();
        for coding in ["gzip", "x-gzip", "deflate", "br", "gzip, gzip", "gzip, gzip, gzip"] {
            assert_eq!(&*decode_body(body, Some(coding), 100).unwrap(), body, "{coding}");
            assert_eq!(
                &*decode_body(&with_bom, Some(coding), 100).unwrap(),
                &with_bom[3..],
                "{coding}"
            );
        }
        for coding in [None, Some("identity"), Some("")] {
            assert_eq!(&*decode_body(&gzip(body), coding, 100).unwrap(), body, "{coding:?}");
            assert_eq!(&*decode_body(&gzip(&gzip(body)), coding, 100).unwrap(), body);
        }
        assert_eq!(&*decode_body(&gzip(body), Some("gzip, gzip"), 100).unwrap(), body);
        for padding in [1, 7, 512] {
            let padded = [gzip(body), vec![0; padding]].concat();
            assert_eq!(&*decode_body(&padded, Some("gzip"), 1000).unwrap(), body, "{padding}");
            let two = [gzip(&body[..9]), vec![0; padding], gzip(&body[9..])].concat();
            assert!(
                matches!(decode_body(&two, Some("gzip"), 1000), Err(IngestError::BadRequest(_))),
                "zeros between members are not padding"
            );
        }
        let bomb_in_disguise = [gzip(&[b' '; 200]), vec![0; 4]].concat();
        assert!(matches!(
            decode_body(&bomb_in_disguise, None, 100),
            Err(IngestError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            decode_body(b"\0\0\0", Some("gzip"), 100),
            Err(IngestError::BadRequest(_))
        ));
    }

    #[test]
    fn corrupt_gzip_and_unknown_encodings_are_client_errors() {
        assert!(matches!(
            decode_body(b"not gzip", Some("gzip"), 100),
            Err(IngestError::BadRequest(_))
        ));
        assert!(matches!(
            decode_body(b"\x1b\x0d\x00 brotli", Some("br"), 100),
            Err(IngestError::UnsupportedEncoding)
        ));
    }

    #[test]
    fn a_latin1_event_becomes_a_marker_and_its_neighbours_stay_byte_exact() {
        let body = b"{\"v\":1, \"events\" : [ {\"id\":\"a\"} ,{\"id\":\"b\",\"properties\":{\"campaign_name\":\"caf\xe9\"}}, 5 ]}";
        let repaired = isolate_undecodable(body).unwrap();
        let text = std::str::from_utf8(&repaired).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let events = value["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0], serde_json::json!({"id":"a"}));
        assert_eq!(events[2], 5);
        let kept = undecodable_bytes(&events[1].to_string()).unwrap();
        assert_eq!(kept, b"{\"id\":\"b\",\"properties\":{\"campaign_name\":\"caf\xe9\"}}");
    }

    #[test]
    fn broken_json_inside_one_event_is_isolated_too() {
        let body = b"{\"events\":[{\"id\":tru},{\"id\":\"ok\",\"s\":\"\xff\"},{\"id\":\"c\"}]}";
        let repaired = isolate_undecodable(body).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&repaired).unwrap();
        let events = value["events"].as_array().unwrap();
        assert_eq!(undecodable_bytes(&events[0].to_string()).unwrap(), b"{\"id\":tru}");
        assert!(events[1].get(UNDECODABLE_MARKER).is_some());
        assert_eq!(events[2]["id"], "c");
    }

    /// Escaped quotes and backslashes inside strings, in keys, values and nested objects, do not
    /// end the string for the scanner: the events keep their bounds.
    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let body = b"{\"no\\\"te\":\"a\\\\\",\"events\":[{\"id\":\"q\\\"],\"},{\"id\":\"\xff\"},{\"p\":{\"k\\\"\":[\"\\\"}\"]}}]}";
        let repaired = isolate_undecodable(body).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&repaired).unwrap();
        let events = value["events"].as_array().unwrap();
        assert_eq!(events.len(), 3, "{value}");
        assert_eq!(events[0]["id"], "q\"],");
        assert_eq!(undecodable_bytes(&events[1].to_string()).unwrap(), b"{\"id\":\"\xff\"}");
        assert_eq!(events[2], serde_json::json!({"p": {"k\"": ["\"}"]}}));
    }

    #[test]
    fn bodies_that_are_not_an_envelope_even_by_bytes_are_refused() {
        for body in [
            &b"\xff\xfe"[..],
            b"[{\"events\":[]}]",
            b"{\"events\":\"\xff\"}",
            b"{\"events\":[],\"events\":[]}",
            b"{\"other\":[\"\xff\"]}",
            b"{\"events\":[\"\xff\"]",
            b"{\"events\":[\"\xff\"]} x",
            b"{\"events\":[{\"a\":\"\xff\"]}",
            b"{",
            b"",
        ] {
            assert_eq!(isolate_undecodable(body), None, "{body:?}");
        }
        assert_eq!(isolate_undecodable(b"{\"events\":[]}").unwrap(), b"{\"events\":[]}");
    }

    #[test]
    fn plain_and_gzip_bodies_with_a_latin1_event_keep_their_good_events() {
        let body = b"{\"events\":[{\"id\":\"a\"},{\"id\":\"b\",\"campaign_name\":\"caf\xe9\"}]}";
        for (bytes, encoding) in [(body.to_vec(), None), (gzip(body), Some("gzip"))] {
            let decoded = decode_body(&bytes, encoding, 10_000).unwrap();
            let events = crate::currents::parse_body(&decoded).unwrap();
            assert_eq!(events[0].get(), r#"{"id":"a"}"#);
            let error = crate::currents::parse_event(events[1]).unwrap_err();
            assert_eq!(error.code, "malformed_event");
            assert_eq!(
                undecodable_bytes(events[1].get()).unwrap(),
                b"{\"id\":\"b\",\"campaign_name\":\"caf\xe9\"}"
            );
        }
        assert!(matches!(
            decode_body(b"\xff\xfe", None, 100).unwrap(),
            DecodedBody::Bytes(Cow::Borrowed(_))
        ));
        assert!(matches!(
            decode_body(b"{\"events\":[]}", None, 100).unwrap(),
            DecodedBody::Text(Cow::Borrowed(_))
        ));
    }
}
