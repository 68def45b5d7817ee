//! Verification of answers: before every load run, the gateway's answers to the first requests of
//! the operation must equal, as JSON, the reference answers (Taproom's, taken on its first run), and
//! the reference itself must hold data worth comparing. A gateway that answers differently stops
//! the run: its figures would measure other work.

use std::{collections::HashMap, path::Path};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{
    gateways::Gateway,
    load::{self, Target},
    ops::Operation,
};

/// How many of each operation's requests are compared with Taproom's answers at every start.
const CHECKED_ANSWERS: usize = 6;

/// The reference answers, per operation: the first gateway's to answer it (Taproom's, as it is
/// measured first unless `--gateways` says otherwise).
#[derive(Default)]
pub(crate) struct Reference {
    answers: HashMap<&'static str, Vec<Value>>,
}

impl Reference {
    /// Sends the first requests of `op` to `gateway` at `target` and compares the answers with the
    /// reference (Taproom's, taken on the first Taproom run; a run without Taproom compares the
    /// peers with the first gateway measured). The first Taproom answer of each operation also
    /// leaves its query plan in `plans_dir` as `plan-<operation>.txt`.
    pub(crate) async fn check(
        &mut self,
        gateway: Gateway,
        op: &Operation,
        target: &Target,
        plans_dir: &Path,
    ) -> Result<()> {
        let mut connections = vec![None];
        let mut answers = Vec::new();
        for unit in op.gateway_work.iter().take(CHECKED_ANSWERS) {
            let body = load::send(std::slice::from_ref(target), &mut connections, &unit[0])
                .await
                .with_context(|| format!("{} answering {}", gateway.label(), op.name))?;
            answers.push(serde_json::from_slice::<Value>(&body)?);
        }
        match self.answers.get(op.name) {
            None => {
                check_meaningful(op.name, &answers)?;
                self.answers.insert(op.name, answers);
                if gateway == Gateway::Taproom {
                    // Keep the plan beside the results: it shows what each gateway has to do.
                    let step = load::Step {
                        query_plan: true,
                        ..op.gateway_work[0][0].clone()
                    };
                    let body =
                        load::send(std::slice::from_ref(target), &mut connections, &step).await?;
                    let answer: Value = serde_json::from_slice(&body)?;
                    if let Some(plan) = answer["extensions"]["queryPlan"].as_str() {
                        std::fs::write(plans_dir.join(format!("plan-{}.txt", op.name)), plan)?;
                    }
                }
            }
            Some(expected) => {
                for (i, (got, want)) in answers.iter().zip(expected).enumerate() {
                    if let Some(difference) = first_difference(want, got, "") {
                        bail!(
                            "{} answers request {i} of {} differently from the reference: {difference}",
                            gateway.label(),
                            op.name
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The mean size in bytes of the reference answers to `operation` as compact JSON (0 if it was
    /// never answered).
    pub(crate) fn mean_size(&self, operation: &str) -> usize {
        self.answers
            .get(operation)
            .map(|answers| {
                answers.iter().map(|a| a.to_string().len()).sum::<usize>() / answers.len().max(1)
            })
            .unwrap_or(0)
    }
}

/// Refuses reference answers that prove nothing (empty lists, nulls where data is expected).
fn check_meaningful(operation: &str, answers: &[Value]) -> Result<()> {
    for answer in answers {
        let data = &answer["data"];
        let ok = match operation {
            "heavy" => data["myOrders"][0]["owner"]["orders"]
                .as_array()
                .is_some_and(|o| o.len() > 1),
            "one-hop" => data["beer"]["name"].is_string(),
            "catalog" => data["beers"]["edges"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            _ => true,
        };
        if !ok {
            bail!("the reference answer to {operation} holds no data to compare: {answer:.500}");
        }
    }
    Ok(())
}

/// The first place where two JSON values differ, described, or `None` if they are equal.
fn first_difference(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, value) in w {
                match g.get(key) {
                    None => return Some(format!("{path}/{key} is missing")),
                    Some(other) => {
                        if let Some(d) = first_difference(value, other, &format!("{path}/{key}")) {
                            return Some(d);
                        }
                    }
                }
            }
            g.keys()
                .find(|key| !w.contains_key(*key))
                .map(|key| format!("{path}/{key} is unexpected"))
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (w, g))| first_difference(w, g, &format!("{path}/{i}"))),
        _ if want == got => None,
        _ => Some(format!("at {path:?} expected {want:.200}, got {got:.200}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_name_the_first_path_that_differs() {
        let want = json!({"data": {"a": [1, {"b": "x"}]}});
        assert_eq!(first_difference(&want, &want.clone(), ""), None);
        let got = json!({"data": {"a": [1, {"b": "y"}]}});
        let d = first_difference(&want, &got, "").expect("they differ");
        assert!(d.contains("/data/a/1/b"), "{d}");
        let extra = json!({"data": {"a": [1, {"b": "x"}]}, "errors": []});
        assert!(first_difference(&want, &extra, "")
            .expect("extra member")
            .contains("/errors"));
        let short = json!({"data": {"a": [1]}});
        assert!(first_difference(&want, &short, "").is_some());
    }
}
