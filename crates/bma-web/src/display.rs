//! How values are shown to people on the pages, as pure functions: French
//! typography (a no-break space before `?`, `:`, `;` and `!`), phone numbers
//! in the Belgian way, and the migration window as it can still happen.

use time::{Date, Duration};

/// The no-break space (U+00A0) the pages put before `?`, `:`, `;` and `!`,
/// everywhere the same one.
pub const NBSP: char = '\u{a0}';

/// French text with a no-break space before `?`, `:`, `;` and `!` where it
/// had an ordinary space (or none, after a word and before a space or the
/// end), so that the mark never starts a line. URLs (`https://…`), times (`10:30`) and marks
/// already preceded by a no-break space are left as they are.
pub fn fr(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let is_mark = matches!(c, '?' | ':' | ';' | '!');
        let url_colon = c == ':' && chars.get(i + 1) == Some(&'/');
        if is_mark && !url_colon {
            match out.chars().last() {
                Some(' ') => {
                    out.pop();
                    out.push(NBSP);
                }
                // A mark stuck to a word and followed by a space or the end:
                // a sentence's (`mailto:x` is not).
                Some(p)
                    if (p.is_alphabetic() || p == ')' || p == '»')
                        && chars.get(i + 1).is_none_or(|n| n.is_whitespace()) =>
                {
                    out.push(NBSP);
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// A phone number stored in E.164 (`+3224133090`) as people in Belgium
/// write it: Belgian numbers nationally (`02 413 30 90`, `081 23 45 67`,
/// `0470 12 34 56`, `0800 12 345`), other countries as `+33 1 23 45 67 89`.
/// Anything that is not E.164 is returned unchanged.
pub fn phone(e164: &str) -> String {
    let Some(digits) = e164.strip_prefix('+') else {
        return e164.to_owned();
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return e164.to_owned();
    }
    if let Some(nsn) = digits.strip_prefix("32")
        && let Some(national) = belgian(nsn)
    {
        return national;
    }
    let cc_len = country_code_len(digits);
    if digits.len() <= cc_len + 1 {
        return e164.to_owned();
    }
    let (cc, rest) = digits.split_at(cc_len);
    let grouped = if cc == "1" && rest.len() == 10 {
        format!("{} {} {}", &rest[..3], &rest[3..6], &rest[6..])
    } else {
        pairs_from_end(rest)
    };
    format!("+{cc} {grouped}")
}

/// A Belgian national significant number written nationally, if it is one.
fn belgian(nsn: &str) -> Option<String> {
    let b = nsn.as_bytes();
    match nsn.len() {
        // Mobiles: 04xx xx xx xx.
        9 if b[0] == b'4' && matches!(b[1], b'5'..=b'9') => {
            Some(format!("0{} {} {} {}", &nsn[..3], &nsn[3..5], &nsn[5..7], &nsn[7..]))
        }
        // Free and premium numbers: 0800 12 345.
        8 if nsn.starts_with("800") || nsn.starts_with("90") => {
            Some(format!("0{} {} {}", &nsn[..3], &nsn[3..5], &nsn[5..]))
        }
        // Zones of one digit (Brussels, Antwerp, Liège, Ghent): 02 413 30 90.
        8 if matches!(b[0], b'2' | b'3' | b'4' | b'9') => {
            Some(format!("0{} {} {} {}", &nsn[..1], &nsn[1..4], &nsn[4..6], &nsn[6..]))
        }
        // Zones of two digits: 081 23 45 67.
        8 if b[0] != b'0' => Some(format!("0{} {} {} {}", &nsn[..2], &nsn[2..4], &nsn[4..6], &nsn[6..])),
        _ => None,
    }
}

/// The length of the country code that starts `digits` (ITU E.164 zones:
/// 1 and 7 are one digit; a fixed list of two-digit codes; three otherwise).
fn country_code_len(digits: &str) -> usize {
    const TWO: [&str; 43] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
        "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
        "86", "90", "91", "92", "93", "94", "95",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO.iter().any(|c| digits.starts_with(c)) || digits.starts_with("98") {
        2
    } else {
        3
    }
}

/// `123456789` → `1 23 45 67 89`.
fn pairs_from_end(s: &str) -> String {
    let head = s.len() % 2;
    let mut parts: Vec<&str> = Vec::new();
    if head == 1 {
        parts.push(&s[..1]);
    }
    let mut i = head;
    while i < s.len() {
        parts.push(&s[i..i + 2]);
        i += 2;
    }
    parts.join(" ")
}

/// When a mailbox's migration can still happen, as the status page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Between two days (both within the campaign, the first not past).
    Between(Date, Date),
    /// By a day (the window's start has passed, or it is one day).
    By(Date),
}

/// The window of a mailbox invited on `invited`, seen on `today`: `min_weeks`
/// to `max_weeks` after mail 1, never starting before today nor ending after
/// the campaign's `end`. `None` once the campaign is over.
pub fn window(invited: Date, today: Date, min_weeks: u32, max_weeks: u32, end: Date) -> Option<Window> {
    if today > end {
        return None;
    }
    let from = (invited + Duration::weeks(i64::from(min_weeks))).max(today);
    let to = (invited + Duration::weeks(i64::from(max_weeks))).min(end);
    Some(if from < to { Window::Between(from, to) } else { Window::By(to.max(today)) })
}

impl Window {
    /// In French: "entre le 13 mai 2024 et le 31 mai 2024", "d'ici le 31 mai 2024".
    pub fn fr(self) -> String {
        use bma_core::settings::date_fr;
        match self {
            Window::Between(a, b) => format!("entre le {} et le {}", date_fr(a), date_fr(b)),
            Window::By(d) => format!("d'ici le {}", date_fr(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn french_marks_get_a_no_break_space() {
        let n = NBSP;
        let cases = [
            ("Besoin d'aide ?", format!("Besoin d'aide{n}?")),
            ("Établissement : École", format!("Établissement{n}: École")),
            ("Réessayez ; si", format!("Réessayez{n}; si")),
            ("Merci !", format!("Merci{n}!")),
            ("Merci!", format!("Merci{n}!")),
            ("Établissement: x", format!("Établissement{n}: x")),
            ("(voir ci-dessous): x", format!("(voir ci-dessous){n}: x")),
            ("https://www.autoriteprotectiondonnees.be", "https://www.autoriteprotectiondonnees.be".to_owned()),
            ("à 10:30", "à 10:30".to_owned()),
            ("mailto:x@y.be", "mailto:x@y.be".to_owned()),
            ("", String::new()),
        ];
        for (raw, expected) in cases {
            assert_eq!(fr(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn fr_is_idempotent() {
        for s in ["Besoin d'aide ?", "a : b ; c ! d ?", "x:y"] {
            assert_eq!(fr(&fr(s)), fr(s), "{s:?}");
        }
    }

    #[test]
    fn phones_are_shown_the_belgian_way() {
        let cases = [
            ("+3224133090", "02 413 30 90"),
            ("+3228001010", "02 800 10 10"),
            ("+3232345678", "03 234 56 78"),
            ("+3242222222", "04 222 22 22"),
            ("+3292345678", "09 234 56 78"),
            ("+3281234567", "081 23 45 67"),
            ("+3210123456", "010 12 34 56"),
            ("+32470123456", "0470 12 34 56"),
            ("+32499999999", "0499 99 99 99"),
            ("+3280012345", "0800 12 345"),
            ("+3290012345", "0900 12 345"),
            ("+3270123456", "070 12 34 56"),
            ("+33123456789", "+33 1 23 45 67 89"),
            ("+12025550143", "+1 202 555 0143"),
            ("+352621123456", "+352 6 21 12 34 56"),
            ("+4915112345678", "+49 1 51 12 34 56 78"),
            // Not E.164: as it is.
            ("02 413", "02 413"),
            ("", ""),
            ("+", "+"),
            ("+32", "+32"),
            ("+0123", "+0123"),
            ("+32abc", "+32abc"),
        ];
        for (e164, shown) in cases {
            assert_eq!(phone(e164), shown, "{e164:?}");
        }
    }

    #[test]
    fn the_window_stays_within_today_and_the_campaign() {
        let end = date!(2024 - 05 - 31);
        let cases = [
            // Invited on the first wave, seen that day: 3 weeks later, up to the campaign's end.
            (date!(2024 - 04 - 22), date!(2024 - 04 - 22), Some(Window::Between(date!(2024 - 05 - 13), end))),
            // Seen after the window opened: from today.
            (date!(2024 - 04 - 22), date!(2024 - 05 - 20), Some(Window::Between(date!(2024 - 05 - 20), end))),
            // The last wave: 3 weeks later is after the campaign: by its end.
            (date!(2024 - 05 - 20), date!(2024 - 05 - 20), Some(Window::By(end))),
            // Seen on the last day.
            (date!(2024 - 04 - 22), end, Some(Window::By(end))),
            // After the campaign: nothing to show.
            (date!(2024 - 04 - 22), date!(2024 - 06 - 01), None),
        ];
        for (invited, today, expected) in cases {
            assert_eq!(window(invited, today, 3, 12, end), expected, "{invited} {today}");
        }
        // A campaign long enough for the whole window.
        assert_eq!(
            window(date!(2024 - 04 - 22), date!(2024 - 04 - 22), 3, 12, date!(2024 - 12 - 31)),
            Some(Window::Between(date!(2024 - 05 - 13), date!(2024 - 07 - 15)))
        );
        assert_eq!(Window::By(end).fr(), "d'ici le 31 mai 2024");
        assert_eq!(Window::Between(date!(2024 - 05 - 13), end).fr(), "entre le 13 mai 2024 et le 31 mai 2024");
    }
}
