//! HR roster: `employee_id, name, department, hire_date, termination_date`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{line_error, read_table};
use crate::error::Result;
use crate::normalize::TimeParser;

#[derive(Debug, Clone)]
pub struct Employee {
    pub id: String,
    pub name: String,
    pub department: String,
    /// `termination_date` as written, for reports.
    pub termination_date: Option<String>,
    /// First instant after the termination day ends in the company zone (UTC ms).
    pub access_ends: Option<i64>,
}

pub fn load_roster(path: &Path, time: &TimeParser) -> Result<BTreeMap<String, Employee>> {
    let mut out = BTreeMap::new();
    for (line, row) in read_table(path, &["employee_id", "termination_date"])? {
        let get = |k: &str| row.get(k).cloned().unwrap_or_default();
        let id = get("employee_id");
        if id.is_empty() {
            return Err(line_error(path, line, "empty employee_id".into()));
        }
        let term = get("termination_date");
        let access_ends = if term.is_empty() {
            None
        } else {
            Some(
                time.end_of_day(&term)
                    .map_err(|r| line_error(path, line, format!("termination_date: {r}")))?,
            )
        };
        let employee = Employee {
            id: id.clone(),
            name: get("name"),
            department: get("department"),
            termination_date: (!term.is_empty()).then_some(term),
            access_ends,
        };
        if out.insert(id.clone(), employee).is_some() {
            return Err(line_error(
                path,
                line,
                format!("duplicate employee_id {id:?}"),
            ));
        }
    }
    Ok(out)
}
