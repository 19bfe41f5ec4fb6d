//! A table's primary key, UNIQUE, CHECK and FOREIGN KEY constraints in the
//! emulated pg_catalog, so psql's `\d accounts` lists them under "Indexes:",
//! "Check constraints:" and "Foreign-key constraints:" as PostgreSQL does
//! (`"accounts_pkey" PRIMARY KEY, btree (id)`), and `\di` lists the indexes
//! of the primary key and UNIQUE constraints.
//!
//! The emulation (datafusion-pg-catalog) derives `pg_class` from DataFusion's
//! tables and serves `pg_index` and `pg_constraint` as PostgreSQL's own
//! system rows only. Here `pg_class` gains `relhasindex`, `relchecks` and a
//! row per index, `pg_index` a row per index and `pg_constraint` a row per
//! constraint, and `pg_get_indexdef` / `pg_get_constraintdef` print them.
//! Their object ids are computed from the relation id (the emulation numbers
//! relations from 16384 up; these sit far above), so the functions find the
//! definition from the id alone.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::catalog::{RelationDef, RelationKind};
use crate::log::{Log, RelationId};

/// An index's oid: this plus 32 × the relation id plus 0 for the primary
/// key, 1 + n for the n-th UNIQUE constraint's (a table shows its first 31).
const INDEX_OID_BASE: i32 = 1 << 30;
const INDEXES_PER_RELATION: i32 = 32;
/// A constraint's oid: this plus 128 × the relation id plus its number:
/// 0 for the primary key, then CHECKs, foreign keys and UNIQUE constraints
/// (see [`FIRST_FOREIGN_KEY`] and [`FIRST_UNIQUE`]).
const CONSTRAINT_OID_BASE: i32 = 3 << 29;
const CONSTRAINTS_PER_RELATION: i32 = 128;

/// The primary key of a table that has one the user declared (a keyless
/// table's hidden row identity is not shown, as PostgreSQL shows none).
fn declared_key(def: &RelationDef) -> Option<&[usize]> {
    let shown = def.kind == RelationKind::Table && def.view.is_none() && def.row_id().is_none();
    (shown && !def.primary_key.is_empty()).then_some(def.primary_key.as_slice())
}

/// Numbers 1 to 31 are CHECKs, 32 to 63 foreign keys, 64 to 94 UNIQUE constraints.
const FIRST_FOREIGN_KEY: usize = 32;
const FIRST_UNIQUE: usize = 64;

fn shown_checks(def: &RelationDef) -> usize {
    if def.view.is_some() { 0 } else { def.checks.len().min(FIRST_FOREIGN_KEY - 1) }
}

fn shown_foreign_keys(def: &RelationDef) -> usize {
    def.foreign_keys.len().min(FIRST_UNIQUE - FIRST_FOREIGN_KEY)
}

/// A table's indexes: its declared primary key's (number 0), its UNIQUE
/// constraints' and indexes' (1 + n), then its other indexes, with their
/// names and columns.
fn indexes(def: &RelationDef) -> Vec<Index<'_>> {
    let key = declared_key(def).map(|columns| Index {
        number: 0,
        name: def.primary_key_name(),
        columns,
        primary: true,
        unique: true,
        constraint: true,
        nulls_not_distinct: false,
    });
    let uniques = def.uniques.iter().map(|unique| Index {
        number: 0,
        name: unique.name.clone(),
        columns: &unique.columns,
        primary: false,
        unique: true,
        constraint: !unique.index_only,
        nulls_not_distinct: unique.nulls_not_distinct,
    });
    let others = def.indexes.iter().map(|index| Index {
        number: 0,
        name: index.name.clone(),
        columns: &index.columns,
        primary: false,
        unique: false,
        constraint: false,
        nulls_not_distinct: false,
    });
    let numbered = uniques.chain(others).enumerate().map(|(n, index)| Index { number: 1 + n, ..index });
    let shown = if def.view.is_some() { 0 } else { INDEXES_PER_RELATION as usize - 1 };
    key.into_iter().chain(numbered.take(shown)).collect()
}

struct Index<'a> {
    number: usize,
    name: String,
    columns: &'a [usize],
    primary: bool,
    unique: bool,
    /// Whether a constraint (primary key, UNIQUE) stands behind it.
    constraint: bool,
    nulls_not_distinct: bool,
}

