//! Statement front end: SQL text to [`Command`]s. Strata's own statements
//! (`CREATE STREAM`, `DROP STREAM`) are recognised at the token level and
//! parsed as their TABLE counterparts, so one PostgreSQL grammar serves all.

use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, ContextModifier, CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
    Expr, FunctionArguments, ObjectType, RenameTableNameKind, Reset, Set, SetExpr, Statement, TransactionAccessMode,
    TransactionMode, UnaryOperator, Value, visit_relations,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::ddl;
use super::dialect::StrataDialect;
use crate::catalog::{CheckDef, ColumnDef, RelationKind, Retention};
use crate::error::{Error, Result};
use crate::log::{ColumnChange, IndexChange};
use crate::write::copy::{CopyFormat, CopyOptions};

#[derive(Debug, Clone)]
pub enum Command {
    /// Seal every committed row into segments now.
    Checkpoint,
    /// `DEALLOCATE name` (`None`: `DEALLOCATE ALL`): forget statements
    /// prepared with the protocol's Parse (drivers send it; psycopg after
    /// each rollback). The connection's handler drops them.
    Deallocate {
        name: Option<String>,
    },
    /// SQL `PREPARE name [(types)] AS statement`: the statement is kept as
    /// the protocol's Parse keeps one, under the same names.
    Prepare {
        name: String,
        /// The declared parameter types, as SQL spells them.
        types: Vec<String>,
        statement: String,
    },
    /// SQL `EXECUTE name [(arguments)]`, the arguments as SQL expressions.
    Execute {
        name: String,
        arguments: Vec<String>,
    },
    CreateRelation {
        kind: RelationKind,
        name: String,
        columns: Vec<ColumnDef>,
        primary_key: Vec<usize>,
        checks: Vec<CheckDef>,
        uniques: Vec<crate::catalog::UniqueDef>,
        foreign_keys: Vec<ddl::ForeignKeyClause>,
        retention: Option<Retention>,
        if_not_exists: bool,
    },
    /// `CREATE INDEX`, `DROP INDEX` (`tag` says which), `ALTER TABLE … ADD
    /// CONSTRAINT … UNIQUE` or `DROP CONSTRAINT`.
    AlterIndexes {
        changes: Vec<IndexChange>,
        tag: &'static str,
    },
    /// `ALTER TABLE|STREAM name ADD COLUMN … | DROP COLUMN …`.
    AlterColumns {
        kind: RelationKind,
        name: String,
        if_exists: bool,
        change: ColumnChange,
    },
    /// `ALTER TABLE|STREAM name SET (…retention = …)` or `RESET (…)`.
    SetRetention {
        kind: RelationKind,
        name: String,
        retention: Option<Retention>,
        if_exists: bool,
    },
    /// `DROP STREAM|TABLE|MATERIALIZED VIEW`.
    DropRelation {
        kind: RelationKind,
        view: bool,
        names: Vec<String>,
        if_exists: bool,
        cascade: bool,
    },
    /// `CREATE MATERIALIZED VIEW name [(columns)] AS query`.
    CreateView {
        name: String,
        columns: Vec<String>,
        query: Box<datafusion::sql::sqlparser::ast::Query>,
        if_not_exists: bool,
        or_replace: bool,
    },
    /// `ALTER TABLE|STREAM name RENAME TO new_name`.
    RenameRelation {
        kind: RelationKind,
        name: String,
        new_name: String,
        if_exists: bool,
    },
    /// `BEGIN [READ ONLY | READ WRITE]` (`None`: the session's default).
    Begin {
        read_only: Option<bool>,
    },
    /// `SET TRANSACTION READ ONLY | READ WRITE` (`None`: another mode, such
    /// as an isolation level, which Strata's snapshots already give).
    SetTransaction {
        read_only: Option<bool>,
    },
    Commit,
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint {
        name: String,
    },
    /// `RELEASE [SAVEPOINT] name`.
    ReleaseSavepoint {
        name: String,
    },
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackToSavepoint {
        name: String,
    },
    /// `SET [LOCAL] name = value`; LOCAL lasts until the transaction block ends.
    Set {
        name: String,
        value: String,
        local: bool,
    },
    Reset {
        name: String,
        local: bool,
    },
    Show {
        name: String,
    },
    CopyFrom {
        relation: String,
        columns: Vec<String>,
        options: CopyOptions,
    },
    /// `COPY relation TO STDOUT`, `COPY (query) TO STDOUT`: the rows as COPY data.
    CopyTo {
        query: Box<Statement>,
        options: CopyOptions,
    },
    /// UPDATE, DELETE or TRUNCATE: allowed on tables, refused on streams.
    Modify {
        relation: String,
        verb: &'static str,
        statement: Box<Statement>,
    },
    /// `COPY (SUBSCRIBE relation …) TO STDOUT`: its changes as they commit.
    Subscribe(super::subscribe::SubscribeSpec),
    /// `DECLARE cursor CURSOR FOR SUBSCRIBE relation …`.
    DeclareCursor {
        cursor: String,
        spec: super::subscribe::SubscribeSpec,
    },
    /// `DECLARE cursor [NO SCROLL] CURSOR [WITH HOLD] FOR query`.
    DeclareQueryCursor {
        cursor: String,
        query: Box<Statement>,
        hold: bool,
    },
    /// `FETCH [ALL | n] FROM cursor [WITH (timeout = …)]`: waits (up to the
    /// timeout) for at least one row, then returns up to `count`.
    Fetch {
        cursor: String,
        count: Option<u64>,
        timeout: Option<std::time::Duration>,
    },
    /// `CLOSE cursor`, or every cursor (`None`).
    CloseCursor {
        cursor: Option<String>,
    },
    /// Anything DataFusion plans: queries, INSERT, EXPLAIN.
    Query(Box<Statement>),
}

