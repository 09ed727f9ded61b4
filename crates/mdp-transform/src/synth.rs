//! A generator of synthetic dbt projects, for benchmarks against dbt-core and for scale tests.
//!
//! The project is fully deterministic (a fixed LCG, no clock, no hashing of addresses):
//! - one seed, `seeds/synth_events.csv` (`id, account_id, event_date, amount`, `seed_rows` rows,
//!   column types pinned in `dbt_project.yml`);
//! - `models` models spread over `layers` folders `models/layer_XX/` (sizes differ by at most one);
//!   layer 0 selects from `ref('synth_events')` and is materialized as views, every later layer as
//!   tables (folder config in `dbt_project.yml`);
//! - a model of layer k > 0 reads 1–3 models of layer k − 1: one parent gives a projection, several
//!   give either a chain of `left join`s on `id` or a `union all` of disjoint `mod(id, n)` slices, so
//!   every model has exactly the seed's ids (unique, non-null) and the same six columns
//!   (`id, account_id, event_date, amount, score, is_large`);
//! - the SQL of base, join and union models uses `{% set %}`, `{% for %}` (including refs inside a
//!   loop), `var()` with defaults in `dbt_project.yml` `vars:`, and the project macro `synth_score`
//!   from `macros/synth.sql`; projections are plain SQL around a literal `ref` (the shape dbt-core's
//!   static parser handles without rendering), so a project mixes both kinds of model;
//! - every model has exactly two schema tests on `id` (`unique`, `not_null`) in its folder's
//!   `schema.yml`.
//!
//! The SQL is valid on DuckDB and on Postgres; `profiles.yml` has a target for each.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The size and shape of a synthetic project.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Number of models (each with two schema tests).
    pub models: usize,
    /// Number of layers (folders `models/layer_XX`); clamped to `1..=models` when writing.
    pub layers: usize,
    /// Rows of the seed `synth_events.csv`.
    pub seed_rows: usize,
}

impl SynthSpec {
    /// `models` models over 10 layers (fewer when there are fewer than 10 models), 100 seed rows.
    pub fn new(models: usize) -> Self {
        SynthSpec { models, layers: models.min(10), seed_rows: 100 }
    }
}

/// What [`write_project`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    pub models: usize,
    pub tests: usize,
    pub seeds: usize,
}

/// The name of the project's only seed.
pub const SEED_NAME: &str = "synth_events";

/// The name of the model `index` (0-based, within its layer) of layer `layer`.
pub fn model_name(layer: usize, index: usize) -> String {
    format!("synth_l{layer:02}_{index:04}")
}

/// The folder (under `models/`) of layer `layer`.
pub fn layer_dir(layer: usize) -> String {
    format!("layer_{layer:02}")
}

/// A fixed 64-bit LCG (Knuth's MMIX constants); the high bits are the output.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Layer 0: reads the seed.
    Base,
    /// One parent; no Jinja but the `ref` (dbt-core's static parser takes these).
    Projection,
    /// Several parents, `left join`ed on `id`.
    Join,
    /// Several parents, `union all` of disjoint `mod(id, n)` slices.
    Union,
}

#[derive(Debug, Clone)]
struct PlannedModel {
    layer: usize,
    index: usize,
    kind: Kind,
    /// Indices (within layer − 1) of the parents, distinct, in reference order.
    parents: Vec<usize>,
}

/// How many models each layer gets: `models` spread over the clamped number of layers, the first
/// layers taking one more when it does not divide evenly.
fn layer_sizes(spec: &SynthSpec) -> Vec<usize> {
    if spec.models == 0 {
        return Vec::new();
    }
    let layers = spec.layers.clamp(1, spec.models);
    (0..layers).map(|l| spec.models / layers + usize::from(l < spec.models % layers)).collect()
}

fn plan(spec: &SynthSpec) -> Vec<PlannedModel> {
    let sizes = layer_sizes(spec);
    let mut rng = Lcg(0x5EED_5A77_E570_0001);
    let mut out = Vec::with_capacity(spec.models);
    for (layer, &size) in sizes.iter().enumerate() {
        for index in 0..size {
            if layer == 0 {
                out.push(PlannedModel { layer, index, kind: Kind::Base, parents: Vec::new() });
                continue;
            }
            let available = sizes[layer - 1];
            let wanted = 1 + rng.below(available.min(3));
            let mut parents = Vec::with_capacity(wanted);
            while parents.len() < wanted {
                let p = rng.below(available);
                if !parents.contains(&p) {
                    parents.push(p);
                }
            }
            let kind = match (parents.len(), index % 2) {
                (1, _) => Kind::Projection,
                (_, 0) => Kind::Join,
                _ => Kind::Union,
            };
            out.push(PlannedModel { layer, index, kind, parents });
        }
    }
    out
}