impl Index<'_> {
    fn oid(&self, def: &RelationDef) -> i32 {
        INDEX_OID_BASE + def.id.0 as i32 * INDEXES_PER_RELATION + self.number as i32
    }

    /// ` NULLS NOT DISTINCT` where it says so, as PostgreSQL prints it.
    fn nulls(&self) -> &'static str {
        if self.nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" }
    }
}

/// `{1,2}`: 1-based column numbers as PostgreSQL prints an `int2[]`.
fn attnums(positions: &[usize]) -> String {
    format!("{{{}}}", positions.iter().map(|p| (p + 1).to_string()).collect::<Vec<_>>().join(","))
}

/// `FOREIGN KEY (customer) REFERENCES customers(id)`, as `pg_get_constraintdef` prints it.
fn foreign_key_definition(catalog: &crate::catalog::Catalog, def: &RelationDef, number: usize) -> Option<String> {
    let foreign = def.foreign_keys.get(number)?;
    let parent = catalog.by_id(foreign.parent)?;
    Some(format!(
        "FOREIGN KEY ({}) REFERENCES {}({}){}",
        key_columns(def, &foreign.columns),
        parent.name,
        key_columns(parent, foreign.parent_columns(parent)),
        foreign.actions
    ))
}

/// The oid of the index of the key a foreign key names: the primary key's
/// (number 0), or a UNIQUE constraint's (1 + n, as [`indexes`] numbers them).
fn referenced_index_oid(foreign: &crate::catalog::ForeignKeyDef, parent: &RelationDef) -> i32 {
    let number = foreign.parent_unique(parent).map_or(0, |n| 1 + n as i32);
    INDEX_OID_BASE + parent.id.0 as i32 * INDEXES_PER_RELATION + number
}

fn constraint_oid(def: &RelationDef, number: usize) -> i32 {
    CONSTRAINT_OID_BASE + def.id.0 as i32 * CONSTRAINTS_PER_RELATION + number as i32
}

fn key_columns(def: &RelationDef, key: &[usize]) -> String {
    key.iter().map(|p| def.columns[*p].name.as_str()).collect::<Vec<_>>().join(", ")
}

/// `pg_class` rows with `relhasindex` and `relchecks` of Strata's tables,
/// followed by a row (relkind 'i') for each index, made from its table's row.
pub fn class_with_indexes(log: &Log, batch: RecordBatch, public: Option<i32>) -> DfResult<RecordBatch> {
    let catalog = log.catalog();
    let names = cast(batch.column(batch.schema().index_of("relname")?), &DataType::Utf8)?;
    let names = names.as_string::<i32>();
    let defs: Vec<Option<&Arc<RelationDef>>> = names
        .iter()
        .zip(in_namespace(&batch, public)?)
        .map(|(name, ours)| name.filter(|_| ours).and_then(|name| catalog.get(name)))
        .collect();
    let has_index: BooleanArray = defs.iter().map(|d| Some(d.is_some_and(|d| !indexes(d).is_empty()))).collect();
    let checks: Int32Array = defs.iter().map(|d| Some(d.map_or(0, |d| shown_checks(d) as i32))).collect();
    // PostgreSQL checks foreign keys by triggers, and psql lists a table's
    // foreign keys (its own and those naming it) only when it has some.
    let in_foreign_key = |def: &RelationDef| {
        !def.foreign_keys.is_empty() || !crate::table::foreign_key::referencing(&catalog, def.id).is_empty()
    };
    let triggers: BooleanArray = defs.iter().map(|d| Some(d.is_some_and(|d| in_foreign_key(d)))).collect();
    let tables = with_columns(
        &batch,
        &[
            ("relhasindex", Arc::new(has_index)),
            ("relchecks", Arc::new(checks)),
            ("relhastriggers", Arc::new(triggers)),
        ],
    )?;
    let indexed: Vec<(i32, &RelationDef, Index)> = defs
        .iter()
        .enumerate()
        .filter_map(|(row, def)| def.map(|d| (row, d)))
        .flat_map(|(row, def)| indexes(def).into_iter().map(move |index| (row as i32, def.as_ref(), index)))
        .collect();
    if indexed.is_empty() {
        return Ok(tables);
    }
    let rows = take_record_batch(&tables, &Int32Array::from_iter_values(indexed.iter().map(|(r, ..)| *r)))?;
    let n = indexed.len();
    let index_rows = with_columns(
        &rows,
        &[
            ("oid", Arc::new(Int32Array::from_iter_values(indexed.iter().map(|(_, d, i)| i.oid(d))))),
            ("relname", Arc::new(StringArray::from_iter_values(indexed.iter().map(|(.., i)| i.name.as_str())))),
            ("relkind", Arc::new(StringArray::from_iter_values(indexed.iter().map(|_| "i")))),
            ("relnatts", Arc::new(Int32Array::from_iter_values(indexed.iter().map(|(.., i)| i.columns.len() as i32)))),
            ("relhasindex", Arc::new(BooleanArray::from(vec![false; n]))),
            ("relchecks", Arc::new(Int32Array::from(vec![0; n]))),
        ],
    )?;
    Ok(concat_batches(&batch.schema(), [&tables, &index_rows])?)
}

