//! GAQL, the Google Ads Query Language, minimally but strictly: the `SELECT … FROM … WHERE … LIMIT`
//! subset reports use, with Google's `QueryError` codes for what it rejects.

use chrono::{Days, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Customer,
    Campaign,
    AdGroup,
    AdGroupAd,
    /// The account's conversion actions (no metrics served with it).
    ConversionAction,
}

impl Resource {
    fn parse(name: &str) -> Option<Resource> {
        match name {
            "customer" => Some(Resource::Customer),
            "campaign" => Some(Resource::Campaign),
            "ad_group" => Some(Resource::AdGroup),
            "ad_group_ad" => Some(Resource::AdGroupAd),
            "conversion_action" => Some(Resource::ConversionAction),
            _ => None,
        }
    }
    /// How deep the resource sits: customer < campaign < ad group < ad.
    fn depth(self) -> u8 {
        match self {
            Resource::Customer => 0,
            Resource::Campaign | Resource::ConversionAction => 1,
            Resource::AdGroup => 2,
            Resource::AdGroupAd => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub fields: Vec<String>,
    pub resource: Resource,
    /// Inclusive bounds from `segments.date` conditions.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The `QueryError` enum value.
    pub code: &'static str,
    pub message: String,
}

fn qerr(code: &'static str, message: impl Into<String>) -> QueryError {
    QueryError { code, message: message.into() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Op(String),
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Tok::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            tokens.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return Err(qerr("UNEXPECTED_END_OF_QUERY", "Error in query: unterminated string literal."));
            }
            tokens.push(Tok::Str(chars[start..i].iter().collect()));
            i += 1;
        } else if c == ',' {
            tokens.push(Tok::Comma);
            i += 1;
        } else if matches!(c, '<' | '>' | '=' | '!') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if matches!(two.as_str(), ">=" | "<=" | "!=") {
                tokens.push(Tok::Op(two));
                i += 2;
            } else if c == '!' {
                return Err(qerr("BAD_SYMBOL", "Error in query: unexpected '!'."));
            } else {
                tokens.push(Tok::Op(c.to_string()));
                i += 1;
            }
        } else {
            return Err(qerr("BAD_SYMBOL", format!("Error in query: unexpected input '{c}'.")));
        }
    }
    Ok(tokens)
}

fn is_keyword(tok: Option<&Tok>, keyword: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

/// The metrics the sandbox serves, by API version (v22 renamed the video view metric).
fn metric_known(name: &str, version: &str) -> Result<(), &'static str> {
    let major: u32 = version.trim_start_matches('v').parse().unwrap_or(0);
    match name {
        "impressions"
        | "clicks"
        | "cost_micros"
        | "conversions"
        | "conversions_value"
        | "all_conversions"
        | "all_conversions_value"
        | "view_through_conversions" => Ok(()),
        "video_views" if major < 22 => Ok(()),
        "video_trueview_views" if major >= 22 => Ok(()),
        _ => Err("UNRECOGNIZED_FIELD"),
    }
}

