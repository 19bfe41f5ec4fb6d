//! `CREATE [UNIQUE] INDEX`, `DROP INDEX` and `ALTER TABLE … ADD CONSTRAINT
//! … UNIQUE` / `DROP CONSTRAINT` as the changes they ask of a table. An
//! index is a btree over plain columns: an equality on all of them is a
//! lookup. What needs more (an expression, a partial index, another
//! access method) is refused, so no statement means less than it says.

use datafusion::sql::sqlparser::ast::{CreateIndex, Expr, IndexType, TableConstraint};

use super::parse::object_name;
use crate::error::{Error, Result};
use crate::log::{IndexChange, NewIndex};

pub fn create_index(create: &CreateIndex) -> Result<IndexChange> {
    match &create.using {
        // A hash index answers equalities, as this one does.
        None | Some(IndexType::BTree | IndexType::Hash) => {}
        Some(other) => {
            return Err(Error::FeatureNotSupported(format!(
                "index access method \"{}\" is not supported (indexes are btree)",
                other.to_string().to_lowercase()
            )));
        }
    }
    if create.predicate.is_some() {
        return Err(Error::FeatureNotSupported("partial indexes (CREATE INDEX … WHERE) are not supported".into()));
    }
    if !create.include.is_empty() {
        return Err(Error::FeatureNotSupported("INCLUDE columns of an index are not supported".into()));
    }
    // Options such as `fillfactor` tune PostgreSQL's pages, which Strata does not have.
    let columns = create
        .columns
        .iter()
        .map(|column| match &column.column.expr {
            Expr::Identifier(_) => Ok(object_name(&column.column.expr.to_string())),
            other => Err(Error::FeatureNotSupported(format!(
                "an index on an expression ({other}) is not supported yet (an index is on columns)"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(IndexChange::Create {
        table: object_name(&create.table_name.to_string()),
        index: NewIndex {
            name: create.name.as_ref().map(|n| object_name(&n.to_string())),
            columns,
            unique: create.unique,
            nulls_not_distinct: create.nulls_distinct == Some(false),
            constraint: false,
        },
        if_not_exists: create.if_not_exists,
    })
}

/// `ALTER TABLE table ADD [CONSTRAINT name] UNIQUE (…)`.
pub fn add_constraint(table: String, constraint: &TableConstraint) -> Result<IndexChange> {
    let TableConstraint::Unique(unique) = constraint else {
        return Err(Error::FeatureNotSupported(format!(
            "ALTER TABLE … ADD {constraint} is not supported yet (ADD CONSTRAINT takes UNIQUE)"
        )));
    };
    let clause = super::ddl::unique_clause(unique)?;
    Ok(IndexChange::Create {
        table,
        index: NewIndex {
            name: clause.name,
            columns: clause.columns,
            unique: true,
            nulls_not_distinct: clause.nulls_not_distinct,
            constraint: true,
        },
        if_not_exists: false,
    })
}
