//! `mdp docs generate` on an mdp project with all four platforms: the site needs the parsed project
//! only (no ingest, no warehouse), and documents the embedded marketing models.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

const MARTS: [&str; 4] = [
    "fct_ad_performance_daily",
    "fct_campaign_performance_daily",
    "fct_account_performance_daily",
    "fct_platform_performance_daily",
];

/// Undo the site's HTML escaping (the five characters it escapes).
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Every `href="…"` / `src="…"` value in an HTML text.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("attribute closes");
            out.push(unescape(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

/// The text of the table row of `column` on a page.
fn column_row<'a>(page: &'a str, column: &str) -> &'a str {
    let start = page
        .find(&format!(r#"<tr class="column" data-column="{column}">"#))
        .unwrap_or_else(|| panic!("the page lists column {column}"));
    let end = page[start..].find("</tr>").expect("row closes");
    &page[start..start + end]
}

#[test]
fn docs_generate_documents_the_marts_sources_and_lineage_with_working_links() {
    let sandbox = start_sandbox();
    let root = tempfile::tempdir().unwrap();
    let project = project(root.path(), &sandbox);
    drop(sandbox); // the docs need no data

    let out = mdp().args(["docs", "generate"]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("target/docs") && said.contains("index.html") && said.contains("mdp serve"), "{said}");
    assert!(!project.join("warehouse.duckdb").exists(), "generating docs opens no warehouse");
    let site = project.join("target/docs");

    // The index's lineage graph: every mart and the mdp_raw sources, each a link to its page.
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    let svg = &index[index.find("<svg").expect("a lineage graph")..index.find("</svg>").unwrap()];
    for mart in MARTS {
        assert!(svg.contains(&format!(r#"data-id="model.mdp_marketing.{mart}""#)), "{mart} is in the graph");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(site.join("docs.json")).unwrap()).unwrap();
    let nodes = json["nodes"].as_object().unwrap();
    let raw_sources: Vec<&String> = nodes.keys().filter(|id| id.starts_with("source.mdp_marketing.mdp_raw.")).collect();
    for platform in PLATFORMS {
        assert!(raw_sources.iter().any(|id| id.contains(platform)), "an mdp_raw table of {platform}: {raw_sources:?}");
    }
    for id in &raw_sources {
        assert!(svg.contains(&format!(r#"data-id="{id}" data-resource-type="source""#)), "{id} is in the graph");
    }
    let fct_in_docs: BTreeSet<&str> =
        nodes.values().filter_map(|n| n["name"].as_str()).filter(|n| n.starts_with("fct_")).collect();
    assert_eq!(fct_in_docs, MARTS.into_iter().collect(), "the marts, all of them");
    assert!(!svg.contains(r#"data-resource-type="test""#), "tests are listed, not drawn");

    // A mart's page: every column of the package's schema with its description and its tests.
    let marts_yml: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../mdp-marketing/package/models/marts/_marts.yml"),
        )
        .unwrap(),
    )
    .unwrap();
    let model = marts_yml["models"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "fct_campaign_performance_daily")
        .expect("the mart is documented in the package");
    let page = std::fs::read_to_string(site.join("model.mdp_marketing.fct_campaign_performance_daily.html")).unwrap();
    let columns = model["columns"].as_sequence().unwrap();
    assert!(columns.len() > 10);
    let mut tests_seen = 0;
    for column in columns {
        let name = column["name"].as_str().unwrap();
        let row = unescape(column_row(&page, name));
        let description = column["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "the package documents every mart column ({name})");
        assert!(row.contains(description.trim()), "{name}'s description is on the page: {row}");
        for test in column["data_tests"].as_sequence().into_iter().flatten() {
            let test_name = match test {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Mapping(m) => m.keys().next().unwrap().as_str().unwrap().to_string(),
                other => panic!("unexpected test {other:?}"),
            };
            assert!(row.contains(&format!(">{test_name}</span>")), "{name} shows its test {test_name}: {row}");
            tests_seen += 1;
        }
    }
    assert!(tests_seen > 5, "{tests_seen} column tests checked");
    let model_tests = model["data_tests"].as_sequence().map_or(0, Vec::len);
    assert!(model_tests > 0);
    let tests_section = &page[page.find(r#"id="node-tests""#).unwrap()..];
    for test in model["data_tests"].as_sequence().unwrap() {
        let test_name = test.as_mapping().unwrap().keys().next().unwrap().as_str().unwrap();
        assert!(tests_section.contains(&format!(r#"<span class="test-name">{test_name}</span>"#)), "{test_name}");
    }
    assert!(page.contains("reconcile_campaign_mart_with_raw"), "the singular reconciliation test is listed");
    assert!(
        page.contains("<code>&quot;main_marts&quot;.&quot;fct_campaign_performance_daily&quot;</code>"),
        "its relation"
    );
    assert!(page.contains("int_campaign_performance_daily"), "what it depends on");

    // Every link of every page resolves to a file of the site.
    let mut checked = 0;
    for entry in std::fs::read_dir(&site).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "html") {
            let html = std::fs::read_to_string(&path).unwrap();
            for link in links(&html) {
                let target = link.split('#').next().unwrap();
                assert!(!target.is_empty() && site.join(target).is_file(), "{}: {link} is not a file", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked} links checked");

    // Again, into a folder of its own: a model added to the project, then removed.
    std::fs::write(project.join("models/my_report.sql"), "select 1 as one").unwrap();
    let other = root.path().join("site");
    let out = mdp().args(["docs", "generate", "--out"]).arg(&other).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let page = other
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with(".my_report.html"))
        .expect("the project's own model has a page");
    std::fs::remove_file(project.join("models/my_report.sql")).unwrap();
    let out = mdp().args(["docs", "generate", "--out"]).arg(&other).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!page.exists(), "the page of a removed model is removed");
    assert!(other.join("index.html").is_file());
}
