//! Our own checker of the rules Microsoft documents for a *primitive driver* INF (a non-PnP
//! kernel service installed from the driver store), as `driver.inx` must satisfy them.
//!
//! **This is not infverif**, nor a replacement for it. infverif runs the INF through the parser
//! Windows itself uses; this module encodes, one function per rule, what Microsoft's pages *say*
//! such an INF must look like, each rule's doc comment citing the page (and, where the page has
//! one, infverif's error code) it follows. It was written from those pages and has never been
//! compared with infverif's output: no Windows machine or WDK is available to this project.
//! `cargo make` on Windows still runs `infverif /v /w` on the stamped INF (wdk-build 0.6.0's
//! `infverif` task), and that remains the authority.
//!
//! The parser understands what the rules need: `[section]` headers, `key = value[,value…]`
//! entries and bare lines (file lists), `;` comments outside double quotes, `\` line
//! continuations, and `%token%` lookup in `[Strings]`. Section and key names compare
//! case-insensitively, as in Windows INF processing.

use std::fmt;

/// One INF line inside a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the source text.
    pub line: usize,
    /// `key` of `key = values`; `None` for a bare line (e.g. a file name in a file-list section).
    pub key: Option<String>,
    /// Comma-separated fields, trimmed, surrounding quotes removed. Empty fields are kept.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// All entries whose key is `key` (directives such as CopyFiles may repeat).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| {
            e.key
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(key))
        })
    }

    /// The first value of the first `key` entry.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| {
                e.key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
            })
            .and_then(|e| e.values.first())
            .map(String::as_str)
    }
}

/// A parsed INF file.
#[derive(Debug, Clone, Default)]
pub struct Inf {
    pub sections: Vec<Section>,
}

/// Split `s` at `sep` characters that are outside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

fn field(s: &str) -> String {
    let t = s.trim();
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
}

impl Inf {
    pub fn parse(text: &str) -> Inf {
        let mut inf = Inf::default();
        let mut pending = String::new();
        let mut pending_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let code = split_outside_quotes(raw, ';')[0].trim_end();
            if pending.is_empty() {
                pending_line = i + 1;
            }
            if let Some(head) = code.strip_suffix('\\') {
                pending.push_str(head);
                continue;
            }
            pending.push_str(code);
            let line = std::mem::take(&mut pending);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inf.sections.push(Section {
                    name: name.trim().to_string(),
                    line: pending_line,
                    entries: Vec::new(),
                });
                continue;
            }
            let Some(section) = inf.sections.last_mut() else {
                continue; // text before the first section is ignored, as by Windows
            };
            let kv = split_outside_quotes(line, '=');
            let (key, rest) = if kv.len() > 1 {
                (Some(field(kv[0])), line[kv[0].len() + 1..].to_string())
            } else {
                (None, line.to_string())
            };
            section.entries.push(Entry {
                line: pending_line,
                key,
                values: split_outside_quotes(&rest, ',')
                    .into_iter()
                    .map(field)
                    .collect(),
            });
        }
        inf
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Sections named `base` or `base.<decoration>` (case-insensitive).
    pub fn sections_named<'a>(&'a self, base: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| {
            s.name.len() >= base.len()
                && s.name.is_char_boundary(base.len())
                && s.name[..base.len()].eq_ignore_ascii_case(base)
                && (s.name.len() == base.len() || s.name[base.len()..].starts_with('.'))
        })
    }

    /// `%token%` replaced from `[Strings]` (unknown tokens and `%13%`-style DIRIDs stay as is).
    pub fn expand(&self, value: &str) -> String {
        let Some(name) = value.strip_prefix('%').and_then(|v| v.strip_suffix('%')) else {
            return value.to_string();
        };
        self.section("Strings")
            .and_then(|s| s.value(name))
            .map_or_else(|| value.to_string(), str::to_string)
    }

    /// Every section named by a `directive` (e.g. CopyFiles) anywhere in the INF, with the
    /// section that references it. `@file` single-file forms are returned as written.
    fn referenced_by<'a>(&'a self, directive: &'a str) -> Vec<(&'a Section, String)> {
        let mut v = Vec::new();
        for s in &self.sections {
            for e in s.all(directive) {
                for name in e.values.iter().filter(|n| !n.is_empty()) {
                    v.push((s, name.clone()));
                }
            }
        }
        v
    }

    /// The DIRID (and subdirectory) a file-list section is copied to or deleted from:
    /// its `[DestinationDirs]` entry, else `DefaultDestDir`.
    fn destination(&self, file_list: &str) -> Option<(String, Option<String>)> {
        let dirs = self.section("DestinationDirs")?;
        let e = dirs
            .all(file_list)
            .next()
            .or_else(|| dirs.all("DefaultDestDir").next())?;
        let dirid = e.values.first()?.clone();
        let sub = e.values.get(1).filter(|s| !s.is_empty()).cloned();
        Some((dirid, sub))
    }
}