/// Where a Strata relation sits in the emulated `pg_class`: its oid and namespace.
#[derive(Debug, Clone, Copy)]
pub struct ClassRow {
    pub oid: i32,
    pub namespace: i32,
}

/// Whether each `pg_class` row is in namespace `public`, where Strata's
/// relations are (every row when that is not known): a system table named
/// as a user's relation (`strata.views`) is not taken for it.
pub fn in_namespace(batch: &RecordBatch, public: Option<i32>) -> DfResult<Vec<bool>> {
    let namespaces = cast(batch.column(batch.schema().index_of("relnamespace")?), &DataType::Int32)?;
    let namespaces = namespaces.as_primitive::<Int32Type>();
    Ok(namespaces.iter().map(|namespace| public.is_none_or(|public| namespace == Some(public))).collect())
}

/// Relation name to its `pg_class` row, read from the emulation's
/// `pg_class`: those in namespace `public` (Strata's relations) when it is
/// known, so that a relation named as a system table (`strata.views`) is
/// told from it.
pub fn class_rows(batches: &[RecordBatch], public: Option<i32>) -> DfResult<HashMap<String, ClassRow>> {
    let mut rows = HashMap::new();
    for batch in batches {
        let column = |name: &str| -> DfResult<ArrayRef> { Ok(batch.column(batch.schema().index_of(name)?).clone()) };
        let names = cast(&column("relname")?, &DataType::Utf8)?;
        let oids = cast(&column("oid")?, &DataType::Int32)?;
        let namespaces = cast(&column("relnamespace")?, &DataType::Int32)?;
        let (names, oids, namespaces) =
            (names.as_string::<i32>(), oids.as_primitive::<Int32Type>(), namespaces.as_primitive::<Int32Type>());
        for row in 0..batch.num_rows() {
            if names.is_valid(row) && oids.is_valid(row) {
                let namespace = if namespaces.is_valid(row) { namespaces.value(row) } else { 0 };
                if public.is_none_or(|public| public == namespace) {
                    rows.insert(names.value(row).to_string(), ClassRow { oid: oids.value(row), namespace });
                }
            }
        }
    }
    Ok(rows)
}

/// `pg_index` rows for the indexes of Strata's tables.
pub fn index_rows(log: &Log, classes: &HashMap<String, ClassRow>, schema: &SchemaRef) -> DfResult<RecordBatch> {
    let catalog = log.catalog();
    let indexed: Vec<(&RelationDef, Index, ClassRow)> = catalog
        .relations()
        .filter_map(|d| Some((d.as_ref(), *classes.get(&d.name)?)))
        .flat_map(|(d, class)| indexes(d).into_iter().map(move |index| (d, index, class)))
        .collect();
    let n = indexed.len();
    let bools = |value: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![value; n])) };
    let flags = |flag: fn(&Index) -> bool| -> ArrayRef {
        Arc::new(indexed.iter().map(|(_, i, _)| Some(flag(i))).collect::<BooleanArray>())
    };
    let column_count: ArrayRef =
        Arc::new(Int32Array::from_iter_values(indexed.iter().map(|(_, i, _)| i.columns.len() as i32)));
    let attnums = |(_, index, _): &(&RelationDef, Index, ClassRow)| {
        index.columns.iter().map(|p| (p + 1).to_string()).collect::<Vec<_>>().join(" ")
    };
    rows_of(
        schema,
        n,
        &[
            ("indexrelid", Arc::new(Int32Array::from_iter_values(indexed.iter().map(|(d, i, _)| i.oid(d))))),
            ("indrelid", Arc::new(Int32Array::from_iter_values(indexed.iter().map(|(.., c)| c.oid)))),
            ("indnatts", column_count.clone()),
            ("indnkeyatts", column_count),
            ("indisunique", flags(|i| i.unique)),
            ("indnullsnotdistinct", flags(|i| i.nulls_not_distinct)),
            ("indisprimary", flags(|i| i.primary)),
            ("indimmediate", bools(true)),
            ("indisvalid", bools(true)),
            ("indisready", bools(true)),
            ("indislive", bools(true)),
            ("indkey", Arc::new(StringArray::from_iter_values(indexed.iter().map(attnums)))),
        ],
    )
}

