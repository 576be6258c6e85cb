//! Times as the events commands read and print them: UTC, RFC 3339, or relative to now.

use anyhow::{Result, bail};

const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01 (`days_from_civil`).
fn days(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-02T04:55:01.123Z`.
pub fn format_ms(ms: u64) -> String {
    let (year, month, day) = civil(i64::try_from(ms / DAY_MS).unwrap_or(0));
    let rest = ms % DAY_MS;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000
    )
}

/// A time given on the command line: `30m`, `2h`, `7d`, `90s` before `now_ms`; an RFC 3339 UTC
/// time (`2026-12-02T04:00:00Z`, optionally with milliseconds); or milliseconds since 1970.
pub fn parse_time(text: &str, now_ms: u64) -> Result<u64> {
    let t = text.trim();
    if let Some((number, unit)) = t
        .char_indices()
        .last()
        .filter(|(_, c)| matches!(c, 's' | 'm' | 'h' | 'd'))
        .map(|(i, c)| (&t[..i], c))
        && let Ok(n) = number.parse::<u64>()
    {
        let unit_ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            _ => DAY_MS,
        };
        return Ok(now_ms.saturating_sub(n.saturating_mul(unit_ms)));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| anyhow::anyhow!("{t:?} is too large a time"));
    }
    rfc3339(t).ok_or_else(|| {
        anyhow::anyhow!(
            "{t:?} is not a time: give 2h (ago), 2026-12-02T04:00:00Z (UTC) or milliseconds since 1970"
        )
    })
}

fn rfc3339(t: &str) -> Option<u64> {
    let t = t.strip_suffix('Z').or_else(|| t.strip_suffix('z'))?;
    let (date, time) = t.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut h = hms.split(':');
    let hour: u64 = h.next()?.parse().ok()?;
    let minute: u64 = h.next()?.parse().ok()?;
    let second: u64 = h.next().map_or(Some(0), |s| s.parse().ok())?;
    if h.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis: u64 = if frac.is_empty() {
        0
    } else if frac.bytes().all(|b| b.is_ascii_digit()) {
        format!("{frac:0<3}")[..3].parse().ok()?
    } else {
        return None;
    };
    let day_number = u64::try_from(days(year, month, day)).ok()?;
    Some(day_number * DAY_MS + hour * 3_600_000 + minute * 60_000 + second * 1_000 + millis)
}

pub fn check_range(from_ms: u64, to_ms: u64) -> Result<()> {
    if from_ms > to_ms {
        bail!(
            "the time range is empty: --since {} is after --until {}",
            format_ms(from_ms),
            format_ms(to_ms)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_printed_time_reads_back_as_the_same_millisecond() {
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_799_999] {
            assert_eq!(
                parse_time(&format_ms(ms), 0).unwrap(),
                ms,
                "{}",
                format_ms(ms)
            );
        }
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn relative_times_count_back_from_now_and_nonsense_is_refused_by_name() {
        assert_eq!(
            parse_time("2h", 10_000_000).unwrap(),
            10_000_000 - 7_200_000
        );
        assert_eq!(parse_time("7d", 1).unwrap(), 0);
        assert_eq!(parse_time("1700000000000", 0).unwrap(), 1_700_000_000_000);
        let err = parse_time("yesterday", 0).unwrap_err().to_string();
        assert!(err.contains("\"yesterday\" is not a time"), "{err}");
        assert!(parse_time("2026-13-01T00:00:00Z", 0).is_err());
    }
}
