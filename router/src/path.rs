//! Paths into the response tree: borrowed steps while executing and shaping, JSON only for an
//! error's `path`.

use serde_json::Value;

/// One step of a path into the response tree, borrowed while executing or shaping; turned into
/// JSON only for an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step<'p> {
    /// A response key, borrowed from the plan or the operation.
    Key(&'p str),
    Index(usize),
}

impl Step<'_> {
    /// Whether this step is the JSON path element `value`.
    pub fn matches(self, value: &Value) -> bool {
        match (self, value) {
            (Step::Key(key), Value::String(s)) => key == s,
            (Step::Index(i), Value::Number(n)) => n.as_u64() == Some(i as u64),
            _ => false,
        }
    }
}

impl Step<'_> {
    /// Equality, checking first whether both keys are the same borrowed string (paths of one fetch
    /// borrow their keys from the same plan node).
    pub(crate) fn same(self, other: Step<'_>) -> bool {
        match (self, other) {
            (Step::Key(a), Step::Key(b)) => std::ptr::eq(a, b) || a == b,
            (Step::Index(a), Step::Index(b)) => a == b,
            _ => false,
        }
    }
}

/// A concrete path into the response tree.
pub type Path<'p> = Vec<Step<'p>>;

/// A path as JSON, for an error's `path`.
pub fn path_json(path: &[Step<'_>]) -> Vec<Value> {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => Value::String((*k).to_owned()),
            Step::Index(i) => Value::from(*i),
        })
        .collect()
}