/// The documented rules, one per variant (see each `check_*` function for its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    VersionComplete,
    ClassGuidPairing,
    PnpLockdown,
    NoManufacturer,
    ArchitectureDecoration,
    MinimumBuild,
    LegacyUninstall,
    NoDefaultUninstall,
    CopyFilesToDirid13,
    NoDelFilesOnDirid13,
    CopyAndDelFilesDisjoint,
    SourceDisksFilesListed,
    ServiceBinaryUnder13,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.message)
    }
}

/// What the INF must provide for the driver it installs.
#[derive(Debug, Clone)]
pub struct Requirements {
    /// The architecture decoration of the install sections: `NTamd64` for an x64 `.sys`.
    pub arch: &'static str,
    /// The lowest Windows 10 build (`10.0...N`) the install sections may allow.
    pub min_build: u32,
}

/// Windows 10 version 1903, the first build that processes `[DefaultInstall]` INFs as primitive
/// drivers ("Creating a primitive driver",
/// <https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>;
/// build numbers: "INF Manufacturer section", *BuildNumber* table,
/// <https://learn.microsoft.com/windows-hardware/drivers/install/inf-manufacturer-section>).
pub const PRIMITIVE_DRIVER_MIN_BUILD: u32 = 18362;

/// Kernel exports that exist only from some Windows 10 build on. `ExAllocatePool2` (and its
/// POOL_FLAGS) is Windows 10 version 2004, build 19041 ("Updating deprecated ExAllocatePool calls
/// to ExAllocatePool2 and ExAllocatePool3",
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/updating-deprecated-exallocatepool-calls>;
/// the build number from the *BuildNumber* table of the INF Manufacturer section page).
pub const IMPORT_MIN_BUILDS: &[(&str, u32)] = &[("ExAllocatePool2", 19041)];

/// The lowest build a driver importing `imports` can load on (primitive drivers need 1903+).
pub fn required_min_build<'a>(imports: impl IntoIterator<Item = &'a str>) -> u32 {
    imports
        .into_iter()
        .filter_map(|i| IMPORT_MIN_BUILDS.iter().find(|(n, _)| *n == i).map(|p| p.1))
        .fold(PRIMITIVE_DRIVER_MIN_BUILD, u32::max)
}

/// Every finding of every rule; empty means the INF follows all of them.
pub fn check(inf: &Inf, req: &Requirements) -> Vec<Finding> {
    let mut out = Vec::new();
    check_version_complete(inf, &mut out);
    check_class_guid_pairing(inf, &mut out);
    check_pnp_lockdown(inf, &mut out);
    check_no_manufacturer(inf, &mut out);
    check_architecture_decoration(inf, req, &mut out);
    check_minimum_build(inf, req, &mut out);
    check_legacy_uninstall(inf, &mut out);
    check_no_default_uninstall(inf, req, &mut out);
    check_copyfiles_to_dirid13(inf, &mut out);
    check_no_delfiles_on_dirid13(inf, &mut out);
    check_copy_and_delfiles_disjoint(inf, &mut out);
    check_source_disks_files_listed(inf, &mut out);
    check_service_binary_under_13(inf, &mut out);
    out
}

