//! Budget periods: calendar days, ISO weeks and months in UTC (contract §12).

use crate::config::BudgetPeriod;

const DAY_S: u64 = 86_400;

/// One budget period: its name (part of the store key) and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `2026-12-05`, `2026-W49` or `2026-12`.
    pub id: String,
    /// Seconds from `now` until the next period starts.
    pub left_s: u64,
}

/// The period of `kind` that holds `now` (seconds since the Unix epoch, UTC).
pub fn current(kind: BudgetPeriod, now: u64) -> Period {
    let days = now / DAY_S;
    let (y, m, d) = civil(days);
    let next_day = (days + 1) * DAY_S;
    match kind {
        BudgetPeriod::Day => Period {
            id: format!("{y:04}-{m:02}-{d:02}"),
            left_s: next_day - now,
        },
        BudgetPeriod::Week => {
            // 1970-01-01 was a Thursday: Monday = 0.
            let weekday = (days + 3) % 7;
            let monday = days - weekday;
            let thursday = monday + 3;
            let (iso_year, _, _) = civil(thursday);
            let jan1 = days_from_civil(iso_year, 1, 1);
            let week = (thursday - jan1) / 7 + 1;
            Period {
                id: format!("{iso_year:04}-W{week:02}"),
                left_s: (monday + 7) * DAY_S - now,
            }
        }
        BudgetPeriod::Month => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            Period {
                id: format!("{y:04}-{m:02}"),
                left_s: days_from_civil(ny, nm, 1) * DAY_S - now,
            }
        }
    }
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil`]), for dates after 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-05 21:30:00 UTC, a Saturday.
    const NOW: u64 = 1_796_506_200;

    #[test]
    fn calendar_periods_in_utc() {
        assert_eq!(
            current(BudgetPeriod::Day, NOW),
            Period {
                id: "2026-12-05".into(),
                left_s: 2 * 3600 + 1800
            }
        );
        assert_eq!(
            current(BudgetPeriod::Week, NOW),
            Period {
                id: "2026-W49".into(),
                left_s: DAY_S + 2 * 3600 + 1800
            }
        );
        assert_eq!(
            current(BudgetPeriod::Month, NOW),
            Period {
                id: "2026-12".into(),
                left_s: 26 * DAY_S + 2 * 3600 + 1800
            }
        );
    }

    #[test]
    fn iso_weeks_cross_years() {
        // 2027-01-01 is a Friday: still ISO week 53 of 2026.
        let jan1 = days_from_civil(2027, 1, 1) * DAY_S;
        assert_eq!(current(BudgetPeriod::Week, jan1).id, "2026-W53");
        // 2024-12-30 is a Monday: ISO week 1 of 2025.
        let dec30 = days_from_civil(2024, 12, 30) * DAY_S;
        assert_eq!(current(BudgetPeriod::Week, dec30).id, "2025-W01");
        assert_eq!(current(BudgetPeriod::Week, dec30).left_s, 7 * DAY_S);
    }

    #[test]
    fn months_roll_over() {
        let last = days_from_civil(2028, 2, 29) * DAY_S + 86_399;
        let p = current(BudgetPeriod::Month, last);
        assert_eq!((p.id.as_str(), p.left_s), ("2028-02", 1));
        assert_eq!(civil(days_from_civil(2026, 12, 31)), (2026, 12, 31));
    }
}
