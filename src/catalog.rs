//! Relation definitions: the column types Strata accepts, how they map to
//! Arrow, and the in-memory catalog that DDL events build up.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::log::{Offset, RelationId};

/// Name of the system column holding an event's log offset.
pub const OFFSET_COLUMN: &str = "_offset";
/// Name of the system column holding an event's commit time.
pub const TS_COLUMN: &str = "_ts";
pub const SYSTEM_COLUMNS: [&str; 2] = [OFFSET_COLUMN, TS_COLUMN];
/// Name of the column `changes()` adds: +1 for a row that appears, -1 for one
/// that disappears.
pub const DIFF_COLUMN: &str = "_diff";
pub const CHANGE_COLUMNS: [&str; 3] = [OFFSET_COLUMN, TS_COLUMN, DIFF_COLUMN];
/// The hidden key of a table declared without a primary key: a row identity
/// Strata assigns when a row is inserted and an UPDATE keeps. Like the system
/// columns it appears only when selected by name.
pub const ROW_ID_COLUMN: &str = "_rowid";
/// What `*` leaves out of a keyless table, and of its `changes()`.
pub const SYSTEM_COLUMNS_WITH_ROW_ID: [&str; 3] = [ROW_ID_COLUMN, OFFSET_COLUMN, TS_COLUMN];
pub const CHANGE_COLUMNS_WITH_ROW_ID: [&str; 4] = [ROW_ID_COLUMN, OFFSET_COLUMN, TS_COLUMN, DIFF_COLUMN];

/// Arrow's spelling of UTC for TIMESTAMPTZ columns.
pub const UTC: &str = "+00:00";

/// Precision and scale used for NUMERIC without a declared precision.
pub const NUMERIC_DEFAULT_PRECISION: u8 = 38;
pub const NUMERIC_DEFAULT_SCALE: i8 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlType {
    Boolean,
    SmallInt,
    Int,
    BigInt,
    Real,
    Double,
    Numeric {
        precision: u8,
        scale: i8,
    },
    Text,
    Varchar {
        max_chars: Option<u32>,
    },
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Interval,
    Jsonb,
    /// A one-dimensional array of the element type (`text[]`).
    Array(Box<SqlType>),
}

impl SqlType {
    pub fn arrow_type(&self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::SmallInt => DataType::Int16,
            SqlType::Int => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::Text | SqlType::Varchar { .. } | SqlType::Jsonb => DataType::Utf8,
            SqlType::Bytea => DataType::Binary,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            SqlType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            SqlType::Array(element) => DataType::new_list(element.arrow_type(), true),
        }
    }

    /// The PostgreSQL spelling, as `\d` would show it.
    pub fn sql_name(&self) -> String {
        match self {
            SqlType::Boolean => "boolean".into(),
            SqlType::SmallInt => "smallint".into(),
            SqlType::Int => "integer".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Real => "real".into(),
            SqlType::Double => "double precision".into(),
            SqlType::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            SqlType::Text => "text".into(),
            SqlType::Varchar { max_chars: Some(n) } => format!("character varying({n})"),
            SqlType::Varchar { max_chars: None } => "character varying".into(),
            SqlType::Bytea => "bytea".into(),
            SqlType::Date => "date".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::TimestampTz => "timestamp with time zone".into(),
            SqlType::Interval => "interval".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Array(element) => format!("{}[]", element.sql_name()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    /// The DEFAULT expression's SQL text, evaluated when a write omits the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Offset of the `ALTER … ADD COLUMN` that added it (0: at CREATE).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added_at: Offset,
    /// What rows written before it was added hold in it, as text of its
    /// type (the DEFAULT evaluated by the ALTER); `None` is NULL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// Every `RENAME COLUMN`, oldest first: its offset and the name before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<(Offset, String)>,
    /// SERIAL, BIGSERIAL or SMALLSERIAL: a row written without a value
    /// takes the next of the column's counter (see `write::serial`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serial: bool,
}

impl ColumnDef {
    /// A column as CREATE defines it.
    pub fn new(name: impl Into<String>, sql_type: SqlType, nullable: bool, default: Option<String>) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            sql_type,
            nullable,
            default,
            added_at: Offset::ZERO,
            missing: None,
            renamed: Vec::new(),
            serial: false,
        }
    }
}

impl ColumnDef {
    /// The name the column had in rows laid out as of `written_through`;
    /// `None` when it was added after them.
    pub fn name_as_of(&self, written_through: Offset) -> Option<&str> {
        if self.added_at > written_through {
            return None;
        }
        match self.renamed.iter().find(|(at, _)| *at > written_through) {
            Some((_, before)) => Some(before),
            None => Some(&self.name),
        }
    }

