//! Static analysis of a template (WF §18): which variables it reads and which filters, tests and
//! functions it calls, found by walking minijinja's syntax tree without rendering.
//!
//! The walk follows minijinja's own undeclared-variable tracker: `{% for %}` targets, `loop`,
//! `{% set %}` names, `{% with %}` bindings and macro arguments are bound in scopes and are not
//! free variables. A reference keeps the constant part of its access path: `a.b['c'][0]` is root
//! `a`, path `[b, c, 0]`; `a.b[x].c` stops at the dynamic subscript (`a`, `[b]`) and `x` is a
//! reference of its own.

use std::collections::{BTreeSet, HashSet};

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::value::ValueKind;

use super::{Analysis, Reference};

/// What the environment defines, so the walk can tell known names from unknown ones.
pub(crate) trait Known {
    fn is_filter(&mut self, name: &str) -> bool;
    fn is_test(&mut self, name: &str) -> bool;
    fn is_function(&mut self, name: &str) -> bool;
}

pub(crate) fn analyze(root: &Stmt<'_>, known: &mut dyn Known) -> Analysis {
    let mut walk = Walk {
        known,
        scopes: vec![HashSet::from(["self".to_owned()])],
        references: BTreeSet::new(),
        unknown_filters: BTreeSet::new(),
        unknown_functions: BTreeSet::new(),
        unguarded_defaults: BTreeSet::new(),
        unquoted: BTreeSet::new(),
    };
    walk.stmt(root);
    Analysis {
        references: walk.references.into_iter().collect(),
        unknown_filters: walk.unknown_filters.into_iter().collect(),
        unknown_functions: walk.unknown_functions.into_iter().collect(),
        unguarded_defaults: walk.unguarded_defaults.into_iter().collect(),
        unquoted: walk.unquoted.into_iter().collect(),
    }
}

struct Walk<'k> {
    known: &'k mut dyn Known,
    scopes: Vec<HashSet<String>>,
    references: BTreeSet<Reference>,
    unknown_filters: BTreeSet<String>,
    unknown_functions: BTreeSet<String>,
    unguarded_defaults: BTreeSet<(String, String)>,
    unquoted: BTreeSet<Reference>,
}

