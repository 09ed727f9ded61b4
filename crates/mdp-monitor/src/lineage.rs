//! OpenLineage run events (built by the lineage work).
