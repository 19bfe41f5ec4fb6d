//! Result column names as PostgreSQL gives them.
//!
//! PostgreSQL names an unaliased expression after the function or column it
//! is (its `FigureColname`: `count(*)` is `count`, `x::text` is `x`), and
//! lets a result have two columns of one name (`SELECT v, v`, `SELECT id, *`,
//! `SELECT 1, 2`, both `?column?`). DataFusion names an expression after its
//! whole text and refuses two columns of one name. So each SELECT list gets
//! PostgreSQL's names, and a name already taken gets a suffix behind
//! [`SUFFIX_MARK`] that the client never sees ([`display_schema`]).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{DataType, Expr, Ident, Select, SelectItem, SetExpr};

use super::ast::folded;
use crate::catalog::{CHANGE_COLUMNS_WITH_ROW_ID, SqlType};

/// Starts the suffix that keeps a result column's name unique for DataFusion
/// (U+2063, an invisible separator: no one types it in a column name).
pub const SUFFIX_MARK: char = '\u{2063}';

/// The prefix the pg-compatibility parser gives a column selected by name
/// next to a `*` (which may select it again).
const WILDCARD_ALIAS_PREFIX: &str = "__alias_";

/// The name a result column is shown by: without its uniqueness suffix.
pub fn display_name(name: &str) -> &str {
    name.split(SUFFIX_MARK).next().unwrap_or(name)
}

/// `schema` with its columns named as the client sees them (Arrow allows
/// two fields of one name; DataFusion's plans do not).
pub fn display_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| f.name().contains(SUFFIX_MARK)) {
        return schema.clone();
    }
    let fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone().with_name(display_name(f.name()))).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The first name shown twice among `names`, if any.
pub fn repeated_name<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().map(display_name).find(|name| !seen.insert(*name))
}