pub fn parse(sql: &str) -> Result<Vec<Command>> {
    let sql = super::psql::replace_fragments(sql);
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, &sql).tokenize().map_err(|e| Error::Syntax(e.to_string()))?;
    let mut commands = Vec::new();
    for statement in tokens.split(|t| *t == Token::SemiColon) {
        let words: Vec<&Word> = statement
            .iter()
            .filter_map(|t| match t {
                Token::Word(word) => Some(word),
                _ => None,
            })
            .collect();
        if statement.iter().all(|t| matches!(t, Token::Whitespace(_))) {
            continue;
        }
        let significant = statement.iter().filter(|t| !matches!(t, Token::Whitespace(_))).count();
        if significant == 1 && words.len() == 1 && words[0].value.eq_ignore_ascii_case("checkpoint") {
            commands.push(Command::Checkpoint);
            continue;
        }
        // `RESET TIME ZONE`, which sqlparser does not read.
        let spelled: Vec<String> = words.iter().map(|w| w.value.to_lowercase()).collect();
        if significant == 3 && spelled == ["reset", "time", "zone"] {
            commands.push(Command::Reset { name: "timezone".into(), local: false });
            continue;
        }
        if let Some(command) = super::subscribe::subscribe_command(statement)? {
            commands.push(command);
            continue;
        }
        let syntax = |e: datafusion::sql::sqlparser::parser::ParserError| {
            Error::Syntax(e.to_string().trim_start_matches("sql parser error: ").to_string())
        };
        let first = words.first().map(|w| w.keyword);
        if matches!(first, Some(Keyword::INSERT | Keyword::UPDATE | Keyword::DELETE)) && !is_versioned(statement) {
            // The compatibility parser's whole-query substitutions are for
            // clients' catalog queries; a write is parsed from the tokens at
            // hand (tokenizing it again cost more than the INSERT itself),
            // in Strata's dialect (`INSERT … SELECT 1 ON CONFLICT …`).
            let mut parsed = datafusion::sql::sqlparser::parser::Parser::new(&StrataDialect)
                .with_tokens(statement.to_vec())
                .parse_statements()
                .map_err(syntax)?;
            if parsed.len() != 1 {
                return Err(Error::Syntax(format!("expected one statement, found {}", parsed.len())));
            }
            let statement = parsed.remove(0);
            // Its rewrite rules walk the whole statement several times; a
            // VALUES list of literals and parameters has nothing for them.
            let statement = if literal_values(&statement) { statement } else { super::compat::rewrite(statement) };
            commands.push(command(statement, false)?);
            continue;
        }
        let (text, about_stream) = rewrite_stream_keyword(statement);
        let mut parsed = if is_versioned(statement) {
            let statements = datafusion::sql::sqlparser::parser::Parser::new(&StrataDialect)
                .try_with_sql(&text)
                .and_then(|mut p| p.parse_statements())
                .map_err(syntax)?;
            statements.into_iter().map(|s| super::compat::rewrite_for(&text, s)).collect()
        } else {
            super::compat::parse(&text).map_err(syntax)?
        };
        if parsed.len() != 1 {
            return Err(Error::Syntax(format!("expected one statement, found {}", parsed.len())));
        }
        commands.push(command(parsed.remove(0), about_stream)?);
    }
    Ok(commands)
}