fn push(out: &mut Vec<Finding>, rule: Rule, message: impl Into<String>) {
    out.push(Finding {
        rule,
        message: message.into(),
    });
}

/// A primitive driver's `[Version]` must be complete: `Signature = "$WINDOWS NT$"`, and
/// `Provider`, `Class` and `ClassGuid` filled in ("Creating a primitive driver", *INF
/// requirements*, <https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>);
/// a signed package names its catalog with `CatalogFile` ("INF Version section",
/// <https://learn.microsoft.com/windows-hardware/drivers/install/inf-version-section>).
pub fn check_version_complete(inf: &Inf, out: &mut Vec<Finding>) {
    let Some(v) = inf.section("Version") else {
        return push(out, Rule::VersionComplete, "no [Version] section");
    };
    match v.value("Signature") {
        Some(s) if s.eq_ignore_ascii_case("$WINDOWS NT$") => {}
        other => push(
            out,
            Rule::VersionComplete,
            format!("[Version] Signature is {other:?}, expected \"$WINDOWS NT$\""),
        ),
    }
    for key in ["Provider", "Class", "ClassGuid", "CatalogFile"] {
        if v.value(key).is_none_or(|s| s.trim().is_empty()) {
            push(
                out,
                Rule::VersionComplete,
                format!("[Version] has no {key}: a primitive driver's [Version] must be complete"),
            );
        }
    }
}

/// System-defined device setup classes ("System-defined device setup classes available to
/// vendors", <https://learn.microsoft.com/windows-hardware/drivers/install/system-defined-device-setup-classes-available-to-vendors>).
const SYSTEM_CLASSES: &[(&str, &str)] = &[
    ("System", "4d36e97d-e325-11ce-bfc1-08002be10318"),
    ("SoftwareComponent", "5c4c3332-344d-483c-8739-259e934c9cc8"),
    ("Extension", "e2f84ce7-8efa-411c-aa69-97454ca4cb57"),
    ("Net", "4d36e972-e325-11ce-bfc1-08002be10318"),
    ("DiskDrive", "4d36e967-e325-11ce-bfc1-08002be10318"),
    ("Display", "4d36e968-e325-11ce-bfc1-08002be10318"),
    ("HIDClass", "745a17a0-74d3-11d0-b6fe-00a0c90f57da"),
    ("Volume", "71a27cdd-812a-11d0-bec7-08002be2092f"),
];

fn is_guid(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `ClassGuid` is a `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` GUID (infverif 1010), and a
/// system-defined `Class` comes with its own GUID and vice versa (infverif 1280/1281; "INF
/// Version section": an INF that specifies a Class should also specify the corresponding
/// system-defined GUID). Sources: "INF validation errors and warnings",
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>,
/// and the system-defined class table (see `SYSTEM_CLASSES`).
pub fn check_class_guid_pairing(inf: &Inf, out: &mut Vec<Finding>) {
    let Some(v) = inf.section("Version") else {
        return;
    };
    let (Some(class), Some(guid)) = (v.value("Class"), v.value("ClassGuid")) else {
        return; // reported by VersionComplete
    };
    if !is_guid(guid) {
        return push(
            out,
            Rule::ClassGuidPairing,
            format!("ClassGuid {guid:?} is not {{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}}"),
        );
    }
    let bare = &guid[1..guid.len() - 1];
    if let Some((c, g)) = SYSTEM_CLASSES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(class))
        && !g.eq_ignore_ascii_case(bare)
    {
        push(
            out,
            Rule::ClassGuidPairing,
            format!("Class {c} has ClassGuid {{{g}}}, not {guid}"),
        );
    }
    if let Some((c, g)) = SYSTEM_CLASSES
        .iter()
        .find(|(_, g)| g.eq_ignore_ascii_case(bare))
        && !c.eq_ignore_ascii_case(class)
    {
        push(
            out,
            Rule::ClassGuidPairing,
            format!("ClassGuid {{{g}}} is class {c}, not {class}"),
        );
    }
}