    /// Whether rows stored before some offset hold this column differently
    /// (it was added or renamed since), so reading them needs [`crate::log::layout`].
    pub fn changed(&self) -> bool {
        self.added_at > Offset::ZERO || !self.renamed.is_empty()
    }

    /// The column as an Arrow field. A column added by ALTER is nullable in
    /// Arrow even when NOT NULL: files from before it lack it until it is
    /// filled with its missing value (NOT NULL is checked on every write).
    /// So is a SERIAL column: a write's rows leave it NULL until it is filled.
    pub fn field(&self) -> Field {
        let nullable = self.nullable || self.added_at > Offset::ZERO || self.serial;
        let field = Field::new(&self.name, self.sql_type.arrow_type(), nullable);
        match self.sql_type {
            SqlType::Jsonb => crate::query::jsonb::tag(field),
            _ => field,
        }
    }
}

fn is_zero(offset: &Offset) -> bool {
    *offset == Offset::ZERO
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelationKind {
    Stream,
    Table,
}

impl RelationKind {
    pub fn noun(self) -> &'static str {
        match self {
            RelationKind::Stream => "stream",
            RelationKind::Table => "table",
        }
    }

    /// The `WITH (…)` option that sets how long history is kept.
    pub fn retention_option(self) -> &'static str {
        match self {
            RelationKind::Stream => "retention",
            RelationKind::Table => "history_retention",
        }
    }
}

/// How long a relation keeps its history: a stream's sealed events older
/// than this are dropped; a table's older changes are folded into a base
/// snapshot (the latest row per key), as log compaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// As the user wrote it, e.g. `7 days`.
    pub text: String,
    pub micros: i64,
}

/// The earliest point a relation can still be read at: older history was
/// dropped or folded by its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStart {
    pub offset: Offset,
    pub ts: crate::log::CommitTs,
}

/// A CHECK constraint: its PostgreSQL-style name and its SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDef {
    pub name: String,
    pub expr: String,
}

/// A UNIQUE constraint: no two rows hold the same values in its columns,
/// except where one is NULL (NULLS DISTINCT, PostgreSQL's default), unless
/// it says NULLS NOT DISTINCT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueDef {
    pub name: String,
    /// Positions of its columns, as declared.
    pub columns: Vec<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nulls_not_distinct: bool,
    /// Made by `CREATE UNIQUE INDEX`: an index, not a constraint (psql
    /// lists it as `UNIQUE`, `pg_constraint` has no row for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub index_only: bool,
    /// Named by CREATE TABLE as PostgreSQL names one (`t_a_key`), so the log
    /// writer may take the next free name (`t_a_key1`) where an index of
    /// another table has it. Only until the table is created.
    #[serde(skip)]
    pub generated_name: bool,
}

/// An index `CREATE INDEX` made: the rows by their values in its columns,
/// so an equality on all of them is a lookup, not a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    /// Positions of its columns, as declared.
    pub columns: Vec<usize>,
}

/// A name for a constraint or index the statement does not name: `generated`
/// (`t_a_key`), else `t_a_key1`, `t_a_key2`, … : the first not `taken`, as
/// PostgreSQL chooses.
pub fn free_name(generated: &str, taken: impl Fn(&str) -> bool) -> String {
    std::iter::once(generated.to_string())
        .chain((1..).map(|n| format!("{generated}{n}")))
        .find(|name| !taken(name))
        .expect("some suffix is free")
}

/// A FOREIGN KEY: the table's rows name a row of the referenced table by
/// its primary key (MATCH SIMPLE: a row with a NULL in one of the columns
/// names none). Checked when a commit is made, so the referenced row exists
/// as long as a row names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKeyDef {
    pub name: String,
    /// Positions of the referencing columns, in the order of the referenced
    /// table's key columns.
    pub columns: Vec<usize>,
    /// The referenced table ([`ForeignKeyDef::THIS_TABLE`] until the table
    /// that references itself has its id).
    pub parent: RelationId,
    /// The referenced key's column types: the referencing values are
    /// compared as these.
    pub key_types: Vec<SqlType>,
    /// ` ON DELETE RESTRICT` and the like, as PostgreSQL prints them after
    /// the clause (NO ACTION, the default, prints nothing).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actions: String,
    /// The referenced table's UNIQUE constraint or index the columns name,
    /// by its name; `None`: its primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_unique: Option<String>,
}

impl ForeignKeyDef {
    /// Stands for the table being created, which references itself.
    pub const THIS_TABLE: RelationId = RelationId(u64::MAX);

