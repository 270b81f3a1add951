//! `%START_TIME(format)%`: the strftime-like format Envoy takes (with its
//! `%f`, `%Nf` and `%s` extensions), compiled once and written in UTC.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A compiled START_TIME format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    pub pieces: Box<[TimePiece]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimePiece {
    Literal(Box<str>),
    /// `%Y`
    Year,
    /// `%y`
    YearOfCentury,
    /// `%m`
    Month,
    /// `%d`
    Day,
    /// `%e`: the day, padded with a space.
    DaySpacePadded,
    /// `%j`
    DayOfYear,
    /// `%H`
    Hour,
    /// `%M`
    Minute,
    /// `%S`
    Second,
    /// `%s`: seconds since the epoch.
    EpochSeconds,
    /// `%f` (9 digits), `%Nf` (the first N digits) and the fraction of
    /// `%ENS`: the fraction of the second.
    Fraction(u8),
    /// `%z`: `+0000`.
    Offset,
    /// `%Z`: `UTC`.
    ZoneName,
    /// `%a`
    WeekdayName,
    /// `%b`
    MonthName,
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl TimeFormat {
    /// Compiles `format`, refusing a conversion the agent does not write.
    pub fn parse(format: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = format.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let mut spec = String::from("%");
            let mut digits = None;
            while let Some(&(_, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                spec.push(d);
                digits = Some(digits.unwrap_or(0) * 10 + (d as u8 - b'0'));
                chars.next();
            }
            let Some((_, conversion)) = chars.next() else {
                return Err(format!("START_TIME format {format:?} ends with '{spec}'"));
            };
            spec.push(conversion);
            let fraction = |digits: Option<u8>| match digits {
                None => Ok(TimePiece::Fraction(9)),
                Some(n @ 1..=9) => Ok(TimePiece::Fraction(n)),
                Some(_) => Err(format!("START_TIME conversion {spec} takes 1 to 9 digits")),
            };
            let expanded: Vec<TimePiece> = match (conversion, digits) {
                ('%', None) => {
                    literal.push('%');
                    continue;
                }
                ('f', _) => vec![fraction(digits)?],
                ('E', None) => {
                    let n = chars
                        .next()
                        .map(|(_, n)| n)
                        .filter(char::is_ascii_digit)
                        .zip(chars.next().map(|(_, s)| s).filter(|s| *s == 'S'))
                        .map(|(n, _)| n as u8 - b'0')
                        .ok_or_else(|| {
                            format!("START_TIME format {format:?}: only %E<digit>S of the %E conversions is written")
                        })?;
                    let mut seconds = vec![TimePiece::Second];
                    if n > 0 {
                        seconds.push(TimePiece::Literal(".".into()));
                        seconds.push(fraction(Some(n))?);
                    }
                    seconds
                }
                ('Y', None) => vec![TimePiece::Year],
                ('y', None) => vec![TimePiece::YearOfCentury],
                ('m', None) => vec![TimePiece::Month],
                ('d', None) => vec![TimePiece::Day],
                ('e', None) => vec![TimePiece::DaySpacePadded],
                ('j', None) => vec![TimePiece::DayOfYear],
                ('H', None) => vec![TimePiece::Hour],
                ('M', None) => vec![TimePiece::Minute],
                ('S', None) => vec![TimePiece::Second],
                ('s', None) => vec![TimePiece::EpochSeconds],
                ('z', None) => vec![TimePiece::Offset],
                ('Z', None) => vec![TimePiece::ZoneName],
                ('a', None) => vec![TimePiece::WeekdayName],
                ('b', None) => vec![TimePiece::MonthName],
                ('F', None) => vec![
                    TimePiece::Year,
                    TimePiece::Literal("-".into()),
                    TimePiece::Month,
                    TimePiece::Literal("-".into()),
                    TimePiece::Day,
                ],
                ('T', None) => vec![
                    TimePiece::Hour,
                    TimePiece::Literal(":".into()),
                    TimePiece::Minute,
                    TimePiece::Literal(":".into()),
                    TimePiece::Second,
                ],
                _ => {
                    return Err(format!(
                        "START_TIME conversion {spec} is not one the agent writes (%Y %y %m %d %e %j %H %M %S %s %f %Nf %E<N>S %z %Z %a %b %F %T %%)"
                    ));
                }
            };
            if !literal.is_empty() {
                pieces.push(TimePiece::Literal(std::mem::take(&mut literal).into()));
            }
            pieces.extend(expanded);
        }
        if !literal.is_empty() {
            pieces.push(TimePiece::Literal(literal.into()));
        }
        Ok(Self {
            pieces: pieces.into(),
        })
    }

    /// Writes `time`, in UTC, to `out`.
    pub fn write(&self, time: SystemTime, out: &mut String) {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since.as_secs();
        let days = seconds / 86_400;
        let of_day = seconds % 86_400;
        let civil = Civil::from_days(days);
        for piece in &self.pieces {
            let _ = match piece {
                TimePiece::Literal(text) => {
                    out.push_str(text);
                    Ok(())
                }
                TimePiece::Year => write!(out, "{}", civil.year),
                TimePiece::YearOfCentury => write!(out, "{:02}", civil.year % 100),
                TimePiece::Month => write!(out, "{:02}", civil.month),
                TimePiece::Day => write!(out, "{:02}", civil.day),
                TimePiece::DaySpacePadded => write!(out, "{:2}", civil.day),
                TimePiece::DayOfYear => write!(out, "{:03}", civil.day_of_year),
                TimePiece::Hour => write!(out, "{:02}", of_day / 3600),
                TimePiece::Minute => write!(out, "{:02}", of_day / 60 % 60),
                TimePiece::Second => write!(out, "{:02}", of_day % 60),
                TimePiece::EpochSeconds => write!(out, "{seconds}"),
                TimePiece::Fraction(digits) => {
                    let nanos = since.subsec_nanos() / 10u32.pow(9 - u32::from(*digits));
                    write!(out, "{nanos:0width$}", width = usize::from(*digits))
                }
                TimePiece::Offset => {
                    out.push_str("+0000");
                    Ok(())
                }
                TimePiece::ZoneName => {
                    out.push_str("UTC");
                    Ok(())
                }
                TimePiece::WeekdayName => {
                    out.push_str(WEEKDAYS[(days % 7) as usize]);
                    Ok(())
                }
                TimePiece::MonthName => {
                    out.push_str(MONTHS[usize::from(civil.month - 1)]);
                    Ok(())
                }
            };
        }
    }
}

/// A day of the proleptic Gregorian calendar.
struct Civil {
    year: u64,
    month: u8,
    day: u8,
    day_of_year: u16,
}

impl Civil {
    /// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    fn from_days(days: u64) -> Self {
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + u64::from(month <= 2);
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        const BEFORE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let day_of_year =
            BEFORE[usize::from(month - 1)] + u16::from(day) + u16::from(leap && month > 2);
        Self {
            year,
            month,
            day,
            day_of_year,
        }
    }
}
