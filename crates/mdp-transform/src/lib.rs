//! The SQL transformation engine (planned; the transformation-engine issue builds it).
//!
//! Its place in the pipeline: load a dbt-compatible project (`dbt_project.yml`, models with `ref()` /
//! `source()` and Jinja, `schema.yml` tests, seeds) → resolve → DAG → compile SQL for the target's
//! [`Dialect`](https://docs.rs/) → materialize through the warehouse layer.
//!
//! This crate is reserved now so the workspace shows the architecture and its dependency direction
//! is fixed from the start; it deliberately contains no code yet.
//!
//! Architecture invariants (to keep when it is built): the compiler does no I/O; materializations
//! reach the database only through `mdp-warehouse`; nothing here speaks HTTP.
