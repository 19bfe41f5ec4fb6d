//! SET, RESET and SHOW of session parameters. A SET inside a transaction
//! block belongs to the block, as in PostgreSQL: ROLLBACK (or ROLLBACK TO
//! a savepoint taken before it) undoes it, and `SET LOCAL` lasts only
//! until the block ends, committed or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::{DEFAULT_SETTINGS, Outcome, REPORTED_SETTINGS, Session, default_setting, done, read_only, rows_outcome};
use crate::error::{Error, Notice, Result};

/// What the end of a block restores of the settings `SET LOCAL` changed:
/// their values before it (`None`: the setting was unset).
#[derive(Clone, Default)]
struct Locals {
    values: BTreeMap<String, Option<String>>,
    /// The TimeZone as Arrow spells it, before a `SET LOCAL TIME ZONE`.
    zone: Option<String>,
}

/// The session's settings at one point of a transaction block.
#[derive(Clone)]
struct Mark {
    settings: BTreeMap<String, String>,
    zone: String,
    locals: Locals,
}

/// A transaction block's record of the session's settings: as at BEGIN
/// (what ROLLBACK restores), at each open savepoint, and what its
/// `SET LOCAL`s changed (what COMMIT restores).
pub(super) struct BlockSettings {
    begin: Mark,
    /// By position, as the transaction's savepoints are.
    savepoints: Vec<Mark>,
    locals: Locals,
}

impl Session {
    /// Starts the record of a transaction block (at BEGIN).
    pub(super) fn begin_block_settings(&mut self) {
        let begin = Mark { settings: self.settings.clone(), zone: self.zone.clone(), locals: Locals::default() };
        self.block_settings = Some(BlockSettings { begin, savepoints: Vec::new(), locals: Locals::default() });
    }

    /// Ends the block's record: a commit keeps its SETs and undoes its
    /// `SET LOCAL`s, a rollback undoes both.
    pub(super) fn end_block_settings(&mut self, committed: bool) {
        let Some(block) = self.block_settings.take() else { return };
        if committed {
            let mut settings = self.settings.clone();
            for (name, before) in block.locals.values {
                match before {
                    Some(value) => settings.insert(name, value),
                    None => settings.remove(&name),
                };
            }
            let zone = block.locals.zone.unwrap_or_else(|| self.zone.clone());
            self.restore_settings(settings, zone);
        } else {
            self.restore_settings(block.begin.settings, block.begin.zone);
        }
    }

    /// `SAVEPOINT`: the settings now, kept at the savepoint's position
    /// among the transaction's open savepoints.
    pub(super) fn savepoint_settings(&mut self) {
        if let Some(block) = &mut self.block_settings {
            let mark = Mark { settings: self.settings.clone(), zone: self.zone.clone(), locals: block.locals.clone() };
            block.savepoints.push(mark);
        }
    }

    /// `RELEASE` of the savepoint at `position` and those after it.
    pub(super) fn release_savepoint_settings(&mut self, position: usize) {
        if let Some(block) = &mut self.block_settings {
            block.savepoints.truncate(position);
        }
    }

    /// `ROLLBACK TO` the savepoint at `position`, which stays open: the
    /// settings as they were there.
    pub(super) fn roll_back_settings_to(&mut self, position: usize) {
        let Some(block) = &mut self.block_settings else { return };
        block.savepoints.truncate(position + 1);
        let Some(mark) = block.savepoints.get(position).cloned() else { return };
        block.locals = mark.locals;
        self.restore_settings(mark.settings, mark.zone);
    }

    /// Puts `settings` in place, reporting to the client those it tracks
    /// whose value changes.
    fn restore_settings(&mut self, settings: BTreeMap<String, String>, zone: String) {
        let before = std::mem::replace(&mut self.settings, settings);
        self.zone = zone;
        for (name, _) in REPORTED_SETTINGS {
            if before.get(*name) != self.settings.get(*name) {
                self.report(name);
            }
        }
    }

    /// Notes a change to setting `name` in the open block, if any: `SET
    /// LOCAL` keeps the value it replaces for COMMIT to restore; a plain
    /// SET or RESET after it makes the change the session's, as
    /// PostgreSQL's does.
    fn note_change(&mut self, name: &str, local: bool) {
        let Some(block) = &mut self.block_settings else { return };
        if !local {
            block.locals.values.remove(name);
            if name == "timezone" {
                block.locals.zone = None;
            }
            return;
        }
        if !block.locals.values.contains_key(name) {
            block.locals.values.insert(name.to_string(), self.settings.get(name).cloned());
            if name == "timezone" {
                block.locals.zone = Some(self.zone.clone());
            }
        }
    }

    /// `SET LOCAL` outside a block changes nothing: PostgreSQL warns so.
    fn local_outside_block(&mut self, local: bool) -> bool {
        let outside = local && self.block_settings.is_none();
        if outside {
            self.notices.push(Notice::warning("25P01", "SET LOCAL can only be used in transaction blocks".into()));
        }
        outside
    }

