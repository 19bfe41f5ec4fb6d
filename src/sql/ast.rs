//! Building pieces of sqlparser's syntax tree for the rewrites: function
//! calls, string literals, an empty SELECT to fill in, identifiers as
//! PostgreSQL folds them; and a walk over one query level's expressions.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName, Query,
    SetExpr, Value, VisitMut, VisitorMut,
};

/// Calls `change` on every expression of `node`, innermost first, but not
/// on those inside a nested subquery (whose names are its own; a rewrite
/// visits its SELECTs on their own).
pub fn change_own_expressions<N: VisitMut + ?Sized>(node: &mut N, change: impl FnMut(&mut Expr)) {
    let _ = node.visit(&mut OwnLevel { nested_queries: 0, change });
}

struct OwnLevel<F> {
    nested_queries: usize,
    change: F,
}

impl<F: FnMut(&mut Expr)> VisitorMut for OwnLevel<F> {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.nested_queries += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.nested_queries -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.nested_queries == 0 {
            (self.change)(expr);
        }
        ControlFlow::Continue(())
    }
}

/// `name(args…)`.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// `'text'`.
pub fn string(text: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(text.into()))
}

/// A positional argument's expression (not `name => value`, not `*`).
pub fn unnamed(argument: &FunctionArg) -> Option<&Expr> {
    match argument {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
        _ => None,
    }
}

/// `SELECT` with nothing in it, to fill in.
pub fn empty_query() -> Query {
    let parsed =
        datafusion::sql::sqlparser::parser::Parser::new(&datafusion::sql::sqlparser::dialect::GenericDialect {})
            .try_with_sql("SELECT 1")
            .and_then(|mut p| p.parse_query())
            .expect("a constant query parses");
    let mut query = *parsed;
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection.clear();
    }
    query
}

/// An identifier as PostgreSQL stores it: lower case unless quoted.
pub fn folded(ident: &Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() }
}
