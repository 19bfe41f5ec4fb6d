//! Rewrites applied to a statement before DataFusion plans it:
//! - `*` leaves out the system columns `_offset`, `_ts` (they appear only
//!   when selected by name, DESIGN §2);
//! - `current_offset()` becomes the statement's read offset, so it agrees
//!   with what the statement reads;
//! - `INSERT INTO s VALUES …` without a column list names the user columns;
//! - `generate_series(…) g` has a column `g`, as in PostgreSQL;
//! - text literals read as PostgreSQL reads them for their type, and
//!   numbers with an exponent are written out (see [`super::numeric_literals`]).

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, ExcludeSelectItem, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableAliasColumnDef,
    TableFactor, TableObject, Value, VisitMut, VisitorMut, WildcardAdditionalOptions,
};

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::ast::call;
use super::column_names::name_columns_as_postgres;
use super::join_columns::Joins;
use super::parse::object_name;
use crate::catalog::{CHANGE_COLUMNS, Catalog, SYSTEM_COLUMNS, SqlType};
use crate::log::Offset;
use crate::query::jsonb::JsonbFunction;

/// Whether the query in `sql` has a `*` or `t.*` in some SELECT list.
pub fn selects_all(sql: &str) -> bool {
    struct Stars(bool);
    impl VisitorMut for Stars {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let mut bodies = vec![query.body.as_ref()];
            while let Some(body) = bodies.pop() {
                match body {
                    SetExpr::Select(select) => {
                        self.0 |= select
                            .projection
                            .iter()
                            .any(|item| matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
                    }
                    SetExpr::SetOperation { left, right, .. } => bodies.extend([left.as_ref(), right.as_ref()]),
                    SetExpr::Query(inner) => bodies.push(inner.body.as_ref()),
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    let Ok(mut statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else { return true };
    let mut stars = Stars(false);
    for statement in &mut statements {
        let _ = statement.visit(&mut stars);
    }
    stars.0
}

/// The names of the statement's CTEs (they shadow relations of the same name).
pub fn cte_names(statement: &mut Statement) -> HashSet<String> {
    let mut ctes = HashSet::new();
    let _ = statement.visit(&mut CteNames(&mut ctes));
    ctes
}

/// `point_in_time` names the derived tables [`super::as_of`] made of
/// relations: their `*` hides system columns as a relation's does.
pub fn rewrite(statement: &mut Statement, catalog: &Catalog, read_offset: Offset, point_in_time: &HashSet<String>) {
    super::insert_values::nested_values_as_selects(statement);
    let ctes = cte_names(statement);
    let mut point_in_time = point_in_time.clone();
    point_in_time.extend(super::lateral::rewrite_lateral(statement, catalog, &ctes));
    let point_in_time = &point_in_time;
    let _ = statement.visit(&mut Rewriter { catalog, ctes: &ctes, read_offset, point_in_time, joined: Vec::new() });
    if let Statement::Insert(insert) = statement
        && let TableObject::TableName(name) = &insert.table
        && let Some(def) = catalog.get(&object_name(&name.to_string()))
    {
        super::default_keyword::default_values_as_row(insert, def);
        if insert.columns.is_empty() {
            insert.columns = super::insert_columns::implicit_targets(def, insert)
                .into_iter()
                .map(|p| ObjectName::from(vec![Ident::with_quote('"', &def.columns[p].name)]))
                .collect();
        }
        super::default_keyword::fill_insert_defaults(insert, def);
        // Text literals read as PostgreSQL reads them for the target column:
        // '\x…' as hex for BYTEA, a time without seconds for a timestamp.
        let target_types: Vec<Option<SqlType>> = insert
            .columns
            .iter()
            .map(|c| {
                let name = object_name(&c.to_string());
                def.columns.iter().find(|d| d.name == name).map(|d| d.sql_type.clone())
            })
            .collect();
        let literal_for = |expr: &mut Expr, target: &Option<SqlType>| match target {
            Some(SqlType::Bytea) => decode_bytea_literal(expr),
            Some(SqlType::Timestamp | SqlType::TimestampTz) => normalize_timestamp_literal(expr),
            _ => {}
        };
        match insert.source.as_mut().map(|source| source.body.as_mut()) {
            Some(SetExpr::Values(values)) => {
                for row in &mut values.rows {
                    for (value, target) in row.iter_mut().zip(&target_types) {
                        literal_for(value, target);
                    }
                }
            }
            // By position, so only where no `*` shifts the positions.
            Some(SetExpr::Select(select))
                if select
                    .projection
                    .iter()
                    .all(|item| matches!(item, SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. })) =>
            {
                for (item, target) in select.projection.iter_mut().zip(&target_types) {
                    if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
                        literal_for(expr, target);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `'2026-11-20 12:00'` cast to a timestamp, with the seconds Arrow needs
/// (see [`crate::pg_text::normalize_timestamp`]); also inside parentheses,
/// as point-in-time rewrites write `CAST((…) AS TIMESTAMPTZ)`.
fn normalize_timestamp_literal(expr: &mut Expr) {
    match expr {
        Expr::Nested(inner) => normalize_timestamp_literal(inner),
        Expr::Value(value) => normalize_timestamp_value(&mut value.value),
        _ => {}
    }
}

fn normalize_timestamp_value(value: &mut Value) {
    if let Value::SingleQuotedString(text) = value
        && let std::borrow::Cow::Owned(normalized) = crate::pg_text::normalize_timestamp(text)
    {
        *text = normalized;
    }
}

fn normalize_interval_literal(expr: &mut Expr) {
    if let Expr::Value(value) = expr
        && let Value::SingleQuotedString(text) = &mut value.value
    {
        *text = crate::pg_text::normalize_interval(text);
    }
}

/// Replaces a `'\x0a1b'` string literal with `decode('0a1b', 'hex')`.
fn decode_bytea_literal(expr: &mut Expr) {
    if let Expr::Value(value) = expr
        && let Value::SingleQuotedString(text) = &value.value
        && let Some(hex) = text.strip_prefix("\\x")
    {
        let call = format!("decode('{}', 'hex')", hex.replace('\'', "''"));
        if let Ok(decoded) = Parser::new(&PostgreSqlDialect {}).try_with_sql(&call).and_then(|mut p| p.parse_expr()) {
            *expr = decoded;
        }
    }
}

/// `x::jsonb` (or `::json`) as `jsonb_in(x)`: DataFusion has no JSON type;
/// the function checks the text and normalizes it as PostgreSQL's input does.
fn read_as_jsonb(expr: &mut Expr) {
    let Expr::Cast { expr: inner, .. } = expr else { return };
    let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
    *expr = call(JsonbFunction::In.name(), vec![inner]);
}

struct CteNames<'a>(&'a mut HashSet<String>);

impl VisitorMut for CteNames<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter<'a> {
    catalog: &'a Catalog,
    ctes: &'a HashSet<String>,
    read_offset: Offset,
    point_in_time: &'a HashSet<String>,
    /// Per query being visited, innermost last: the joined columns its
    /// SELECT names unqualified, for its ORDER BY.
    joined: Vec<std::collections::HashMap<String, Expr>>,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.joined.push(Default::default());
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(named) = self.joined.pop().filter(|named| !named.is_empty()) {
            super::join_columns::name_joined_columns_in_order(query, &named);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let joins = super::join_columns::using_columns(select, |factor| self.visible_columns(factor));
        self.hide_system_columns(select, &joins);
        if let Some(top) = self.joined.last_mut() {
            // A set operation's last SELECT; its ORDER BY names outputs.
            *top = joins.named;
        }
        name_columns_as_postgres(select);
        // After naming: a bare EXISTS is still named `exists`.
        super::exists::exists_in_select_list(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        name_function_column(factor);
        super::jsonb_sets::rewrite_from_item(factor);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Cast { expr: inner, data_type: DataType::Bytea, .. } => decode_bytea_literal(inner),
            Expr::Cast { expr: inner, data_type: DataType::Interval { .. }, .. } => normalize_interval_literal(inner),
            Expr::Interval(interval) => normalize_interval_literal(&mut interval.value),
            Expr::Cast { expr: inner, data_type: DataType::Timestamp(..), .. } => normalize_timestamp_literal(inner),
            Expr::TypedString(typed) if matches!(typed.data_type, DataType::Timestamp(..)) => {
                normalize_timestamp_value(&mut typed.value.value)
            }
            Expr::Value(_) => super::numeric_literals::write_out_exponent(expr),
            Expr::Cast { data_type: DataType::JSONB | DataType::JSON, .. } => read_as_jsonb(expr),
            Expr::Function(function) => {
                // Named once: every rewrite of a call goes by its name.
                let name = object_name(&function.name.to_string());
                match name.as_str() {
                    "array" => super::array_subquery::array_of_subquery(expr),
                    "age" => age_from_today(expr),
                    "current_offset" => *expr = cast(offset_literal(self.read_offset), DataType::BigInt(None)),
                    _ => super::jsonb_sets::rewrite_call(expr, &name),
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn offset_literal(offset: Offset) -> Expr {
    Expr::value(Value::Number(offset.0.to_string(), false))
}

fn cast(expr: Expr, data_type: DataType) -> Expr {
    Expr::Cast { kind: CastKind::Cast, expr: Box::new(expr), data_type, array: false, format: None }
}

/// `age(x)` as `age(CAST(current_date() AS TIMESTAMP), x)`, PostgreSQL's
/// definition (see `query/pg_age.rs`).
fn age_from_today(expr: &mut Expr) {
    let Expr::Function(function) = expr else { return };
    let FunctionArguments::List(list) = &mut function.args else { return };
    if list.args.len() != 1 {
        return;
    }
    let today = cast(
        call("current_date", vec![]),
        DataType::Timestamp(None, datafusion::sql::sqlparser::ast::TimezoneInfo::None),
    );
    list.args.insert(0, FunctionArg::Unnamed(FunctionArgExpr::Expr(today)));
}

/// Table functions returning one value per row. DataFusion names their
/// column `value`.
const SCALAR_TABLE_FUNCTIONS: [&str; 2] = ["generate_series", "range"];

/// PostgreSQL names the column of a function returning a scalar type after
/// the function's alias, or after the function when it has none:
/// `SELECT g FROM generate_series(1, 3) g`.
fn name_function_column(factor: &mut TableFactor) {
    let TableFactor::Table { name, args: Some(_), alias, .. } = factor else { return };
    let function = object_name(&name.to_string());
    if !SCALAR_TABLE_FUNCTIONS.contains(&function.as_str()) {
        return;
    }
    match alias {
        Some(alias) if alias.columns.is_empty() => {
            alias.columns = vec![TableAliasColumnDef { name: alias.name.clone(), data_type: None }];
        }
        Some(_) => {}
        None => {
            *alias = Some(TableAlias {
                explicit: true,
                name: Ident::new(&function),
                columns: vec![TableAliasColumnDef::from_name(&function)],
                at: None,
            });
        }
    }
}

/// A FROM item as `*` sees it: its qualifier, and the system columns its
/// `*` leaves out (none unless it is a Strata relation or `changes()`).
struct FromItem {
    qualifier: Option<String>,
    hidden: &'static [&'static str],
}

impl FromItem {
    fn is_relation(&self) -> bool {
        !self.hidden.is_empty()
    }
}

impl Rewriter<'_> {
    fn items_of(&self, select: &Select) -> Vec<FromItem> {
        let mut items = Vec::new();
        for table in &select.from {
            items.push(self.item_of(&table.relation));
            for join in &table.joins {
                items.push(self.item_of(&join.relation));
            }
        }
        items
    }

    fn item_of(&self, factor: &TableFactor) -> FromItem {
        match factor {
            TableFactor::Table { name, alias, args: None, .. } => {
                let relation = object_name(&name.to_string());
                let def = self.catalog.get(&relation).filter(|_| !self.ctes.contains(&relation));
                let qualifier = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or(relation);
                FromItem { qualifier: Some(qualifier), hidden: def.map_or(&[], |d| d.hidden_columns(false)) }
            }
            TableFactor::Table { name, alias, args: Some(args), .. }
                if object_name(&name.to_string()) == crate::query::changes::CHANGES_FUNCTION =>
            {
                let qualifier = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_else(|| "changes".into());
                let relation = args.args.first().map(|a| a.to_string()).map(|a| object_name(a.trim_matches('\'')));
                let def = relation.and_then(|r| self.catalog.get(&r));
                FromItem { qualifier: Some(qualifier), hidden: def.map_or(&CHANGE_COLUMNS, |d| d.hidden_columns(true)) }
            }
            TableFactor::Derived { alias: Some(alias), .. } if self.point_in_time.contains(&alias.name.value) => {
                FromItem { qualifier: Some(alias.name.value.clone()), hidden: &SYSTEM_COLUMNS }
            }
            TableFactor::Derived { alias, .. } | TableFactor::Table { alias, .. } => {
                FromItem { qualifier: alias.as_ref().map(|a| a.name.value.clone()), hidden: &[] }
            }
            _ => FromItem { qualifier: None, hidden: &[] },
        }
    }

    /// The columns a relation's `*` shows; `None` for other FROM items.
    fn visible_columns(&self, factor: &TableFactor) -> Option<Vec<String>> {
        let TableFactor::Table { name, args: None, .. } = factor else { return None };
        let relation = object_name(&name.to_string());
        let def = self.catalog.get(&relation).filter(|_| !self.ctes.contains(&relation))?;
        let hidden = def.hidden_columns(false);
        Some(def.columns.iter().map(|c| c.name.clone()).filter(|name| !hidden.contains(&name.as_str())).collect())
    }

    /// `joins`: the SELECT's USING joins (see `join_columns`).
    fn hide_system_columns(&self, select: &mut Select, joins: &Joins) {
        let items = self.items_of(select);
        if !items.iter().any(FromItem::is_relation) {
            return;
        }
        let mut projection = Vec::with_capacity(select.projection.len());
        for item in std::mem::take(&mut select.projection) {
            match item {
                SelectItem::Wildcard(mut options) if items.len() == 1 => {
                    exclude_system_columns(&mut options, items[0].hidden);
                    projection.push(SelectItem::Wildcard(options));
                }
                // Several FROM items: `*` becomes `a.*, b.*, …` so each
                // relation's system columns can be left out by qualifier.
                // A USING column is shown once: first, as the column it
                // stands for, as in PostgreSQL (where that is known; else by
                // the first item it joins).
                SelectItem::Wildcard(options) if items.iter().all(|i| i.qualifier.is_some()) => {
                    if joins.complete {
                        for merged in &joins.merged {
                            let alias = Ident::with_quote('"', &merged.name);
                            projection.push(SelectItem::ExprWithAlias { expr: merged.expr.clone(), alias });
                        }
                    }
                    for (position, from) in items.iter().enumerate() {
                        let mut options = options.clone();
                        if from.is_relation() {
                            exclude_system_columns(&mut options, from.hidden);
                        }
                        let joined: Vec<&str> = match joins.complete {
                            true => joins
                                .merged
                                .iter()
                                .filter(|m| m.holders.contains(&position))
                                .map(|m| m.name.as_str())
                                .collect(),
                            false => joins
                                .using
                                .get(position)
                                .map_or_else(Vec::new, |c| c.iter().map(String::as_str).collect()),
                        };
                        if !joined.is_empty() {
                            exclude_columns(&mut options, joined.into_iter());
                        }
                        let name = ObjectName::from(vec![Ident::new(from.qualifier.clone().unwrap_or_default())]);
                        projection.push(SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(name),
                            options,
                        ));
                    }
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), mut options) => {
                    let qualifier = object_name(&name.to_string());
                    if let Some(from) =
                        items.iter().find(|i| i.is_relation() && i.qualifier.as_deref() == Some(qualifier.as_str()))
                    {
                        exclude_system_columns(&mut options, from.hidden);
                    }
                    projection.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(name),
                        options,
                    ));
                }
                other => projection.push(other),
            }
        }
        select.projection = projection;
    }
}

fn exclude_system_columns(options: &mut WildcardAdditionalOptions, hidden: &[&str]) {
    exclude_columns(options, hidden.iter().copied());
}

fn exclude_columns<'a>(options: &mut WildcardAdditionalOptions, columns: impl Iterator<Item = &'a str>) {
    let mut names: Vec<ObjectName> = match options.opt_exclude.take() {
        Some(ExcludeSelectItem::Single(name)) => vec![name],
        Some(ExcludeSelectItem::Multiple(names)) => names,
        None => Vec::new(),
    };
    for column in columns {
        if !names.iter().any(|n| object_name(&n.to_string()) == column) {
            names.push(ObjectName::from(vec![Ident::with_quote('"', column)]));
        }
    }
    options.opt_exclude = Some(ExcludeSelectItem::Multiple(names));
}

/// Whether a query reads any relation at all (used to skip needless work).
pub fn is_select(statement: &Statement) -> bool {
    matches!(statement, Statement::Query(q) if matches!(*q.body, SetExpr::Select(_) | SetExpr::SetOperation { .. } | SetExpr::Values(_) | SetExpr::Query(_)))
}
