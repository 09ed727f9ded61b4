//! The transform's tests as check results: every schema or singular test that `mdp build`, `mdp test`
//! or `mdp pipeline` runs lands in `check_results` beside the monitors, kind `test` — or
//! `reconciliation` for the marketing package's reconciliation tests (marts against the raw layer) —
//! with its failing-row count and its compiled query as the sample query.

use mdp_transform::manifest::ResourceType;
use mdp_transform::run::{NodeResult, NodeStatus};
use mdp_transform::Parsed;

use super::{CheckKind, CheckOutcome, CheckStatus};

/// The package whose `reconcile_*` tests are reconciliations.
const MARKETING_PACKAGE: &str = mdp_marketing::PACKAGE_NAME;

/// The check outcomes of the test nodes among `results` (other nodes are left out).
pub fn outcomes(parsed: &Parsed, results: &[NodeResult]) -> Vec<CheckOutcome> {
    results.iter().filter_map(|r| outcome(parsed, r)).collect()
}

/// The check outcome of one node result, if it is a test's.
pub fn outcome(parsed: &Parsed, result: &NodeResult) -> Option<CheckOutcome> {
    let node = parsed.manifest.nodes.get(&result.unique_id)?;
    if node.resource_type != ResourceType::Test {
        return None;
    }
    let kind = if node.package == MARKETING_PACKAGE && node.name.starts_with("reconcile_") {
        CheckKind::Reconciliation
    } else {
        CheckKind::Test
    };
    // The model (or source) the test is about: the attached node, else its first parent.
    let tested = node
        .attached_node
        .as_ref()
        .or_else(|| node.depends_on.iter().find(|d| !d.starts_with("macro.")))
        .and_then(|id| parsed.manifest.nodes.get(id))
        .and_then(|n| n.relation.as_ref())
        .map(|r| format!("{}.{}", r.schema, r.identifier));
    let status = match result.status {
        NodeStatus::Pass | NodeStatus::Success => CheckStatus::Pass,
        NodeStatus::Warn => CheckStatus::Warn,
        NodeStatus::Fail => CheckStatus::Fail,
        NodeStatus::Error => CheckStatus::Error,
        NodeStatus::Skipped => CheckStatus::Skipped,
    };
    let failures = result.failures.map(|f| f as i64);
    let (observed, expected) = match failures {
        Some(f) => (
            Some(format!("{f} failing row{}", if f == 1 { "" } else { "s" })),
            Some(format!("0 failing rows (warn if {}, error if {})", node.config.warn_if, node.config.error_if)),
        ),
        None => (None, None),
    };
    let what = match kind {
        CheckKind::Reconciliation => "reconciliation",
        _ => "test",
    };
    let message = match status {
        CheckStatus::Pass => format!("{what} {} passed", node.name),
        CheckStatus::Skipped => format!("{what} {}: {}", node.name, result.message),
        _ => format!(
            "{what} {} on {}: {}. Paste the sample query into `mdp sql` to see the rows",
            node.name,
            tested.as_deref().unwrap_or("its model"),
            result.message
        ),
    };
    Some(CheckOutcome {
        check_name: result.unique_id.clone(),
        check_kind: kind,
        relation: tested,
        status,
        observed,
        expected,
        failing_rows: failures,
        message,
        sample_query: result.compiled_code.clone(),
    })
}