/// Whether `statement` is `INSERT INTO t [(columns)] VALUES …` with only
/// literals and parameters (optionally negated) and `now()` as values.
fn literal_values(statement: &Statement) -> bool {
    let Statement::Insert(insert) = statement else { return false };
    let Some(source) = &insert.source else { return false };
    if source.with.is_some() || insert.on.is_some() || insert.returning.is_some() {
        return false;
    }
    let SetExpr::Values(values) = source.body.as_ref() else { return false };
    values.rows.iter().flat_map(|row| row.content.iter()).all(|expr| match expr {
        Expr::Value(_) => true,
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => matches!(expr.as_ref(), Expr::Value(_)),
        Expr::Function(function) => {
            function.name.0.len() == 1
                && function.name.to_string().eq_ignore_ascii_case("now")
                && matches!(&function.args, FunctionArguments::List(list) if list.args.is_empty())
        }
        _ => false,
    })
}

/// Whether the statement reads a relation at a point in time
/// (`FOR SYSTEM_TIME AS OF`, `VERSION AS OF`), which needs [`StrataDialect`].
fn is_versioned(statement: &[Token]) -> bool {
    let words: Vec<&Word> = statement
        .iter()
        .filter_map(|t| match t {
            Token::Word(word) if word.quote_style.is_none() => Some(word),
            _ => None,
        })
        .collect();
    words.windows(3).any(|w| {
        (w[0].keyword == Keyword::SYSTEM_TIME || w[0].keyword == Keyword::VERSION)
            && w[1].keyword == Keyword::AS
            && w[2].keyword == Keyword::OF
    })
}

/// Renders one statement's tokens, with `CREATE STREAM` / `DROP STREAM`
/// turned into their TABLE forms; says whether it did.
fn rewrite_stream_keyword(statement: &[Token]) -> (String, bool) {
    let mut tokens = statement.to_vec();
    let mut about_stream = false;
    let mut words = tokens.iter_mut().filter(|t| !matches!(t, Token::Whitespace(_)));
    let first = words.next().and_then(|t| match t {
        Token::Word(word) => Some(word.keyword),
        _ => None,
    });
    if matches!(first, Some(Keyword::CREATE | Keyword::DROP | Keyword::ALTER))
        && let Some(second) = words.next()
        && let Token::Word(word) = second
        && word.quote_style.is_none()
        && word.value.eq_ignore_ascii_case("stream")
    {
        *second = Token::Word(Word { value: "TABLE".into(), quote_style: None, keyword: Keyword::TABLE });
        about_stream = true;
    }
    if first == Some(Keyword::ALTER) {
        reset_as_set_null(&mut tokens);
    }
    (tokens.iter().map(token_text).collect(), about_stream)
}

/// A token as SQL text that reads back as the same token. sqlparser's
/// Display writes a string's unescaped value between quotes, so `'it''s'`
/// came back as `'it's'` (a syntax error) and `"a""b"` as `"a"b"`.
fn token_text(token: &Token) -> String {
    match token {
        Token::SingleQuotedString(text) => format!("'{}'", text.replace('\'', "''")),
        Token::NationalStringLiteral(text) => format!("N'{}'", text.replace('\'', "''")),
        Token::EscapedStringLiteral(text) => format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        Token::Word(Word { value, quote_style: Some(quote), .. }) if *quote == '"' => {
            format!("\"{}\"", value.replace('"', "\"\""))
        }
        other => other.to_string(),
    }
}

