//! The web server (planned; the monitoring/web-UI issue builds it): `fn app() -> Router` serving the
//! UI (runs, lineage, checks, KPI charts), the API and Prometheus `/metrics`.
//!
//! This crate is reserved now so the workspace shows the architecture; it deliberately contains no
//! code yet.
//!
//! Architecture invariant (to keep when it is built): the server only calls the orchestrator's public
//! API; it never runs SQL or speaks to platforms itself.
