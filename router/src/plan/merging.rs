//! The rule "field selections must merge" (the spec's `FieldsInSetCanMerge`) in time near-linear in
//! the operation, replacing `graphql-tools`' `OverlappingFieldsCanBeMerged`, which compares every
//! pair of fields with the same response name: a query repeating one field 1,000 times took 2.8 s
//! there, and one of 20,000 fields could hold a worker for minutes.
//!
//! The pairwise conditions are equivalences, so each is checked against one representative
//! (Simon Adameit's algorithm for XING, "GraphQL: Overlapping fields can be merged fast"):
//!
//! - **Same shape** for every pair with the same response name, however far apart: the fields of a
//!   response name are grouped, each type compared with the first's, and the sub-selections of the
//!   whole group merged and checked the same way, once ([`Check::same_shape`]).
//! - **Same field and arguments** for the pairs that can meet on one object: same parent type, or
//!   either parent abstract. A group is split by object parent; fields on abstract parents join every
//!   part. Each part is compared with its first field, and its merged sub-selections checked
//!   again ([`Check::can_merge`]); parts on different object types never meet, so nothing below them
//!   is compared across parts.
//!
//! Fragments are expanded as they are met, each at most once per merged selection (a fragment spread
//! twice adds nothing new to compare), so a fragment chain costs its length, not its expansion.

use std::collections::{HashMap, HashSet};

use graphql_tools::static_graphql::{
    query::{Field, FragmentDefinition, Selection, SelectionSet, TypeCondition},
    schema::{Definition, Document, Type, TypeDefinition},
};

/// What the rule needs of a schema: each type's kind and its fields' types.
#[derive(Debug, Default)]
pub struct FieldTypes {
    types: HashMap<String, Kind>,
}

#[derive(Debug)]
struct Kind {
    /// An object type (not an interface or union).
    object: bool,
    /// A scalar or enum: compared by name.
    leaf: bool,
    fields: HashMap<String, Type>,
}

impl FieldTypes {
    /// The kinds and field types of `schema`'s types.
    pub fn new(schema: &Document) -> Self {
        let mut types = HashMap::new();
        for definition in &schema.definitions {
            let Definition::TypeDefinition(definition) = definition else {
                continue;
            };
            let fields = |list: &[graphql_tools::static_graphql::schema::Field]| {
                list.iter()
                    .map(|f| (f.name.clone(), f.field_type.clone()))
                    .collect()
            };
            let (name, kind) = match definition {
                TypeDefinition::Object(o) => (&o.name, (true, false, fields(&o.fields))),
                TypeDefinition::Interface(i) => (&i.name, (false, false, fields(&i.fields))),
                TypeDefinition::Union(u) => (&u.name, (false, false, HashMap::new())),
                TypeDefinition::Scalar(s) => (&s.name, (false, true, HashMap::new())),
                TypeDefinition::Enum(e) => (&e.name, (false, true, HashMap::new())),
                TypeDefinition::InputObject(_) => continue,
            };
            let (object, leaf, fields) = kind;
            types.insert(
                name.clone(),
                Kind {
                    object,
                    leaf,
                    fields,
                },
            );
        }
        FieldTypes { types }
    }

    fn field_type(&self, parent: &str, field: &str) -> Option<Type> {
        if field == "__typename" {
            return Some(Type::NonNullType(Box::new(Type::NamedType(
                "String".to_owned(),
            ))));
        }
        self.types.get(parent)?.fields.get(field).cloned()
    }

    /// The named type (lists and non-null unwrapped) of `parent.field`, if the schema has it.
    pub(super) fn named_type(&self, parent: &str, field: &str) -> Option<&str> {
        self.types.get(parent)?.fields.get(field).map(named)
    }

    fn is_object(&self, name: &str) -> bool {
        self.types.get(name).is_some_and(|kind| kind.object)
    }

    fn is_leaf(&self, name: &str) -> bool {
        self.types.get(name).is_none_or(|kind| kind.leaf)
    }
}

/// One field as met in a selection: where it is and what type it is selected on.
#[derive(Clone, Copy)]
struct Met<'d> {
    parent: &'d str,
    field: &'d Field,
}

