//! Small helpers for the text people read: a count with its noun in the right number
//! ("1 warning", "2 warnings", "1 entry", "3 entries"), and large numbers with their
//! thousands marked ("4,194,304"), times as people read them ([`utc`]), and lines whose
//! columns line up ([`columns`]). Every
//! summary that prints a count goes through [`count`], so none says "1 errors".

/// `n` followed by `noun`, plural unless `n` is 1. `noun` is the singular; the plural
/// follows the English rules the CLI's nouns need: a consonant + `y` becomes `ies`
/// (entry → entries), `s`, `x`, `ch` and `sh` take `es`, everything else takes `s`. In a
/// noun of several words only the last one changes ("change set" → "change sets").
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {}", plural(noun))
    }
}

/// `lines` with their tab-separated cells lined up in columns two spaces apart, each column
/// as wide as its widest cell as a terminal shows it (tabwriter's elastic tabstops; a
/// name of wide or combining characters does not push its row out of line). The cell
/// after a line's last tab is not padded. Each line ends with a newline.
pub fn columns<I: IntoIterator<Item = String>>(lines: I) -> String {
    use std::io::Write;
    let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(2);
    for line in lines {
        // Writing to memory cannot fail.
        let _ = writeln!(tw, "{line}");
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// `2026-11-01 12:34:56 UTC` from milliseconds since the epoch (the calendar is the
/// `time` crate's; the one `format!` stays, as the crate's `formatting` feature and its
/// format-description macros would cost more build than they save here); a time past
/// year 9999 prints as milliseconds.
pub fn utc(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ms} ms after 1970-01-01 UTC"),
    }
}

/// `n` with a comma between each group of three digits: `4,194,304`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The plural of `noun` (see [`count`] for the rules).
pub fn plural(noun: &str) -> String {
    let consonant_y = noun.strip_suffix('y').filter(|stem| {
        stem.chars()
            .last()
            .is_some_and(|c| !"aeiou".contains(c.to_ascii_lowercase()))
    });
    if let Some(stem) = consonant_y {
        format!("{stem}ies")
    } else if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_what_a_terminal_shows() {
        let text = columns([
            "  group:Paris\tcopied".to_owned(),
            "  group:Zürich\tskipped".to_owned(),
            "  group:東京\treplaced".to_owned(),
        ]);
        assert_eq!(
            text,
            "  group:Paris   copied\n  group:Zürich  skipped\n  group:東京    replaced\n"
        );
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(0, "warning"), "0 warnings");
        assert_eq!(count(1, "warning"), "1 warning");
        assert_eq!(count(2, "error"), "2 errors");
        assert_eq!(count(1, "entry"), "1 entry");
        assert_eq!(count(7, "entry"), "7 entries");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(2, "change set"), "2 change sets");
        assert_eq!(count(3, "match"), "3 matches");
    }

    #[test]
    fn thousands_are_marked() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(4_194_304), "4,194,304");
        assert_eq!(thousands(799_980), "799,980");
    }
}
