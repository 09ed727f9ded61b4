use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("test timestamp").to_utc()
}

fn cron(expr: &str) -> CronSchedule {
    CronSchedule::parse(expr).expect("test expression")
}

fn error(expr: &str) -> String {
    CronSchedule::parse(expr).expect_err("expression should be rejected").to_string()
}

const BERLIN: Tz = chrono_tz::Europe::Berlin;

#[test]
fn daily_at_six_in_berlin_follows_summer_and_winter_time() {
    let schedule = cron("0 6 * * *");
    assert_eq!(schedule.next_after(utc("2026-06-30T05:00:00Z"), BERLIN), Some(utc("2026-07-01T04:00:00Z")));
    assert_eq!(schedule.next_after(utc("2026-01-14T05:00:00Z"), BERLIN), Some(utc("2026-01-15T05:00:00Z")));
    // Before six local on the same day: today's run.
    assert_eq!(schedule.next_after(utc("2026-01-14T04:59:59Z"), BERLIN), Some(utc("2026-01-14T05:00:00Z")));
}

#[test]
fn next_after_is_strictly_after() {
    let schedule = cron("0 6 * * *");
    assert_eq!(schedule.next_after(utc("2026-07-01T04:00:00Z"), BERLIN), Some(utc("2026-07-02T04:00:00Z")));
    assert_eq!(schedule.next_after(utc("2026-07-01T03:59:59.999Z"), BERLIN), Some(utc("2026-07-01T04:00:00Z")));
}

#[test]
fn every_two_hours_is_two_hours_apart() {
    let times = cron("0 */2 * * *").fire_times(utc("2026-05-01T00:30:00Z"), utc("2026-05-03T00:30:00Z"), BERLIN, 100);
    assert_eq!(times.len(), 24);
    assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::hours(2)));
    assert!(times.iter().all(|t| t.with_timezone(&BERLIN).hour() % 2 == 0));
}

#[test]
fn quarter_hours_in_office_hours_skip_weekends() {
    let schedule = cron("*/15 9-17 * * MON-FRI");
    // Friday 2026-05-08 17:45 CEST is the last run of the week; Monday 09:00 is the next.
    assert_eq!(schedule.next_after(utc("2026-05-08T15:45:00Z"), BERLIN), Some(utc("2026-05-11T07:00:00Z")));
    let week = schedule.fire_times(utc("2026-05-03T22:00:00Z"), utc("2026-05-10T22:00:00Z"), BERLIN, 10_000);
    assert_eq!(week.len(), 5 * 9 * 4);
    for t in &week {
        let local = t.with_timezone(&BERLIN);
        assert!(local.weekday().num_days_from_monday() < 5, "{local} is a weekend");
        assert!((9..=17).contains(&local.hour()) && local.minute() % 15 == 0, "{local}");
    }
}

#[test]
fn both_day_fields_restricted_match_either() {
    let schedule = cron("0 0 13 * FRI");
    let days: Vec<String> = schedule
        .fire_times(utc("2026-02-01T00:00:00Z"), utc("2026-03-16T00:00:00Z"), BERLIN, 100)
        .iter()
        .map(|t| t.with_timezone(&BERLIN).format("%a %d").to_string())
        .collect();
    // February 2026: Fridays 6, 13, 20, 27 (the 13th is a Friday, once); March: Friday 6 and 13.
    assert_eq!(days, ["Fri 06", "Fri 13", "Fri 20", "Fri 27", "Fri 06", "Fri 13"]);
    let more = schedule.fire_times(utc("2026-04-01T00:00:00Z"), utc("2026-04-30T00:00:00Z"), BERLIN, 100);
    let days: Vec<String> = more.iter().map(|t| t.with_timezone(&BERLIN).format("%a %d").to_string()).collect();
    // April 2026: Fridays 3, 10, 17, 24 and Monday the 13th.
    assert_eq!(days, ["Fri 03", "Fri 10", "Mon 13", "Fri 17", "Fri 24"]);
}