    /// The columns of `parent` (the referenced table) it names, in the order
    /// of its own [`ForeignKeyDef::columns`].
    pub fn parent_columns<'a>(&self, parent: &'a RelationDef) -> &'a [usize] {
        match self.parent_unique(parent) {
            Some(number) => &parent.uniques[number].columns,
            None => &parent.primary_key,
        }
    }

    /// The number of the UNIQUE constraint of `parent` it names (`None`: the primary key).
    pub fn parent_unique(&self, parent: &RelationDef) -> Option<usize> {
        let name = self.parent_unique.as_ref()?;
        parent.uniques.iter().position(|u| &u.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationDef {
    pub id: RelationId,
    pub name: String,
    pub kind: RelationKind,
    pub columns: Vec<ColumnDef>,
    /// Offset of the CREATE event.
    pub created_at: Offset,
    /// Positions of the primary key columns (tables only).
    #[serde(default)]
    pub primary_key: Vec<usize>,
    #[serde(default)]
    pub checks: Vec<CheckDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uniques: Vec<UniqueDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Set for a continuous view: stored as a stream when its result only
    /// grows, else as a table keyed by a hidden row identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewDef>,
    #[serde(skip)]
    pub schemas: DerivedSchemas,
}

/// What defines a continuous view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDef {
    /// The query as the user wrote it (normalized by the parser).
    pub query: String,
    /// The relations it reads.
    pub inputs: Vec<RelationId>,
    /// Whether the query selects `*` somewhere: a column added to an input
    /// would then change its columns, so adding one is refused.
    #[serde(default)]
    pub selects_all: bool,
    /// Whether the query's integer literals are BIGINT: so in views created
    /// before Strata typed them INTEGER, as PostgreSQL does (rebuilt the
    /// other way, `x * 2` over an INT column could overflow on rows the view
    /// took); `CREATE OR REPLACE` gives a view PostgreSQL's types.
    #[serde(default = "created_with_bigint_literals")]
    pub bigint_literals: bool,
}

/// A view written before [`ViewDef::bigint_literals`] existed has them.
fn created_with_bigint_literals() -> bool {
    true
}

impl RelationDef {
    /// What users call it: stream, table or materialized view.
    pub fn noun(&self) -> &'static str {
        if self.view.is_some() { "materialized view" } else { self.kind.noun() }
    }

    /// The user columns only: what `SELECT *` shows and what INSERT fills.
    pub fn user_schema(&self) -> SchemaRef {
        self.schemas
            .user
            .get_or_init(|| Arc::new(Schema::new(self.columns.iter().map(ColumnDef::field).collect::<Vec<_>>())))
            .clone()
    }

    /// The stored and queryable schema: user columns, then `_offset` and `_ts`.
    pub fn full_schema(&self) -> SchemaRef {
        self.schemas
            .full
            .get_or_init(|| {
                let mut fields: Vec<Field> = self.columns.iter().map(ColumnDef::field).collect();
                fields.extend(system_fields());
                Arc::new(Schema::new(fields))
            })
            .clone()
    }
}

/// A definition's schemas, built on first use: the write path asks for them
/// several times per statement. A clone starts empty, because definitions
/// change by being cloned and edited (ALTER, RENAME).
#[derive(Default)]
pub struct DerivedSchemas {
    user: OnceLock<SchemaRef>,
    full: OnceLock<SchemaRef>,
    changes: OnceLock<SchemaRef>,
}

/// Derived, so left out of a definition's debug output.
impl std::fmt::Debug for DerivedSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedSchemas")
    }
}

impl Clone for DerivedSchemas {
    fn clone(&self) -> DerivedSchemas {
        DerivedSchemas::default()
    }
}

/// Derived from the columns, which the definitions' equality compares.
impl PartialEq for DerivedSchemas {
    fn eq(&self, _: &DerivedSchemas) -> bool {
        true
    }
}

impl Eq for DerivedSchemas {}

impl RelationDef {
    /// What the log stores for this relation: the full schema, plus `_diff`
    /// for a table (a stream's events are all +1).
    pub fn log_schema(&self) -> SchemaRef {
        match self.kind {
            RelationKind::Stream => self.full_schema(),
            RelationKind::Table => self.changes_schema(),
        }
    }

    /// What `changes('x')` returns: user columns, `_offset`, `_ts`, `_diff`.
    pub fn changes_schema(&self) -> SchemaRef {
        self.schemas
            .changes
            .get_or_init(|| {
                let mut fields: Vec<Field> = self.full_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(diff_field());
                Arc::new(Schema::new(fields))
            })
            .clone()
    }

    /// The position of the hidden row identity, for a table without a key.
    pub fn row_id(&self) -> Option<usize> {
        match self.primary_key.as_slice() {
            [key] if self.columns[*key].name == ROW_ID_COLUMN => Some(*key),
            _ => None,
        }
    }

    /// Positions of the columns users write and `*` shows: all but the row identity.
    pub fn visible_positions(&self) -> Vec<usize> {
        (0..self.columns.len()).filter(|p| Some(*p) != self.row_id()).collect()
    }

