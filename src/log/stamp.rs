//! A syslog line's timestamp: recognised in its three forms (for `line`, which skips it), and
//! turned into a moment for the one use that needs it, finding where the last minutes of a log
//! file start (`check --log-since`). Counting never trusts a stamp: BSD and `maillog_file`
//! stamps have no year and no zone. Pure: the clock and the local zone's offset are arguments.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// A timestamp as written, not yet a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written<'a> {
    /// `2025-12-01T18:24:05.123456+01:00` (Debian's rsyslog): a moment, zone and all.
    Rfc3339(&'a str),
    /// `Dec  1 18:24:05` (BSD syslog, day space-padded) or `Dec 01 18:24:05` (Postfix's
    /// `maillog_file`): local time, without a year.
    Bsd {
        month: &'a str,
        day: &'a str,
        time: &'a str,
    },
}

/// The timestamp at the start of `line` and the rest of the line after the space that ends
/// it; `None` when the line starts with none of the three forms. Allocates nothing.
pub fn split(line: &str) -> Option<(Written<'_>, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() > 10 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-' {
        // RFC 3339: one token.
        let (stamp, rest) = line.split_once(' ')?;
        return Some((Written::Rfc3339(stamp), rest));
    }
    // `Mmm dd hh:mm:ss` or `Mmm  d hh:mm:ss`: a month, a day, a time.
    let month = bytes.get(..3)?;
    if !month.iter().all(u8::is_ascii_alphabetic) || bytes.get(3) != Some(&b' ') {
        return None;
    }
    let rest = line[4..].trim_start_matches(' ');
    let (day, rest) = rest.split_once(' ')?;
    let (time, rest) = rest.split_once(' ')?;
    let day_ok = !day.is_empty() && day.len() <= 2 && day.bytes().all(|b| b.is_ascii_digit());
    let time_ok = time.len() == 8 && time.bytes().filter(|&b| b == b':').count() == 2;
    (day_ok && time_ok).then_some((
        Written::Bsd {
            month: &line[..3],
            day,
            time,
        },
        rest,
    ))
}

/// The moment (seconds since the epoch, UTC) a line's stamp stands for, read as it would be
/// at `now`: an RFC 3339 stamp as written; a BSD stamp in the local zone (`offset(t)`: seconds
/// east of UTC at `t`), in the year of `now`, or the year before when that would put it more
/// than a day after `now` (December's lines read in January). `None` when the line has no
/// stamp or an impossible one (`Feb 30`, `25:00:00`).
pub fn moment(line: &str, now: i64, offset: &dyn Fn(i64) -> i64) -> Option<i64> {
    match split(line)?.0 {
        Written::Rfc3339(stamp) => rfc3339(stamp),
        Written::Bsd { month, day, time } => {
            let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
            let day: u32 = day.parse().ok()?;
            let secs = clock(time)?;
            let (year, _, _) = civil_from_days((now + offset(now)).div_euclid(DAY));
            let at = |year| Some(local(naive(year, month, day)? + secs, offset));
            let this_year = at(year)?;
            if this_year > now + DAY {
                at(year - 1)
            } else {
                Some(this_year)
            }
        }
    }
}