/// `pg_constraint` rows for the constraints of Strata's relations.
pub fn constraint_rows(log: &Log, classes: &HashMap<String, ClassRow>, schema: &SchemaRef) -> DfResult<RecordBatch> {
    #[derive(Default)]
    struct Row {
        oid: i32,
        name: String,
        kind: &'static str,
        class: Option<ClassRow>,
        index: i32,
        columns: Option<String>,
        parent: Option<Referenced>,
    }
    /// What a foreign key references, and its actions: 'a' (NO ACTION) or
    /// 'r' (RESTRICT); other constraints have ' ' there, as in PostgreSQL.
    struct Referenced {
        class: i32,
        key: String,
        on_update: &'static str,
        on_delete: &'static str,
    }
    let action = |actions: &str, what: &str| if actions.contains(&format!("ON {what} RESTRICT")) { "r" } else { "a" };
    let catalog = log.catalog();
    let mut rows = Vec::new();
    for def in catalog.relations() {
        let Some(class) = classes.get(&def.name).copied() else { continue };
        let class = Some(class);
        for index in indexes(def).into_iter().filter(|i| i.constraint) {
            let (kind, number) = if index.primary { ("p", 0) } else { ("u", FIRST_UNIQUE + index.number - 1) };
            rows.push(Row {
                oid: constraint_oid(def, number),
                kind,
                class,
                index: index.oid(def),
                columns: Some(attnums(index.columns)),
                name: index.name,
                ..Default::default()
            });
        }
        for (number, check) in def.checks.iter().take(shown_checks(def)).enumerate() {
            let oid = constraint_oid(def, number + 1);
            rows.push(Row { oid, name: check.name.clone(), kind: "c", class, ..Default::default() });
        }
        for (number, foreign) in def.foreign_keys.iter().take(shown_foreign_keys(def)).enumerate() {
            let Some(parent) = catalog.by_id(foreign.parent) else { continue };
            let Some(parent_class) = classes.get(&parent.name) else { continue };
            rows.push(Row {
                oid: constraint_oid(def, FIRST_FOREIGN_KEY + number),
                name: foreign.name.clone(),
                kind: "f",
                class,
                index: referenced_index_oid(foreign, parent),
                columns: Some(attnums(&foreign.columns)),
                parent: Some(Referenced {
                    class: parent_class.oid,
                    key: attnums(foreign.parent_columns(parent)),
                    on_update: action(&foreign.actions, "UPDATE"),
                    on_delete: action(&foreign.actions, "DELETE"),
                }),
            });
        }
    }
    let class = |r: &Row| r.class.expect("every row has its table");
    let n = rows.len();
    let bools = |value: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![value; n])) };
    rows_of(
        schema,
        n,
        &[
            ("oid", Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.oid)))),
            ("conname", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.name.as_str())))),
            ("connamespace", Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| class(r).namespace)))),
            ("contype", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.kind)))),
            ("convalidated", bools(true)),
            ("conrelid", Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| class(r).oid)))),
            ("conindid", Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.index)))),
            ("conkey", Arc::new(rows.iter().map(|r| r.columns.clone()).collect::<StringArray>())),
            (
                "confrelid",
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.parent.as_ref().map_or(0, |p| p.class)))),
            ),
            (
                "confkey",
                Arc::new(rows.iter().map(|r| r.parent.as_ref().map(|p| p.key.clone())).collect::<StringArray>()),
            ),
            (
                "confupdtype",
                Arc::new(
                    rows.iter().map(|r| Some(r.parent.as_ref().map_or(" ", |p| p.on_update))).collect::<StringArray>(),
                ),
            ),
            (
                "confdeltype",
                Arc::new(
                    rows.iter().map(|r| Some(r.parent.as_ref().map_or(" ", |p| p.on_delete))).collect::<StringArray>(),
                ),
            ),
            (
                "confmatchtype",
                Arc::new(rows.iter().map(|r| Some(r.parent.as_ref().map_or(" ", |_| "s"))).collect::<StringArray>()),
            ),
            ("conislocal", bools(true)),
            ("connoinherit", bools(true)),
        ],
    )
}