#[test]
fn one_day_field_restricted_only_it_counts() {
    // Day-of-week `*`: only the 13th.
    let thirteenth = cron("0 0 13 * *");
    let times = thirteenth.fire_times(utc("2026-01-01T00:00:00Z"), utc("2026-04-01T00:00:00Z"), BERLIN, 100);
    assert!(times.iter().all(|t| t.with_timezone(&BERLIN).day() == 13));
    assert_eq!(times.len(), 3);
    // `*/1` allows every day of the month, so it is unrestricted too: only Fridays.
    let fridays = cron("0 0 */1 * FRI");
    let times = fridays.fire_times(utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"), BERLIN, 100);
    assert_eq!(times.len(), 5);
    assert!(times.iter().all(|t| t.with_timezone(&BERLIN).weekday() == chrono::Weekday::Fri));
}

#[test]
fn spring_forward_gap_fires_once_after_the_gap() {
    // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist that day.
    let schedule = cron("30 2 * * *");
    let times = schedule.fire_times(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"), BERLIN, 10);
    assert_eq!(
        times,
        [
            utc("2026-03-28T01:30:00Z"), // 02:30 CET
            utc("2026-03-29T01:00:00Z"), // 03:00 CEST, the first instant after the gap
            utc("2026-03-30T00:30:00Z"), // 02:30 CEST
            utc("2026-03-31T00:30:00Z"),
        ]
    );
    // Several missing times fire once together, not again at 03:00 itself.
    let several = cron("0,30 2,3 * * *");
    let times = several.fire_times(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T02:00:00Z"), BERLIN, 10);
    assert_eq!(times, [utc("2026-03-29T01:00:00Z"), utc("2026-03-29T01:30:00Z")]);
}

#[test]
fn fall_back_overlap_fires_once_at_first_occurrence() {
    // Berlin 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET; 02:30 happens at 00:30Z and 01:30Z.
    let schedule = cron("30 2 * * *");
    let times = schedule.fire_times(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), BERLIN, 10);
    assert_eq!(times, [utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]);
    // Asked from inside the repeated hour, the second 02:30 is still not a fire time.
    assert_eq!(schedule.next_after(utc("2026-10-25T01:10:00Z"), BERLIN), Some(utc("2026-10-26T01:30:00Z")));
    // Asked from the first pass, before 02:30 summer time: that one.
    assert_eq!(schedule.next_after(utc("2026-10-25T00:10:00Z"), BERLIN), Some(utc("2026-10-25T00:30:00Z")));
}

#[test]
fn every_hour_schedules_follow_the_wall_clock_through_dst() {
    let quarter = cron("*/15 * * * *");
    for (from, to) in [
        (utc("2026-03-28T22:00:00Z"), utc("2026-03-29T04:00:00Z")),
        (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T04:00:00Z")),
    ] {
        let times = quarter.fire_times(from, to, BERLIN, 1000);
        assert_eq!(times.len(), 24, "every 15 real minutes for 6 hours");
        assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::minutes(15)));
    }
    // From inside the first pass of the repeated hour, the repeat of 02:00 comes next.
    assert_eq!(quarter.next_after(utc("2026-10-25T00:50:00Z"), BERLIN), Some(utc("2026-10-25T01:00:00Z")));
    let hourly = cron("@hourly");
    let times = hourly.fire_times(utc("2026-10-24T22:30:00Z"), utc("2026-10-25T03:30:00Z"), BERLIN, 100);
    assert_eq!(times.len(), 5);
    assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::hours(1)));
}

#[test]
fn daily_midnight_in_a_zone_whose_midnight_is_skipped() {
    // São Paulo 2018-11-04: 00:00 jumped to 01:00 (-02:00); midnight did not exist.
    let schedule = cron("@daily");
    let tz = chrono_tz::America::Sao_Paulo;
    assert_eq!(schedule.next_after(utc("2018-11-03T12:00:00Z"), tz), Some(utc("2018-11-04T03:00:00Z")));
    assert_eq!(schedule.next_after(utc("2018-11-04T03:00:00Z"), tz), Some(utc("2018-11-05T02:00:00Z")));
}

