//! `ntsim imports`: which of a driver's imports ntsim emulates, and the list of emulated
//! exports (as text, or as the README's markdown table).
//!
//! A PE import names a symbol, not what it is: whether an import is a function or a variable
//! (a data export such as `KdDebuggerEnabled`, whose IAT slot receives the variable's address)
//! is ntoskrnl's knowledge, declared once in `nt_abi::imports::data` ([`is_data_export`] asks it); the report names data imports as data
//! (in the text, the JSON `kind`, and the `missing_data` list) so a driver author knows which
//! kind of binding is missing.
use std::path::Path;

use crate::json::Json;
use crate::pe::imports::{ImportName, import_names};

/// Whether the ntoskrnl export `name` is a variable (data) rather than a function.
pub fn is_data_export(name: &str) -> bool {
    nt_abi::imports::data::is_data(name)
}

/// What an import is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Function,
    Data,
}

impl ImportKind {
    fn of(name: &str) -> ImportKind {
        if is_data_export(name) {
            ImportKind::Data
        } else {
            ImportKind::Function
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Function => "function",
            ImportKind::Data => "data",
        }
    }
}

/// One import of the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportStatus {
    pub dll: String,
    pub name: String,
    pub kind: ImportKind,
    /// ntsim binds it (ntsim emulates `ntoskrnl.exe` only).
    pub emulated: bool,
}

impl ImportStatus {
    fn full(&self) -> String {
        format!("{}!{}", self.dll, self.name)
    }
}

/// `ntsim imports <driver.sys>`.
#[derive(Clone, Debug)]
pub struct ImportsReport {
    pub driver: String,
    /// The image was refused before its imports could be read (not a file, malformed, not
    /// x64, not NATIVE…).
    pub error: Option<String>,
    pub imports: Vec<ImportStatus>,
}

impl ImportsReport {
    /// Read the imports of the image at `path` (nothing is mapped or run).
    pub fn of(path: &Path) -> ImportsReport {
        let (error, imports) = match import_names(path) {
            Ok(v) => (None, v.into_iter().map(classify).collect()),
            Err(e) => (Some(e.to_string()), Vec::new()),
        };
        ImportsReport {
            driver: path.display().to_string(),
            error,
            imports,
        }
    }

    /// Every import is emulated (and the image passed the loader's header checks).
    pub fn can_load(&self) -> bool {
        self.error.is_none() && self.imports.iter().all(|i| i.emulated)
    }

    /// 0 when the driver's imports can all be bound, 2 when not (as `ntsim run`'s
    /// `load_error`).
    pub fn exit_code(&self) -> i32 {
        if self.can_load() { 0 } else { 2 }
    }

    fn missing(&self, kind: ImportKind) -> Vec<String> {
        self.imports
            .iter()
            .filter(|i| !i.emulated && i.kind == kind)
            .map(ImportStatus::full)
            .collect()
    }

    fn count(&self, emulated: bool, kind: ImportKind) -> usize {
        self.imports
            .iter()
            .filter(|i| i.emulated == emulated && i.kind == kind)
            .count()
    }

    pub fn to_json_value(&self) -> Json {
        let imports = self
            .imports
            .iter()
            .map(|i| {
                Json::obj(vec![
                    ("dll", Json::str(&i.dll)),
                    ("name", Json::str(&i.name)),
                    ("kind", Json::str(i.kind.as_str())),
                    ("emulated", Json::Bool(i.emulated)),
                ])
            })
            .collect();
        let strs = |v: Vec<String>| Json::Arr(v.iter().map(Json::str).collect());
        Json::obj(vec![
            ("driver", Json::str(&self.driver)),
            (
                "load_error",
                self.error.as_ref().map(Json::str).unwrap_or(Json::Null),
            ),
            ("imports", Json::Arr(imports)),
            (
                "emulated",
                Json::Num(self.imports.iter().filter(|i| i.emulated).count() as i128),
            ),
            (
                "missing_functions",
                strs(self.missing(ImportKind::Function)),
            ),
            ("missing_data", strs(self.missing(ImportKind::Data))),
            ("can_load", Json::Bool(self.can_load())),
        ])
    }

    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    pub fn to_human(&self) -> String {
        let mut s = format!("driver: {}\n", self.driver);
        if let Some(e) = &self.error {
            s += &format!("load error: {e}\n");
            s += "verdict: refused (the image cannot be loaded)\n";
            return s;
        }
        let w = self
            .imports
            .iter()
            .map(|i| i.full().len())
            .max()
            .unwrap_or(0);
        for i in &self.imports {
            s += &format!(
                "{:<w$}  {:<8}  {}\n",
                i.full(),
                i.kind.as_str(),
                if i.emulated { "emulated" } else { "MISSING" }
            );
        }
        let (f, d) = (ImportKind::Function, ImportKind::Data);
        s += &format!(
            "{} imports: {} emulated (functions: {}, data: {}), {} missing (functions: {}, \
             data: {})\n",
            self.imports.len(),
            self.count(true, f) + self.count(true, d),
            self.count(true, f),
            self.count(true, d),
            self.count(false, f) + self.count(false, d),
            self.count(false, f),
            self.count(false, d),
        );
        for (what, v) in [("functions", self.missing(f)), ("data", self.missing(d))] {
            if !v.is_empty() {
                s += &format!("missing {what}: {}\n", v.join(", "));
            }
        }
        s += if self.can_load() {
            "verdict: every import is emulated: the driver can load\n"
        } else {
            "verdict: refused at load (missing imports)\n"
        };
        s
    }
}

fn classify(i: ImportName) -> ImportStatus {
    let emulated =
        i.dll.eq_ignore_ascii_case("ntoskrnl.exe") && crate::exports::lookup(&i.name).is_some();
    ImportStatus {
        kind: ImportKind::of(&i.name),
        dll: i.dll,
        name: i.name,
        emulated,
    }
}

/// The emulated exports as the README's table (`ntsim imports --markdown`): a count, then one
/// row per export, sorted.
pub fn markdown() -> String {
    let names = crate::exports::names();
    let data = names.iter().filter(|n| is_data_export(n)).count();
    let mut s = format!(
        "{} emulated `ntoskrnl.exe` exports ({} functions, {} data):\n\n| export | kind |\n|---|---|\n",
        names.len(),
        names.len() - data,
        data
    );
    for n in &names {
        s += &format!("| `{n}` | {} |\n", ImportKind::of(n).as_str());
    }
    s
}
