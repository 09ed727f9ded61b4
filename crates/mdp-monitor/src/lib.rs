//! Watching the data: checks and monitors, alerts, and lineage events.
//!
//! - [`checks`]: the monitors `mdp check` runs (source freshness, volume, spend anomalies and
//!   zero-spend days, schema drift of raw payloads, KPI targets). Their statistics are pushed down to
//!   the warehouse as SQL; the maths that decides pass / warn / fail is pure and unit-tested. Results
//!   go to the metadata schema's `check_results`, beside the transform's tests.
//! - [`alerts`]: notifiers (webhook, Slack, command) and incidents: one notification when a run or a
//!   check turns red, one when it recovers.
//! - [`lineage`]: OpenLineage `RunEvent`s for every ingest and model run, to a file or an HTTP endpoint.
//!
//! **Invariant:** SQL reaches the database only through `mdp_warehouse`'s `Warehouse` trait, with
//! identifiers quoted by its `Dialect`; this crate never speaks to ad platforms.

pub mod alerts;
pub mod checks;
pub mod lineage;