/// Whether `field` can be selected with `resource` in FROM.
fn check_field(field: &str, resource: Resource, version: &str) -> Result<(), QueryError> {
    let prohibited = || {
        qerr(
            "PROHIBITED_FIELD_IN_SELECT_CLAUSE",
            format!("Error in query: '{field}' cannot be selected with the FROM clause's resource."),
        )
    };
    let segment_or_metric = field.starts_with("segments.") || field.starts_with("metrics.");
    if resource == Resource::ConversionAction && segment_or_metric {
        // The sandbox serves conversion actions as a list only (Google would segment its metrics).
        return Err(prohibited());
    }
    if matches!(field, "segments.date" | "segments.conversion_action" | "segments.conversion_action_name") {
        return Ok(());
    }
    if let Some(metric) = field.strip_prefix("metrics.") {
        return metric_known(metric, version)
            .map_err(|code| qerr(code, format!("Error in query: unrecognized field '{field}'.")));
    }
    let (owner, known) = match field.split_once('.') {
        Some(("customer", rest)) => (
            Resource::Customer,
            matches!(rest, "id" | "descriptive_name" | "currency_code" | "time_zone" | "resource_name"),
        ),
        Some(("campaign", rest)) => (
            Resource::Campaign,
            matches!(rest, "id" | "name" | "status" | "resource_name" | "advertising_channel_type"),
        ),
        Some(("ad_group", rest)) => {
            (Resource::AdGroup, matches!(rest, "id" | "name" | "status" | "resource_name" | "campaign"))
        }
        Some(("ad_group_ad", rest)) => (
            Resource::AdGroupAd,
            matches!(
                rest,
                "ad.id" | "ad.name" | "ad.type" | "ad.resource_name" | "status" | "resource_name" | "ad_group"
            ),
        ),
        Some(("conversion_action", rest)) => (
            Resource::ConversionAction,
            matches!(rest, "id" | "name" | "status" | "category" | "primary_for_goal" | "resource_name"),
        ),
        _ => return Err(qerr("UNRECOGNIZED_FIELD", format!("Error in query: unrecognized field '{field}'."))),
    };
    if (owner == Resource::ConversionAction) != (resource == Resource::ConversionAction) && owner != Resource::Customer
    {
        return Err(prohibited());
    }
    if !known {
        return Err(qerr("UNRECOGNIZED_FIELD", format!("Error in query: unrecognized field '{field}'.")));
    }
    if owner.depth() > resource.depth() {
        return Err(qerr(
            "PROHIBITED_FIELD_IN_SELECT_CLAUSE",
            format!("Error in query: '{field}' cannot be selected when the FROM clause is a higher-level resource."),
        ));
    }
    Ok(())
}

fn date_literal(tok: Option<&Tok>) -> Result<NaiveDate, QueryError> {
    match tok {
        Some(Tok::Str(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            qerr("INVALID_DATE_FORMAT", format!("Error in query: '{s}' is not a date in the format YYYY-MM-DD."))
        }),
        _ => Err(qerr("BAD_VALUE", "Error in query: expected a quoted date 'YYYY-MM-DD'.")),
    }
}