/// `[Version]` sets `PnpLockdown = 1`, so that applications cannot modify the installed driver
/// files (infverif 1324, an error under `/w`: "INF validation errors and warnings",
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>; "INF Version section", *PnpLockDown*,
/// <https://learn.microsoft.com/windows-hardware/drivers/install/inf-version-section>).
pub fn check_pnp_lockdown(inf: &Inf, out: &mut Vec<Finding>) {
    let value = inf.section("Version").and_then(|v| v.value("PnpLockdown"));
    if value != Some("1") {
        push(
            out,
            Rule::PnpLockdown,
            format!("[Version] PnpLockdown is {value:?}, expected 1"),
        );
    }
}

/// A primitive driver has no `[Manufacturer]` section ("Creating a primitive driver", *INF
/// requirements*, <https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>;
/// an INF with both DefaultInstall and Manufacturer fails Universal INF validation: "INF
/// DefaultInstall section",
/// <https://learn.microsoft.com/windows-hardware/drivers/install/inf-defaultinstall-section>).
pub fn check_no_manufacturer(inf: &Inf, out: &mut Vec<Finding>) {
    if let Some(s) = inf.section("Manufacturer") {
        push(
            out,
            Rule::NoManufacturer,
            format!(
                "line {}: [Manufacturer] makes this a device INF, not a primitive driver",
                s.line
            ),
        );
    }
}

/// The decoration of a `DefaultInstall…` section name: `(architecture, OS version)` of
/// `DefaultInstall.NTamd64.10.0...19041[.Services]`, e.g. `("NTamd64", Some("10.0...19041"))`.
fn decoration<'a>(name: &'a str, base: &str) -> (Option<&'a str>, Option<&'a str>) {
    let rest = &name[base.len()..];
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    let tail = rest
        .len()
        .checked_sub(8)
        .and_then(|i| rest.get(i..).map(|t| (i, t)));
    let rest = match tail {
        Some((i, t)) if t.eq_ignore_ascii_case("services") => rest[..i].trim_end_matches('.'),
        _ => rest,
    };
    if rest.is_empty() {
        return (None, None);
    }
    match rest.split_once('.') {
        Some((arch, version)) => (Some(arch), Some(version)),
        None => (Some(rest), None),
    }
}

/// `[DefaultInstall]` sections (and their `.Services`) must be architecture-decorated, with no
/// undecorated version present, and at least one must exist ("Creating a primitive driver",
/// <https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>; infverif 1421 and 1423,
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>). The decoration is the driver's architecture (`NTamd64` for x64).
pub fn check_architecture_decoration(inf: &Inf, req: &Requirements, out: &mut Vec<Finding>) {
    let mut any = false;
    for base in ["DefaultInstall", "DefaultUninstall"] {
        for s in inf.sections_named(base) {
            let (arch, _) = decoration(&s.name, base);
            match arch {
                None => push(
                    out,
                    Rule::ArchitectureDecoration,
                    format!(
                        "line {}: [{}] has no architecture decoration (use [{base}.{}])",
                        s.line, s.name, req.arch
                    ),
                ),
                Some(a) if !a.eq_ignore_ascii_case(req.arch) => push(
                    out,
                    Rule::ArchitectureDecoration,
                    format!(
                        "line {}: [{}] is for {a}, the driver is {}",
                        s.line, s.name, req.arch
                    ),
                ),
                Some(_) => any |= base == "DefaultInstall",
            }
        }
    }
    if !any {
        push(
            out,
            Rule::ArchitectureDecoration,
            format!(
                "no [DefaultInstall.{}] section: a primitive driver needs one",
                req.arch
            ),
        );
    }
}

