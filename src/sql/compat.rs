//! datafusion-pg-catalog's compatibility parser, split by what a statement
//! reads. Clients' catalog queries (psql's `\d`, drivers' metadata calls)
//! get all of its rewrites, including whole-query substitutions. Other
//! statements get every rule but `RemoveSubqueryFromProjection`, which
//! replaces a correlated scalar subquery in a SELECT list by NULL and caps
//! an uncorrelated one at one row: how the catalog queries DataFusion cannot
//! plan still answer, but in a user's query a wrong answer
//! (`SELECT a.id, (SELECT max(b.y) FROM b WHERE b.aid = a.id) FROM a` gave NULLs).

use std::sync::{Arc, LazyLock};

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall, FixVersionColumnName,
    PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

/// Built once: making one tokenizes every client query it knows how to
/// rewrite (psql's `\d` and others), which cost more than a single-row
/// INSERT itself (40% of the server's CPU under pgbench).
static CATALOG: LazyLock<PostgresCompatibilityParser> = LazyLock::new(PostgresCompatibilityParser::new);

/// The crate's rules in its order, without `RemoveSubqueryFromProjection`
/// and `FixArrayLiteral` (which splits `'{"a,b"}'::text[]` at every comma:
/// the analyzer's `pg_array_in` reads array text as PostgreSQL does).
static USER_RULES: LazyLock<Vec<Arc<dyn SqlStatementRewriteRule>>> = LazyLock::new(|| {
    vec![
        Arc::new(AliasDuplicatedProjectionRewrite),
        Arc::new(ResolveUnqualifiedIdentifier),
        Arc::new(RewriteArrayAnyAllOperation),
        Arc::new(PrependUnqualifiedPgTableName),
        Arc::new(StripCallableQualifier),
        Arc::new(CurrentUserVariableToSessionUserFunctionCall),
        Arc::new(StripCollate),
        Arc::new(RewritePgCatalogOperator),
        Arc::new(RewriteRegCastToSubquery::new()),
        Arc::new(FixVersionColumnName),
    ]
});

/// Whether `sql` reads the emulated catalog (`pg_class`, `pg_catalog.…`,
/// `information_schema`): the statements clients send about the database.
pub fn reads_catalog(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    contains(b"pg_") || contains(b"information_schema")
}

/// Parses `sql` as the compatibility parser does, with the rules above for
/// statements that do not read the catalog.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParserError> {
    if reads_catalog(sql) {
        return CATALOG.parse(sql);
    }
    Ok(Parser::parse_sql(&PostgreSqlDialect {}, sql)?.into_iter().map(rewrite).collect())
}

/// The compatibility rules for a statement that does not read the catalog.
pub fn rewrite(statement: Statement) -> Statement {
    USER_RULES.iter().fold(statement, |statement, rule| rule.rewrite(statement))
}

/// The compatibility rules for a statement, by whether its text reads the catalog.
pub fn rewrite_for(sql: &str, statement: Statement) -> Statement {
    if reads_catalog(sql) { CATALOG.rewrite(statement) } else { rewrite(statement) }
}