/// Writes a complete dbt project into `dir` (created if missing) and says what it holds.
///
/// The same `spec` always produces the same bytes, except `profiles.yml`, which holds the absolute
/// path of the DuckDB file (`<dir>/synth.duckdb`).
pub fn write_project(dir: &Path, spec: &SynthSpec) -> io::Result<SynthSummary> {
    fs::create_dir_all(dir)?;
    let dir = std::path::absolute(dir)?;
    let sizes = layer_sizes(spec);

    fs::write(dir.join("dbt_project.yml"), dbt_project_yml(sizes.len()))?;
    fs::write(dir.join("profiles.yml"), profiles_yml(&dir.join("synth.duckdb")))?;

    let seeds = dir.join("seeds");
    fs::create_dir_all(&seeds)?;
    fs::write(seeds.join(format!("{SEED_NAME}.csv")), seed_csv(spec.seed_rows))?;

    let macros = dir.join("macros");
    fs::create_dir_all(&macros)?;
    fs::write(macros.join("synth.sql"), MACROS_SQL)?;

    let models_dir = dir.join("models");
    // A previous, larger project in the same directory must not leave models behind.
    if models_dir.exists() {
        fs::remove_dir_all(&models_dir)?;
    }
    fs::create_dir_all(&models_dir)?;
    let planned = plan(spec);
    let mut tests = 0;
    for (layer, _) in sizes.iter().enumerate() {
        let folder: PathBuf = models_dir.join(layer_dir(layer));
        fs::create_dir_all(&folder)?;
        let mut schema = String::from("version: 2\n\nmodels:\n");
        for model in planned.iter().filter(|m| m.layer == layer) {
            let name = model_name(model.layer, model.index);
            fs::write(folder.join(format!("{name}.sql")), model_sql(model))?;
            let _ = write!(
                schema,
                "  - name: {name}\n    columns:\n      - name: id\n        data_tests:\n          - unique\n          - not_null\n"
            );
            tests += 2;
        }
        fs::write(folder.join("schema.yml"), schema)?;
    }

    Ok(SynthSummary { models: planned.len(), tests, seeds: 1 })
}

fn dbt_project_yml(layers: usize) -> String {
    let mut s = String::from(
        "name: synth\n\
         version: '1.0.0'\n\
         config-version: 2\n\
         profile: synth\n\
         \n\
         model-paths: [\"models\"]\n\
         seed-paths: [\"seeds\"]\n\
         macro-paths: [\"macros\"]\n\
         test-paths: [\"tests\"]\n\
         \n\
         clean-targets: [\"target\", \"dbt_packages\"]\n\
         \n\
         vars:\n  \
           synth_buckets: 7\n  \
           synth_shift: 3\n  \
           synth_large_amount: 500\n\
         \n\
         seeds:\n  \
           synth:\n    \
             synth_events:\n      \
               +column_types:\n        \
                 id: integer\n        \
                 account_id: integer\n        \
                 event_date: date\n        \
                 amount: numeric(18, 2)\n\
         \n\
         models:\n  \
           synth:\n    \
             +materialized: table\n",
    );
    if layers > 0 {
        let _ = write!(s, "    {}:\n      +materialized: view\n", layer_dir(0));
    }
    s
}

/// A YAML single-quoted scalar.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn profiles_yml(duckdb_path: &Path) -> String {
    format!(
        "synth:\n  \
           target: duckdb\n  \
           outputs:\n    \
             duckdb:\n      \
               type: duckdb\n      \
               path: {}\n      \
               threads: 4\n    \
             postgres:\n      \
               type: postgres\n      \
               host: \"{{{{ env_var('MDP_SYNTH_PG_HOST', '127.0.0.1') }}}}\"\n      \
               port: \"{{{{ env_var('MDP_SYNTH_PG_PORT', '5432') | as_number }}}}\"\n      \
               user: \"{{{{ env_var('MDP_SYNTH_PG_USER', 'postgres') }}}}\"\n      \
               password: \"{{{{ env_var('MDP_SYNTH_PG_PASSWORD', '') }}}}\"\n      \
               dbname: \"{{{{ env_var('MDP_SYNTH_PG_DBNAME', 'test') }}}}\"\n      \
               schema: synth\n      \
               threads: 4\n",
        yaml_quote(&duckdb_path.to_string_lossy())
    )
}