/// The install sections must not install where the driver cannot run: each `[DefaultInstall…]`
/// section carries a *TargetOSVersion* decoration `NTamd64.10.0...<build>` with `<build>` at
/// least the driver's minimum ("Combining platform extensions with operating system versions",
/// <https://learn.microsoft.com/windows-hardware/drivers/install/combining-platform-extensions-with-operating-system-versions>:
/// the format is `nt[Architecture][.[OSMajorVersion][.[OSMinorVersion][.[ProductType][.[SuiteMask][.[BuildNumber]]]]]]`,
/// and a build number must be 14310 or later to be parsed at all).
pub fn check_minimum_build(inf: &Inf, req: &Requirements, out: &mut Vec<Finding>) {
    for s in inf.sections_named("DefaultInstall") {
        let (_, version) = decoration(&s.name, "DefaultInstall");
        let fields: Vec<&str> = version.unwrap_or("").split('.').collect();
        let build = match fields.as_slice() {
            [major, minor, _product, _suite, build] if *major == "10" && *minor == "0" => {
                build.parse::<u32>().ok()
            }
            _ => None,
        };
        match build {
            Some(b) if b >= req.min_build && b >= 14310 => {}
            Some(b) => push(
                out,
                Rule::MinimumBuild,
                format!(
                    "line {}: [{}] installs from build {b}, but the driver needs {} or later",
                    s.line, s.name, req.min_build
                ),
            ),
            None => push(
                out,
                Rule::MinimumBuild,
                format!(
                    "line {}: [{}] has no 10.0...<build> decoration, so it installs on every \
                     Windows 10; the driver needs build {} (decorate it {}.10.0...{})",
                    s.line, s.name, req.min_build, req.arch, req.min_build
                ),
            ),
        }
    }
}

/// A `[DefaultUninstall.NT*]` section must set `LegacyUninstall = 1`, so that Windows 10 1903 and
/// later ignore it and uninstall the primitive driver themselves ("Creating a primitive driver",
/// *Legacy compatibility*, <https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>; infverif 1422,
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>).
pub fn check_legacy_uninstall(inf: &Inf, out: &mut Vec<Finding>) {
    for s in inf.sections_named("DefaultUninstall") {
        if s.name.to_ascii_lowercase().ends_with(".services") {
            continue;
        }
        if s.value("LegacyUninstall") != Some("1") {
            push(
                out,
                Rule::LegacyUninstall,
                format!(
                    "line {}: [{}] does not set LegacyUninstall=1",
                    s.line, s.name
                ),
            );
        }
    }
}

/// "[DefaultUninstall] may not be present in the INF" of a primitive driver; the one exception
/// (with `LegacyUninstall=1`) exists for down-level Windows versions that predate primitive
/// drivers ("Creating a primitive driver", *INF requirements* and *Legacy compatibility*,
/// <https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>). An
/// INF whose install sections all require a build at or above 1903 has no such version to
/// serve, so it has no `[DefaultUninstall…]` at all.
pub fn check_no_default_uninstall(inf: &Inf, req: &Requirements, out: &mut Vec<Finding>) {
    if req.min_build < PRIMITIVE_DRIVER_MIN_BUILD {
        return;
    }
    for s in inf.sections_named("DefaultUninstall") {
        push(
            out,
            Rule::NoDefaultUninstall,
            format!(
                "line {}: [{}]: a primitive driver that installs only on build {} and later is \
                 uninstalled by Windows (pnputil /delete-driver … /uninstall); remove the section",
                s.line, s.name, req.min_build
            ),
        );
    }
}

fn dirid_is_13(dest: &Option<(String, Option<String>)>) -> bool {
    dest.as_ref().is_some_and(|(d, _)| d.trim() == "13")
}