/// Parse `SELECT … FROM … [WHERE segments.date …] [ORDER BY …] [LIMIT n]`.
pub fn parse_query(text: &str, version: &str) -> Result<Query, QueryError> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    if !is_keyword(tokens.first(), "SELECT") {
        return Err(qerr("EXPECTED_SELECT", "Error in query: expected SELECT."));
    }
    pos += 1;
    let mut fields: Vec<String> = Vec::new();
    loop {
        match tokens.get(pos) {
            Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("FROM") => fields.push(w.clone()),
            _ => return Err(qerr("UNEXPECTED_INPUT", "Error in query: expected a field name in the SELECT clause.")),
        }
        pos += 1;
        if tokens.get(pos) == Some(&Tok::Comma) {
            pos += 1;
            continue;
        }
        break;
    }
    if !is_keyword(tokens.get(pos), "FROM") {
        return Err(qerr("EXPECTED_FROM", "Error in query: expected FROM."));
    }
    pos += 1;
    let resource = match tokens.get(pos) {
        Some(Tok::Word(w)) => Resource::parse(w).ok_or_else(|| {
            qerr("PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE", format!("Error in query: '{w}' cannot be used in the FROM clause (the sandbox serves customer, campaign, ad_group, ad_group_ad)."))
        })?,
        _ => return Err(qerr("UNEXPECTED_END_OF_QUERY", "Error in query: expected a resource after FROM.")),
    };
    pos += 1;
    for field in &fields {
        check_field(field, resource, version)?;
    }
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    if is_keyword(tokens.get(pos), "WHERE") {
        pos += 1;
        loop {
            match tokens.get(pos) {
                Some(Tok::Word(w)) if w == "segments.date" => {}
                Some(Tok::Word(w)) => {
                    check_field(w, resource, version)?;
                    return Err(qerr(
                        "PROHIBITED_FIELD_IN_WHERE_CLAUSE",
                        format!("Error in query: the sandbox filters only on segments.date, not '{w}'."),
                    ));
                }
                _ => return Err(qerr("UNEXPECTED_INPUT", "Error in query: expected a condition after WHERE/AND.")),
            }
            pos += 1;
            match tokens.get(pos) {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("BETWEEN") => {
                    let a = date_literal(tokens.get(pos + 1))?;
                    if !is_keyword(tokens.get(pos + 2), "AND") {
                        return Err(qerr("EXPECTED_AND", "Error in query: expected AND in BETWEEN."));
                    }
                    let b = date_literal(tokens.get(pos + 3))?;
                    starts.push(a);
                    ends.push(b);
                    pos += 4;
                }
                Some(Tok::Op(op)) => {
                    let d = date_literal(tokens.get(pos + 1))?;
                    match op.as_str() {
                        ">=" => starts.push(d),
                        ">" => starts.push(d + Days::new(1)),
                        "<=" => ends.push(d),
                        "<" => ends.push(d - Days::new(1)),
                        "=" => {
                            starts.push(d);
                            ends.push(d);
                        }
                        _ => {
                            return Err(qerr(
                                "BAD_OPERATOR",
                                format!("Error in query: operator {op} is not supported on segments.date."),
                            ))
                        }
                    }
                    pos += 2;
                }
                _ => {
                    return Err(qerr(
                        "BAD_OPERATOR",
                        "Error in query: expected BETWEEN, =, <, <=, > or >= after segments.date.",
                    ))
                }
            }
            if is_keyword(tokens.get(pos), "AND") {
                pos += 1;
                continue;
            }
            break;
        }
    }
    // Several conditions intersect.
    let start = starts.into_iter().max();
    let end = ends.into_iter().min();
    if is_keyword(tokens.get(pos), "ORDER") {
        if !is_keyword(tokens.get(pos + 1), "BY") {
            return Err(qerr("EXPECTED_BY", "Error in query: expected BY after ORDER."));
        }
        pos += 2;
        loop {
            match tokens.get(pos) {
                Some(Tok::Word(w)) => check_field(w, resource, version)?,
                _ => return Err(qerr("UNEXPECTED_INPUT", "Error in query: expected a field in ORDER BY.")),
            }
            pos += 1;
            if is_keyword(tokens.get(pos), "ASC") || is_keyword(tokens.get(pos), "DESC") {
                pos += 1;
            }
            if tokens.get(pos) == Some(&Tok::Comma) {
                pos += 1;
                continue;
            }
            break;
        }
    }
    let mut limit = None;
    if is_keyword(tokens.get(pos), "LIMIT") {
        match tokens.get(pos + 1) {
            Some(Tok::Num(n)) => {
                limit = Some(n.parse().map_err(|_| qerr("BAD_LIMIT_VALUE", "Error in query: bad LIMIT."))?)
            }
            _ => return Err(qerr("BAD_LIMIT_VALUE", "Error in query: LIMIT needs a number.")),
        }
        pos += 2;
    }
    if pos < tokens.len() {
        return Err(qerr("UNEXPECTED_INPUT", format!("Error in query: unexpected input {:?}.", tokens[pos])));
    }
    if fields.iter().any(|f| f == "segments.date") && (start.is_none() || end.is_none()) {
        return Err(qerr(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "Error in query: a finite date range on segments.date is required in the WHERE clause when segments.date is selected.",
        ));
    }
    // Segmented by conversion action, a row is one action's conversions: delivery metrics cannot be
    // selected with it (as Google refuses them).
    let by_action = fields.iter().any(|f| f.starts_with("segments.conversion_action"));
    if let Some(metric) = fields
        .iter()
        .find(|f| by_action && matches!(f.as_str(), "metrics.impressions" | "metrics.clicks" | "metrics.cost_micros"))
    {
        return Err(qerr(
            "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE",
            format!(
                "Error in query: cannot select or filter on the following metric: '{metric}' (could not support \
                     requested resources: 'SEGMENTS_CONVERSION_ACTION') since it is incompatible with the segments in \
                     the query."
            ),
        ));
    }
    Ok(Query { fields, resource, start, end, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn parses_a_daily_report_query() {
        let q = parse_query(
            "SELECT campaign.id, ad_group.id, ad_group_ad.ad.id, segments.date, metrics.cost_micros, metrics.conversions\n\
             FROM ad_group_ad WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-30' ORDER BY segments.date LIMIT 5",
            "v21",
        )
        .unwrap();
        assert_eq!(q.resource, Resource::AdGroupAd);
        assert_eq!(q.fields.len(), 6);
        assert_eq!((q.start, q.end), (Some(date("2026-06-01")), Some(date("2026-06-30"))));
        assert_eq!(q.limit, Some(5));
    }

    #[test]
    fn comparison_operators_narrow_the_range_and_keywords_ignore_case() {
        let q = parse_query(
            "select campaign.id, segments.date, metrics.clicks from campaign where segments.date >= '2026-06-01' and segments.date < '2026-06-11'",
            "v21",
        )
        .unwrap();
        assert_eq!((q.start, q.end), (Some(date("2026-06-01")), Some(date("2026-06-10"))));
    }

    #[test]
    fn conversion_action_segments_exclude_delivery_metrics() {
        let by_action = "SELECT campaign.id, segments.date, segments.conversion_action, segments.conversion_action_name, \
                         metrics.all_conversions FROM campaign WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-02'";
        assert!(parse_query(by_action, "v26").is_ok());
        let with_cost = by_action.replace("metrics.all_conversions", "metrics.cost_micros");
        assert_eq!(parse_query(&with_cost, "v26").unwrap_err().code, "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE");
    }

    #[test]
    fn conversion_actions_are_listed_without_metrics() {
        let list =
            parse_query("SELECT conversion_action.id, conversion_action.name FROM conversion_action", "v26").unwrap();
        assert_eq!(list.resource, Resource::ConversionAction);
        for bad in [
            "SELECT conversion_action.id, metrics.conversions FROM conversion_action",
            "SELECT conversion_action.id FROM campaign",
            "SELECT campaign.id FROM conversion_action",
        ] {
            assert_eq!(parse_query(bad, "v26").unwrap_err().code, "PROHIBITED_FIELD_IN_SELECT_CLAUSE", "{bad}");
        }
    }

    #[test]
    fn rejects_what_google_rejects() {
        let code = |q: &str| parse_query(q, "v21").unwrap_err().code;
        assert_eq!(code("SELECT campaign.id FROM keyword_view"), "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE");
        assert_eq!(code("SELECT campaign.budget FROM campaign"), "UNRECOGNIZED_FIELD");
        assert_eq!(code("SELECT ad_group.id FROM campaign"), "PROHIBITED_FIELD_IN_SELECT_CLAUSE");
        assert_eq!(
            code("SELECT campaign.id, segments.date, metrics.clicks FROM campaign"),
            "EXPECTED_FILTERS_ON_DATE_RANGE"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-06-01' '2026-06-02'"),
            "EXPECTED_AND"
        );
        assert_eq!(code("SELECT campaign.id FROM campaign WHERE segments.date = '06/01/2026'"), "INVALID_DATE_FORMAT");
        assert_eq!(code("campaign.id FROM campaign"), "EXPECTED_SELECT");
        assert_eq!(code("SELECT campaign.id campaign"), "EXPECTED_FROM");
    }

    #[test]
    fn the_video_view_metric_was_renamed_in_v22() {
        assert!(parse_query("SELECT metrics.video_views FROM campaign", "v21").is_ok());
        assert_eq!(
            parse_query("SELECT metrics.video_views FROM campaign", "v22").unwrap_err().code,
            "UNRECOGNIZED_FIELD"
        );
        assert!(parse_query("SELECT metrics.video_trueview_views FROM campaign", "v22").is_ok());
    }
}