/// `t` as local time for people: `18:14:05` on the local day of `now`, else
/// `2025-12-01 18:14:05`.
pub fn local_text(t: i64, now: i64, offset: &dyn Fn(i64) -> i64) -> String {
    let here = t + offset(t);
    let (days, secs) = (here.div_euclid(DAY), here.rem_euclid(DAY));
    let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if days == (now + offset(now)).div_euclid(DAY) {
        time
    } else {
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02} {time}")
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2025-12-01T18:24:05[.fraction](Z|+01:00|-05:00)` to seconds since the epoch (the
/// fraction dropped).
fn rfc3339(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let year: i64 = digits(&stamp[..4])?.into();
    let month = digits(&stamp[5..7])?;
    let day = digits(&stamp[8..10])?;
    let secs = clock(&stamp[11..19])?;
    let mut zone = &stamp[19..];
    if let Some(fraction) = zone.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        zone = &fraction[end..];
    }
    let east = match zone.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(&zone[1..3])?, digits(&zone[4..6])?);
            if h > 23 || m > 59 {
                return None;
            }
            let east = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -east
            } else {
                east
            }
        }
        _ => return None,
    };
    Some(naive(year, month, day)? + secs - east)
}

/// `hh:mm:ss` to seconds into the day (a leap second reads as the next second's start).
fn clock(time: &str) -> Option<i64> {
    let b = time.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (
        digits(&time[..2])?,
        digits(&time[3..5])?,
        digits(&time[6..8])?,
    );
    (h < 24 && m < 60 && s <= 60).then(|| i64::from(h * 3600 + m * 60 + s))
}

/// ASCII digits only (no sign, no space) as a number.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Seconds since the epoch of midnight starting `year-month-day`, as if it were UTC; `None`
/// for a day the month does not have.
fn naive(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // The day exists when it converts back to itself (`Feb 30` comes back as `Mar 2`).
    (civil_from_days(days) == (year, month, day)).then_some(days * DAY)
}

/// A local wall-clock time (seconds, as if UTC) to the moment it names: the zone's offset
/// where the moment falls, asked twice so that a time near a DST change takes the offset on
/// its own side.
fn local(wall: i64, offset: &dyn Fn(i64) -> i64) -> i64 {
    let guess = wall - offset(wall);
    wall - offset(guess)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar. The calendar repeats
/// every 400 years (146,097 days); counting years from March puts the leap day last.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: the inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: &dyn Fn(i64) -> i64 = &|_| 0;
    /// 2025-12-01T18:24:05Z.
    const DEC_1: i64 = 1_764_613_445;

    #[test]
    fn the_calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(naive(2025, 2, 29), None);
        assert_eq!(naive(2024, 2, 29), Some(19_782 * DAY));
        assert_eq!(naive(2025, 13, 1), None);
    }

    #[test]
    fn rfc3339_with_its_offset() {
        let at = |line: &str| moment(line, DEC_1, UTC);
        assert_eq!(at("2025-12-01T18:24:05Z h postfix/smtp[1]: x"), Some(DEC_1));
        assert_eq!(
            at("2025-12-01T19:24:05.123456+01:00 h postfix/smtp[1]: x"),
            Some(DEC_1)
        );
        assert_eq!(
            at("2025-12-01T13:24:05.5-05:00 h postfix/smtp[1]: x"),
            Some(DEC_1)
        );
        // The zone of the stamp, not the local one.
        assert_eq!(
            moment("2025-12-01T18:24:05+00:00 h a/b: x", DEC_1, &|_| 3600),
            Some(DEC_1)
        );
        for bad in [
            "2025-12-01T18:24:05 h a/b: x",
            "2025-12-01 18:24:05+00:00 h a/b: x",
            "2025-12-01T18:24:05.+01:00 h a/b: x",
            "2025-12-32T18:24:05Z h a/b: x",
            "2025-12-01T24:00:00Z h a/b: x",
            "2025-12-01T18:24:05+1:00 h a/b: x",
            "2025-1é-01T18:24:05Z h a/b: x",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn bsd_stamps_are_local_and_space_padded() {
        let paris = &|_| 3600;
        // 19:24:05 in Paris is 18:24:05 UTC.
        for line in [
            "Dec  1 19:24:05 h postfix/smtp[1]: x",
            "Dec 01 19:24:05 h postfix/smtp[1]: x",
        ] {
            assert_eq!(moment(line, DEC_1, paris), Some(DEC_1), "{line}");
        }
        assert_eq!(moment("Dec  1 18:24:05 h a/b: x", DEC_1, UTC), Some(DEC_1));
        assert_eq!(moment("Feb 30 18:24:05 h a/b: x", DEC_1, UTC), None);
        assert_eq!(moment("Foo  1 18:24:05 h a/b: x", DEC_1, UTC), None);
        assert_eq!(moment("Dec  1 18:24 h a/b: x", DEC_1, UTC), None);
        assert_eq!(moment("no stamp", DEC_1, UTC), None);
    }

    #[test]
    fn the_year_rolls_back_for_a_stamp_in_the_future() {
        // 2026-01-01T00:00:30Z: December's lines are last year's.
        let new_year = naive(2026, 1, 1).unwrap() + 30;
        assert_eq!(
            moment("Dec 31 23:59:50 h a/b: x", new_year, UTC),
            Some(new_year - 40)
        );
        assert_eq!(
            moment("Jan  1 00:00:10 h a/b: x", new_year, UTC),
            Some(new_year - 20)
        );
        // A clock a few hours ahead of ours is still this year (within a day).
        assert_eq!(
            moment("Jan  1 05:00:00 h a/b: x", new_year, UTC),
            Some(naive(2026, 1, 1).unwrap() + 5 * 3600)
        );
        // Two days ahead: last year's.
        assert_eq!(
            moment("Jan  3 00:00:00 h a/b: x", new_year, UTC),
            Some(naive(2025, 1, 3).unwrap())
        );
        // The local year decides: at 23:30 UTC on Dec 31 it is already 2026 in Paris.
        let eve = naive(2025, 12, 31).unwrap() + 23 * 3600 + 1800;
        assert_eq!(
            moment("Jan  1 00:29:00 h a/b: x", eve, &|_| 3600),
            Some(eve - 60)
        );
        // Feb 29 of a leap year, read the next year: last year's.
        let march_2025 = naive(2025, 3, 1).unwrap();
        assert_eq!(moment("Feb 29 12:00:00 h a/b: x", march_2025, UTC), None);
        let march_2024 = naive(2024, 3, 1).unwrap();
        assert_eq!(
            moment("Feb 29 12:00:00 h a/b: x", march_2024, UTC),
            Some(march_2024 - 12 * 3600)
        );
    }

    #[test]
    fn a_dst_change_takes_the_offset_on_its_own_side() {
        // A zone at +1 h before `change` and +2 h from it.
        let change = DEC_1;
        let zone = move |t: i64| if t < change { 3600 } else { 7200 };
        let wall = change + 7200 + 600; // 10 minutes after the change, local
        assert_eq!(local(wall, &zone), change + 600);
        let wall = change + 3600 - 600; // 10 minutes before it
        assert_eq!(local(wall, &zone), change - 600);
    }

    #[test]
    fn local_text_names_the_day_when_it_is_not_today() {
        assert_eq!(local_text(DEC_1, DEC_1 + 60, UTC), "18:24:05");
        assert_eq!(local_text(DEC_1, DEC_1, &|_| 3600), "19:24:05");
        assert_eq!(local_text(DEC_1, DEC_1 + DAY, UTC), "2025-12-01 18:24:05");
    }

    #[test]
    fn split_says_what_was_written() {
        assert_eq!(
            split("Dec  1 18:24:05 host rest of it"),
            Some((
                Written::Bsd {
                    month: "Dec",
                    day: "1",
                    time: "18:24:05"
                },
                "host rest of it"
            ))
        );
        assert_eq!(
            split("2025-12-01T18:24:05Z host x"),
            Some((Written::Rfc3339("2025-12-01T18:24:05Z"), "host x"))
        );
        assert_eq!(split("Dec 1x 18:24:05 host x"), None);
    }
}