/// Files are copied to DIRID 13, the package's driver-store folder, and never renamed on the way
/// ("Using DIRIDs", <https://learn.microsoft.com/windows-hardware/drivers/install/using-dirids>:
/// a driver must run from the driver store and use DIRID 13; don't use CopyFiles to rename a file
/// for which DestinationDirs is 13. infverif 1322: destination not isolated to DIRID 13, an error
/// under `/w`; 1100: source and destination must match with DIRID 13).
pub fn check_copyfiles_to_dirid13(inf: &Inf, out: &mut Vec<Finding>) {
    for (from, list) in inf.referenced_by("CopyFiles") {
        let target = list
            .strip_prefix('@')
            .map_or(list.as_str(), |_| "DefaultDestDir");
        let dest = inf.destination(target);
        if !dirid_is_13(&dest) {
            push(
                out,
                Rule::CopyFilesToDirid13,
                format!(
                    "[{}] CopyFiles = {list}: destination {:?} is not DIRID 13 (the driver store)",
                    from.name,
                    dest.map(|d| d.0)
                ),
            );
        }
        if list.starts_with('@') {
            continue;
        }
        for e in inf
            .section(&list)
            .map(|s| s.entries.as_slice())
            .unwrap_or(&[])
        {
            // destination-file-name[,source-file-name][,temporary-file-name][,flag]
            let (dest, src) = (e.values.first(), e.values.get(1).filter(|s| !s.is_empty()));
            if let (None, Some(dest), Some(src)) = (&e.key, dest, src)
                && !dest.eq_ignore_ascii_case(src)
            {
                push(
                    out,
                    Rule::CopyFilesToDirid13,
                    format!(
                        "line {}: [{list}] renames {src} to {dest} in the driver store",
                        e.line
                    ),
                );
            }
        }
    }
}

/// No `DelFiles` on a file-list section whose destination is DIRID 13 ("Using DIRIDs", DIRID 13:
/// "Don't use DelFiles on a file for which DestinationDirs includes dirid 13",
/// <https://learn.microsoft.com/windows-hardware/drivers/install/using-dirids>).
pub fn check_no_delfiles_on_dirid13(inf: &Inf, out: &mut Vec<Finding>) {
    for (from, list) in inf.referenced_by("DelFiles") {
        if dirid_is_13(&inf.destination(&list)) {
            push(
                out,
                Rule::NoDelFilesOnDirid13,
                format!(
                    "[{}] DelFiles = {list}: its destination is DIRID 13; files in the driver \
                     store are removed with the package",
                    from.name
                ),
            );
        }
    }
}

/// No section is referenced by both a CopyFiles and a DelFiles directive (infverif 1205, a
/// warning under `/w`; "INF validation errors and warnings",
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>).
pub fn check_copy_and_delfiles_disjoint(inf: &Inf, out: &mut Vec<Finding>) {
    let copied: Vec<String> = inf
        .referenced_by("CopyFiles")
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    for (from, list) in inf.referenced_by("DelFiles") {
        if copied.iter().any(|c| c.eq_ignore_ascii_case(&list)) {
            push(
                out,
                Rule::CopyAndDelFilesDisjoint,
                format!(
                    "[{list}] is referenced by CopyFiles and by DelFiles (in [{}])",
                    from.name
                ),
            );
        }
    }
}

/// The source name of every file the INF copies (a file-list line's second field when given,
/// else its first).
fn copied_files(inf: &Inf) -> Vec<String> {
    let mut files = Vec::new();
    for (_, list) in inf.referenced_by("CopyFiles") {
        if let Some(single) = list.strip_prefix('@') {
            files.push(single.to_string());
            continue;
        }
        for e in inf
            .section(&list)
            .map(|s| s.entries.as_slice())
            .unwrap_or(&[])
        {
            let src = e.values.get(1).filter(|s| !s.is_empty());
            if e.key.is_none()
                && let Some(f) = src.or(e.values.first())
            {
                files.push(f.clone());
            }
        }
    }
    files
}

/// Every file a CopyFiles section names is listed in `[SourceDisksFiles]` (infverif 1230, "Missing
/// file under [SourceDisksFiles] section"; "INF validation errors and warnings",
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>).
pub fn check_source_disks_files_listed(inf: &Inf, out: &mut Vec<Finding>) {
    let listed: Vec<&str> = inf
        .sections_named("SourceDisksFiles")
        .flat_map(|s| s.entries.iter())
        .filter_map(|e| e.key.as_deref())
        .collect();
    for f in copied_files(inf) {
        if !listed.iter().any(|l| l.eq_ignore_ascii_case(&f)) {
            push(
                out,
                Rule::SourceDisksFilesListed,
                format!("{f} is copied but not listed in [SourceDisksFiles]"),
            );
        }
    }
}

