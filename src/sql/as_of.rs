//! Point-in-time reads: `x FOR SYSTEM_TIME AS OF <time>`, `x VERSION AS OF <n>`
//! and the session's `system_time` become a derived table over
//! [`crate::query::as_of`]: for a stream, its events up to that point; for a
//! table, the table rebuilt at that point.
//!
//! Commits are atomic in time travel: a VERSION offset inside a commit stops
//! before that commit (see [`VersionBound`]).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, SetExpr, Statement, TableAlias, TableFactor, TableVersion, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::parse::object_name;
use crate::catalog::{Catalog, RelationKind};
use crate::error::{Error, Result};
use crate::log::{CommitTs, Offset};
use crate::query::as_of::AS_OF_FUNCTION;

/// Where `VERSION AS OF n` stops: every event up to `n`, except those of a
/// commit that continues past `n` (it has commit time `straddling`).
#[derive(Debug, Clone, Copy)]
pub struct VersionBound {
    pub offset: Offset,
    pub straddling: Option<CommitTs>,
}

/// The offsets named by `VERSION AS OF` in a statement.
pub fn version_offsets(statement: &mut Statement) -> Result<Vec<Offset>> {
    struct Collect(Vec<Offset>, Option<Error>);
    impl VisitorMut for Collect {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { version: Some(TableVersion::VersionAsOf(expr)), .. } = factor {
                match version_offset(expr) {
                    Ok(offset) => self.0.push(offset),
                    Err(error) => {
                        self.1 = Some(error);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut collect = Collect(Vec::new(), None);
    let _ = statement.visit(&mut collect);
    match collect.1 {
        Some(error) => Err(error),
        None => Ok(collect.0),
    }
}

fn version_offset(expr: &Expr) -> Result<Offset> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(text, _) => text
                .parse::<u64>()
                .map(Offset)
                .map_err(|_| Error::InvalidParameterValue(format!("VERSION AS OF needs an offset, not {text}"))),
            other => Err(Error::InvalidParameterValue(format!("VERSION AS OF needs an offset, not {other}"))),
        },
        other => Err(Error::InvalidParameterValue(format!("VERSION AS OF needs an offset, not {other}"))),
    }
}

/// Rewrites every point-in-time relation of `statement` into a derived table
/// and returns the aliases it gave them (their `*` hides system columns).
/// `system_time`, when set, applies to relations named without a version.
pub fn rewrite_as_of(
    statement: &mut Statement,
    catalog: &Catalog,
    ctes: &HashSet<String>,
    versions: &HashMap<u64, VersionBound>,
    system_time: Option<&str>,
    zone: &str,
) -> Result<HashSet<String>> {
    let mut rewriter = AsOf { catalog, ctes, versions, system_time, zone, aliases: HashSet::new(), error: None };
    let _ = statement.visit(&mut rewriter);
    match rewriter.error {
        Some(error) => Err(error),
        None => Ok(rewriter.aliases),
    }
}

struct AsOf<'a> {
    catalog: &'a Catalog,
    ctes: &'a HashSet<String>,
    versions: &'a HashMap<u64, VersionBound>,
    system_time: Option<&'a str>,
    /// The session's zone, which a time written without an offset is in.
    zone: &'a str,
    aliases: HashSet<String>,
    error: Option<Error>,
}

