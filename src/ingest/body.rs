//! Turning the HTTP body into bytes: size cap and `Content-Encoding`.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;

use super::IngestError;

/// Returns the body, inflated if gzip. Reads at most `max_bytes + 1` inflated bytes, so a
/// small body that inflates without bound (a gzip bomb) costs bounded memory and gets 413.
pub fn decode_body<'b>(
    raw: &'b [u8],
    content_encoding: Option<&str>,
    max_bytes: usize,
) -> Result<Cow<'b, [u8]>, IngestError> {
    if raw.len() > max_bytes {
        return Err(IngestError::PayloadTooLarge { limit: max_bytes });
    }
    let encoding = content_encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(Cow::Borrowed(raw)),
        Some("gzip" | "x-gzip") => {
            let mut inflated = Vec::with_capacity(raw.len().saturating_mul(4).min(max_bytes));
            GzDecoder::new(raw)
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|_| IngestError::BadRequest("the gzip body is corrupt".to_owned()))?;
            if inflated.len() > max_bytes {
                return Err(IngestError::PayloadTooLarge { limit: max_bytes });
            }
            Ok(Cow::Owned(inflated))
        }
        Some(_) => Err(IngestError::UnsupportedEncoding),
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
        assert_eq!(decode_body(body, None, 100).unwrap().as_ref(), body);
        assert_eq!(decode_body(&gzip(body), Some("GZIP"), 100).unwrap().as_ref(), body);
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

    #[test]
    fn corrupt_gzip_and_unknown_encodings_are_client_errors() {
        assert!(matches!(
            decode_body(b"not gzip", Some("gzip"), 100),
            Err(IngestError::BadRequest(_))
        ));
        assert!(matches!(
            decode_body(b"{}", Some("br"), 100),
            Err(IngestError::UnsupportedEncoding)
        ));
    }
}