/// Reference definition, minute by minute in UTC: independent of the field-stepping search.
fn reference_fire_times(schedule: &CronSchedule, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    let mut t = from + TimeDelta::minutes(1);
    while t <= to {
        let local = t.with_timezone(&tz).naive_local();
        let previous = (t - TimeDelta::minutes(1)).with_timezone(&tz).naive_local();
        let fires = if schedule.follows_wall_clock() {
            schedule.matches(local)
        } else {
            let first_occurrence = tz.from_local_datetime(&local).earliest().map(|e| e.to_utc()) == Some(t);
            // The first instant after a gap fires for every matching time the gap swallowed.
            let mut skipped = previous + TimeDelta::minutes(1);
            let mut swallowed = false;
            while skipped < local {
                swallowed |= schedule.matches(skipped);
                skipped += TimeDelta::minutes(1);
            }
            (schedule.matches(local) && first_occurrence) || swallowed
        };
        if fires {
            times.push(t);
        }
        t += TimeDelta::minutes(1);
    }
    times
}

#[test]
fn matches_minute_by_minute_reference_around_transitions() {
    let zones = [
        (BERLIN, "2026-03-29T01:00:00Z"),
        (BERLIN, "2026-10-25T01:00:00Z"),
        (chrono_tz::America::New_York, "2026-03-08T07:00:00Z"),
        (chrono_tz::America::New_York, "2026-11-01T06:00:00Z"),
        (chrono_tz::Australia::Lord_Howe, "2026-04-04T15:00:00Z"), // 30-minute fall back
        (chrono_tz::Australia::Lord_Howe, "2026-10-03T15:30:00Z"), // 30-minute spring forward
        (chrono_tz::America::Sao_Paulo, "2018-02-18T02:00:00Z"),   // fall back across midnight
        (chrono_tz::America::Sao_Paulo, "2018-11-04T03:00:00Z"),   // midnight skipped
        (chrono_tz::Asia::Kolkata, "2026-06-01T00:00:00Z"),        // +05:30, no DST
    ];
    let expressions = [
        "30 2 * * *",
        "0 0 * * *",
        "30 23 * * *",
        "*/15 * * * *",
        "0 * * * *",
        "45 * * * *",
        "0 */2 * * *",
        "0,30 1-3 * * *",
        "* 2 * * *",
        "0 0 13 * FRI",
    ];
    for (tz, transition) in zones {
        let (from, to) = (utc(transition) - TimeDelta::hours(30), utc(transition) + TimeDelta::hours(30));
        for expr in expressions {
            let schedule = cron(expr);
            let expected = reference_fire_times(&schedule, tz, from, to);
            let got = schedule.fire_times(from, to, tz, 100_000);
            if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
                panic!(
                    "{expr} in {tz} around {transition}: fire time #{i} is {:?}, the reference says {:?}",
                    got.get(i),
                    expected.get(i)
                );
            }
            assert!(!expected.is_empty() || expr.contains("13"), "{expr}: the window should hold fire times");
            // Also from starting points that are not fire times, with seconds.
            let mut start = from;
            while start < to {
                let want = expected.iter().find(|t| **t > start).copied();
                let next = schedule.next_after(start, tz);
                if want.is_some() {
                    assert_eq!(next, want, "{expr} in {tz} after {start}");
                }
                // The last fire time up to `start` (bisection) agrees with the reference too.
                let last = expected.iter().take_while(|t| **t <= start).last().copied();
                assert_eq!(schedule.last_fire_in(from, start, tz), last, "{expr} in {tz} up to {start}");
                start += TimeDelta::seconds(7 * 60 + 13);
            }
        }
    }
}

#[test]
fn macros_are_the_usual_expressions() {
    let pairs = [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ];
    let from = utc("2026-01-01T00:00:00Z");
    let to = utc("2028-01-01T00:00:00Z");
    for (name, expr) in pairs {
        let named = cron(name);
        assert_eq!(named.as_str(), name);
        assert_eq!(named.fire_times(from, to, BERLIN, 100), cron(expr).fire_times(from, to, BERLIN, 100), "{name}");
    }
    assert_eq!(cron("@daily").next_after(utc("2026-07-01T12:00:00Z"), BERLIN), Some(utc("2026-07-01T22:00:00Z")));
}

