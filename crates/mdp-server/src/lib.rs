//! The web server of `mdp serve` (built by the web UI work): `fn app() -> Router` serving the UI
//! (overview, runs, lineage, checks, KPI dashboard), its JSON API and Prometheus `/metrics`.
