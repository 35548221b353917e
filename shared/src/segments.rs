//! SMS encoding and segments, per GSM 03.38 and the concatenation rules
//! carriers apply: a text made only of GSM-7 characters is 160 septets in one
//! segment or 153 per segment when split (characters of the extension table,
//! such as `{` and `€`, take two septets and never straddle a split); any
//! other character (Chinese, emoji) makes the whole text UCS-2: 70 UTF-16
//! units in one segment, 67 per segment when split (a surrogate pair never
//! straddles a split).

/// The GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (an escape plus the character: two septets each).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// How a text travels as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsSize {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

fn gsm7_width(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts units greedily into segments of `per` units; a character is never split.
fn pack(widths: impl Iterator<Item = usize>, single: usize, per: usize) -> (usize, usize) {
    let widths: Vec<usize> = widths.collect();
    let units: usize = widths.iter().sum();
    if units <= single {
        return (units, usize::from(units > 0));
    }
    let (mut segments, mut used) = (1, 0);
    for w in widths {
        if used + w > per {
            segments += 1;
            used = 0;
        }
        used += w;
    }
    (units, segments)
}

/// The encoding, size and number of segments of `text`.
pub fn measure(text: &str) -> SmsSize {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_width).collect();
    match gsm {
        Some(widths) => {
            let (units, segments) = pack(widths.into_iter(), 160, 153);
            SmsSize {
                encoding: Encoding::Gsm7,
                units,
                segments,
            }
        }
        None => {
            let (units, segments) = pack(text.chars().map(char::len_utf16), 70, 67);
            SmsSize {
                encoding: Encoding::Ucs2,
                units,
                segments,
            }
        }
    }
}

/// `base` followed by as many of the `optional` parts (in order, each after a
/// space) as keep the text within `max_segments`; `None` when `base` alone is
/// too long. Required content (amount, date, link) belongs in `base`.
pub fn fit(base: &str, optional: &[&str], max_segments: usize) -> Option<String> {
    if measure(base).segments > max_segments {
        return None;
    }
    let mut text = base.to_owned();
    for part in optional.iter().filter(|p| !p.is_empty()) {
        let candidate = format!("{text} {part}");
        if measure(&candidate).segments <= max_segments {
            text = candidate;
        }
    }
    Some(text)
}

/// The opt-out line for `phone` from `(calling-code prefix, line)` pairs such
/// as `("+1", "Reply STOP to opt out")`: the longest matching prefix wins.
pub fn opt_out_line<'a>(phone: &str, lines: &'a [(String, String)]) -> Option<&'a str> {
    lines
        .iter()
        .filter(|(prefix, _)| phone.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, line)| line.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(text: &str) -> (Encoding, usize, usize) {
        let m = measure(text);
        (m.encoding, m.units, m.segments)
    }

    #[test]
    fn gsm7_texts_fit_160_then_153_per_segment() {
        assert_eq!(seg(""), (Encoding::Gsm7, 0, 0));
        assert_eq!(seg(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (Encoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (Encoding::Gsm7, 307, 3));
        let accents = "Café £5 @ 9:00 Ñoño ¿sì? Düsseldorf";
        assert_eq!(seg(accents), (Encoding::Gsm7, accents.chars().count(), 1));
        // `ú` and `í` are not in the alphabet: the text goes as UCS-2.
        assert_eq!(measure("Ñandú ¿sí?").encoding, Encoding::Ucs2);
    }

    #[test]
    fn extension_characters_take_two_septets_and_never_straddle_a_split() {
        assert_eq!(seg("{€}"), (Encoding::Gsm7, 6, 1));
        assert_eq!(seg(&"€".repeat(80)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"€".repeat(81)), (Encoding::Gsm7, 162, 2));
        // 152 septets then a two-septet character: it moves whole to segment 2.
        let text = format!("{}{}{}", "a".repeat(152), "€", "a".repeat(10));
        assert_eq!(seg(&text), (Encoding::Gsm7, 164, 2));
        let tight = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(seg(&tight), (Encoding::Gsm7, 306, 3));
    }

    #[test]
    fn chinese_and_emoji_make_the_whole_text_ucs2() {
        assert_eq!(seg("发票"), (Encoding::Ucs2, 2, 1));
        assert_eq!(seg(&"发".repeat(70)), (Encoding::Ucs2, 70, 1));
        assert_eq!(seg(&"发".repeat(71)), (Encoding::Ucs2, 71, 2));
        assert_eq!(seg(&"发".repeat(134)), (Encoding::Ucs2, 134, 2));
        assert_eq!(seg(&"发".repeat(135)), (Encoding::Ucs2, 135, 3));
        // An emoji is two UTF-16 units; a single one turns ASCII text into UCS-2.
        assert_eq!(seg("Pay now 👍"), (Encoding::Ucs2, 10, 1));
        let pairs = format!("{}👍", "a".repeat(66));
        assert_eq!(
            seg(&format!("{pairs}{}", "a".repeat(3))),
            (Encoding::Ucs2, 71, 2)
        );
        // `ç` is GSM-7 only as upper-case `Ç`: lower-case needs UCS-2.
        assert_eq!(measure("façade").encoding, Encoding::Ucs2);
    }

    #[test]
    fn optional_parts_are_dropped_before_the_limit_is_passed() {
        let base = "a".repeat(150);
        assert_eq!(
            fit(&base, &["Reply STOP"], 1),
            Some(base.clone()),
            "would need a second segment"
        );
        assert_eq!(
            fit(&base, &["Reply STOP"], 2),
            Some(format!("{base} Reply STOP"))
        );
        assert_eq!(
            fit("short", &["one", "two"], 1).as_deref(),
            Some("short one two")
        );
        assert_eq!(fit(&"a".repeat(400), &[], 2), None);
        let lines = vec![
            ("+1".to_owned(), "Reply STOP to opt out".to_owned()),
            ("+1868".to_owned(), "Text STOP".to_owned()),
        ];
        assert_eq!(
            opt_out_line("+15555550100", &lines),
            Some("Reply STOP to opt out")
        );
        assert_eq!(opt_out_line("+18685550100", &lines), Some("Text STOP"));
        assert_eq!(opt_out_line("+447700900123", &lines), None);
    }

    proptest! {
        #[test]
        fn segments_hold_every_unit_and_no_more_than_needed(text in "\\PC{0,400}") {
            let m = measure(&text);
            let (single, per) = match m.encoding { Encoding::Gsm7 => (160, 153), Encoding::Ucs2 => (70, 67) };
            if m.units == 0 {
                prop_assert_eq!(m.segments, 0);
            } else if m.units <= single {
                prop_assert_eq!(m.segments, 1);
            } else {
                // At least the units need, at most one extra per unsplittable character boundary.
                prop_assert!(m.segments >= m.units.div_ceil(per));
                prop_assert!(m.segments <= m.units.div_ceil(per - 1));
            }
            if text.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
                prop_assert_eq!(m.encoding, Encoding::Gsm7);
                prop_assert_eq!(m.units, text.chars().count());
            }
        }
    }
}