impl VisitorMut for AsOf<'_> {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, version, args: None, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let relation = object_name(&name.to_string());
        let Some(def) = self.catalog.get(&relation).filter(|_| !self.ctes.contains(&relation)) else {
            if version.is_some() {
                self.error = Some(Error::UndefinedRelation(relation));
                return ControlFlow::Break(());
            }
            return ControlFlow::Continue(());
        };
        let point = match version {
            Some(TableVersion::VersionAsOf(expr)) => match version_offset(expr) {
                Ok(offset) => Point::Version(
                    self.versions.get(&offset.0).copied().unwrap_or(VersionBound { offset, straddling: None }),
                ),
                Err(error) => {
                    self.error = Some(error);
                    return ControlFlow::Break(());
                }
            },
            Some(TableVersion::ForSystemTimeAsOf(expr)) => match expr {
                Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(text), .. }) => {
                    Point::Time(self.time_literal(text))
                }
                expr => Point::Time(format!("({expr})")),
            },
            Some(other) => {
                self.error = Some(Error::FeatureNotSupported(format!("{other} is not supported")));
                return ControlFlow::Break(());
            }
            None => match self.system_time {
                Some(time) => Point::Time(self.time_literal(time)),
                None => return ControlFlow::Continue(()),
            },
        };
        let columns: Vec<String> = def.visible_positions().iter().map(|p| quote(&def.columns[*p].name)).collect();
        let columns = columns.join(", ");
        let name = relation.replace('\'', "''");
        let (upto, straddling, at) = point.arguments();
        let source = format!("{AS_OF_FUNCTION}('{name}', {upto}, {straddling}, {at})");
        let subquery = match def.kind {
            RelationKind::Stream => format!("SELECT {columns}, _offset, _ts FROM {source} WHERE {}", point.condition()),
            RelationKind::Table => format!("SELECT {columns}, _offset, _ts FROM {source}"),
        };
        let alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: true,
            name: Ident::new(relation.clone()),
            columns: vec![],
            at: None,
        });
        match derived(&subquery, alias.clone()) {
            Ok(table) => {
                self.aliases.insert(alias.name.value.clone());
                *factor = table;
                ControlFlow::Continue(())
            }
            Err(error) => {
                self.error = Some(error);
                ControlFlow::Break(())
            }
        }
    }
}

impl AsOf<'_> {
    /// A time's text as SQL naming its instant, read in the session's zone
    /// when it has no offset (SQL planning would read it in UTC).
    fn time_literal(&self, text: &str) -> String {
        match crate::session::time_zone::instant_from_text(text, self.zone) {
            Some(micros) if !crate::session::time_zone::is_utc(self.zone) => {
                format!("'{}'", timestamp_literal(CommitTs(micros)))
            }
            _ => format!("'{}'", text.replace('\'', "''")),
        }
    }
}

/// The point a relation is read at: a `VERSION AS OF` bound, or a time (SQL text).
enum Point {
    Version(VersionBound),
    Time(String),
}

impl Point {
    /// The events of a stream's log this point includes, as a WHERE condition.
    fn condition(&self) -> String {
        match self {
            Point::Version(bound) => {
                let mut condition = format!("_offset <= {}", bound.offset.0);
                if let Some(ts) = bound.straddling {
                    condition.push_str(&format!(" AND _ts < '{}'", timestamp_literal(ts)));
                }
                condition
            }
            Point::Time(time) => format!("_ts <= {time}"),
        }
    }

    /// `upto, straddling, at` for [`AS_OF_FUNCTION`].
    fn arguments(&self) -> (String, String, String) {
        let null = || "NULL".to_string();
        let time = |sql: &str| format!("CAST({sql} AS TIMESTAMPTZ)");
        match self {
            Point::Version(bound) => (
                bound.offset.0.to_string(),
                bound.straddling.map_or_else(null, |ts| time(&format!("'{}'", timestamp_literal(ts)))),
                null(),
            ),
            Point::Time(sql) => (null(), null(), time(sql)),
        }
    }
}

/// `(subquery) AS alias` as a FROM item, by parsing it in a throwaway SELECT.
pub(super) fn derived(subquery: &str, alias: TableAlias) -> Result<TableFactor> {
    let sql = format!("SELECT 1 FROM ({subquery}) AS __strata_derived");
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql).map_err(|e| Error::Syntax(e.to_string()))?;
    let Some(Statement::Query(query)) = statements.pop() else {
        return Err(Error::Internal("a FROM rewrite produced no query".into()));
    };
    let SetExpr::Select(select) = *query.body else {
        return Err(Error::Internal("a FROM rewrite produced no SELECT".into()));
    };
    let mut from = select.from.into_iter().next().ok_or_else(|| Error::Internal("no FROM".into()))?;
    if let TableFactor::Derived { alias: slot, .. } = &mut from.relation {
        *slot = Some(alias);
    }
    Ok(from.relation)
}

/// `name` as a quoted SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A commit time as a TIMESTAMPTZ literal DataFusion reads back exactly.
pub fn timestamp_literal(ts: CommitTs) -> String {
    chrono::DateTime::from_timestamp_micros(ts.0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}