/// `ALTER … RESET (a, b)`, which sqlparser does not parse for tables, as
/// `ALTER … SET (a = NULL, b = NULL)`: a NULL setting is the default.
fn reset_as_set_null(tokens: &mut Vec<Token>) {
    let Some(reset) = tokens
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::RESET && w.quote_style.is_none()))
    else {
        return;
    };
    let Some(open) = tokens[reset + 1..].iter().position(|t| !matches!(t, Token::Whitespace(_))).map(|p| p + reset + 1)
    else {
        return;
    };
    if tokens[open] != Token::LParen {
        return;
    }
    tokens[reset] = Token::Word(Word { value: "SET".into(), quote_style: None, keyword: Keyword::SET });
    let mut rewritten: Vec<Token> = tokens[..=open].to_vec();
    let mut inside = true;
    for token in &tokens[open + 1..] {
        rewritten.push(token.clone());
        if inside && matches!(token, Token::Word(_)) {
            rewritten.extend([Token::Eq, Token::make_keyword("NULL")]);
        }
        inside &= *token != Token::RParen;
    }
    *tokens = rewritten;
}

fn command(statement: Statement, about_stream: bool) -> Result<Command> {
    Ok(match statement {
        Statement::CreateTable(create) if about_stream => Command::CreateRelation {
            kind: RelationKind::Stream,
            name: object_name(&create.name.to_string()),
            columns: ddl::stream_columns(&create)?,
            primary_key: Vec::new(),
            checks: Vec::new(),
            uniques: Vec::new(),
            foreign_keys: Vec::new(),
            retention: ddl::create_retention(RelationKind::Stream, &create)?,
            if_not_exists: create.if_not_exists,
        },
        Statement::CreateTable(create) => {
            let name = object_name(&create.name.to_string());
            let table = ddl::table_definition(&name, &create)?;
            Command::CreateRelation {
                kind: RelationKind::Table,
                name,
                columns: table.columns,
                primary_key: table.primary_key,
                checks: table.checks,
                uniques: table.uniques,
                foreign_keys: table.foreign_keys,
                retention: ddl::create_retention(RelationKind::Table, &create)?,
                if_not_exists: create.if_not_exists,
            }
        }
        Statement::Drop { object_type: ObjectType::Table, if_exists, names, cascade, .. } => Command::DropRelation {
            kind: if about_stream { RelationKind::Stream } else { RelationKind::Table },
            view: false,
            names: names.iter().map(|n| object_name(&n.to_string())).collect(),
            if_exists,
            cascade,
        },
        Statement::Drop { object_type: ObjectType::MaterializedView, if_exists, names, cascade, .. } => {
            Command::DropRelation {
                kind: RelationKind::Table,
                view: true,
                names: names.iter().map(|n| object_name(&n.to_string())).collect(),
                if_exists,
                cascade,
            }
        }
        Statement::CreateView(create) if create.materialized => Command::CreateView {
            name: object_name(&create.name.to_string()),
            columns: create.columns.iter().map(|c| c.name.value.clone()).collect(),
            query: create.query,
            if_not_exists: create.if_not_exists,
            or_replace: create.or_replace,
        },
        Statement::CreateView(_) => {
            return Err(Error::FeatureNotSupported(
                "CREATE VIEW is not supported; a view in Strata is kept current: use CREATE MATERIALIZED VIEW".into(),
            ));
        }
        Statement::CreateIndex(create) => {
            Command::AlterIndexes { changes: vec![super::indexes::create_index(&create)?], tag: "CREATE INDEX" }
        }
        Statement::Drop { object_type: ObjectType::Index, if_exists, names, .. } => Command::AlterIndexes {
            changes: names.iter().map(|n| IndexChange::Drop { name: object_name(&n.to_string()), if_exists }).collect(),
            tag: "DROP INDEX",
        },
        Statement::AlterTable(alter) => {
            let kind = if about_stream { RelationKind::Stream } else { RelationKind::Table };
            match alter.operations.as_slice() {
                [AlterTableOperation::RenameTable { table_name }] => {
                    let (RenameTableNameKind::To(new_name) | RenameTableNameKind::As(new_name)) = table_name;
                    Command::RenameRelation {
                        kind,
                        name: object_name(&alter.name.to_string()),
                        new_name: object_name(&new_name.to_string()),
                        if_exists: alter.if_exists,
                    }
                }
                [AlterTableOperation::AddConstraint { constraint, .. }] if !about_stream => Command::AlterIndexes {
                    changes: vec![super::indexes::add_constraint(object_name(&alter.name.to_string()), constraint)?],
                    tag: "ALTER TABLE",
                },
                [AlterTableOperation::DropConstraint { if_exists, name, .. }] if !about_stream => {
                    Command::AlterIndexes {
                        changes: vec![IndexChange::DropConstraint {
                            table: object_name(&alter.name.to_string()),
                            name: object_name(&name.to_string()),
                            if_exists: *if_exists,
                        }],
                        tag: "ALTER TABLE",
                    }
                }
                [AlterTableOperation::AddColumn { if_not_exists, column_def, column_position: None, .. }] => {
                    Command::AlterColumns {
                        kind,
                        name: object_name(&alter.name.to_string()),
                        if_exists: alter.if_exists,
                        change: ColumnChange::Add {
                            column: ddl::added_column(column_def)?,
                            if_not_exists: *if_not_exists,
                        },
                    }
                }
                [AlterTableOperation::DropColumn { column_names, if_exists, .. }] if column_names.len() == 1 => {
                    Command::AlterColumns {
                        kind,
                        name: object_name(&alter.name.to_string()),
                        if_exists: alter.if_exists,
                        change: ColumnChange::Drop { name: column_names[0].value.clone(), if_exists: *if_exists },
                    }
                }
                [AlterTableOperation::RenameColumn { old_column_name, new_column_name }] => Command::AlterColumns {
                    kind,
                    name: object_name(&alter.name.to_string()),
                    if_exists: alter.if_exists,
                    change: ColumnChange::Rename {
                        from: old_column_name.value.clone(),
                        to: new_column_name.value.clone(),
                    },
                },
                [AlterTableOperation::SetOptionsParens { options }] => Command::SetRetention {
                    kind,
                    name: object_name(&alter.name.to_string()),
                    retention: ddl::retention(kind, options)?,
                    if_exists: alter.if_exists,
                },
                _ => {
                    return Err(Error::FeatureNotSupported(format!(
                        "ALTER {} supports only RENAME TO, ADD COLUMN, DROP COLUMN (one at a time), RENAME \
                         COLUMN, ADD CONSTRAINT … UNIQUE, DROP CONSTRAINT, SET (…) and RESET (…) so far",
                        kind.noun().to_uppercase()
                    )));
                }
            }
        }
        Statement::Declare { mut stmts } if stmts.len() == 1 && stmts[0].for_query.is_some() => {
            let declare = stmts.pop().expect("one declaration");
            if declare.binary == Some(true) || declare.scroll == Some(true) {
                return Err(Error::FeatureNotSupported(
                    "BINARY and SCROLL cursors are not supported; cursors read forward, in text".into(),
                ));
            }
            let cursor = declare.names.first().map(|n| object_name(&n.to_string())).unwrap_or_default();
            let query = declare.for_query.expect("checked");
            Command::DeclareQueryCursor {
                cursor,
                query: Box::new(Statement::Query(query)),
                hold: declare.hold == Some(true),
            }
        }
        Statement::StartTransaction { modes, .. } => Command::Begin { read_only: access_mode(&modes) },
        Statement::Commit { .. } => Command::Commit,
        Statement::Deallocate { name, .. } => Command::Deallocate {
            name: (name.quote_style.is_some() || !name.value.eq_ignore_ascii_case("all"))
                .then(|| object_name(&name.to_string())),
        },
        Statement::Prepare { name, data_types, mut statement } => {
            // PostgreSQL prepares only these (its grammar refuses the rest).
            if !matches!(
                *statement,
                Statement::Query(_) | Statement::Insert(_) | Statement::Update { .. } | Statement::Delete(_)
            ) {
                let first = statement.to_string().split_whitespace().next().unwrap_or_default().to_string();
                return Err(Error::Malformed(format!("syntax error at or near \"{first}\"")));
            }
            declare_parameters(&mut statement, &data_types);
            Command::Prepare {
                name: object_name(&name.to_string()),
                types: data_types.iter().map(ToString::to_string).collect(),
                statement: statement.to_string(),
            }
        }
        Statement::Execute { name: Some(name), parameters, immediate: false, into, using, .. }
            if into.is_empty() && using.is_empty() =>
        {
            if let Some(id) = parameters.iter().find_map(placeholder_in) {
                return Err(Error::UndefinedParameter(id));
            }
            Command::Execute {
                name: object_name(&name.to_string()),
                arguments: parameters.iter().map(ToString::to_string).collect(),
            }
        }
        Statement::Rollback { savepoint: None, .. } => Command::Rollback,
        Statement::Rollback { savepoint: Some(name), .. } => {
            Command::RollbackToSavepoint { name: object_name(&name.to_string()) }
        }
        Statement::Savepoint { name } => Command::Savepoint { name: object_name(&name.to_string()) },
        Statement::ReleaseSavepoint { name } => Command::ReleaseSavepoint { name: object_name(&name.to_string()) },
        Statement::Set(set) => set_command(set)?,
        Statement::Reset(reset) => match reset.reset {
            Reset::ConfigurationParameter(name) => {
                Command::Reset { name: name.to_string().to_lowercase(), local: false }
            }
            Reset::ALL => Command::Reset { name: "all".into(), local: false },
        },
        Statement::ShowVariable { variable } => {
            Command::Show { name: variable.iter().map(|i| i.value.to_lowercase()).collect::<Vec<_>>().join(" ") }
        }
        Statement::Copy { source, to: false, target: CopyTarget::Stdin, options, legacy_options, .. } => {
            let CopySource::Table { table_name, columns } = source else {
                return Err(Error::Syntax("COPY FROM needs a relation".into()));
            };
            Command::CopyFrom {
                relation: object_name(&table_name.to_string()),
                columns: columns.iter().map(|c| c.value.clone()).collect(),
                options: copy_options(&options, &legacy_options)?,
            }
        }
        Statement::Copy { source, to: true, target: CopyTarget::Stdout, options, legacy_options, .. } => {
            let options = copy_options(&options, &legacy_options)?;
            if options.format == CopyFormat::Binary {
                return Err(Error::FeatureNotSupported("COPY TO in binary is not supported; use text or csv".into()));
            }
            Command::CopyTo { query: Box::new(copied_query(source)?), options }
        }
        Statement::Copy { to, .. } => {
            let (preposition, client_end) = if to { ("to", "TO STDOUT") } else { ("from", "FROM STDIN") };
            return Err(Error::FeatureNotSupported(format!(
                "COPY {preposition} a file or program is not supported; use COPY … {client_end} (psql's \\copy)"
            )));
        }
        Statement::Truncate(truncate) if truncate.table_names.len() > 1 => {
            // Each would be a commit of its own, and a foreign key between
            // them would refuse the first.
            return Err(Error::FeatureNotSupported(
                "TRUNCATE of several tables at once is not supported yet; truncate each (referencing tables first)"
                    .into(),
            ));
        }
        Statement::Update(_) | Statement::Delete(_) | Statement::Truncate(_) => {
            let verb = match statement {
                Statement::Update(_) => "UPDATE",
                Statement::Delete(_) => "DELETE from",
                _ => "TRUNCATE",
            };
            let mut target = None;
            let _ = visit_relations(&statement, |name| {
                target.get_or_insert_with(|| object_name(&name.to_string()));
                std::ops::ControlFlow::<()>::Continue(())
            });
            Command::Modify { relation: target.unwrap_or_default(), verb, statement: Box::new(statement) }
        }
        other => Command::Query(Box::new(other)),
    })
}