/// Every service an install section adds runs its binary from the driver store: the
/// service-install section's `ServiceBinary` is `%13%\<file>` (infverif 2085, "should be specified
/// as a path under a DIRID"; "Run from Driver Store",
/// <https://learn.microsoft.com/windows-hardware/drivers/develop/run-from-driver-store>) and
/// `<file>` is one the package copies (infverif 2084, "should reference a CopyFiles destination
/// file", an error under `/w`; "INF validation errors and warnings",
/// <https://learn.microsoft.com/windows-hardware/drivers/devtest/inf-validation-errors-and-warnings>).
pub fn check_service_binary_under_13(inf: &Inf, out: &mut Vec<Finding>) {
    let copied = copied_files(inf);
    let mut services = 0;
    for s in inf
        .sections
        .iter()
        .filter(|s| s.name.to_ascii_lowercase().ends_with(".services"))
    {
        for e in s.all("AddService") {
            services += 1;
            let name = inf.expand(e.values.first().map_or("", String::as_str));
            let Some(install) = e.values.get(2).and_then(|n| inf.section(n)) else {
                push(
                    out,
                    Rule::ServiceBinaryUnder13,
                    format!(
                        "line {}: AddService {name} names no existing service-install section",
                        e.line
                    ),
                );
                continue;
            };
            let binary = install.value("ServiceBinary").unwrap_or("");
            match binary.strip_prefix("%13%\\") {
                Some(file) if copied.iter().any(|c| c.eq_ignore_ascii_case(file)) => {}
                Some(file) => push(
                    out,
                    Rule::ServiceBinaryUnder13,
                    format!(
                        "[{}] ServiceBinary {binary:?}: {file} is not copied by any CopyFiles",
                        install.name
                    ),
                ),
                None => push(
                    out,
                    Rule::ServiceBinaryUnder13,
                    format!(
                        "[{}] ServiceBinary {binary:?} is not %13%\\<file> (run from the driver \
                         store)",
                        install.name
                    ),
                ),
            }
        }
    }
    if services == 0 {
        push(
            out,
            Rule::ServiceBinaryUnder13,
            "no AddService in any .Services section: the kernel service is never created",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_entries_comments_quotes_and_continuations() {
        let inf = Inf::parse(
            "junk\n[A]\nKey = \"x;y\" , 2 ; comment\nbare.sys\n[b.c]\nLong = 1,\\\n 2\n",
        );
        let a = inf.section("a").unwrap();
        assert_eq!(a.line, 2);
        assert_eq!(a.value("key"), Some("x;y"));
        assert_eq!(a.entries[0].values, vec!["x;y", "2"]);
        assert_eq!(a.entries[1].key, None);
        assert_eq!(a.entries[1].values, vec!["bare.sys"]);
        let b = inf.section("B.C").unwrap();
        assert_eq!(b.entries[0].values, vec!["1", "2"]);
        assert_eq!(b.entries[0].line, 6);
        assert_eq!(inf.sections_named("b").count(), 1);
        assert_eq!(inf.sections_named("").count(), 0);
    }

    #[test]
    fn decorations_split_architecture_version_and_services() {
        let d = |n| decoration(n, "DefaultInstall");
        assert_eq!(d("DefaultInstall"), (None, None));
        assert_eq!(d("DefaultInstall.Services"), (None, None));
        assert_eq!(d("DefaultInstall.NTamd64"), (Some("NTamd64"), None));
        assert_eq!(
            d("DefaultInstall.NTamd64.10.0...19041.Services"),
            (Some("NTamd64"), Some("10.0...19041"))
        );
    }

    #[test]
    fn guids_and_minimum_builds() {
        assert!(is_guid("{4d36e97d-e325-11ce-bfc1-08002be10318}"));
        assert!(!is_guid("4d36e97d-e325-11ce-bfc1-08002be10318"));
        assert!(!is_guid("{4d36e97d-e325-11ce-bfc1-08002be1031}"));
        assert_eq!(required_min_build(["IoCreateDevice"]), 18362);
        assert_eq!(
            required_min_build(["IoCreateDevice", "ExAllocatePool2"]),
            19041
        );
    }
}