/// `n` rows of `schema` with the given columns; the others NULL, or zero,
/// false or empty where the column takes no NULL.
pub(super) fn rows_of(schema: &SchemaRef, n: usize, given: &[(&str, ArrayRef)]) -> DfResult<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match given.iter().find(|(name, _)| name == field.name()) {
            Some((_, array)) => Ok(cast(array, field.data_type())?),
            None if field.is_nullable() => Ok(new_null_array(field.data_type(), n)),
            None => {
                let zero = match field.data_type() {
                    DataType::Utf8 => ScalarValue::Utf8(Some(String::new())),
                    other => ScalarValue::new_zero(other)?,
                };
                Ok(cast(&zero.to_array_of_size(n)?, field.data_type())?)
            }
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// `batch` with the named columns replaced (cast to the column's type).
pub(super) fn with_columns(batch: &RecordBatch, replaced: &[(&str, ArrayRef)]) -> DfResult<RecordBatch> {
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    for (name, array) in replaced {
        let at = schema.index_of(name)?;
        columns[at] = cast(array, schema.field(at).data_type())?;
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// `pg_get_indexdef(oid [, column, pretty])` and `pg_get_constraintdef(oid [,
/// pretty])` for the objects above (NULL for any other oid).
pub fn functions(log: Arc<Log>) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(Definition { name: "pg_get_indexdef", log: log.clone(), signature: any_arguments() }),
        ScalarUDF::from(Definition { name: "pg_get_constraintdef", log, signature: any_arguments() }),
    ]
}

fn any_arguments() -> Signature {
    Signature::variadic_any(Volatility::Stable)
}

#[derive(Debug)]
struct Definition {
    name: &'static str,
    log: Arc<Log>,
    signature: Signature,
}

impl PartialEq for Definition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Definition {}

impl std::hash::Hash for Definition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Definition {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arguments: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let oids = args.args[0].to_array(args.number_rows)?;
        let oids = cast(&oids, &DataType::Int32)?;
        let oids = oids.as_primitive::<Int32Type>();
        let catalog = self.log.catalog();
        let text: StringArray = oids
            .iter()
            .map(|oid| {
                let oid = oid?;
                match self.name {
                    "pg_get_indexdef" => {
                        let number = oid.checked_sub(INDEX_OID_BASE)?;
                        let def = catalog.by_id(RelationId((number / INDEXES_PER_RELATION) as u64))?;
                        let index =
                            indexes(def).into_iter().find(|i| i.number == (number % INDEXES_PER_RELATION) as usize)?;
                        Some(format!(
                            "CREATE {}INDEX {} ON public.{} USING btree ({}){}",
                            if index.unique { "UNIQUE " } else { "" },
                            index.name,
                            def.name,
                            key_columns(def, index.columns),
                            index.nulls()
                        ))
                    }
                    _ => {
                        let number = oid.checked_sub(CONSTRAINT_OID_BASE)?;
                        let id = RelationId((number / CONSTRAINTS_PER_RELATION) as u64);
                        let def = catalog.by_id(id)?;
                        match (number % CONSTRAINTS_PER_RELATION) as usize {
                            0 => Some(format!("PRIMARY KEY ({})", key_columns(def, declared_key(def)?))),
                            unique if unique >= FIRST_UNIQUE => {
                                let number = 1 + unique - FIRST_UNIQUE;
                                let index = indexes(def).into_iter().find(|i| i.number == number && i.constraint)?;
                                Some(format!("UNIQUE{} ({})", index.nulls(), key_columns(def, index.columns)))
                            }
                            foreign if foreign >= FIRST_FOREIGN_KEY => {
                                foreign_key_definition(&catalog, def, foreign - FIRST_FOREIGN_KEY)
                            }
                            check => def.checks.get(check - 1).map(|c| format!("CHECK ({})", c.expr)),
                        }
                    }
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(text)))
    }
}