/// Unquoted identifiers fold to lower case, as in PostgreSQL.
pub fn object_name(text: &str) -> String {
    let last = text.rsplit('.').next().unwrap_or(text);
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_lowercase(),
    }
}

fn set_command(set: Set) -> Result<Command> {
    Ok(match set {
        Set::SingleAssignment { variable, values, scope, .. } => {
            let name = variable.to_string().to_lowercase();
            let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
            let local = scope == Some(ContextModifier::Local);
            match value.eq_ignore_ascii_case("default") {
                true => Command::Reset { name, local },
                false => Command::Set { name, value, local },
            }
        }
        Set::SetTimeZone { value, local } => Command::Set { name: "timezone".into(), value: expr_text(&value), local },
        Set::SetNames { charset_name, .. } => {
            Command::Set { name: "client_encoding".into(), value: charset_name.value, local: false }
        }
        Set::SetTransaction { modes, session: false, .. } => Command::SetTransaction { read_only: access_mode(&modes) },
        // SET SESSION CHARACTERISTICS AS TRANSACTION …: the session's default.
        Set::SetTransaction { modes, session: true, .. } => match access_mode(&modes) {
            Some(read_only) => Command::Set {
                name: "default_transaction_read_only".into(),
                value: if read_only { "on" } else { "off" }.into(),
                local: false,
            },
            // An isolation level only: Strata's one (see `session.rs`), as a SET.
            None => Command::Set {
                name: "default_transaction_isolation".into(),
                value: "repeatable read".into(),
                local: false,
            },
        },
        other => {
            return Err(Error::FeatureNotSupported(format!("{other} is not supported")));
        }
    })
}