#[test]
fn month_and_day_names_and_sunday_as_seven() {
    assert_eq!(
        cron("0 0 1 jan,Jul *").fire_times(
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
            chrono_tz::UTC,
            10
        ),
        [utc("2026-07-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")]
    );
    let sundays = [cron("0 12 * * 0"), cron("0 12 * * 7"), cron("0 12 * * SUN"), cron("0 12 * * sun")];
    for schedule in &sundays[1..] {
        assert_eq!(schedule.days_of_week, sundays[0].days_of_week, "{schedule}");
    }
    // 2026-05-03 is a Sunday.
    assert_eq!(sundays[1].next_after(utc("2026-05-01T00:00:00Z"), chrono_tz::UTC), Some(utc("2026-05-03T12:00:00Z")));
    // A range ending at 7 wraps to Sunday: Friday, Saturday, Sunday.
    let weekend = cron("0 12 * * 5-7");
    let days: Vec<String> = weekend
        .fire_times(utc("2026-05-04T00:00:00Z"), utc("2026-05-11T00:00:00Z"), chrono_tz::UTC, 10)
        .iter()
        .map(|t| t.format("%a").to_string())
        .collect();
    assert_eq!(days, ["Fri", "Sat", "Sun"]);
}

#[test]
fn steps_ranges_and_lists() {
    let schedule = cron("5/20 1-5/2,22 * * *");
    assert_eq!(schedule.minutes, 1 << 5 | 1 << 25 | 1 << 45);
    assert_eq!(schedule.hours, 1 << 1 | 1 << 3 | 1 << 5 | 1 << 22);
    assert_eq!(cron("*/1 * * * *").minutes, (1 << 60) - 1);
}

#[test]
fn text_round_trips_through_display_and_from_str() {
    let schedule: CronSchedule = " */15 9-17 * * MON-FRI ".parse().expect("valid");
    assert_eq!(schedule.to_string(), "*/15 9-17 * * MON-FRI");
    assert_eq!(schedule.as_str(), "*/15 9-17 * * MON-FRI");
    assert_eq!(schedule.to_string().parse::<CronSchedule>(), Ok(schedule));
}