impl Walk<'_> {
    fn is_bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|scope| scope.contains(name))
    }

    fn bind(&mut self, name: &str) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_owned());
        }
    }

    fn bind_target(&mut self, target: &Expr<'_>) {
        match target {
            Expr::Var(var) => self.bind(var.id),
            Expr::List(list) => list.items.iter().for_each(|item| self.bind_target(item)),
            Expr::Tuple(tuple) => tuple.items.iter().for_each(|item| self.bind_target(item)),
            // `{% set ns.attr = … %}` reads `ns`.
            other => self.expr(other),
        }
    }

    fn scoped(&mut self, body: impl FnOnce(&mut Self)) {
        self.scopes.push(HashSet::new());
        body(self);
        self.scopes.pop();
    }

    fn body(&mut self, stmts: &[Stmt<'_>]) {
        stmts.iter().for_each(|stmt| self.stmt(stmt));
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) {
        match stmt {
            Stmt::Template(t) => self.body(&t.children),
            Stmt::EmitExpr(e) => {
                if let Some(reference) = self.written(&e.expr) {
                    self.unquoted.insert(reference);
                }
                self.expr(&e.expr)
            }
            Stmt::EmitRaw(_) | Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::ForLoop(l) => {
                // The iterable is evaluated outside the loop's scope.
                self.expr(&l.iter);
                self.scoped(|w| {
                    w.bind("loop");
                    w.bind_target(&l.target);
                    if let Some(filter) = &l.filter_expr {
                        w.expr(filter);
                    }
                    w.body(&l.body);
                });
                self.scoped(|w| w.body(&l.else_body));
            }
            Stmt::IfCond(c) => {
                self.expr(&c.expr);
                self.scoped(|w| w.body(&c.true_body));
                self.scoped(|w| w.body(&c.false_body));
            }
            Stmt::WithBlock(b) => self.scoped(|w| {
                for (target, value) in &b.assignments {
                    w.expr(value);
                    w.bind_target(target);
                }
                w.body(&b.body);
            }),
            Stmt::Set(s) => {
                self.expr(&s.expr);
                self.bind_target(&s.target);
            }
            Stmt::SetBlock(s) => {
                if let Some(filter) = &s.filter {
                    self.expr(filter);
                }
                self.scoped(|w| w.body(&s.body));
                self.bind_target(&s.target);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.scoped(|w| w.body(&a.body));
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.scoped(|w| w.body(&f.body));
            }
            Stmt::Block(b) => self.scoped(|w| {
                w.bind("super");
                w.body(&b.body);
            }),
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Import(i) => {
                self.expr(&i.expr);
                self.bind_target(&i.name);
            }
            Stmt::FromImport(i) => {
                self.expr(&i.expr);
                for (name, alias) in &i.names {
                    self.bind_target(alias.as_ref().unwrap_or(name));
                }
            }
            Stmt::Macro(m) => {
                self.bind(m.name);
                self.scoped(|w| w.macro_decl(m));
            }
            Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.scoped(|w| w.macro_decl(&c.macro_decl));
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) {
        for name in ["caller", "varargs", "kwargs"] {
            self.bind(name);
        }
        m.defaults.iter().for_each(|default| self.expr(default));
        m.args.iter().for_each(|arg| self.bind_target(arg));
        self.body(&m.body);
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for arg in args {
            match arg {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    fn call(&mut self, call: &ast::Call<'_>) {
        match &call.expr {
            Expr::Var(var) => {
                if !self.is_bound(var.id) && !self.known.is_function(var.id) {
                    self.unknown_functions.insert(var.id.to_owned());
                }
            }
            // A method call (`input.tags.split(',')`) reads the object, not the method.
            Expr::GetAttr(attr) => self.expr(&attr.expr),
            other => self.expr(other),
        }
        self.args(&call.args);
    }

    fn expr(&mut self, expr: &Expr<'_>) {
        match expr {
            Expr::Var(_) | Expr::GetAttr(_) | Expr::GetItem(_) => self.access(expr),
            Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                c.ops.iter().for_each(|op| self.expr(&op.expr));
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(false_expr) = &i.false_expr {
                    self.expr(false_expr);
                }
            }
            Expr::Filter(f) => {
                if !self.known.is_filter(f.name) {
                    self.unknown_filters.insert(f.name.to_owned());
                }
                if let Some(inner) = &f.expr {
                    if matches!(f.name, "default" | "d") {
                        self.unguarded_default(inner);
                    }
                    self.expr(inner);
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                if !self.known.is_test(t.name) {
                    self.unknown_filters.insert(t.name.to_owned());
                }
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => l.items.iter().for_each(|item| self.expr(item)),
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.expr(item)),
            Expr::Map(m) => {
                m.keys.iter().for_each(|key| self.expr(key));
                m.values.iter().for_each(|value| self.expr(value));
            }
        }
    }

    /// The lookup an emitted expression writes out as text, unless a filter makes it safe in a
    /// shell. Only plain lookups (through any other filters) count: an operator or a call is
    /// left alone.
    fn written(&self, expr: &Expr<'_>) -> Option<Reference> {
        let mut segments = Vec::new();
        let mut current = expr;
        loop {
            match current {
                Expr::Filter(f) => {
                    if matches!(
                        f.name,
                        "shell_quote" | "int" | "float" | "length" | "b64encode"
                    ) {
                        return None;
                    }
                    current = f.expr.as_ref()?;
                }
                Expr::GetAttr(attr) => {
                    segments.push(attr.name.to_owned());
                    current = &attr.expr;
                }
                Expr::GetItem(item) => {
                    segments.push(constant_key(&item.subscript_expr)?);
                    current = &item.expr;
                }
                Expr::Var(var) if !self.is_bound(var.id) => {
                    segments.reverse();
                    return Some(Reference {
                        root: var.id.to_owned(),
                        path: segments,
                    });
                }
                _ => return None,
            }
        }
    }

    /// Notes `root.a.b.c | default(…)`: three or more constant lookups below a free variable,
    /// so a missing `root.a.b` fails before `default` runs. One or two (`input.name`,
    /// `input.body.ref`) are left alone: their parent is normally there.
    fn unguarded_default(&mut self, expr: &Expr<'_>) {
        let mut segments = Vec::new();
        let mut current = expr;
        loop {
            match current {
                Expr::GetAttr(attr) => {
                    segments.push(attr.name.to_owned());
                    current = &attr.expr;
                }
                Expr::GetItem(item) => match constant_key(&item.subscript_expr) {
                    Some(key) => {
                        segments.push(key);
                        current = &item.expr;
                    }
                    None => return,
                },
                Expr::Var(var) if !self.is_bound(var.id) && segments.len() >= 3 => {
                    segments.reverse();
                    let last = segments.pop().unwrap_or_default();
                    let parent = std::iter::once(var.id.to_owned())
                        .chain(segments)
                        .collect::<Vec<_>>()
                        .join(".");
                    self.unguarded_defaults.insert((parent, last));
                    return;
                }
                _ => return,
            }
        }
    }

    /// Walks an attribute/subscript chain from the outside in, keeping the segments of the
    /// constant part that is nearest the root.
    fn access(&mut self, expr: &Expr<'_>) {
        let mut segments: Vec<String> = Vec::new();
        let mut current = expr;
        loop {
            match current {
                Expr::GetAttr(attr) => {
                    segments.push(attr.name.to_owned());
                    current = &attr.expr;
                }
                Expr::GetItem(item) => {
                    match constant_key(&item.subscript_expr) {
                        Some(key) => segments.push(key),
                        None => {
                            segments.clear();
                            self.expr(&item.subscript_expr);
                        }
                    }
                    current = &item.expr;
                }
                Expr::Var(var) => {
                    if !self.is_bound(var.id) {
                        segments.reverse();
                        self.references.insert(Reference {
                            root: var.id.to_owned(),
                            path: segments,
                        });
                    }
                    return;
                }
                other => {
                    self.expr(other);
                    return;
                }
            }
        }
    }
}

/// A subscript written as a string or integer literal.
fn constant_key(expr: &Expr<'_>) -> Option<String> {
    let Expr::Const(constant) = expr else {
        return None;
    };
    match constant.value.kind() {
        ValueKind::String => constant.value.as_str().map(str::to_owned),
        ValueKind::Number if constant.value.is_integer() => Some(constant.value.to_string()),
        _ => None,
    }
}
