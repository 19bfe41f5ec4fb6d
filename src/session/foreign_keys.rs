//! A CREATE TABLE's FOREIGN KEY clauses, resolved against the tables this
//! session sees: each names a table's declared primary key or one of its
//! UNIQUE constraints or indexes (of the table being created too, which
//! references itself), with columns of comparable types, as PostgreSQL
//! requires of a key it can check by an index.

use super::Session;
use crate::catalog::{CheckDef, ColumnDef, ForeignKeyDef, RelationKind, SqlType, UniqueDef, free_name};
use crate::error::{Error, Result};
use crate::sql::ddl::ForeignKeyClause;

/// The table being created, as its own foreign keys see it.
pub(super) struct NewTable<'a> {
    pub name: &'a str,
    pub columns: &'a [ColumnDef],
    pub primary_key: &'a [usize],
    pub checks: &'a [CheckDef],
    pub uniques: &'a [UniqueDef],
}

impl Session {
    pub(super) fn foreign_keys(&self, table: &NewTable, clauses: Vec<ForeignKeyClause>) -> Result<Vec<ForeignKeyDef>> {
        let mut taken: Vec<String> = table.checks.iter().map(|c| c.name.clone()).collect();
        taken.push(format!("{}_pkey", table.name));
        let mut keys = Vec::with_capacity(clauses.len());
        for clause in clauses {
            let columns = clause
                .columns
                .iter()
                .map(|name| {
                    table.columns.iter().position(|c| &c.name == name).ok_or_else(|| {
                        Error::UndefinedColumn(format!(
                            "column \"{name}\" referenced in foreign key constraint does not exist"
                        ))
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            let (parent, parent_columns, parent_key, uniques) = if clause.parent == table.name {
                let key = declared_key(table.columns, table.primary_key);
                (ForeignKeyDef::THIS_TABLE, table.columns.to_vec(), key, table.uniques.to_vec())
            } else {
                let def =
                    self.relation(&clause.parent).ok_or_else(|| Error::UndefinedRelation(clause.parent.clone()))?;
                if def.kind != RelationKind::Table || def.view.is_some() {
                    return Err(Error::WrongObjectType(format!("referenced relation \"{}\" is not a table", def.name)));
                }
                let key = declared_key(&def.columns, &def.primary_key);
                (def.id, def.columns.clone(), key, def.uniques.clone())
            };
            let no_key = || {
                Error::InvalidForeignKey(format!(
                    "there is no unique constraint matching given keys for referenced table \"{}\"",
                    clause.parent
                ))
            };
            let named: Vec<String> = match clause.parent_columns.is_empty() {
                true => parent_key.iter().flatten().map(|p| parent_columns[*p].name.clone()).collect(),
                false => clause.parent_columns.clone(),
            };
            // The key named: the primary key, else a UNIQUE constraint or
            // index on exactly those columns (in any order).
            let names = |positions: &[usize]| {
                let mut names: Vec<&str> = positions.iter().map(|p| parent_columns[*p].name.as_str()).collect();
                names.sort_unstable();
                names
            };
            let mut wanted: Vec<&str> = named.iter().map(String::as_str).collect();
            wanted.sort_unstable();
            let (parent_key, parent_unique) = match parent_key.filter(|key| names(key) == wanted) {
                Some(key) => (key, None),
                None => {
                    let unique = uniques.iter().find(|u| names(&u.columns) == wanted).ok_or_else(no_key)?;
                    (unique.columns.clone(), Some(unique.name.clone()))
                }
            };
            if named.len() != columns.len() {
                return Err(Error::InvalidForeignKey(
                    "number of referencing and referenced columns for foreign key disagree".into(),
                ));
            }
            // The referencing columns, in the order of the key's columns.
            let mut ordered = Vec::with_capacity(columns.len());
            for &key_column in &parent_key {
                let at = named.iter().position(|n| *n == parent_columns[key_column].name).ok_or_else(no_key)?;
                ordered.push(columns[at]);
            }
            if named.len() != parent_key.len() {
                return Err(no_key());
            }
            let name = clause.name.clone().unwrap_or_else(|| {
                let generated = format!("{}_{}_fkey", table.name, clause.columns.join("_"));
                free_name(&generated, |name| taken.iter().any(|t| t == name))
            });
            for (&column, &key_column) in ordered.iter().zip(&parent_key) {
                let (ours, theirs) = (&table.columns[column], &parent_columns[key_column]);
                if !comparable(&ours.sql_type, &theirs.sql_type) {
                    return Err(Error::DatatypeMismatch(format!(
                        "foreign key constraint \"{name}\" cannot be implemented: key columns \"{}\" and \"{}\" are \
                         of incompatible types: {} and {}",
                        ours.name,
                        theirs.name,
                        ours.sql_type.sql_name(),
                        theirs.sql_type.sql_name()
                    )));
                }
            }
            taken.push(name.clone());
            keys.push(ForeignKeyDef {
                name,
                columns: ordered,
                parent,
                key_types: parent_key.iter().map(|p| parent_columns[*p].sql_type.clone()).collect(),
                actions: clause.actions,
                parent_unique,
            });
        }
        Ok(keys)
    }
}

/// The primary key a table declared: a keyless table's hidden row identity
/// is no key another table can name.
fn declared_key(columns: &[ColumnDef], primary_key: &[usize]) -> Option<Vec<usize>> {
    let hidden = primary_key.iter().any(|p| columns[*p].name == crate::catalog::ROW_ID_COLUMN);
    (!primary_key.is_empty() && !hidden).then(|| primary_key.to_vec())
}

/// Whether a value of type `a` names a key of type `b` when cast to it:
/// integers name integers, text names text, anything else only its own
/// type (a NUMERIC cast to an integer would round, and name a row it
/// does not equal).
fn comparable(a: &SqlType, b: &SqlType) -> bool {
    fn family(t: &SqlType) -> Option<u8> {
        match t {
            SqlType::SmallInt | SqlType::Int | SqlType::BigInt => Some(0),
            SqlType::Text | SqlType::Varchar { .. } => Some(1),
            _ => None,
        }
    }
    match (family(a), family(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