    /// What `*` leaves out of this relation (and of its `changes()`).
    pub fn hidden_columns(&self, changes: bool) -> &'static [&'static str] {
        match (self.row_id().is_some(), changes) {
            (false, false) => &SYSTEM_COLUMNS,
            (false, true) => &CHANGE_COLUMNS,
            (true, false) => &SYSTEM_COLUMNS_WITH_ROW_ID,
            (true, true) => &CHANGE_COLUMNS_WITH_ROW_ID,
        }
    }

    /// The name PostgreSQL gives the primary key constraint.
    pub fn primary_key_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    /// Whether an index of this relation is named `name` (PostgreSQL names
    /// a key's or UNIQUE constraint's index as the constraint, and an index
    /// is a relation there: its name is taken for tables and indexes).
    pub fn has_index(&self, name: &str) -> bool {
        (self.kind == RelationKind::Table && self.row_id().is_none() && name == self.primary_key_name())
            || self.uniques.iter().any(|u| u.name == name)
            || self.indexes.iter().any(|i| i.name == name)
    }

    /// Whether an index or constraint of this relation is named `name`.
    pub fn has_index_or_constraint(&self, name: &str) -> bool {
        self.has_index(name)
            || self.checks.iter().any(|c| c.name == name)
            || self.foreign_keys.iter().any(|f| f.name == name)
    }
}

pub fn diff_field() -> Field {
    Field::new(DIFF_COLUMN, DataType::Int64, true)
}

/// The system columns as Arrow fields. Nullable only because rows written in
/// an open transaction have no offset yet; committed rows always have both.
pub fn system_fields() -> [Field; 2] {
    [
        Field::new(OFFSET_COLUMN, DataType::Int64, true),
        Field::new(TS_COLUMN, DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())), true),
    ]
}

/// All relations, by name. Changed only by committed DDL events.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_name: BTreeMap<String, Arc<RelationDef>>,
    next_relation_id: u64,
    /// Moves on with every change of a definition, so what was derived from
    /// the catalog (a described statement) knows when it is out of date.
    generation: u64,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Arc<RelationDef>> {
        self.by_name.get(name)
    }

    pub fn by_id(&self, id: RelationId) -> Option<&Arc<RelationDef>> {
        self.by_name.values().find(|r| r.id == id)
    }

    pub fn relations(&self) -> impl Iterator<Item = &Arc<RelationDef>> {
        self.by_name.values()
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn allocate_id(&mut self) -> RelationId {
        self.next_relation_id += 1;
        RelationId(self.next_relation_id)
    }

    /// The highest relation id given out so far.
    pub fn next_relation_id(&self) -> u64 {
        self.next_relation_id
    }

    /// Never give out ids up to `id` (they were used by dropped relations).
    pub fn reserve_ids_through(&mut self, id: u64) {
        self.next_relation_id = self.next_relation_id.max(id);
    }

    pub fn insert(&mut self, relation: RelationDef) {
        self.next_relation_id = self.next_relation_id.max(relation.id.0);
        self.generation += 1;
        self.by_name.insert(relation.name.clone(), Arc::new(relation));
    }

    /// A relation an open transaction block created, in the block's own
    /// view of the catalog; its id is provisional and takes no real one.
    pub fn insert_provisional(&mut self, relation: RelationDef) {
        self.generation += 1;
        self.by_name.insert(relation.name.clone(), Arc::new(relation));
    }

    /// Gives relation `id` a new name; its id, history and segments stay.
    pub fn rename(&mut self, id: RelationId, name: &str) {
        if let Some(old) = self.remove(id) {
            let mut def = (*old).clone();
            def.name = name.to_string();
            match id.is_provisional() {
                true => self.insert_provisional(def),
                false => self.insert(def),
            }
        }
    }

    /// Replaces relation `def.id`'s definition (same name).
    pub fn replace(&mut self, def: RelationDef) {
        self.generation += 1;
        self.by_name.insert(def.name.clone(), Arc::new(def));
    }

    pub fn remove(&mut self, id: RelationId) -> Option<Arc<RelationDef>> {
        let name = self.by_id(id)?.name.clone();
        self.generation += 1;
        self.by_name.remove(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::ViewDef;

    /// A view stored before integer literals were INTEGER keeps them BIGINT
    /// when it is rebuilt; a view created now says it has INTEGER ones.
    #[test]
    fn views_stored_before_integer_literals_keep_bigint_ones() {
        let stored: ViewDef = serde_json::from_str(r#"{"query":"SELECT x * 2 FROM s","inputs":[1]}"#).unwrap();
        assert!(stored.bigint_literals);
        let created = ViewDef { bigint_literals: false, ..stored };
        let again: ViewDef = serde_json::from_str(&serde_json::to_string(&created).unwrap()).unwrap();
        assert!(!again.bigint_literals);
    }
}