/// A conflict: the message and the positions of the two fields.
pub type Conflict = (String, Vec<(usize, usize)>);

/// The most conflicts reported for one operation.
const MAX_CONFLICTS: usize = 20;

/// The conflicts of `set` (selected on `root`), fragments from `fragments`; empty if its fields
/// merge.
pub fn conflicts(
    types: &FieldTypes,
    root: &str,
    set: &SelectionSet,
    fragments: &[&FragmentDefinition],
) -> Vec<Conflict> {
    let check = Check {
        types,
        fragments: fragments.iter().map(|f| (f.name.as_str(), *f)).collect(),
        found: std::cell::RefCell::new(Vec::new()),
    };
    let fields = check.collect(&[(root, set)]);
    // A pair of different shapes is also a pair of different fields: one report of it is enough.
    check.same_shape(&fields);
    if check.found.borrow().is_empty() {
        check.can_merge(&fields);
    }
    check.found.into_inner()
}

struct Check<'d> {
    types: &'d FieldTypes,
    fragments: HashMap<&'d str, &'d FragmentDefinition>,
    found: std::cell::RefCell<Vec<Conflict>>,
}

impl<'d> Check<'d> {
    /// The fields of `sets` (each selected on its type), fragments expanded, each fragment once,
    /// in document order.
    fn collect(&self, sets: &[(&'d str, &'d SelectionSet)]) -> Vec<Met<'d>> {
        let mut out = Vec::new();
        let mut expanded = HashSet::new();
        for (parent, set) in sets {
            self.collect_into(parent, set, &mut expanded, &mut out);
        }
        out
    }

    /// Nesting is bounded before parsing (the depth limit counts braces), and fragments are
    /// expanded once each, so this recursion is shallow.
    fn collect_into(
        &self,
        parent: &'d str,
        set: &'d SelectionSet,
        expanded: &mut HashSet<&'d str>,
        out: &mut Vec<Met<'d>>,
    ) {
        for selection in &set.items {
            match selection {
                Selection::Field(field) => out.push(Met { parent, field }),
                Selection::InlineFragment(inline) => {
                    let on = match &inline.type_condition {
                        Some(TypeCondition::On(on)) => on.as_str(),
                        None => parent,
                    };
                    self.collect_into(on, &inline.selection_set, expanded, out);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.as_str();
                    if let Some(fragment) = self.fragments.get(name) {
                        if expanded.insert(name) {
                            let TypeCondition::On(on) = &fragment.type_condition;
                            self.collect_into(on, &fragment.selection_set, expanded, out);
                        }
                    }
                }
            }
        }
    }

    /// `fields` grouped by response name, in the order each name first appears.
    fn by_response_name(fields: &[Met<'d>]) -> Vec<Vec<Met<'d>>> {
        let mut at: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<Vec<Met<'d>>> = Vec::new();
        for met in fields {
            let key = met.field.alias.as_deref().unwrap_or(&met.field.name);
            let index = *at.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[index].push(*met);
        }
        groups
    }

    fn report(&self, message: String, a: &Field, b: &Field) {
        let mut found = self.found.borrow_mut();
        if found.len() < MAX_CONFLICTS {
            found.push((
                message,
                vec![
                    (a.position.line, a.position.column),
                    (b.position.line, b.position.column),
                ],
            ));
        }
    }

    fn full(&self) -> bool {
        self.found.borrow().len() >= MAX_CONFLICTS
    }

    /// The merged sub-selections of `group`, each selected on its field's type.
    fn children(&self, group: &[Met<'d>]) -> Vec<Met<'d>> {
        let sets: Vec<(&'d str, &'d SelectionSet)> = group
            .iter()
            .filter(|met| !met.field.selection_set.items.is_empty())
            .filter_map(|met| {
                let ty = self.types.field_type(met.parent, &met.field.name)?;
                let named = named(&ty);
                // The type's name, borrowed from the schema index for the 'd lifetime.
                let (name, _) = self.types.types.get_key_value(named)?;
                Some((name.as_str(), &met.field.selection_set))
            })
            .collect();
        self.collect(&sets)
    }

    /// Every pair of fields with the same response name has the same shape, at every depth.
    fn same_shape(&self, fields: &[Met<'d>]) {
        for group in Self::by_response_name(fields) {
            if self.full() {
                return;
            }
            let first = group[0];
            let Some(first_type) = self.types.field_type(first.parent, &first.field.name) else {
                continue;
            };
            let mut consistent = true;
            for other in &group[1..] {
                let Some(other_type) = self.types.field_type(other.parent, &other.field.name)
                else {
                    continue;
                };
                if let Some(why) = self.shape_differs(&first_type, &other_type) {
                    let key = first.field.alias.as_deref().unwrap_or(&first.field.name);
                    self.report(
                        format!("Fields \"{key}\" conflict because {why}. Use different aliases on the fields to fetch both if this was intentional."),
                        first.field,
                        other.field,
                    );
                    consistent = false;
                    break;
                }
            }
            if consistent && !self.types.is_leaf(named(&first_type)) {
                self.same_shape(&self.children(&group));
            }
        }
    }

    /// Why two field types do not give the same response shape, if they do not.
    fn shape_differs(&self, a: &Type, b: &Type) -> Option<String> {
        match (a, b) {
            (Type::NonNullType(a), Type::NonNullType(b))
            | (Type::ListType(a), Type::ListType(b)) => self.shape_differs(a, b),
            (Type::NamedType(a), Type::NamedType(b))
                if a == b || !(self.types.is_leaf(a) || self.types.is_leaf(b)) =>
            {
                None
            }
            _ => Some(format!(
                "they return conflicting types \"{}\" and \"{}\"",
                print(a),
                print(b)
            )),
        }
    }

    /// The pairs that can meet on one object select the same field with the same arguments, at
    /// every depth.
    fn can_merge(&self, fields: &[Met<'d>]) {
        for group in Self::by_response_name(fields) {
            if self.full() {
                return;
            }
            let (open, objects): (Vec<Met<'d>>, Vec<Met<'d>>) = group
                .iter()
                .partition(|met| !self.types.is_object(met.parent));
            let mut parts: Vec<Vec<Met<'d>>> = Vec::new();
            let mut part_of: HashMap<&str, usize> = HashMap::new();
            for met in objects {
                let index = *part_of.entry(met.parent).or_insert_with(|| {
                    parts.push(open.clone());
                    parts.len() - 1
                });
                parts[index].push(met);
            }
            if parts.is_empty() {
                parts.push(open);
            }
            for part in parts {
                let first = part[0];
                let differing = part[1..]
                    .iter()
                    .find_map(|other| differs(first.field, other.field).map(|why| (other, why)));
                match differing {
                    Some((other, why)) => {
                        let key = first.field.alias.as_deref().unwrap_or(&first.field.name);
                        self.report(
                            format!("Fields \"{key}\" conflict because {why}. Use different aliases on the fields to fetch both if this was intentional."),
                            first.field,
                            other.field,
                        );
                    }
                    None => self.can_merge(&self.children(&part)),
                }
            }
        }
    }
}

/// Why two fields that can meet on one object are not the same field with the same arguments.
fn differs(a: &Field, b: &Field) -> Option<String> {
    if a.name != b.name {
        return Some(format!(
            "\"{}\" and \"{}\" are different fields",
            a.name, b.name
        ));
    }
    let same = a.arguments.len() == b.arguments.len()
        && a.arguments.iter().all(|(name, value)| {
            b.arguments
                .iter()
                .any(|(other, theirs)| other == name && theirs == value)
        });
    (!same).then(|| "they have differing arguments".to_owned())
}

fn named(ty: &Type) -> &str {
    match ty {
        Type::NamedType(name) => name,
        Type::ListType(inner) | Type::NonNullType(inner) => named(inner),
    }
}

fn print(ty: &Type) -> String {
    match ty {
        Type::NamedType(name) => name.clone(),
        Type::ListType(inner) => format!("[{}]", print(inner)),
        Type::NonNullType(inner) => format!("{}!", print(inner)),
    }
}

#[cfg(test)]
mod tests {
    use hive_router_query_planner::utils::parsing::{safe_parse_operation, safe_parse_schema};

    use super::*;

    const SCHEMA: &str = r#"
        type Query { beer(sku: String): Beer beers: [Beer!]! pet: Pet node: Node }
        interface Node { id: ID! name: String }
        union Pet = Dog | Cat
        type Beer implements Node { id: ID! name: String price: Int tags: [String] }
        type Dog implements Node { id: ID! name: String nick: String barks: Boolean size: Int }
        type Cat implements Node { id: ID! name: String meows: Boolean size: String }
    "#;

    fn check(query: &str) -> Vec<String> {
        let schema = safe_parse_schema(SCHEMA).expect("a schema");
        let types = FieldTypes::new(&schema);
        let document = safe_parse_operation(query).expect("a query");
        let mut fragments = Vec::new();
        let mut operation = None;
        for definition in &document.definitions {
            match definition {
                graphql_tools::static_graphql::query::Definition::Fragment(f) => fragments.push(f),
                graphql_tools::static_graphql::query::Definition::Operation(o) => {
                    operation = Some(match o {
                        graphql_tools::static_graphql::query::OperationDefinition::Query(q) => {
                            &q.selection_set
                        }
                        graphql_tools::static_graphql::query::OperationDefinition::SelectionSet(
                            s,
                        ) => s,
                        _ => unreachable!("queries only"),
                    })
                }
            }
        }
        conflicts(
            &types,
            "Query",
            operation.expect("an operation"),
            &fragments,
        )
        .into_iter()
        .map(|(message, _)| message)
        .collect()
    }

    #[test]
    fn identical_fields_merge_and_different_ones_do_not() {
        assert!(check("{ beer { name } beer { price } beer { name id } }").is_empty());
        let found = check("{ beer(sku: \"1\") { name } beer(sku: \"2\") { name } }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("differing arguments"), "{found:?}");
        let found = check("{ beer { x: name } beer { x: price } }");
        assert!(found[0].contains("conflicting types"), "{found:?}");
        let found = check("{ x: beer { name } x: pet { __typename } }");
        assert!(found[0].contains("different fields"), "{found:?}");
        // Through fragments, at depth.
        let found = check("{ beer { ...A } ...B } fragment A on Beer { n: name } fragment B on Query { beer { n: id } }");
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn fields_on_different_objects_need_only_the_same_shape() {
        // barks and meows are different fields, but no object is both a Dog and a Cat.
        assert!(check("{ pet { ... on Dog { x: barks } ... on Cat { x: meows } } }").is_empty());
        // Their shapes must still agree: Int against String.
        let found = check("{ pet { ... on Dog { size } ... on Cat { size } } }");
        assert!(
            found[0].contains("conflicting types \"Int\" and \"String\""),
            "{found:?}"
        );
        // On an interface, every object may meet it.
        let found = check("{ node { ... on Node { x: name } ... on Dog { x: nick } } }");
        assert!(found[0].contains("different fields"), "{found:?}");
        // Below two exclusive objects, nothing is compared across them but shapes.
        assert!(
            check("{ node { ... on Dog { id } ... on Beer { id } ... on Node { id } } }")
                .is_empty()
        );
    }

    #[test]
    fn repeats_are_checked_without_comparing_every_pair() {
        let repeated = "beers { name tags ... on Beer { name } } ".repeat(20_000);
        assert!(check(&format!("{{ {repeated} }}")).is_empty());
        let mut chain = String::from("{ ...F0 }");
        for i in 0..30 {
            chain.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} beers {{ name }} }}",
                n = i + 1
            ));
        }
        chain.push_str(" fragment F30 on Query { beers { name } }");
        assert!(check(&chain).is_empty());
        // Conflicts are reported, a bounded number of them.
        let conflicting: String = (0..5000)
            .map(|i| format!("beer(sku: \"{i}\") {{ name }} "))
            .collect();
        assert_eq!(check(&format!("{{ {conflicting} }}")).len(), 1);
    }
}
