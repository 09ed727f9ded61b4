//! Where each stream of each account stands: `stream_state`, written in the transaction of the
//! window it describes.

use super::*;

/// The cursor of one stream for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCursor {
    pub source: String,
    pub stream: String,
    pub account_id: String,
    pub cursor_date: Option<NaiveDate>,
    pub last_run_id: Option<String>,
}

/// A row of `stream_state`: where a stream of an account stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    pub source: String,
    pub stream: String,
    pub account_id: String,
    pub cursor_date: Option<NaiveDate>,
    pub last_window_start: Option<NaiveDate>,
    pub last_window_end: Option<NaiveDate>,
    pub last_run_id: Option<String>,
    pub rows_loaded: Option<i64>,
    /// When the state last moved (UTC): a load that found no rows still moves it.
    pub updated_at: Option<NaiveDateTime>,
}

impl crate::rows::FromRow for StreamState {
    fn from_row(row: &crate::rows::Row<'_>) -> Result<Self> {
        Ok(StreamState {
            source: row.text("source")?,
            stream: row.text("stream")?,
            account_id: row.text("account_id")?,
            cursor_date: row.opt_date("cursor_date")?,
            last_window_start: row.opt_date("last_window_start")?,
            last_window_end: row.opt_date("last_window_end")?,
            last_run_id: row.opt_text("last_run_id")?,
            rows_loaded: row.opt_i64("rows_loaded")?,
            updated_at: row.opt_timestamp("updated_at")?,
        })
    }
}

/// One (source, stream) of `stream_state`, its accounts folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFreshness {
    pub source: String,
    pub stream: String,
    pub accounts: i64,
    /// The oldest cursor among the accounts: data is complete up to this day for every account.
    pub oldest_cursor: Option<NaiveDate>,
    /// The last time any account of the stream was loaded (UTC).
    pub last_loaded_at: Option<NaiveDateTime>,
    /// Rows of each account's last loaded window, summed.
    pub last_window_rows: i64,
}

impl Metadata<'_> {
    /// The SQL that upserts a stream's cursor: its row deleted and written again. Run it in the
    /// transaction that writes the window, so the data and the cursor commit together (and the two
    /// statements with them). Not a `MERGE`: the row is written whole, and a delete and an insert run
    /// inside a transaction on every engine (fakesnow, the Snowflake stand-in, cannot run a `MERGE`
    /// inside one).
    pub fn set_cursor_sql(
        &self,
        cursor: &StreamCursor,
        window: (NaiveDate, NaiveDate),
        rows_loaded: i64,
    ) -> Result<String> {
        let d = self.warehouse.dialect();
        let cursor_date = cursor.cursor_date.map_or(Literal::Null, Literal::Date);
        let delete = d.delete_where_sql(
            &self.table(STREAM_STATE),
            &[
                Condition::eq("source", Literal::Text(&cursor.source)),
                Condition::eq("stream", Literal::Text(&cursor.stream)),
                Condition::eq("account_id", Literal::Text(&cursor.account_id)),
            ],
        )?;
        let insert = format!(
            "INSERT INTO {} (source, stream, account_id, cursor_date, last_window_start, last_window_end, \
             last_run_id, rows_loaded, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
            self.qualified(STREAM_STATE)?,
            self.lit(Literal::Text(&cursor.source))?,
            self.lit(Literal::Text(&cursor.stream))?,
            self.lit(Literal::Text(&cursor.account_id))?,
            self.lit(cursor_date)?,
            self.lit(Literal::Date(window.0))?,
            self.lit(Literal::Date(window.1))?,
            self.opt_text(cursor.last_run_id.as_deref())?,
            d.cast(&rows_loaded.to_string(), ColumnType::Int64),
            self.lit(Literal::Timestamp(now()))?
        );
        Ok(format!("{delete};\n{insert}"))
    }

    /// The cursor of a stream for an account, if it was ever loaded.
    pub async fn cursor(&self, source: &str, stream: &str, account_id: &str) -> Result<Option<StreamCursor>> {
        let sql = format!(
            "SELECT {}, last_run_id FROM {} WHERE source = {} AND stream = {} AND account_id = {}",
            self.aliased(&self.warehouse.dialect().cast_to_text("cursor_date"), "cursor_date")?,
            self.qualified(STREAM_STATE)?,
            self.lit(Literal::Text(source))?,
            self.lit(Literal::Text(stream))?,
            self.lit(Literal::Text(account_id))?
        );
        self.named_rows(&sql).await?.decode_first(|r| {
            Ok(StreamCursor {
                source: source.to_string(),
                stream: stream.to_string(),
                account_id: account_id.to_string(),
                cursor_date: r.opt_date("cursor_date")?,
                last_run_id: r.opt_text("last_run_id")?,
            })
        })
    }

    /// The statement of [`Metadata::stream_states`].
    pub fn stream_states_sql(&self) -> Result<String> {
        Ok(format!(
            "SELECT source, stream, account_id, cursor_date, last_window_start, last_window_end, last_run_id, \
             rows_loaded, updated_at FROM {} ORDER BY source, stream, account_id",
            self.qualified(STREAM_STATE)?
        ))
    }

    /// Every stream's state per account, by source, stream and account; none when nothing was
    /// ever loaded (or the metadata schema does not exist: readers never create it).
    pub async fn stream_states(&self) -> Result<Vec<StreamState>> {
        if !self.warehouse.exists(&self.table(STREAM_STATE)).await? {
            return Ok(Vec::new());
        }
        crate::rows::fetch(self.warehouse, &self.stream_states_sql()?).await
    }

    /// Every stream of `stream_state` with its accounts folded, by source and stream.
    pub async fn stream_freshness(&self) -> Result<Vec<StreamFreshness>> {
        let d = self.warehouse.dialect();
        let (source, stream) = (self.quoted("source")?, self.quoted("stream")?);
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {} FROM {} GROUP BY {source}, {stream} ORDER BY {source}, {stream}",
            self.aliased(&source, "source")?,
            self.aliased(&stream, "stream")?,
            self.aliased("count(*)", "accounts")?,
            self.aliased(&d.cast_to_text(&format!("min({})", self.quoted("cursor_date")?)), "oldest_cursor")?,
            self.aliased(&d.cast_to_text(&format!("max({})", self.quoted("updated_at")?)), "last_loaded_at")?,
            self.aliased(&d.sum_exact(&self.quoted("rows_loaded")?, ColumnType::Int64), "last_window_rows")?,
            self.qualified(STREAM_STATE)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(StreamFreshness {
                source: r.text("source")?,
                stream: r.text("stream")?,
                accounts: r.i64("accounts")?,
                oldest_cursor: r.opt_date("oldest_cursor")?,
                last_loaded_at: r.opt_timestamp("last_loaded_at")?,
                last_window_rows: r.opt_i64("last_window_rows")?.unwrap_or(0),
            })
        })
    }
}
