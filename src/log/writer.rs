//! The log writer thread: resolves commit requests into records, writes a
//! group of them, shares one fsync, then publishes and acknowledges them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::record::{CommitRecord, Entry};
use super::tail::Tails;
use super::{
    Change, ColumnChange, CommitInfo, CommitRequest, CommitTs, Error, Offset, Published, Result, Shared, WriterMessage,
    wal,
};
use std::collections::HashMap;

use super::RelationId;
use crate::catalog::{Catalog, RelationDef, RelationKind, diff_field};
use crate::table::TableWrite;
use crate::table::state::{RowVersion, TableState, TableStates};
use crate::view::Views;
use crate::view::sink::SinkWrite;
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

pub(super) struct Writer {
    pub shared: Arc<Shared>,
    pub wal: wal::WalWriter,
    pub receiver: mpsc::Receiver<WriterMessage>,
    pub next_offset: Offset,
    pub last_ts: CommitTs,
    pub group_commits_max: usize,
    pub record_bytes_max: u64,
    /// The continuous views, maintained inside each commit.
    pub views: Views,
    /// The last offset each relation changed at since start (a view's
    /// backfill must have read every change to its inputs).
    pub changed_at: HashMap<RelationId, Offset>,
}

struct Accepted {
    request: CommitRequest,
    record: CommitRecord,
}

