//! Normalised SHA-256 hashes of personal data, matching Braze's Currents field transformations
//! so hashed identities still join across tools.

use unicode_normalization::UnicodeNormalization;

/// Email: trimmed, lower-cased and in Unicode NFC (so `José` typed precomposed or as `e` plus
/// a combining accent hashes the same) before hashing. `None` when nothing is left: an empty
/// value is dropped, never hashed, since SHA-256 of "" would be one identity shared by all.
pub(crate) fn hash_email(email: &str) -> Option<String> {
    hash_non_empty(email.trim().to_lowercase().nfc().collect())
}

/// Phone: the digits of its E.164 form (`+1 (555) 010-0199` → `15550100199`) before hashing.
/// Every decimal digit counts, whatever its script: compatibility forms by NFKC (full-width
/// `１５５５`) and the digits of other scripts by their value (Arabic-Indic `١٥٥٥`, Persian
/// `۱۵۵۵`, Devanagari `१५५५` → `1555`), so one number hashes the same however it was typed. A
/// national trunk `(0)` written after a `+` country code is not part of E.164 and is left out
/// (`+44 (0)20 7946 0000` → `442079460000`). `None` when no digit is left (`unknown`): dropped,
/// never hashed.
pub(crate) fn hash_phone(phone: &str) -> Option<String> {
    let phone = phone.trim();
    let phone = match phone.strip_prefix('+').or_else(|| phone.strip_prefix('\u{ff0b}')) {
        Some(rest) => rest.replacen("(0)", "", 1).replacen("\u{ff08}0\u{ff09}", "", 1),
        None => phone.to_owned(),
    };
    let digits = phone.nfkc().filter_map(decimal_digit).map(|d| char::from(b'0' + d));
    hash_non_empty(digits.collect())
}

/// The first code point (the digit zero) of every run of ten decimal digits, general category
/// `Nd`, in Unicode 14.0 (each run is 0 to 9 in order; generated with Python's `unicodedata`,
/// <https://www.unicode.org/reports/tr44/#Numeric_Type>).
const DECIMAL_ZEROS: [u32; 66] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6,
    0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40,
    0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50,
    0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950,
    0x1FBF0,
];

/// The value of `c` when it is a decimal digit of any script, else `None`.
fn decimal_digit(c: char) -> Option<u8> {
    let c = u32::from(c);
    let run = DECIMAL_ZEROS.partition_point(|&zero| zero <= c).checked_sub(1)?;
    let value = c - DECIMAL_ZEROS[run];
    (value < 10).then_some(value as u8)
}

/// Free text (user agents, inbound SMS bodies): trimmed and in NFC, case kept, since case is
/// content. `None` when nothing is left.
pub(crate) fn hash_text(text: &str) -> Option<String> {
    hash_non_empty(text.trim().nfc().collect())
}

fn hash_non_empty(normalised: String) -> Option<String> {
    (!normalised.is_empty()).then(|| crate::digest::sha256_hex(normalised.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_sha256_values_after_normalising() {
        // sha256("test@example.com")
        let expected = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";
        assert_eq!(hash_email("  Test@Example.COM ").unwrap(), expected);
        // sha256("15550100199")
        let phone = "90be998a6e4b5bec4f18e14bc56a618ba6dd57100b89276067e3a77ff7140b4a";
        assert_eq!(hash_phone("+1 (555) 010-0199").unwrap(), phone);
        assert_eq!(hash_phone("15550100199").unwrap(), phone);
        // sha256("abc")
        assert_eq!(
            hash_text(" abc ").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// Issue 21, case 10: the same text in NFC and NFD is the same person.
    #[test]
    fn composed_and_decomposed_forms_hash_the_same() {
        let (nfc, nfd) = ("Jos\u{e9}@example.com", "Jose\u{301}@example.com");
        assert_ne!(nfc, nfd);
        assert_eq!(hash_email(nfc), hash_email(nfd));
        assert_eq!(hash_email("JOS\u{c9}@EXAMPLE.COM"), hash_email(nfd));
        assert_eq!(hash_text("Jos\u{e9}"), hash_text("Jose\u{301}"));
        assert_ne!(hash_text("Jos\u{e9}"), hash_text("jos\u{e9}"), "text keeps its case");
    }

    /// Issue 21, case 10: nothing left to hash is dropped, not sha256("") shared by everyone.
    #[test]
    fn an_empty_normalised_value_is_never_hashed() {
        for phone in ["unknown", "", " ", "+()-", "N/A", "\u{2167}"] {
            assert_eq!(hash_phone(phone), None, "{phone}");
        }
        assert_eq!(hash_email("  "), None);
        assert_eq!(hash_text("\t"), None);
    }

    /// Issue 21, case 10's class: the same number typed in another script's digits is the same
    /// person, not dropped.
    #[test]
    fn digits_of_every_script_count_by_their_value() {
        let e164 = hash_phone("+15551234567");
        for typed in [
            "+\u{661}\u{665}\u{665}\u{665}\u{661}\u{662}\u{663}\u{664}\u{665}\u{666}\u{667}",
            "+\u{6f1}\u{6f5}\u{6f5}\u{6f5}\u{6f1}\u{6f2}\u{6f3}\u{6f4}\u{6f5}\u{6f6}\u{6f7}",
            "+\u{967}\u{96b}\u{96b}\u{96b}\u{967}\u{968}\u{969}\u{96a}\u{96b}\u{96c}\u{96d}",
            "+1 555 \u{e51}\u{e52}\u{e53} 4567",
        ] {
            assert_eq!(hash_phone(typed), e164, "{typed}");
        }
    }

    /// Every run in the table is ten decimal digits, and the characters around the runs are not
    /// digits: the table matches what Rust knows of Unicode's numbers.
    #[test]
    fn the_decimal_digit_table_holds_only_runs_of_ten() {
        for zero in DECIMAL_ZEROS {
            for value in 0..10 {
                let c = char::from_u32(zero + value).unwrap();
                assert!(c.is_numeric(), "{c:?}");
                assert_eq!(decimal_digit(c), Some(value as u8));
            }
        }
        for c in ['a', '+', '\u{2155}', '\u{2167}', '\u{b2}', '\u{0}', '\u{10ffff}'] {
            assert_eq!(decimal_digit(c), None, "{c:?}");
        }
        assert!(DECIMAL_ZEROS.windows(2).all(|w| w[1] >= w[0] + 10));
    }

    #[test]
    fn full_width_digits_and_a_trunk_zero_reach_the_e164_digits() {
        let e164 = hash_phone("+15550100199");
        assert!(e164.is_some());
        assert_eq!(
            hash_phone("+\u{ff11}\u{ff15}\u{ff15}\u{ff15}\u{ff10}\u{ff11}\u{ff10}\u{ff10}\u{ff11}\u{ff19}\u{ff19}"),
            e164
        );
        assert_eq!(hash_phone("+44 (0)20 7946 0000"), hash_phone("+44 20 7946 0000"));
        assert_eq!(hash_phone("+44 (0)20 7946 0000"), hash_phone("442079460000"));
        // Without a `+` the 0 is the national form's own digit and is kept.
        assert_eq!(
            hash_phone("\u{ff0b}44\u{ff08}0\u{ff09}2079460000"),
            hash_phone("442079460000")
        );
        assert_eq!(hash_phone("(0)20 7946 0000"), hash_phone("02079460000"));
    }
}