#[test]
fn errors_say_what_is_wrong_and_where() {
    let cases = [
        ("0 25 * * *", r#"cron "0 25 * * *": hour 25 is out of range 0-23"#),
        ("0 0 * *", r#"cron "0 0 * *": expected 5 fields (minute hour day-of-month month day-of-week), got 4"#),
        ("0 0 0 * * *", r#"cron "0 0 0 * * *": expected 5 fields (minute hour day-of-month month day-of-week), got 6"#),
        ("", r#"cron "": expected 5 fields (minute hour day-of-month month day-of-week), got 0"#),
        ("60 * * * *", r#"cron "60 * * * *": minute 60 is out of range 0-59"#),
        ("0 0 0 * *", r#"cron "0 0 0 * *": day-of-month 0 is out of range 1-31"#),
        ("0 0 32 * *", r#"cron "0 0 32 * *": day-of-month 32 is out of range 1-31"#),
        ("0 0 * 13 *", r#"cron "0 0 * 13 *": month 13 is out of range 1-12"#),
        ("0 0 * * 8", r#"cron "0 0 * * 8": day-of-week 8 is out of range 0-7"#),
        ("0 0 * * 99999999999", r#"cron "0 0 * * 99999999999": day-of-week 99999999999 is out of range 0-7"#),
        ("x * * * *", r#"cron "x * * * *": minute value "x" is not a number"#),
        ("0 0 * * FUN", r#"cron "0 0 * * FUN": day-of-week value "FUN" is not a number or a day name (SUN-SAT)"#),
        (
            "0 0 * JANUARY *",
            r#"cron "0 0 * JANUARY *": month value "JANUARY" is not a number or a month name (JAN-DEC)"#,
        ),
        ("0 0 L * *", r#"cron "0 0 L * *": day-of-month value "L" is not a number"#),
        ("+5 * * * *", r#"cron "+5 * * * *": minute value "+5" is not a number"#),
        ("0 5-2 * * *", r#"cron "0 5-2 * * *": hour range "5-2" is reversed: the start must not come after the end"#),
        (
            "0 0 * * FRI-MON",
            r#"cron "0 0 * * FRI-MON": day-of-week range "FRI-MON" is reversed: the start must not come after the end"#,
        ),
        ("*/0 * * * *", r#"cron "*/0 * * * *": minute step "0" is not a whole number from 1 to 59"#),
        ("*/60 * * * *", r#"cron "*/60 * * * *": minute step "60" is not a whole number from 1 to 59"#),
        ("0 */x * * *", r#"cron "0 */x * * *": hour step "x" is not a whole number from 1 to 23"#),
        ("0 0/ * * *", r#"cron "0 0/ * * *": hour step "" is not a whole number from 1 to 23"#),
        ("1,,2 * * * *", r#"cron "1,,2 * * * *": minute "1,,2" is malformed: a list has an empty item"#),
        ("/5 * * * *", r#"cron "/5 * * * *": minute "/5" is malformed: a step needs a start: write */n, a-b/n or a/n"#),
        (
            "*-5 * * * *",
            r#"cron "*-5 * * * *": minute "*-5" is malformed: `*` stands alone or before a step (*/n), not inside a range"#,
        ),
        (
            "1-2-3 * * * *",
            r#"cron "1-2-3 * * * *": minute "1-2-3" is malformed: a range is written start-end, as in 1-5"#,
        ),
        ("-5 * * * *", r#"cron "-5 * * * *": minute "-5" is malformed: a range is written start-end, as in 1-5"#),
        ("0 0 1- * *", r#"cron "0 0 1- * *": day-of-month "1-" is malformed: a range is written start-end, as in 1-5"#),
        (
            "@fortnightly",
            r#"cron "@fortnightly": unknown macro "@fortnightly": expected one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"#,
        ),
        (
            "@reboot",
            r#"cron "@reboot": unknown macro "@reboot": expected one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"#,
        ),
    ];
    for (expr, message) in cases {
        assert_eq!(error(expr), message);
    }
    let err = CronSchedule::parse("0 25 * * *").expect_err("invalid");
    assert_eq!(err.expr(), "0 25 * * *");
    assert!(matches!(err.kind(), CronErrorKind::OutOfRange { field: CronField::Hour, .. }));
}

#[test]
fn impossible_dates_never_fire_and_leap_days_are_found() {
    assert_eq!(cron("0 0 30 2 *").next_after(utc("2026-01-01T00:00:00Z"), BERLIN), None);
    assert_eq!(cron("0 0 31 4 *").next_after(utc("2026-01-01T00:00:00Z"), BERLIN), None);
    // 2100 is not a leap year: from 2097 the next 29 February is in 2104.
    assert_eq!(
        cron("0 0 29 2 *").next_after(utc("2097-01-01T00:00:00Z"), chrono_tz::UTC),
        Some(utc("2104-02-29T00:00:00Z"))
    );
}

#[test]
fn fire_times_respects_limit_and_range() {
    let schedule = cron("* * * * *");
    let from = utc("2026-05-01T00:00:00Z");
    assert_eq!(schedule.fire_times(from, utc("2026-05-02T00:00:00Z"), BERLIN, 5).len(), 5);
    assert_eq!(schedule.fire_times(from, utc("2026-05-02T00:00:00Z"), BERLIN, 0), Vec::<DateTime<Utc>>::new());
    // (from, to]: `from` excluded, `to` included.
    assert_eq!(
        schedule.fire_times(from, utc("2026-05-01T00:02:00Z"), BERLIN, 100),
        [utc("2026-05-01T00:01:00Z"), utc("2026-05-01T00:02:00Z")]
    );
    assert!(schedule.fire_times(from, from, BERLIN, 100).is_empty());
}

#[test]
fn catchup_parses_from_config_words() {
    assert_eq!("latest".parse(), Ok(Catchup::Latest));
    assert_eq!("all".parse(), Ok(Catchup::All));
    assert_eq!("None".parse(), Ok(Catchup::None));
    assert_eq!(Catchup::default(), Catchup::Latest);
    assert_eq!(Catchup::All.to_string(), "all");
    assert_eq!(
        "every".parse::<Catchup>().expect_err("unknown").to_string(),
        r#"unknown catch-up policy "every": expected one of latest, all, none"#
    );
}

#[test]
fn due_never_run_job_waits_for_its_next_fire_time() {
    let schedule = cron("0 6 * * *");
    for catchup in [Catchup::Latest, Catchup::All, Catchup::None] {
        assert!(due(&schedule, BERLIN, None, utc("2026-07-01T04:00:00Z"), catchup).is_empty());
    }
}

#[test]
fn due_after_three_days_down() {
    let schedule = cron("0 6 * * *");
    // Last run 2026-07-01 06:00 CEST; back up on 2026-07-04 at 09:00 CEST.
    let last = Some(utc("2026-07-01T04:00:00Z"));
    let now = utc("2026-07-04T07:00:00Z");
    let missed = [utc("2026-07-02T04:00:00Z"), utc("2026-07-03T04:00:00Z"), utc("2026-07-04T04:00:00Z")];
    assert_eq!(due(&schedule, BERLIN, last, now, Catchup::All), missed);
    assert_eq!(due(&schedule, BERLIN, last, now, Catchup::Latest), [missed[2]]);
    // Three hours late is not on time.
    assert!(due(&schedule, BERLIN, last, now, Catchup::None).is_empty());
}

#[test]
fn due_never_returns_a_time_twice() {
    let schedule = cron("*/5 * * * *");
    let now = utc("2026-07-04T07:03:00Z");
    for catchup in [Catchup::Latest, Catchup::All, Catchup::None] {
        let last = utc("2026-07-04T06:48:00Z");
        let first = due(&schedule, BERLIN, Some(last), now, catchup);
        let recorded = first.last().copied().unwrap_or(last);
        assert!(due(&schedule, BERLIN, Some(recorded), now, catchup).is_empty(), "{catchup}");
        // A later tick gets only the new fire time.
        let later = utc("2026-07-04T07:05:10Z");
        assert_eq!(due(&schedule, BERLIN, Some(recorded), later, catchup), [utc("2026-07-04T07:05:00Z")], "{catchup}");
    }
}

#[test]
fn due_latest_and_none_on_a_regular_tick() {
    let schedule = cron("*/5 * * * *");
    let last = Some(utc("2026-07-04T06:55:00Z"));
    // On time: 07:00 is 30 s old.
    let now = utc("2026-07-04T07:00:30Z");
    for catchup in [Catchup::Latest, Catchup::All, Catchup::None] {
        assert_eq!(due(&schedule, BERLIN, last, now, catchup), [utc("2026-07-04T07:00:00Z")], "{catchup}");
    }
    // Exactly 60 s late still counts; 61 s does not.
    assert_eq!(due(&schedule, BERLIN, last, utc("2026-07-04T07:01:00Z"), Catchup::None).len(), 1);
    assert!(due(&schedule, BERLIN, last, utc("2026-07-04T07:01:01Z"), Catchup::None).is_empty());
    // Nothing new yet, or a clock behind the last run: nothing due.
    assert!(due(&schedule, BERLIN, last, utc("2026-07-04T06:59:59Z"), Catchup::Latest).is_empty());
    assert!(due(&schedule, BERLIN, last, utc("2026-07-04T06:00:00Z"), Catchup::All).is_empty());
}

#[test]
fn due_latest_finds_the_last_of_many_missed_times() {
    // Down for a year with an every-minute job: Latest is the last minute, All caps at 1000 oldest.
    let schedule = cron("* * * * *");
    let last = utc("2025-07-04T07:00:00Z");
    let now = utc("2026-07-04T07:00:30Z");
    assert_eq!(due(&schedule, BERLIN, Some(last), now, Catchup::Latest), [utc("2026-07-04T07:00:00Z")]);
    let all = due(&schedule, BERLIN, Some(last), now, Catchup::All);
    assert_eq!(all.len(), MAX_CATCHUP_RUNS);
    assert_eq!(all[0], utc("2025-07-04T07:01:00Z"));
    assert!(all.windows(2).all(|pair| pair[0] < pair[1]));
    // Rare fire times far back.
    let yearly = cron("@yearly");
    assert_eq!(
        due(&yearly, BERLIN, Some(utc("2020-06-01T00:00:00Z")), now, Catchup::Latest),
        [utc("2025-12-31T23:00:00Z")]
    );
}