impl Writer {
    pub fn run(mut self) {
        let mut held: Option<CommitRequest> = None;
        loop {
            let first = match held.take() {
                Some(request) => request,
                None => match self.receiver.blocking_recv() {
                    Some(WriterMessage::Commit(request)) => request,
                    _ => break,
                },
            };
            // A change of columns commits in a group of its own: the rows of
            // the commits around it are laid out for the columns before or
            // after it, and a group's rows reach the tails together.
            let alone = changes_columns(&first);
            let mut group = vec![first];
            let mut shutdown = false;
            while !alone && group.len() < self.group_commits_max {
                match self.receiver.try_recv() {
                    Ok(WriterMessage::Commit(request)) if changes_columns(&request) => {
                        held = Some(request);
                        break;
                    }
                    Ok(WriterMessage::Commit(request)) => group.push(request),
                    Ok(WriterMessage::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.write_group(group);
            if shutdown {
                if let Some(request) = held.take() {
                    let _ = request.reply.send(Err(Error::Closed));
                }
                break;
            }
        }
    }

    fn write_group(&mut self, group: Vec<CommitRequest>) {
        if self.shared.poisoned.load(Ordering::Acquire) {
            for request in group {
                let _ = request.reply.send(Err(Error::Poisoned));
            }
            return;
        }
        let (mut state, catalog_before) = {
            let published = self.shared.published.read().expect("published lock");
            let state =
                State { catalog: Catalog::clone(&published.catalog), tables: TableStates::clone(&published.tables) };
            (state, published.catalog.clone())
        };
        let mut frames = Vec::new();
        let mut accepted: Vec<Accepted> = Vec::with_capacity(group.len());
        let mut next_offset = self.next_offset;
        let mut last_ts = self.last_ts;
        let mut views = self.views.clone();
        let mut changed_at = self.changed_at.clone();
        for request in group {
            let mut trial = state.clone();
            let mut trial_views = views.clone();
            let ts = CommitTs::after(last_ts);
            let resolved = resolve(&mut trial, &mut trial_views, &changed_at, next_offset, ts, &request.changes);
            let entries = match resolved {
                Ok(entries) if entries.is_empty() => {
                    // Nothing to log, but operators may have been installed.
                    views = trial_views;
                    let _ = request.reply.send(Ok(None));
                    continue;
                }
                Ok(entries) => entries,
                Err(error) => {
                    let _ = request.reply.send(Err(error));
                    continue;
                }
            };
            let record = CommitRecord { first_offset: next_offset, ts, entries };
            frames.reserve(record.encoded_bytes_estimate().min(self.record_bytes_max as usize));
            if let Err(error) = wal::append_frame(&mut frames, self.record_bytes_max, |out| record.encode(out)) {
                let _ = request.reply.send(Err(error));
                continue;
            }
            state = trial;
            views = trial_views;
            note_changes(&mut changed_at, &record);
            next_offset = record.last_offset().next();
            last_ts = ts;
            accepted.push(Accepted { request, record });
        }
        if accepted.is_empty() {
            // Nothing to write; a view installed at start takes effect now.
            self.views = views;
            self.publish_views(Offset(self.next_offset.0 - 1));
            return;
        }
        if let Err(error) = self.wal.write(&frames).and_then(|_| self.wal.sync()) {
            // After a failed write or fsync the file's state is unknown: refuse
            // every later write until a restart replays what is really on disk.
            self.shared.poisoned.store(true, Ordering::Release);
            tracing::error!(%error, "WAL write failed; the log now refuses writes");
            for Accepted { request, .. } in accepted {
                let _ = request.reply.send(Err(Error::Poisoned));
            }
            return;
        }
        self.next_offset = next_offset;
        self.last_ts = last_ts;
        self.views = views;
        self.changed_at = changed_at;

        // Each entry's rows are laid out for its relation as the entries
        // before it left it: a commit may write, then alter, then write.
        let mut catalog = std::borrow::Cow::Borrowed(catalog_before.as_ref());
        for Accepted { record, .. } in &accepted {
            if let Err(error) = append_tails(&mut catalog, &self.shared.tails, record) {
                // Records were validated above, so this is a bug; the WAL stays right.
                tracing::error!(%error, "applying a durable commit failed");
            }
        }
        // Catalog, table states and visible offset change together, so a
        // reader (or a seal) never pairs one with an offset it does not belong to.
        let visible = Offset(next_offset.0 - 1);
        let mut published = self.shared.published.write().expect("published lock");
        *published = Published { catalog: Arc::new(state.catalog), tables: Arc::new(state.tables), visible };
        self.shared.visible.store(visible.0, Ordering::Release);
        drop(published);
        self.shared.committed.send_replace(visible.0);
        self.publish_views(visible);
        for Accepted { request, record } in accepted {
            let info =
                CommitInfo { first_offset: record.first_offset, last_offset: record.last_offset(), ts: record.ts };
            let _ = request.reply.send(Ok(Some(info)));
        }
        if let Err(error) = self.wal.roll_if_full(next_offset.0) {
            // The commits above are durable; only later ones cannot be written.
            self.shared.poisoned.store(true, Ordering::Release);
            tracing::error!(%error, "starting a new WAL file failed; the log now refuses writes");
        }
    }
}

impl Writer {
    /// Hands the views' operators as of `at` to the sealer, which checkpoints them.
    fn publish_views(&self, at: Offset) {
        if !self.views.is_empty() || self.shared.views_at.lock().expect("views lock").is_some() {
            *self.shared.views_at.lock().expect("views lock") = Some((at, self.views.clone()));
        }
    }
}

/// The catalog and table states a commit is checked against and changes.
#[derive(Clone)]
pub(super) struct State {
    pub catalog: Catalog,
    pub tables: TableStates,
}

/// Records the offset each relation a durable commit touches last changed at.
fn note_changes(changed_at: &mut HashMap<RelationId, Offset>, record: &CommitRecord) {
    let mut offset = record.first_offset;
    for entry in &record.entries {
        let relation = match entry {
            Entry::Append { relation, .. } => Some(*relation),
            Entry::AlterRelation(def) => Some(def.id),
            _ => None,
        };
        offset = Offset(offset.0 + entry.event_count());
        if let Some(relation) = relation {
            changed_at.insert(relation, Offset(offset.0 - 1));
        }
    }
}

/// Turns requested changes into log entries against `state`, updating it as
/// the commit will, then appends the changes of the views they affect.
/// Offsets are those the entries take from `first_offset`.
fn resolve(
    state: &mut State,
    views: &mut Views,
    changed_at: &HashMap<RelationId, Offset>,
    first_offset: Offset,
    ts: CommitTs,
    changes: &[Change],
) -> Result<Vec<Entry>> {
    let mut entries = Vec::with_capacity(changes.len());
    let mut offset = first_offset;
    // Provisional ids of relations this commit creates, to their own.
    let mut created_as: HashMap<RelationId, RelationId> = HashMap::new();
    for change in changes {
        let entry = match change {
            Change::CreateView { def, runtime, through, output, restore, if_not_exists, replace } => {
                if *restore {
                    let existing = state
                        .catalog
                        .by_id(def.id)
                        .cloned()
                        .ok_or_else(|| Error::UndefinedRelation(def.name.clone()))?;
                    views.install(existing, (**runtime).clone()).map_err(|source| view_error(&def.name, source))?;
                    // Rows the recomputation at start corrects.
                    if let Some(output) = output
                        && let Some(written) = views
                            .write(def.id, output.clone(), offset)
                            .map_err(|source| view_error(&def.name, source))?
                    {
                        let entry = log_view_write(&mut state.tables, written, first_offset, offset, ts)?;
                        offset = Offset(offset.0 + entry.event_count());
                        entries.push(entry);
                    }
                    continue;
                }
                if let Some(existing) = state.catalog.get(&def.name).cloned() {
                    if *if_not_exists {
                        continue;
                    }
                    if !*replace {
                        return Err(Error::DuplicateRelation(def.name.clone()));
                    }
                    if existing.view.is_none() {
                        return Err(Error::WrongObjectType(format!(
                            "\"{}\" is not a materialized view",
                            existing.name
                        )));
                    }
                    if let Some(reader) = dependents(&state.catalog, existing.id).first() {
                        return Err(Error::DependentObjects(format!(
                            "cannot replace materialized view {} because materialized view {} depends on it",
                            existing.name, reader.name
                        )));
                    }
                    if runtime.inputs.contains(&existing.id) {
                        return Err(Error::WrongObjectType(format!(
                            "materialized view {} cannot read itself",
                            existing.name
                        )));
                    }
                    drop_relation(state, views, existing.id);
                    entries.push(Entry::DropRelation(existing.id));
                    offset = offset.next();
                }
                for input in &runtime.inputs {
                    if state.catalog.by_id(*input).is_none() {
                        return Err(Error::UndefinedRelation(format!("with id {} (read by the new view)", input.0)));
                    }
                    if changed_at.get(input).is_some_and(|at| at > through) {
                        return Err(Error::ViewBehind);
                    }
                }
                let mut def = RelationDef::clone(def);
                def.id = state.catalog.allocate_id();
                def.created_at = offset;
                create(state, def.clone())?;
                entries.push(Entry::CreateRelation(def.clone()));
                offset = offset.next();
                let mut runtime = crate::view::ViewRuntime::clone(runtime);
                runtime.sink = None;
                views.install(Arc::new(def.clone()), runtime).map_err(|source| view_error(&def.name, source))?;
                if let Some(output) = output {
                    let written =
                        views.write(def.id, output.clone(), offset).map_err(|source| view_error(&def.name, source))?;
                    if let Some(written) = written {
                        let entry = log_view_write(&mut state.tables, written, first_offset, offset, ts)?;
                        offset = Offset(offset.0 + entry.event_count());
                        entries.push(entry);
                    }
                }
                continue;
            }
            Change::CreateRelation { name, if_not_exists, provisional, .. } => {
                if state.catalog.get(name).is_some() {
                    // A block's own statements wrote to the one it created.
                    if *if_not_exists && provisional.is_none() {
                        continue;
                    }
                    return Err(Error::DuplicateRelation(name.clone()));
                }
                let id = state.catalog.allocate_id();
                if let Some(provisional) = provisional {
                    created_as.insert(*provisional, id);
                }
                let mut def = change.created_relation(id, offset).expect("a relation's creation");
                name_indexes(&state.catalog, &mut def)?;
                for foreign in &mut def.foreign_keys {
                    foreign.parent = created_as.get(&foreign.parent).copied().unwrap_or(foreign.parent);
                    // Dropped since the statement looked.
                    if foreign.parent != id && state.tables.get(foreign.parent).is_none() {
                        return Err(Error::UndefinedRelation(format!("with id {}", foreign.parent.0)));
                    }
                }
                create(state, def.clone())?;
                Entry::CreateRelation(def)
            }
            Change::DropRelation { name, if_exists, cascade } => match state.catalog.get(name).cloned() {
                Some(def) => {
                    for (child, constraint) in crate::table::foreign_key::referencing(&state.catalog, def.id) {
                        let dropped_too =
                            changes.iter().any(|c| matches!(c, Change::DropRelation { name, .. } if *name == child));
                        if dropped_too {
                            continue;
                        }
                        if !cascade {
                            return Err(crate::table::foreign_key::drop_refused(name, &constraint, &child));
                        }
                        let child = state.catalog.get(&child).cloned().expect("a referencing table");
                        let mut altered = RelationDef::clone(&child);
                        altered.foreign_keys.retain(|f| f.parent != def.id);
                        reshape(state, &altered, offset)?;
                        entries.push(Entry::AlterRelation(altered));
                        offset = offset.next();
                    }
                    for reader in dependents(&state.catalog, def.id) {
                        if !cascade {
                            return Err(Error::DependentObjects(format!(
                                "cannot drop {} {name} because other objects depend on it: materialized view {} \
                                 depends on it (use DROP … CASCADE to drop the views too)",
                                def.noun(),
                                reader.name
                            )));
                        }
                        drop_relation(state, views, reader.id);
                        entries.push(Entry::DropRelation(reader.id));
                        offset = offset.next();
                    }
                    drop_relation(state, views, def.id);
                    Entry::DropRelation(def.id)
                }
                None if *if_exists => continue,
                None => return Err(Error::UndefinedRelation(name.clone())),
            },
            Change::RenameRelation { .. }
            | Change::AlterColumns { .. }
            | Change::SetRetention { .. }
            | Change::AlterIndexes(_) => match alteration(&state.catalog, change, offset)? {
                None => continue,
                Some(Alteration::Rename { relation, name }) => {
                    rename(state, relation, &name)?;
                    Entry::RenameRelation { relation, name }
                }
                Some(Alteration::Replace(def)) => {
                    reshape(state, &def, offset)?;
                    Entry::AlterRelation(*def)
                }
            },
            Change::Append { relation, rows } => {
                if rows.num_rows() == 0 {
                    continue;
                }
                let relation = created_as.get(relation).copied().unwrap_or(*relation);
                let def = state
                    .catalog
                    .by_id(relation)
                    .ok_or_else(|| Error::UndefinedRelation(format!("with id {}", relation.0)))?;
                refuse_old_columns(def, rows)?;
                Entry::Append { relation, rows: rows.clone() }
            }
            Change::TableWrite(write) => {
                if write.deletes.num_rows() + write.inserts.num_rows() == 0 {
                    continue;
                }
                let relation = created_as.get(&write.relation).copied().unwrap_or(write.relation);
                let table = state
                    .tables
                    .by_relation
                    .get_mut(&relation)
                    .ok_or_else(|| Error::UndefinedRelation(format!("with id {}", relation.0)))?;
                refuse_old_columns(&table.codec.def, &write.inserts)?;
                refuse_old_columns(&table.codec.def, &write.deletes)?;
                let rows = check_table_write(table, write, first_offset, offset, ts)?;
                crate::table::foreign_key::check_write(
                    &state.catalog,
                    &state.tables,
                    relation,
                    &write.deletes,
                    &write.inserts,
                )?;
                Entry::Append { relation, rows }
            }
        };
        offset = Offset(offset.0 + entry.event_count());
        entries.push(entry);
    }
    if !views.is_empty() {
        let changes = crate::view::source_changes(views, &state.catalog, &entries, first_offset, ts)?;
        let State { catalog, tables } = state;
        let mut write = |written: SinkWrite, at: Offset| log_view_write(tables, written, first_offset, at, ts);
        entries.extend(views.maintain(catalog, changes, offset, ts, &mut write)?);
    }
    Ok(entries)
}

/// What an ALTER (`change`, made at `offset`) does to `catalog`'s
/// relation: checked here, so the log writer and a transaction block's own
/// view of the catalog change alike; `None` when there is nothing to do
/// (`IF EXISTS` / `IF NOT EXISTS`).
pub(crate) fn alteration(catalog: &Catalog, change: &Change, offset: Offset) -> Result<Option<Alteration>> {
    Ok(Some(match change {
        Change::RenameRelation { name, kind, new_name, if_exists } => {
            let Some(def) = altered_relation(catalog, name, *kind, *if_exists)? else { return Ok(None) };
            refuse_if_read_by_views(catalog, &def, "rename")?;
            if catalog.get(new_name).is_some() {
                return Err(Error::DuplicateRelation(new_name.clone()));
            }
            Alteration::Rename { relation: def.id, name: new_name.clone() }
        }
        Change::AlterColumns { name, kind, if_exists, change } => {
            let Some(def) = altered_relation(catalog, name, *kind, *if_exists)? else { return Ok(None) };
            match change {
                ColumnChange::Drop { name: column, .. } => {
                    refuse_if_read_by_views(catalog, &def, "drop a column of")?;
                    let position = def.columns.iter().position(|c| &c.name == column);
                    for unique in def.uniques.iter().filter(|u| position.is_some_and(|p| u.columns.contains(&p))) {
                        let what = format!("drop column {column} of table {}", def.name);
                        crate::table::foreign_key::refuse_if_unique_referenced(catalog, &def, &unique.name, &what)?;
                    }
                }
                ColumnChange::Rename { .. } => refuse_if_read_by_views(catalog, &def, "rename a column of")?,
                ColumnChange::Add { .. } => {
                    let readers = dependents(catalog, def.id);
                    let direct = |r: &&Arc<RelationDef>| {
                        r.view.as_ref().is_some_and(|v| v.selects_all && v.inputs.contains(&def.id))
                    };
                    if let Some(reader) = readers.iter().find(direct) {
                        return Err(Error::DependentObjects(format!(
                            "cannot add a column to {} {} because materialized view {} selects * from it \
                             (recreate the view with CREATE OR REPLACE after adding the column)",
                            def.noun(),
                            def.name,
                            reader.name
                        )));
                    }
                }
            }
            let Some(altered) = alter_columns(&def, change, offset)? else { return Ok(None) };
            Alteration::Replace(Box::new(altered))
        }
        Change::SetRetention { name, kind, retention, if_exists } => {
            let Some(def) = altered_relation(catalog, name, *kind, *if_exists)? else { return Ok(None) };
            let mut def = RelationDef::clone(&def);
            def.retention = retention.clone();
            Alteration::Replace(Box::new(def))
        }
        Change::AlterIndexes(change) => match super::indexes::altered(catalog, change)? {
            Some(def) => Alteration::Replace(Box::new(def)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

/// A relation's new name, or its new definition.
pub(crate) enum Alteration {
    Rename { relation: RelationId, name: String },
    Replace(Box<RelationDef>),
}

fn view_error(view: &str, source: crate::view::ViewError) -> Error {
    Error::View { view: view.to_string(), source }
}

/// A view's change as a log entry, applied to its state when it is keyed.
fn log_view_write(
    tables: &mut TableStates,
    written: SinkWrite,
    commit_first: Offset,
    at: Offset,
    ts: CommitTs,
) -> Result<Entry> {
    Ok(match written {
        SinkWrite::Append { relation, rows } => Entry::Append { relation, rows },
        SinkWrite::Table(write) => {
            let table = tables
                .by_relation
                .get_mut(&write.relation)
                .ok_or_else(|| Error::UndefinedRelation(format!("with id {}", write.relation.0)))?;
            let rows = check_table_write(table, &write, commit_first, at, ts)?;
            Entry::Append { relation: write.relation, rows }
        }
    })
}

/// The views that read `id`, directly or through other views, readers of
/// readers first (the order to drop them in).
fn dependents(catalog: &Catalog, id: RelationId) -> Vec<Arc<RelationDef>> {
    let mut found: Vec<Arc<RelationDef>> = Vec::new();
    let mut frontier = vec![id];
    while let Some(next) = frontier.pop() {
        for def in catalog.relations() {
            if def.view.as_ref().is_some_and(|v| v.inputs.contains(&next)) && !found.iter().any(|f| f.id == def.id) {
                found.push(def.clone());
                frontier.push(def.id);
            }
        }
    }
    found.sort_by_key(|d| std::cmp::Reverse(d.id));
    found
}

/// Views name their inputs and columns in their query: renaming or dropping
/// what they read would break them (PostgreSQL refuses the same).
fn refuse_if_read_by_views(catalog: &Catalog, def: &RelationDef, what: &str) -> Result<()> {
    match dependents(catalog, def.id).first() {
        Some(reader) => Err(Error::DependentObjects(format!(
            "cannot {what} {} {} because materialized view {} depends on it",
            def.noun(),
            def.name,
            reader.name
        ))),
        None => Ok(()),
    }
}

/// A new table's name and its UNIQUE constraints' against the indexes of
/// the tables there (an index is a relation in PostgreSQL): one CREATE
/// TABLE named takes the next free name, one the user named is refused.
fn name_indexes(catalog: &Catalog, def: &mut RelationDef) -> Result<()> {
    if catalog.relations().any(|other| other.has_index(&def.name)) {
        return Err(Error::DuplicateRelation(def.name.clone()));
    }
    let mut names: Vec<String> = def.uniques.iter().map(|u| u.name.clone()).collect();
    for number in 0..names.len() {
        let taken = |name: &str| {
            super::indexes::taken(catalog, name)
                || name == def.name
                || names.iter().enumerate().any(|(n, other)| n != number && other == name)
        };
        if taken(&names[number]) {
            if !def.uniques[number].generated_name {
                return Err(Error::DuplicateRelation(names[number].clone()));
            }
            names[number] = crate::catalog::free_name(&names[number], taken);
        }
    }
    for (unique, name) in def.uniques.iter_mut().zip(names) {
        unique.name = name;
        unique.generated_name = false;
    }
    Ok(())
}

/// Renames a relation, and the definition its table's state names in errors.
fn rename(state: &mut State, relation: RelationId, name: &str) -> Result<()> {
    state.catalog.rename(relation, name);
    if let (Some(table), Some(def)) = (state.tables.by_relation.get_mut(&relation), state.catalog.by_id(relation)) {
        table.rename(def.clone())?;
    }
    Ok(())
}

fn drop_relation(state: &mut State, views: &mut Views, id: RelationId) {
    state.catalog.remove(id);
    state.tables.by_relation.remove(&id);
    views.remove(id);
}

fn create(state: &mut State, def: RelationDef) -> Result<()> {
    if def.kind == RelationKind::Table {
        let table = TableState::new(Arc::new(def.clone()))?;
        state.tables.by_relation.insert(def.id, table);
    }
    state.catalog.insert(def);
    Ok(())
}

/// Checks a table write against the state in commit order and applies it:
/// every retracted row must still be the version the statement read, every
/// added key must be free. Returns the log rows (user columns, then `_diff`):
/// retractions first, so an update's -1 precedes its +1.
fn check_table_write(
    table: &mut TableState,
    write: &TableWrite,
    commit_first: Offset,
    first: Offset,
    ts: CommitTs,
) -> Result<RecordBatch> {
    let codec = table.codec.clone();
    table.count_references(&write.deletes, |_| true)?;
    table.count_references(&write.inserts, |_| false)?;
    table.index_rows(&write.deletes, |_| true)?;
    table.index_rows(&write.inserts, |_| false)?;
    let (deleted, inserted) = (codec.keys(&write.deletes)?, codec.keys(&write.inserts)?);
    // Removed and inserted before checking, one walk of the key index each:
    // on an error the caller drops this trial state.
    for (index, key) in deleted.iter().enumerate() {
        let current = table.rows.remove(key).and_then(|v| v.offset);
        let still_there = match (write.expected[index], current) {
            (Some(expected), Some(current)) => expected == current,
            // Written earlier in this commit.
            (None, Some(current)) => current >= commit_first,
            (_, None) => false,
        };
        if !still_there {
            return Err(Error::Conflict);
        }
    }
    let added_from = first.0 + write.deletes.num_rows() as u64;
    let rows = codec.rows(&write.inserts)?;
    for (index, (key, row)) in inserted.iter().cloned().zip(rows).enumerate() {
        let offset = Some(Offset(added_from + index as u64));
        if table.rows.insert(key, Arc::new(RowVersion { offset, ts: Some(ts), row })).is_some() {
            return Err(Error::UniqueViolation {
                table: codec.def.name.clone(),
                constraint: codec.def.primary_key_name(),
                detail: format!("{} already exists.", codec.describe_key(&write.inserts, index)),
            });
        }
    }
    // After the primary key, so a row repeating both is reported as PostgreSQL does.
    table.take_unique_values((&write.deletes, &deleted), (&write.inserts, &inserted))?;
    let user = concat_batches(&codec.def.user_schema(), [&write.deletes, &write.inserts])?;
    let diffs = Int64Array::from_iter_values(
        std::iter::repeat_n(-1, write.deletes.num_rows()).chain(std::iter::repeat_n(1, write.inserts.num_rows())),
    );
    let mut columns = user.columns().to_vec();
    columns.push(Arc::new(diffs));
    let mut fields: Vec<Field> = user.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(diff_field());
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Rows laid out for the relation's columns before an `ALTER … ADD/DROP
/// COLUMN` that committed while their statement ran: the statement must run
/// again (40001, as for any concurrent change it cannot apply).
fn refuse_old_columns(def: &RelationDef, rows: &RecordBatch) -> Result<()> {
    let fits = rows.num_columns() == def.columns.len()
        && def.columns.iter().zip(rows.schema().fields()).all(|(c, f)| c.sql_type.arrow_type() == *f.data_type());
    if fits { Ok(()) } else { Err(Error::Conflict) }
}

/// The relation an ALTER names, of the kind it names; `None` when it does
/// not exist and the ALTER said IF EXISTS.
fn altered_relation(
    catalog: &Catalog,
    name: &str,
    kind: RelationKind,
    if_exists: bool,
) -> Result<Option<Arc<RelationDef>>> {
    match catalog.get(name) {
        Some(def) if def.kind != kind || def.view.is_some() => {
            Err(Error::WrongObjectType(format!("\"{name}\" is not a {}", kind.noun())))
        }
        Some(def) => Ok(Some(def.clone())),
        None if if_exists => Ok(None),
        None => Err(Error::UndefinedRelation(name.to_string())),
    }
}

fn changes_columns(request: &CommitRequest) -> bool {
    request.changes.iter().any(|c| matches!(c, Change::AlterColumns { .. }))
}

/// `def` after `change` (made at `offset`), or `None` when there is nothing
/// to do (`IF NOT EXISTS` / `IF EXISTS`).
fn alter_columns(def: &RelationDef, change: &ColumnChange, offset: Offset) -> Result<Option<RelationDef>> {
    let mut altered = def.clone();
    match change {
        ColumnChange::Add { column, if_not_exists } => {
            if altered.columns.iter().any(|c| c.name == column.name) {
                if *if_not_exists {
                    return Ok(None);
                }
                return Err(Error::DuplicateColumn { relation: def.name.clone(), column: column.name.clone() });
            }
            let mut column = column.clone();
            column.added_at = offset;
            altered.columns.push(column);
        }
        ColumnChange::Drop { name, if_exists } => {
            let position = altered.columns.iter().position(|c| &c.name == name);
            let Some(position) = position.filter(|p| Some(*p) != def.row_id()) else {
                if *if_exists {
                    return Ok(None);
                }
                return Err(Error::UndefinedColumn { relation: def.name.clone(), column: name.clone() });
            };
            if def.primary_key.contains(&position) {
                return Err(Error::DependentObjects(format!(
                    "cannot drop column {name} of table {}: the primary key {} depends on it",
                    def.name,
                    def.primary_key_name()
                )));
            }
            if let Some(check) = def.checks.iter().find(|c| mentions(&c.expr, name)) {
                return Err(Error::DependentObjects(format!(
                    "cannot drop column {name} of {} {}: constraint {} depends on it",
                    def.kind.noun(),
                    def.name,
                    check.name
                )));
            }
            altered.columns.remove(position);
            let shift = |k: &usize| if *k > position { k - 1 } else { *k };
            altered.primary_key = def.primary_key.iter().map(shift).collect();
            // A foreign key, UNIQUE constraint or index on the column goes with it, as in PostgreSQL.
            altered.foreign_keys.retain(|f| !f.columns.contains(&position));
            for foreign in &mut altered.foreign_keys {
                foreign.columns = foreign.columns.iter().map(shift).collect();
            }
            altered.uniques.retain(|u| !u.columns.contains(&position));
            for unique in &mut altered.uniques {
                unique.columns = unique.columns.iter().map(shift).collect();
            }
            altered.indexes.retain(|i| !i.columns.contains(&position));
            for index in &mut altered.indexes {
                index.columns = index.columns.iter().map(shift).collect();
            }
        }
        ColumnChange::Rename { from, to } => {
            let Some(position) = def.columns.iter().position(|c| &c.name == from).filter(|p| Some(*p) != def.row_id())
            else {
                return Err(Error::UndefinedColumn { relation: def.name.clone(), column: from.clone() });
            };
            if def.columns.iter().any(|c| &c.name == to) {
                return Err(Error::DuplicateColumn { relation: def.name.clone(), column: to.clone() });
            }
            if let Some(check) = def.checks.iter().find(|c| mentions(&c.expr, from)) {
                return Err(Error::DependentObjects(format!(
                    "cannot rename column {from} of {} {}: constraint {} uses it (renaming inside CHECKs is not \
                     supported yet)",
                    def.kind.noun(),
                    def.name,
                    check.name
                )));
            }
            let column = &mut altered.columns[position];
            column.renamed.push((offset, from.clone()));
            column.name = to.clone();
        }
    }
    Ok(Some(altered))
}

/// Whether SQL text `expr` names `column` (as a whole word).
fn mentions(expr: &str, column: &str) -> bool {
    expr.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| word.trim_matches('"') == column)
}

/// Puts `def` into the catalog; a table whose columns changed (by the ALTER
/// at offset `at`) gets its rows laid out anew (history stays as written).
fn reshape(state: &mut State, def: &RelationDef, at: Offset) -> Result<()> {
    let changed = state.catalog.by_id(def.id).is_some_and(|old| {
        old.columns != def.columns
            || old.foreign_keys != def.foreign_keys
            || old.uniques != def.uniques
            || old.indexes != def.indexes
    });
    state.catalog.replace(def.clone());
    if changed && let Some(table) = state.tables.by_relation.get_mut(&def.id) {
        *table = table.reshaped(Arc::new(def.clone()), at)?;
    }
    Ok(())
}

/// Adds a durable commit's rows to the in-memory tails, with `catalog` as
/// before it, which it leaves as after it (copied at its first change).
fn append_tails(catalog: &mut std::borrow::Cow<'_, Catalog>, tails: &Tails, record: &CommitRecord) -> Result<()> {
    let mut offset = record.first_offset;
    for entry in &record.entries {
        match entry {
            Entry::Append { relation, rows } => {
                let def = catalog
                    .by_id(*relation)
                    .ok_or_else(|| Error::Decode(format!("append to unknown relation id {}", relation.0)))?;
                tails.append(def, offset, record.ts, rows)?;
            }
            Entry::CreateRelation(def) => catalog.to_mut().insert(def.clone()),
            Entry::DropRelation(id) => {
                catalog.to_mut().remove(*id);
                tails.drop_relation(*id);
            }
            Entry::RenameRelation { relation, name } => catalog.to_mut().rename(*relation, name),
            Entry::AlterRelation(def) => {
                catalog.to_mut().replace(def.clone());
                tails.reshape(def, offset);
            }
        }
        offset = Offset(offset.0 + entry.event_count());
    }
    Ok(())
}

/// Applies a durable commit to the catalog, the table states and the
/// in-memory tails. Used by recovery for every replayed record.
pub(super) fn apply(state: &mut State, tails: &Tails, record: &CommitRecord) -> Result<()> {
    let mut offset = record.first_offset;
    for entry in &record.entries {
        match entry {
            Entry::CreateRelation(def) => create(state, def.clone())?,
            Entry::DropRelation(id) => {
                state.catalog.remove(*id);
                state.tables.by_relation.remove(id);
                tails.drop_relation(*id);
            }
            Entry::RenameRelation { relation, name } => rename(state, *relation, name)?,
            Entry::AlterRelation(def) => {
                reshape(state, def, offset)?;
                tails.reshape(def, offset);
            }
            Entry::Append { relation, rows } => {
                let def = state
                    .catalog
                    .by_id(*relation)
                    .ok_or_else(|| Error::Decode(format!("append to unknown relation id {}", relation.0)))?
                    .clone();
                if let Some(table) = state.tables.by_relation.get_mut(relation) {
                    let n = def.columns.len();
                    let user = RecordBatch::try_new(def.user_schema(), rows.columns()[..n].to_vec())?;
                    let diffs = rows.column(n).as_primitive::<Int64Type>().values().to_vec();
                    let offsets: Vec<i64> = (0..rows.num_rows() as i64).map(|i| offset.0 as i64 + i).collect();
                    table.apply(&user, &diffs, Some(&offsets), &vec![Some(record.ts); rows.num_rows()])?;
                }
                tails.append(&def, offset, record.ts, rows)?;
            }
        }
        offset = Offset(offset.0 + entry.event_count());
    }
    Ok(())
}