/// `YYYY-MM-DD` of day `day` (0-based) of 2024.
fn date_2024(mut day: usize) -> String {
    const MONTHS: [usize; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    day %= 366;
    let mut month = 0;
    while day >= MONTHS[month] {
        day -= MONTHS[month];
        month += 1;
    }
    format!("2024-{:02}-{:02}", month + 1, day + 1)
}

fn seed_csv(rows: usize) -> String {
    let mut rng = Lcg(0x0C5F_5EED);
    let mut s = String::from("id,account_id,event_date,amount\n");
    for id in 1..=rows {
        let account = 1 + rng.below(97);
        let date = date_2024(rng.below(366));
        let cents = rng.below(100_000);
        let _ = writeln!(s, "{id},{account},{date},{}.{:02}", cents / 100, cents % 100);
    }
    s
}

const MACROS_SQL: &str = "\
{% macro synth_score(column, buckets) -%}
    cast(mod(cast(floor({{ column }}) as bigint), {{ buckets }}) as integer)
{%- endmacro %}
";

fn model_sql(model: &PlannedModel) -> String {
    let parent = |i: usize| model_name(model.layer - 1, model.parents[i]);
    let mut s = String::new();
    match model.kind {
        Kind::Base => {
            let _ = write!(
                s,
                "{{%- set shift = var('synth_shift') + {} %}}\n\
                 select\n    \
                   id,\n    \
                   account_id,\n    \
                   event_date,\n    \
                   cast(amount + {{{{ shift }}}} as numeric(18, 2)) as amount,\n    \
                   {{{{ synth_score('amount', var('synth_buckets')) }}}} as score,\n    \
                   amount > {{{{ var('synth_large_amount') }}}} as is_large\n\
                 from {{{{ ref('{SEED_NAME}') }}}}\n",
                model.index % 5
            );
        }
        Kind::Projection => {
            // Plain SQL and a literal `ref`: the shape dbt-core's static parser handles without Jinja.
            let _ = write!(
                s,
                "select\n    \
                   id,\n    \
                   account_id,\n    \
                   event_date,\n    \
                   cast(amount + {} as numeric(18, 2)) as amount,\n    \
                   cast(mod(cast(floor(amount) as bigint), {}) as integer) as score,\n    \
                   amount > 500 as is_large\n\
                 from {{{{ ref('{}') }}}}\n",
                1 + model.index % 4,
                3 + model.index % 11,
                parent(0)
            );
        }
        Kind::Join => {
            let n = model.parents.len();
            let weights: Vec<usize> = (0..n).map(|i| n - i).collect();
            let total: usize = weights.iter().sum();
            let list = weights.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
            let _ = write!(
                s,
                "{{%- set weights = [{list}] %}}\n\
                 select\n    \
                   t0.id,\n    \
                   t0.account_id,\n    \
                   t0.event_date,\n    \
                   cast(\n        \
                     ({{% for w in weights %}}coalesce(t{{{{ loop.index0 }}}}.amount, 0) * {{{{ w }}}}\
                 {{% if not loop.last %}} + {{% endif %}}{{% endfor %}}) / {total}\n        \
                     as numeric(18, 2)\n    \
                   ) as amount,\n    \
                   {{% for w in weights %}}coalesce(t{{{{ loop.index0 }}}}.score, 0)\
                 {{% if not loop.last %}} + {{% endif %}}{{% endfor %}} as score,\n    \
                   t0.is_large"
            );
            for i in 1..n {
                let _ = write!(s, " or coalesce(t{i}.is_large, false)");
            }
            let _ = write!(s, " as is_large\nfrom {{{{ ref('{}') }}}} as t0\n", parent(0));
            for i in 1..n {
                let _ = writeln!(s, "left join {{{{ ref('{}') }}}} as t{i} on t0.id = t{i}.id", parent(i));
            }
        }
        Kind::Union => {
            let list = (0..model.parents.len()).map(|i| format!("'{}'", parent(i))).collect::<Vec<_>>().join(", ");
            let _ = write!(
                s,
                "{{%- set parents = [{list}] %}}\n\
                 {{%- for parent in parents %}}\n\
                 select\n    \
                   id,\n    \
                   account_id,\n    \
                   event_date,\n    \
                   cast(amount + {{{{ loop.index }}}} as numeric(18, 2)) as amount,\n    \
                   {{{{ synth_score('amount', var('synth_buckets')) }}}} as score,\n    \
                   is_large\n\
                 from {{{{ ref(parent) }}}}\n\
                 where mod(id, {{{{ parents | length }}}}) = {{{{ loop.index0 }}}}\n\
                 {{%- if not loop.last %}}\n\
                 union all\n\
                 {{%- endif %}}\n\
                 {{%- endfor %}}\n"
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Every file under `dir`, by path relative to it.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.insert(path.strip_prefix(root).unwrap().to_path_buf(), fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    /// The `(layer, index)` of every `synth_lXX_NNNN` name in `text`.
    fn model_names_in(text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(pos) = rest.find("synth_l") {
            let tail = &rest[pos + "synth_l".len()..];
            let layer: String = tail.chars().take_while(char::is_ascii_digit).collect();
            let after = &tail[layer.len()..];
            let index: String =
                after.strip_prefix('_').unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
            rest = tail;
            if layer.is_empty() {
                continue; // e.g. the var `synth_large_amount`
            }
            out.push((layer.parse().unwrap(), index.parse().unwrap()));
        }
        out
    }

    #[test]
    fn spec_defaults() {
        let s = SynthSpec::new(1000);
        assert_eq!((s.models, s.layers, s.seed_rows), (1000, 10, 100));
        assert_eq!(SynthSpec::new(4).layers, 4);
        assert_eq!(layer_sizes(&SynthSpec::new(25)), vec![3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
        assert_eq!(layer_sizes(&SynthSpec { models: 3, layers: 0, seed_rows: 1 }), vec![3]);
        assert!(layer_sizes(&SynthSpec::new(0)).is_empty());
    }

    #[test]
    fn summary_counts_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        let summary = write_project(&root, &SynthSpec::new(57)).unwrap();
        assert_eq!(summary, SynthSummary { models: 57, tests: 114, seeds: 1 });

        for f in ["dbt_project.yml", "profiles.yml", "macros/synth.sql", "seeds/synth_events.csv"] {
            assert!(root.join(f).is_file(), "{f} missing");
        }
        let csv = fs::read_to_string(root.join("seeds/synth_events.csv")).unwrap();
        assert_eq!(csv.lines().count(), 101);
        assert_eq!(csv.lines().next(), Some("id,account_id,event_date,amount"));

        let mut sql_files = 0;
        let mut test_entries = 0;
        for layer in 0..10 {
            let folder = root.join("models").join(layer_dir(layer));
            let schema = fs::read_to_string(folder.join("schema.yml")).unwrap();
            let parsed: serde_yaml::Value = serde_yaml::from_str(&schema).unwrap();
            for model in parsed["models"].as_sequence().unwrap() {
                let name = model["name"].as_str().unwrap();
                assert!(folder.join(format!("{name}.sql")).is_file(), "{name}.sql missing");
                let columns = model["columns"].as_sequence().unwrap();
                assert_eq!(columns.len(), 1);
                assert_eq!(columns[0]["name"].as_str(), Some("id"));
                let tests = columns[0]["data_tests"].as_sequence().unwrap();
                let tests: Vec<_> = tests.iter().map(|t| t.as_str().unwrap()).collect();
                assert_eq!(tests, ["unique", "not_null"]);
                test_entries += tests.len();
            }
            sql_files += fs::read_dir(&folder)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
                .count();
        }
        assert_eq!(sql_files, 57);
        assert_eq!(test_entries, 114);
        assert!(!root.join("models").join(layer_dir(10)).exists());

        // The YAML files parse, and hold what the brief asks for.
        let project: serde_yaml::Value =
            serde_yaml::from_str(&fs::read_to_string(root.join("dbt_project.yml")).unwrap()).unwrap();
        assert_eq!(project["name"].as_str(), Some("synth"));
        assert_eq!(project["profile"].as_str(), Some("synth"));
        assert_eq!(project["models"]["synth"]["+materialized"].as_str(), Some("table"));
        assert_eq!(project["models"]["synth"]["layer_00"]["+materialized"].as_str(), Some("view"));
        assert_eq!(project["vars"]["synth_buckets"].as_u64(), Some(7));
        let profiles: serde_yaml::Value =
            serde_yaml::from_str(&fs::read_to_string(root.join("profiles.yml")).unwrap()).unwrap();
        let outputs = &profiles["synth"]["outputs"];
        let duck = PathBuf::from(outputs["duckdb"]["path"].as_str().unwrap());
        assert!(duck.is_absolute());
        assert_eq!(duck, std::path::absolute(root.join("synth.duckdb")).unwrap());
        assert_eq!(outputs["postgres"]["schema"].as_str(), Some("synth"));
        assert!(outputs["postgres"]["host"].as_str().unwrap().contains("env_var('MDP_SYNTH_PG_HOST', '127.0.0.1')"));
    }

    #[test]
    fn refs_point_to_the_previous_layer_only() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SynthSpec::new(200);
        write_project(dir.path(), &spec).unwrap();
        let sizes = layer_sizes(&spec);
        let mut kinds = [0usize; 4];
        for m in plan(&spec) {
            kinds[m.kind as usize] += 1;
            let path = dir
                .path()
                .join("models")
                .join(layer_dir(m.layer))
                .join(format!("{}.sql", model_name(m.layer, m.index)));
            let sql = fs::read_to_string(path).unwrap();
            let named = model_names_in(&sql);
            if m.layer == 0 {
                assert!(named.is_empty());
                assert!(sql.contains("ref('synth_events')"));
            } else {
                assert!((1..=3).contains(&m.parents.len()));
                assert_eq!(named.len(), m.parents.len(), "{sql}");
                for (layer, index) in named {
                    assert_eq!(layer, m.layer - 1, "{sql}");
                    assert!(index < sizes[layer]);
                    assert!(m.parents.contains(&index));
                }
            }
            if m.kind == Kind::Projection {
                assert!(!sql.contains("{%") && sql.matches("{{").count() == 1, "{sql}");
            }
            assert_eq!(sql.matches("{%").count(), sql.matches("%}").count());
            assert_eq!(sql.matches("{{").count(), sql.matches("}}").count());
        }
        // Every kind of model occurs.
        assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
        // The Jinja features the benchmark is meant to exercise occur somewhere.
        let all: String = snapshot(dir.path()).values().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        for needle in ["{%- set", "{%- for", "{% for", "synth_score(", "var('", "ref(parent)", "left join", "union all"]
        {
            assert!(all.contains(needle), "{needle} never generated");
        }
    }

    #[test]
    fn deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SynthSpec { models: 120, layers: 7, seed_rows: 50 };
        write_project(dir.path(), &spec).unwrap();
        let first = snapshot(dir.path());
        write_project(dir.path(), &spec).unwrap();
        assert_eq!(first, snapshot(dir.path()));

        // Another directory differs only in the DuckDB path of profiles.yml.
        let other = tempfile::tempdir().unwrap();
        write_project(other.path(), &spec).unwrap();
        let mut second = snapshot(other.path());
        let mut first = first;
        assert_ne!(first.remove(Path::new("profiles.yml")), second.remove(Path::new("profiles.yml")));
        assert_eq!(first, second);
    }

    #[test]
    fn rewriting_smaller_leaves_no_stale_models() {
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), &SynthSpec::new(30)).unwrap();
        write_project(dir.path(), &SynthSpec::new(5)).unwrap();
        let sql = snapshot(dir.path()).keys().filter(|p| p.extension().is_some_and(|x| x == "sql")).count();
        assert_eq!(sql, 5 + 1); // the models and macros/synth.sql
    }

    #[test]
    fn zero_models() {
        let dir = tempfile::tempdir().unwrap();
        let summary = write_project(dir.path(), &SynthSpec::new(0)).unwrap();
        assert_eq!(summary, SynthSummary { models: 0, tests: 0, seeds: 1 });
        assert!(dir.path().join("seeds/synth_events.csv").is_file());
    }

    /// Writes the 1000-model benchmark project into `$MDP_SYNTH_OUT`:
    /// `MDP_SYNTH_OUT=/tmp/synth1000 cargo test --workspace synth -- --ignored`.
    #[test]
    #[ignore = "writes outside the test sandbox; run explicitly with MDP_SYNTH_OUT set"]
    fn write_for_external_benchmark() {
        let out = std::env::var("MDP_SYNTH_OUT").expect("set MDP_SYNTH_OUT to the output directory");
        let models = std::env::var("MDP_SYNTH_MODELS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
        let summary = write_project(Path::new(&out), &SynthSpec::new(models)).unwrap();
        assert_eq!(summary.models, models);
        assert_eq!(summary.tests, 2 * models);
        eprintln!("wrote {summary:?} to {out}");
    }
}
