//! Incidents: what is red (a failing run or check), opened once and resolved when it passes again.

use super::*;

/// A row of `incidents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRecord {
    pub incident_id: String,
    /// What is red, e.g. `run:pipeline`, `run:schedule:daily`, `check:freshness.google_ads.ad_daily`.
    pub incident_key: String,
    /// `run` or `check`.
    pub kind: String,
    /// The job, command or check name.
    pub subject: String,
    /// `open` or `resolved`.
    pub status: String,
    pub opened_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub opened_run_id: Option<String>,
    pub last_seen_run_id: Option<String>,
    /// The latest status seen: a run's `failed` / `success`, a check's `fail` / `warn` / `error` / `pass`.
    pub last_status: Option<String>,
    pub message: Option<String>,
}

impl Metadata<'_> {
    /// The open incidents, oldest first.
    pub async fn open_incidents(&self) -> Result<Vec<IncidentRecord>> {
        self.incidents_where(&format!("status = {}", self.lit(Literal::Text("open"))?), None).await
    }

    /// The most recent incidents (open or resolved), newest first.
    pub async fn recent_incidents(&self, limit: usize) -> Result<Vec<IncidentRecord>> {
        self.incidents_where("TRUE", Some(limit)).await
    }

    async fn incidents_where(&self, condition: &str, newest_first: Option<usize>) -> Result<Vec<IncidentRecord>> {
        let order = match newest_first {
            Some(limit) => format!("ORDER BY i.opened_at DESC, i.incident_id LIMIT {limit}"),
            None => "ORDER BY i.opened_at, i.incident_id".to_string(),
        };
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT incident_id, incident_key, kind, subject, status, {}, {}, opened_run_id, last_seen_run_id, \
             last_status, message FROM {} i WHERE {condition} {order}",
            self.aliased(&d.cast_to_text("i.opened_at"), "opened_at")?,
            self.aliased(&d.cast_to_text("i.resolved_at"), "resolved_at")?,
            self.qualified(INCIDENTS)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(IncidentRecord {
                incident_id: r.text("incident_id")?,
                incident_key: r.text("incident_key")?,
                kind: r.text("kind")?,
                subject: r.text("subject")?,
                status: r.text("status")?,
                opened_at: r.opt_timestamp("opened_at")?.unwrap_or_default(),
                resolved_at: r.opt_timestamp("resolved_at")?,
                opened_run_id: r.opt_text("opened_run_id")?,
                last_seen_run_id: r.opt_text("last_seen_run_id")?,
                last_status: r.opt_text("last_status")?,
                message: r.opt_text("message")?,
            })
        })
    }

    /// Insert or update incidents (by `incident_id`), in one statement.
    pub async fn save_incidents(&self, incidents: &[IncidentRecord]) -> Result<()> {
        if incidents.is_empty() {
            return Ok(());
        }
        let d = self.warehouse.dialect();
        let ts = |v: Option<NaiveDateTime>| -> Result<String> {
            Ok(d.cast(&self.lit(v.map_or(Literal::Null, Literal::Timestamp))?, ColumnType::Timestamp))
        };
        let text = |v: Option<&str>| -> Result<String> { Ok(d.cast_to_text(&self.opt_text(v)?)) };
        let mut rows = Vec::with_capacity(incidents.len());
        for i in incidents {
            rows.push(format!(
                "SELECT {} AS incident_id, {} AS incident_key, {} AS kind, {} AS subject, {} AS status, \
                 {} AS opened_at, {} AS resolved_at, {} AS opened_run_id, {} AS last_seen_run_id, \
                 {} AS last_status, {} AS message, {} AS updated_at",
                self.lit(Literal::Text(&i.incident_id))?,
                self.lit(Literal::Text(&i.incident_key))?,
                self.lit(Literal::Text(&i.kind))?,
                self.lit(Literal::Text(&i.subject))?,
                self.lit(Literal::Text(&i.status))?,
                ts(Some(i.opened_at))?,
                ts(i.resolved_at)?,
                text(i.opened_run_id.as_deref())?,
                text(i.last_seen_run_id.as_deref())?,
                text(i.last_status.as_deref())?,
                text(i.message.as_deref())?,
                ts(Some(now()))?,
            ));
        }
        let source = format!("({})", rows.join(" UNION ALL "));
        let key = ["incident_id"].map(String::from);
        let update = [
            "incident_key",
            "kind",
            "subject",
            "status",
            "opened_at",
            "resolved_at",
            "opened_run_id",
            "last_seen_run_id",
            "last_status",
            "message",
            "updated_at",
        ]
        .map(String::from);
        let sql = self.warehouse.dialect().merge_sql(&self.table(INCIDENTS), &source, &key, &update)?;
        self.warehouse.execute(&sql).await
    }
}
