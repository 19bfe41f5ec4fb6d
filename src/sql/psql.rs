//! Fragments of psql's own catalog queries (and of asyncpg's type lookup)
//! that DataFusion cannot plan, replaced by what they amount to in Strata
//! (the compatibility parser of datafusion-pg-catalog does the same for the
//! queries it knows).

/// (psql's text, what it means here). Matched exactly, as psql 15 sends it.
const FRAGMENTS: &[(&str, &str)] = &[
    // `\d+ name`: a table's storage options and its TOAST table's, joined
    // with the array-from-subquery constructor, which DataFusion lacks.
    // Strata relations have neither (PostgreSQL gives '' then too).
    (
        "pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')",
        "''",
    ),
    // `\dn+`: a schema's privileges, an array in PostgreSQL, text in the
    // emulation (and empty: Strata has no GRANT).
    ("pg_catalog.array_to_string(n.nspacl, E'\\n')", "n.nspacl"),
    // `\dp`: a relation's and its columns' privileges (none: no GRANT; the
    // emulated `pg_class` has no `relacl`, its `attacl` is text), and the
    // roles of its row security policies (`pg_policy` is empty, and its
    // `polroles` text).
    ("pg_catalog.array_to_string(c.relacl, E'\\n')", "CAST(NULL AS TEXT)"),
    ("pg_catalog.array_to_string(attacl, E'\\n  ')", "attacl"),
    ("WHERE oid = ANY (polroles)", "WHERE false"),
    // `\df`: a function's result and argument types, from its `pg_proc` row.
    ("pg_catalog.pg_get_function_result(p.oid)", "pg_catalog.format_type(p.prorettype, NULL)"),
    ("pg_catalog.pg_get_function_arguments(p.oid)", "strata_argument_types(p.proargtypes)"),
    // asyncpg's type lookup: a composite type's attribute types, an `oid[]`
    // in PostgreSQL (see `query/pg_visibility.rs`).
    ("array_agg(ia.atttypid ORDER BY ia.attnum)", "strata_oid_array(array_agg(ia.atttypid ORDER BY ia.attnum))"),
    // `\d name`: the tables whose foreign keys name it, by name (a
    // `regclass` prints as digits here).
    (
        "SELECT conname, conrelid::pg_catalog.regclass AS ontable,",
        "SELECT conname, strata_relation_name(conrelid) AS ontable,",
    ),
    // `\dT`: whether a type's relation is a composite type. At most one
    // `pg_class` row has an oid, which DataFusion needs to be told by an
    // aggregate.
    (
        "(SELECT c.relkind = 'c' FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid)",
        "(SELECT bool_and(c.relkind = 'c') FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid)",
    ),
];

/// `\d name` reads each column's DEFAULT in a correlated subquery, which
/// the compatibility parser replaces by NULL (DataFusion plans few of
/// them): the same lookup as an outer join of `pg_attrdef`.
const COLUMN_DEFAULT: &str = "(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)";
const COLUMNS_FROM: &str = "FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '";
const COLUMNS_FROM_WITH_DEFAULTS: &str = "FROM pg_catalog.pg_attribute a
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef
WHERE a.attrelid = '";

/// asyncpg's type lookup (run for every type it has no codec of its own
/// for, as `integer[]`) finds a domain's base type with a recursive query
/// correlated with the type's row, which DataFusion cannot plan. Strata's
/// only domains are `information_schema`'s, each over a base type, so the
/// walk ends at the domain's `typbasetype`.
const DOMAIN_BASE_FROM: &str = "(WITH RECURSIVE typebases(oid, depth) AS (";
const DOMAIN_BASE_TO: &str = ") SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1)";

/// Spans of text from a start to an end (which vary between them: an oid,
/// a column), each replaced by what it amounts to in Strata.
const SPANS: &[(&str, &str, &str)] = &[
    (DOMAIN_BASE_FROM, DOMAIN_BASE_TO, "t.typbasetype"),
    // `\d name` of a table in a foreign key: the tables whose keys name it,
    // and its partitions' (none: Strata has no partitioning, and a table
    // that is no partition has no ancestors). DataFusion plans no VALUES
    // in an IN.
    ("(SELECT pg_catalog.pg_partition_ancestors('", "UNION ALL VALUES (", "(SELECT ("),
    // Its triggers' parents, in a correlated lateral join DataFusion cannot
    // plan: Strata has no triggers.
    ("CASE WHEN t.tgparentid != 0 THEN", "END AS parent", "NULL AS parent"),
];

fn replace_spans(sql: &str, from: &str, to: &str, replacement: &str) -> String {
    let mut text = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find(from)
        && let Some(length) = rest[start..].find(to)
    {
        text.push_str(&rest[..start]);
        text.push_str(replacement);
        rest = &rest[start + length + to.len()..];
    }
    text.push_str(rest);
    text
}

/// `sql` with every known psql fragment replaced; borrowed when none occurs
/// (the common case costs one scan for a word no user query contains).
pub fn replace_fragments(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains("pg_catalog") {
        return sql.into();
    }
    if let Some(query) = view_definition(sql) {
        return query.into();
    }
    let mut text = std::borrow::Cow::Borrowed(sql);
    for (from, to, replacement) in SPANS {
        if text.contains(from) {
            text = replace_spans(&text, from, to, replacement).into();
        }
    }
    for (fragment, replacement) in FRAGMENTS {
        if text.contains(fragment) {
            text = text.replace(fragment, replacement).into();
        }
    }
    if text.contains(COLUMN_DEFAULT) && text.contains(COLUMNS_FROM) {
        let joined = text.replace(COLUMNS_FROM, COLUMNS_FROM_WITH_DEFAULTS);
        text = joined.replace(COLUMN_DEFAULT, "pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)").into();
    }
    text
}

/// `\\d+ view` asks `SELECT pg_catalog.pg_get_viewdef('<oid>'::pg_catalog.oid, true);`:
/// the definition is in `strata.views`, by name.
fn view_definition(sql: &str) -> Option<String> {
    let rest = sql.trim_start().strip_prefix("SELECT pg_catalog.pg_get_viewdef('")?;
    let (oid, rest) = rest.split_once('\'')?;
    if oid.is_empty() || !oid.bytes().all(|b| b.is_ascii_digit()) || !rest.starts_with("::pg_catalog.oid, true)") {
        return None;
    }
    Some(format!(
        "SELECT v.definition AS pg_get_viewdef FROM {}.views v \
         JOIN pg_catalog.pg_class c ON c.relname = v.name WHERE c.oid = {oid}",
        crate::query::SYSTEM_SCHEMA
    ))
}