    pub(super) fn set(&mut self, name: &str, value: String, local: bool) -> Result<Outcome> {
        let name = canonical_setting(name);
        // `SET TIME ZONE DEFAULT` and `LOCAL` are its RESET.
        if name == "timezone" && ["default", "local"].contains(&value.trim().to_lowercase().as_str()) {
            return self.reset(&name, local).map(|_| done("SET"));
        }
        if self.local_outside_block(local) {
            return Ok(done("SET"));
        }
        // The transaction's own mode, as `SET TRANSACTION READ ONLY` sets it.
        if name == read_only::READ_ONLY {
            let read_only = match value.trim().to_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => true,
                "off" | "false" | "no" | "0" => false,
                _ => {
                    return Err(Error::InvalidParameterValue(format!("parameter \"{name}\" requires a Boolean value")));
                }
            };
            return self.set_transaction(Some(read_only));
        }
        if name == "timezone" {
            let zone = super::time_zone::setting(&value).ok_or_else(|| {
                Error::InvalidParameterValue(format!("invalid value for parameter \"TimeZone\": \"{value}\""))
            })?;
            self.note_change(&name, local);
            self.zone = super::time_zone::arrow_zone(&zone).to_string();
            self.settings.insert(name.clone(), super::time_zone::shown(&value));
        } else {
            self.note_change(&name, local);
            self.settings.insert(name.clone(), value);
        }
        self.report(&name);
        Ok(done("SET"))
    }

    pub(super) fn reset(&mut self, name: &str, local: bool) -> Result<Outcome> {
        if self.local_outside_block(local) {
            return Ok(done("RESET"));
        }
        if name == "all" {
            let names: Vec<String> = self.settings.keys().cloned().collect();
            for name in &names {
                self.note_change(name, local);
            }
            self.note_change("timezone", local);
            self.settings = DEFAULT_SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            self.settings.extend(self.startup_settings.clone());
            self.reset_time_zone();
            for (name, _) in REPORTED_SETTINGS {
                self.report(name);
            }
            return Ok(done("RESET"));
        }
        let name = canonical_setting(name);
        self.note_change(&name, local);
        match self.startup_settings.get(&name).map(String::as_str).or(default_setting(&name)) {
            Some(value) => self.settings.insert(name.clone(), value.to_string()),
            None => self.settings.remove(&name),
        };
        if name == "timezone" {
            self.reset_time_zone();
        }
        self.report(&name);
        Ok(done("RESET"))
    }

    /// Sets a parameter the client's startup packet gives (`application_name`).
    pub fn set_startup_setting(&mut self, name: &str, value: &str) {
        let name = canonical_setting(name);
        self.startup_settings.insert(name.clone(), value.to_string());
        self.settings.insert(name, value.to_string());
    }

    /// The TimeZone the client asked for at startup, or UTC.
    pub(super) fn reset_time_zone(&mut self) {
        let (shown, arrow) = self.startup_zone.clone().unwrap_or_else(|| {
            (default_setting("timezone").unwrap_or("UTC").to_string(), super::time_zone::DEFAULT_ZONE.to_string())
        });
        self.settings.insert("timezone".into(), shown);
        self.zone = arrow;
    }

    /// Queues the value of `name` for the client if clients track it.
    pub(super) fn report(&mut self, name: &str) {
        let Some((_, reported)) = REPORTED_SETTINGS.iter().find(|(n, _)| *n == name) else { return };
        if let Some(value) = self.settings.get(name) {
            self.reports.push((reported, value.clone()));
        }
    }

    pub(super) fn show(&self, name: &str) -> Result<Outcome> {
        let name = canonical_setting(name);
        if name == read_only::READ_ONLY {
            let value = if self.read_only() { "on" } else { "off" };
            return Ok(rows_outcome(
                Schema::new(vec![Field::new(name, DataType::Utf8, false)]),
                vec![Arc::new(StringArray::from(vec![value]))],
            ));
        }
        if name == "all" {
            let names: Vec<&str> = self.settings.keys().map(String::as_str).collect();
            let values: Vec<&str> = self.settings.values().map(String::as_str).collect();
            return Ok(rows_outcome(
                Schema::new(vec![
                    Field::new("name", DataType::Utf8, false),
                    Field::new("setting", DataType::Utf8, false),
                ]),
                vec![Arc::new(StringArray::from(names)), Arc::new(StringArray::from(values))],
            ));
        }
        let value = self
            .settings
            .get(&name)
            .ok_or_else(|| Error::UndefinedObject(format!("unrecognized configuration parameter \"{name}\"")))?;
        // PostgreSQL's header spells the parameter as its documentation does.
        let header = if name == "timezone" { "TimeZone".to_string() } else { name.clone() };
        Ok(rows_outcome(
            Schema::new(vec![Field::new(header, DataType::Utf8, false)]),
            vec![Arc::new(StringArray::from(vec![value.as_str()]))],
        ))
    }
}

/// A parameter's name as the session keeps it, from any of PostgreSQL's
/// spellings (`SHOW TIME ZONE`, `SHOW TRANSACTION ISOLATION LEVEL`).
pub(crate) fn canonical_setting(name: &str) -> String {
    match name.trim_matches('"').to_lowercase().as_str() {
        "time zone" | "time_zone" => "timezone".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        other => other.to_string(),
    }
}
