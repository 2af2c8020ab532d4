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
/// Compatibility forms count as digits (full-width `１５５５` → `1555`, by NFKC); a national
/// trunk `(0)` written after a `+` country code is not part of E.164 and is left out
/// (`+44 (0)20 7946 0000` → `442079460000`). `None` when no digit is left (`unknown`, or
/// digits of another script such as `١٥٥٥`, which are not converted): dropped, never hashed.
pub(crate) fn hash_phone(phone: &str) -> Option<String> {
    let phone = phone.trim();
    let phone = match phone.strip_prefix('+') {
        Some(rest) => rest.replacen("(0)", "", 1),
        None => phone.to_owned(),
    };
    hash_non_empty(phone.nfkc().filter(char::is_ascii_digit).collect())
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
        for phone in ["unknown", "+\u{661}\u{665}\u{665}\u{665}", "", " ", "+()-"] {
            assert_eq!(hash_phone(phone), None, "{phone}");
        }
        assert_eq!(hash_email("  "), None);
        assert_eq!(hash_text("\t"), None);
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
        assert_eq!(hash_phone("(0)20 7946 0000"), hash_phone("02079460000"));
    }
}
