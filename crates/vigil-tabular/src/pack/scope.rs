//! What is said about one table among several: file names, titles and evidence.

use serde_json::{Value, json};
use vigil_pack::Files;
use vigil_pack::protocol::{ArtifactRef, Finding};

use super::{artifact, slug, write_file};

/// What is said about one of the input's tables, told apart from the others': when there
/// are several (the sheets of a workbook), file names, titles and evidence name its sheet.
/// The only table of an input needs no more than its columns.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    /// The sheet the table was read from, if it came from a workbook.
    sheet: Option<&'a str>,
    /// The sheet and its 1-based place among the tables, when there are several.
    among: Option<(&'a str, usize)>,
}

impl<'a> Scope<'a> {
    /// The scope of table `index` (0-based) of `count`, read from `sheet`.
    pub(super) fn new(sheet: Option<&'a str>, index: usize, count: usize) -> Scope<'a> {
        Scope { sheet, among: sheet.filter(|_| count > 1).map(|s| (s, index + 1)) }
    }

    /// The name of this table's file `name`: as is, or after the sheet's place and name.
    pub(super) fn file(&self, name: &str) -> String {
        match self.among {
            None => name.to_owned(),
            Some((sheet, n)) => format!("sheet-{n:02}-{}-{name}", slug(sheet)),
        }
    }

    /// `text` about this table, saying which sheet when there are several.
    pub(super) fn describe(&self, text: String) -> String {
        match self.among {
            None => text,
            Some((sheet, _)) => format!("{text} (sheet {sheet:?})"),
        }
    }

    /// Writes `content` as this table's file `name` (see [`Scope::file`]) in the plugin's
    /// output folder, and lists it among `artifacts` with its description.
    pub(super) fn write(
        &self,
        files: &dyn Files,
        artifacts: &mut Vec<ArtifactRef>,
        name: &str,
        content: &str,
        description: String,
    ) -> Result<(), String> {
        let name = self.file(name);
        write_file(files, &name, content)?;
        artifacts.push(artifact(&name, &self.describe(description)));
        Ok(())
    }

    /// Findings about this table: the evidence of each names the sheet it came from (so
    /// a known issue can be narrowed to it), and with several tables the title does too.
    pub(super) fn qualify(&self, findings: &mut [Finding]) {
        let Some(sheet) = self.sheet else { return };
        for finding in findings {
            if self.among.is_some() {
                finding.title = format!("Sheet {sheet:?}: {}", finding.title);
            }
            if let Some(evidence) = &mut finding.evidence {
                evidence.values.insert("sheet".to_owned(), json!(sheet));
            }
        }
    }
}

/// `value` per table: the only table's, or an object keyed by sheet.
pub(super) fn per_table<T>(tables: &[(Option<String>, T)], value: impl Fn(&T) -> Value) -> Value {
    match tables {
        [(_, only)] => value(only),
        _ => Value::Object(tables.iter().map(|(sheet, t)| (sheet.clone().unwrap_or_default(), value(t))).collect()),
    }
}