/// Names the columns of a SELECT list as PostgreSQL does, each unique to
/// DataFusion. A `*` is left alone: its columns are unique already, and a
/// column selected by name beside one gets a suffix (the `*` may select it
/// again; the pg-compatibility parser's prefix for the same, given only in
/// a lone SELECT, is replaced by the suffix).
pub fn name_columns_as_postgres(select: &mut Select) {
    let wildcard = select
        .projection
        .iter()
        .any(|item| matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
    let mut taken: HashMap<String, usize> = HashMap::new();
    for item in &mut select.projection {
        let (name, beside_wildcard) = match item {
            SelectItem::UnnamedExpr(expr) => match figured_name(expr) {
                Some((name, _)) => (name, wildcard && is_column(expr)),
                // DataFusion's name for what PostgreSQL has none for (a subquery, say).
                None => continue,
            },
            SelectItem::ExprWithAlias { alias, .. } => match alias.value.strip_prefix(WILDCARD_ALIAS_PREFIX) {
                Some(name) => (name.trim_matches('"').to_string(), true),
                None => (folded(alias), false),
            },
            _ => continue,
        };
        let count = taken.entry(name.clone()).or_default();
        *count += 1;
        // System columns never come from `*`: no suffix needed beside one.
        let system = beside_wildcard && CHANGE_COLUMNS_WITH_ROW_ID.contains(&name.as_str());
        let alias =
            if *count > 1 || (beside_wildcard && !system) { format!("{name}{SUFFIX_MARK}{count}") } else { name };
        set_alias(item, alias);
    }
}

/// Gives a select item `alias` as its name (none for a bare column that is
/// named so already: it keeps its qualifier for ORDER BY and GROUP BY).
fn set_alias(item: &mut SelectItem, alias: String) {
    let expr = match std::mem::replace(
        item,
        SelectItem::UnnamedExpr(Expr::value(datafusion::sql::sqlparser::ast::Value::Null)),
    ) {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
        other => {
            *item = other;
            return;
        }
    };
    let named_so = is_column(&expr) && figured_name(&expr).is_some_and(|(name, _)| name == alias);
    *item = if named_so {
        SelectItem::UnnamedExpr(expr)
    } else {
        SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', alias) }
    };
}

fn is_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// How PostgreSQL figures an expression's column name, with how sure it is
/// (its `FigureColname`): a column or function names it (2); a cast of
/// anything less names it after the type (1); a constant or operator is
/// `?column?` (0).
fn figured_name(expr: &Expr) -> Option<(String, u8)> {
    match expr {
        Expr::Identifier(ident) => Some((folded(ident), 2)),
        Expr::CompoundIdentifier(idents) => idents.last().map(|i| (folded(i), 2)),
        Expr::Function(function) => function.name.0.last().and_then(|p| p.as_ident()).map(|i| (folded(i), 2)),
        Expr::Nested(inner) => figured_name(inner),
        // `tags[1]` is named after `tags`; `ARRAY[…]` is `array`.
        Expr::CompoundFieldAccess { root, .. } => figured_name(root),
        Expr::Array(_) => Some(("array".into(), 2)),
        Expr::Cast { expr, data_type, .. } => match figured_name(expr) {
            Some((name, 2)) => Some((name, 2)),
            _ => Some((postgres_type_name(data_type), 1)),
        },
        Expr::TypedString(typed) => Some((postgres_type_name(&typed.data_type), 1)),
        // Named after its ELSE when that names it surely, `case` otherwise.
        Expr::Case { else_result, .. } => match else_result.as_deref().and_then(figured_name) {
            Some((name, 2)) => Some((name, 2)),
            _ => Some(("case".into(), 1)),
        },
        // SQL's own syntax for functions is named after the function
        // PostgreSQL calls.
        Expr::Extract { .. } => Some(("extract".into(), 2)),
        Expr::Substring { .. } => Some(("substring".into(), 2)),
        Expr::Position { .. } => Some(("position".into(), 2)),
        Expr::Overlay { .. } => Some(("overlay".into(), 2)),
        Expr::Ceil { .. } => Some(("ceil".into(), 2)),
        Expr::Floor { .. } => Some(("floor".into(), 2)),
        Expr::AtTimeZone { .. } => Some(("timezone".into(), 2)),
        Expr::Trim { trim_where, .. } => {
            use datafusion::sql::sqlparser::ast::TrimWhereField;
            let name = match trim_where {
                Some(TrimWhereField::Leading) => "ltrim",
                Some(TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            };
            Some((name.into(), 2))
        }
        Expr::Interval(_) => Some(("interval".into(), 1)),
        Expr::Collate { expr, .. } => figured_name(expr),
        Expr::Exists { negated: false, .. } => Some(("exists".into(), 2)),
        Expr::Exists { negated: true, .. } => Some(("?column?".into(), 0)),
        // A scalar subquery is named after its one column.
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select) => match select.projection.first()? {
                SelectItem::UnnamedExpr(inner) => figured_name(inner),
                SelectItem::ExprWithAlias { alias, .. } => Some((folded(alias), 2)),
                _ => None,
            },
            _ => None,
        },
        Expr::Value(_)
        | Expr::BinaryOp { .. }
        | Expr::UnaryOp { .. }
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::InUnnest { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::SimilarTo { .. }
        | Expr::AnyOp { .. }
        | Expr::AllOp { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..) => Some(("?column?".into(), 0)),
        _ => None,
    }
}

/// The internal type name PostgreSQL gives a cast literal's column (`int8`, `text`).
fn postgres_type_name(data_type: &DataType) -> String {
    match crate::sql::ddl::sql_type(data_type) {
        Ok(sql_type) => internal_type_name(&sql_type),
        Err(_) => data_type.to_string().to_lowercase(),
    }
}

/// PostgreSQL's internal name of a type; an array's is its element's
/// (`'{}'::int[]` is named `int4`).
fn internal_type_name(sql_type: &SqlType) -> String {
    match sql_type {
        SqlType::Boolean => "bool".into(),
        SqlType::SmallInt => "int2".into(),
        SqlType::Int => "int4".into(),
        SqlType::BigInt => "int8".into(),
        SqlType::Real => "float4".into(),
        SqlType::Double => "float8".into(),
        SqlType::Numeric { .. } => "numeric".into(),
        SqlType::Varchar { .. } => "varchar".into(),
        SqlType::TimestampTz => "timestamptz".into(),
        SqlType::Array(element) => internal_type_name(element),
        other => other.sql_name(),
    }
}