/// The first `$n` in `expr`.
fn placeholder_in(expr: &Expr) -> Option<String> {
    let mut found = None;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(id) = &value.value
        {
            found = Some(id.clone());
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// Casts each `$n` of a PREPAREd statement to its declared type, so the
/// statement is planned with it (`PREPARE p(numeric) AS SELECT $1 + 1`
/// adds NUMERICs), without a length or precision: PostgreSQL ignores a
/// parameter's (`numeric(5,2)` keeps 1.23456).
fn declare_parameters(statement: &mut Statement, types: &[datafusion::sql::sqlparser::ast::DataType]) {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, ExactNumberInfo};
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(statement, |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(id) = &value.value
            && let Some(declared) =
                id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).and_then(|n| types.get(n.checked_sub(1)?))
        {
            let data_type = match declared {
                DataType::Numeric(_) => DataType::Numeric(ExactNumberInfo::None),
                DataType::Decimal(_) => DataType::Decimal(ExactNumberInfo::None),
                DataType::Varchar(_) | DataType::CharacterVarying(_) => DataType::Varchar(None),
                DataType::Char(_) | DataType::Character(_) => DataType::Text,
                other => other.clone(),
            };
            let placeholder = std::mem::replace(expr, Expr::value(Value::Null));
            *expr =
                Expr::Cast { kind: CastKind::Cast, expr: Box::new(placeholder), data_type, array: false, format: None };
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// `READ ONLY` (true) or `READ WRITE` (false) among a transaction's modes.
fn access_mode(modes: &[TransactionMode]) -> Option<bool> {
    modes.iter().rev().find_map(|mode| match mode {
        TransactionMode::AccessMode(TransactionAccessMode::ReadOnly) => Some(true),
        TransactionMode::AccessMode(TransactionAccessMode::ReadWrite) => Some(false),
        TransactionMode::IsolationLevel(_) => None,
    })
}

fn expr_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// The query `COPY source TO STDOUT` runs: the query itself, or a
/// relation's columns (all of them, as `*` gives them, by default).
fn copied_query(source: CopySource) -> Result<Statement> {
    let query = match source {
        CopySource::Query(query) => return Ok(Statement::Query(query)),
        CopySource::Table { table_name, columns } if columns.is_empty() => format!("SELECT * FROM {table_name}"),
        CopySource::Table { table_name, columns } => {
            let columns: Vec<String> = columns.iter().map(ToString::to_string).collect();
            format!("SELECT {} FROM {table_name}", columns.join(", "))
        }
    };
    let mut statements = datafusion::sql::sqlparser::parser::Parser::parse_sql(&StrataDialect, &query)
        .map_err(|e| Error::Syntax(e.to_string()))?;
    statements.pop().ok_or_else(|| Error::Internal("COPY's query did not parse".into()))
}

fn copy_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOptions> {
    let csv = options.iter().any(|o| matches!(o, CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv")))
        || legacy.iter().any(|o| matches!(o, CopyLegacyOption::Csv(_)));
    let binary = options.iter().any(|o| matches!(o, CopyOption::Format(f) if f.value.eq_ignore_ascii_case("binary")))
        || legacy.iter().any(|o| matches!(o, CopyLegacyOption::Binary));
    let mut result = CopyOptions::new(match (binary, csv) {
        (true, _) => CopyFormat::Binary,
        (false, true) => CopyFormat::Csv,
        (false, false) => CopyFormat::Text,
    });
    let mut escape_given = false;
    for option in options {
        match option {
            CopyOption::Format(_) => {}
            CopyOption::Header(header) => result.header = *header,
            CopyOption::Delimiter(c) => result.delimiter = single_byte(*c, "DELIMITER")?,
            CopyOption::Null(null) => result.null = null.clone(),
            CopyOption::Quote(c) => result.quote = single_byte(*c, "QUOTE")?,
            CopyOption::Escape(c) => {
                result.escape = single_byte(*c, "ESCAPE")?;
                escape_given = true;
            }
            other => {
                return Err(Error::FeatureNotSupported(format!("COPY option {other} is not supported")));
            }
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(csv_options) => {
                for csv_option in csv_options {
                    match csv_option {
                        CopyLegacyCsvOption::Header => result.header = true,
                        CopyLegacyCsvOption::Quote(c) => result.quote = single_byte(*c, "QUOTE")?,
                        CopyLegacyCsvOption::Escape(c) => {
                            result.escape = single_byte(*c, "ESCAPE")?;
                            escape_given = true;
                        }
                        other => {
                            return Err(Error::FeatureNotSupported(format!("COPY option {other} is not supported")));
                        }
                    }
                }
            }
            CopyLegacyOption::Header => result.header = true,
            CopyLegacyOption::Delimiter(c) => result.delimiter = single_byte(*c, "DELIMITER")?,
            CopyLegacyOption::Null(null) => result.null = null.clone(),
            other => {
                return Err(Error::FeatureNotSupported(format!("COPY option {other} is not supported")));
            }
        }
    }
    // As in PostgreSQL, ESCAPE defaults to the QUOTE character.
    if !escape_given {
        result.escape = result.quote;
    }
    Ok(result)
}

fn single_byte(c: char, option: &str) -> Result<u8> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| Error::InvalidParameterValue(format!("COPY {option} must be a single one-byte character")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_stream_is_recognised_among_other_statements() {
        let commands = parse("SELECT 1; create stream s (a BIGINT NOT NULL, b TEXT); DROP STREAM IF EXISTS s").unwrap();
        assert!(matches!(commands[0], Command::Query(_)));
        match &commands[1] {
            Command::CreateRelation { name, columns, .. } => {
                assert_eq!(name, "s");
                assert_eq!(columns.len(), 2);
                assert!(!columns[0].nullable);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&commands[2], Command::DropRelation { names, if_exists: true, .. } if names == &["s"]));
    }

    #[test]
    fn a_column_named_stream_is_not_a_stream_statement() {
        let commands = parse("SELECT stream FROM t").unwrap();
        assert!(matches!(commands[0], Command::Query(_)));
    }

    #[test]
    fn psql_copy_options() {
        let commands = parse("COPY clicks FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';')").unwrap();
        let Command::CopyFrom { options, .. } = &commands[0] else { panic!() };
        assert_eq!(options.format, CopyFormat::Csv);
        assert!(options.header);
        assert_eq!(options.delimiter, b';');
        let commands = parse("COPY clicks FROM STDIN CSV HEADER").unwrap();
        let Command::CopyFrom { options, .. } = &commands[0] else { panic!() };
        assert_eq!(options.format, CopyFormat::Csv);
        assert!(options.header);
    }
}
