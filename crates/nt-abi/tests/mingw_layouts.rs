//! Independent cross-check of nt-abi against mingw-w64's DDK headers.
//!
//! nt-abi is the single source of truth for the x64 NT layouts that both the driver and ntsim
//! use, so a wrong offset would hide in both at once. This test asks a second, independent
//! description of the same ABI — mingw-w64's `ddk/wdm.h`, compiled by `x86_64-w64-mingw32-gcc`
//! (Debian package `mingw-w64`) — whether it agrees.
//!
//! Nothing is restated here: the rows come from nt-abi's own [`nt_abi::for_each_layout_fact!`]
//! table, and every number written into the generated C (`_Static_assert(sizeof(T) == N)`,
//! `_Static_assert(offsetof(T, f) == N)`) is what the Rust compiler computes for nt-abi's types
//! (`size_of`/`offset_of!`), so the check is "Rust layout == mingw layout", not "table == table".
//!
//! Known, documented difference: mingw-w64 declares `DEVICE_OBJECT` without Windows'
//! `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)`, so its `sizeof` is 0x148 where the WDK (and
//! every Windows x64 type dump) says 0x150. For that one row the check asserts exactly what
//! mingw says, and that rounding it up to nt-abi's 16-byte alignment gives nt-abi's size —
//! see [`MINGW_DIFFERENCES`].
//!
//! A missing compiler FAILS the test naming the package, unless `WDM_ALLOW_SKIP=1`; tests never
//! install anything (`cargo xtask test` installs `mingw-w64` first).

use core::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use nt_abi::*;

const CC: &str = "x86_64-w64-mingw32-gcc";
const CC_PACKAGE: &str = "mingw-w64";

/// One checkable claim: a C integer-constant expression and the value nt-abi says it has.
#[derive(Clone, Debug)]
struct Fact {
    /// Unique label, used as the `_Static_assert` message so failures can be attributed.
    label: String,
    /// C expression evaluated by the mingw compiler.
    c_expr: String,
    /// Value from nt-abi (computed by rustc from the Rust types / constants).
    value: i128,
}

impl Fact {
    fn new(label: impl Into<String>, c_expr: impl Into<String>, value: impl Into<i128>) -> Self {
        Fact {
            label: label.into(),
            c_expr: c_expr.into(),
            value: value.into(),
        }
    }
}

/// Types whose mingw layout is known to differ from Windows' (and nt-abi's), with the reason.
/// `(type, mingw sizeof, why)`.
const MINGW_DIFFERENCES: &[(&str, usize, &str)] = &[(
    "DEVICE_OBJECT",
    0x148,
    "mingw-w64 omits DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) on struct _DEVICE_OBJECT; \
     Windows x64 pads it to a multiple of 16",
)];

fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

/// Turn nt-abi's layout table into facts. The literal numbers in the table are ignored on
/// purpose (layout.rs already pins them at compile time); the C side is fed rustc's values.
macro_rules! facts_from_table {
    (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        facts_from_table!(@fn table_facts, sizes: [$(($t, $size)),*], offsets: [$(($ot, $f, $off)),*],);
    };
    (@fn $fn:ident, sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        fn $fn() -> Vec<Fact> {
            let mut facts = Vec::new();
            $(
                let rust = size_of::<$t>();
                assert_eq!(rust, $size, "nt-abi table row for {} disagrees with size_of", stringify!($t));
                match MINGW_DIFFERENCES.iter().find(|d| d.0 == stringify!($t)) {
                    None => facts.push(Fact::new(
                        concat!("sizeof ", stringify!($t)),
                        concat!("sizeof(", stringify!($t), ")"),
                        rust as i128,
                    )),
                    Some(&(_, mingw, _)) => {
                        // The difference is exactly the missing alignment, nothing else.
                        assert_eq!(round_up(mingw, align_of::<$t>()), rust);
                        facts.push(Fact::new(
                            concat!("sizeof ", stringify!($t), " (mingw, unaligned)"),
                            concat!("sizeof(", stringify!($t), ")"),
                            mingw as i128,
                        ));
                        facts.push(Fact::new(
                            concat!("sizeof ", stringify!($t), " rounded to its Windows alignment"),
                            format!("((sizeof({}) + {a} - 1) / {a} * {a})", stringify!($t), a = align_of::<$t>()),
                            rust as i128,
                        ));
                    }
                }
            )*
            $(
                let rust = offset_of!($ot, $f);
                assert_eq!(rust, $off, "nt-abi table row for {}.{} disagrees with offset_of!", stringify!($ot), stringify!($f));
                facts.push(Fact::new(
                    concat!("offsetof ", stringify!($ot), ".", stringify!($f)),
                    concat!("offsetof(", stringify!($ot), ", ", stringify!($f), ")"),
                    rust as i128,
                ));
            )*
            facts
        }
    };
}
nt_abi::for_each_layout_fact!(facts_from_table);

macro_rules! winnt_facts_from_table {
    (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        facts_from_table!(@fn winnt_table_facts, sizes: [$(($t, $size)),*], offsets: [$(($ot, $f, $off)),*],);
    };
}
nt_abi::for_each_winnt_layout_fact!(winnt_facts_from_table);

/// The DDK translation unit's includes (kernel-mode headers).
const DDK_PRELUDE: &str = "#include <stddef.h>\n#include <ddk/ntddk.h>\n#include <ddk/ntimage.h>\n#include <ntstatus.h>\n";
/// The user-mode `winnt.h` translation unit, for the SEH records the DDK headers omit.
const WINNT_PRELUDE: &str = "#include <stddef.h>\n#include <windows.h>\n";

/// Members a driver reaches through nested unions/structs; nt-abi models the nesting with
/// separate types, C names the path. Values are sums of rustc's offsets.
fn nested_facts() -> Vec<Fact> {
    let tail = offset_of!(IRP, Tail);
    let params = offset_of!(IO_STACK_LOCATION, Parameters);
    let rows: [(&str, &str, usize); 11] = [
        (
            "IRP",
            "Tail.Overlay.Thread",
            tail + offset_of!(IRP_TAIL_OVERLAY, Thread),
        ),
        (
            "IRP",
            "Tail.Overlay.ListEntry",
            tail + offset_of!(IRP_TAIL_OVERLAY, ListEntry),
        ),
        (
            "IRP",
            "Tail.Overlay.CurrentStackLocation",
            tail + offset_of!(IRP_TAIL_OVERLAY, CurrentStackLocation),
        ),
        (
            "IRP",
            "Tail.Overlay.OriginalFileObject",
            tail + offset_of!(IRP_TAIL_OVERLAY, OriginalFileObject),
        ),
        (
            "IRP",
            "IoStatus.Information",
            offset_of!(IRP, IoStatus) + offset_of!(IO_STATUS_BLOCK, Information),
        ),
        (
            "IRP",
            "AssociatedIrp.SystemBuffer",
            offset_of!(IRP, AssociatedIrp),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.OutputBufferLength",
            params + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, OutputBufferLength),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.InputBufferLength",
            params + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, InputBufferLength),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.IoControlCode",
            params + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, IoControlCode),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.Type3InputBuffer",
            params + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, Type3InputBuffer),
        ),
        (
            "DRIVER_EXTENSION",
            "DriverObject",
            offset_of!(DRIVER_EXTENSION, DriverObject),
        ),
    ];
    let mut facts: Vec<Fact> = rows
        .iter()
        .map(|(t, path, v)| {
            Fact::new(
                format!("offsetof {t}.{path}"),
                format!("offsetof({t}, {path})"),
                *v as i128,
            )
        })
        .collect();
    facts.push(Fact::new(
        "sizeof DRIVER_EXTENSION",
        "sizeof(DRIVER_EXTENSION)",
        size_of::<DRIVER_EXTENSION>() as i128,
    ));
    facts.push(Fact::new(
        "sizeof MajorFunction[]",
        "sizeof(((DRIVER_OBJECT *)0)->MajorFunction) / sizeof(void *)",
        IRP_MJ_COUNT as i128,
    ));
    facts
}

/// Constants whose C name equals the nt-abi name (or maps to a C enumerator).
fn constant_facts() -> Vec<Fact> {
    macro_rules! same_name {
        ($($name:ident),* $(,)?) => {
            vec![$(Fact::new(concat!("value ", stringify!($name)), stringify!($name), $name as i128)),*]
        };
    }
    let mut facts = same_name![
        IO_TYPE_DEVICE,
        IO_TYPE_DRIVER,
        IO_TYPE_FILE,
        IO_TYPE_IRP,
        IRP_MJ_CREATE,
        IRP_MJ_CLOSE,
        IRP_MJ_READ,
        IRP_MJ_WRITE,
        IRP_MJ_DEVICE_CONTROL,
        IRP_MJ_INTERNAL_DEVICE_CONTROL,
        IRP_MJ_SHUTDOWN,
        IRP_MJ_CLEANUP,
        IRP_MJ_MAXIMUM_FUNCTION,
        IO_NO_INCREMENT,
        DO_BUFFERED_IO,
        DO_EXCLUSIVE,
        DO_DIRECT_IO,
        DO_DEVICE_INITIALIZING,
        FILE_DEVICE_SECURE_OPEN,
        IRP_BUFFERED_IO,
        IRP_DEALLOCATE_BUFFER,
        IRP_INPUT_OPERATION,
        SL_PENDING_RETURNED,
        FILE_DEVICE_UNKNOWN,
        METHOD_BUFFERED,
        METHOD_IN_DIRECT,
        METHOD_OUT_DIRECT,
        METHOD_NEITHER,
        FILE_ANY_ACCESS,
        FILE_READ_ACCESS,
        FILE_WRITE_ACCESS,
        FILE_READ_DATA,
        FILE_WRITE_DATA,
        GENERIC_READ,
        GENERIC_WRITE,
        GENERIC_ALL,
        SYNCHRONIZE,
        PASSIVE_LEVEL,
        APC_LEVEL,
        DISPATCH_LEVEL,
        HIGH_LEVEL,
        MEMORY_ALLOCATION_ALIGNMENT,
        STATUS_SUCCESS,
        STATUS_PENDING,
        STATUS_TIMEOUT,
        STATUS_BUFFER_OVERFLOW,
        STATUS_UNSUCCESSFUL,
        STATUS_NOT_IMPLEMENTED,
        STATUS_INVALID_HANDLE,
        STATUS_INVALID_PARAMETER,
        STATUS_NO_SUCH_DEVICE,
        STATUS_INVALID_DEVICE_REQUEST,
        STATUS_END_OF_FILE,
        STATUS_ACCESS_DENIED,
        STATUS_BUFFER_TOO_SMALL,
        STATUS_OBJECT_NAME_INVALID,
        STATUS_OBJECT_NAME_NOT_FOUND,
        STATUS_OBJECT_NAME_COLLISION,
        STATUS_INSUFFICIENT_RESOURCES,
        STATUS_NOT_SUPPORTED,
        STATUS_DEVICE_BUSY,
        STATUS_CANCELLED,
        STATUS_INVALID_BUFFER_SIZE,
        STATUS_DEVICE_NOT_READY,
        STATUS_DELETE_PENDING,
    ];
    // C enumerators with CamelCase names.
    let enums: [(&str, i128); 12] = [
        ("CriticalWorkQueue", CRITICAL_WORK_QUEUE.into()),
        ("DelayedWorkQueue", DELAYED_WORK_QUEUE.into()),
        ("HyperCriticalWorkQueue", HYPER_CRITICAL_WORK_QUEUE.into()),
        ("NormalWorkQueue", NORMAL_WORK_QUEUE.into()),
        ("BackgroundWorkQueue", BACKGROUND_WORK_QUEUE.into()),
        ("RealTimeWorkQueue", REAL_TIME_WORK_QUEUE.into()),
        ("SuperCriticalWorkQueue", SUPER_CRITICAL_WORK_QUEUE.into()),
        ("NotificationEvent", NOTIFICATION_EVENT.into()),
        ("SynchronizationEvent", SYNCHRONIZATION_EVENT.into()),
        ("NonPagedPool", NON_PAGED_POOL.into()),
        ("PagedPool", PAGED_POOL.into()),
        ("KernelMode", KERNEL_MODE.into()),
    ];
    facts.extend(
        enums
            .iter()
            .map(|(c, v)| Fact::new(format!("value {c}"), *c, *v)),
    );
    // CTL_CODE macro against nt-abi's ctl_code for every method/access combination.
    for method in [
        METHOD_BUFFERED,
        METHOD_IN_DIRECT,
        METHOD_OUT_DIRECT,
        METHOD_NEITHER,
    ] {
        for access in [FILE_ANY_ACCESS, FILE_READ_ACCESS, FILE_WRITE_ACCESS, 3] {
            for function in [VENDOR_FUNCTION_MIN, VENDOR_FUNCTION_MAX] {
                facts.push(Fact::new(
                    format!("CTL_CODE(0x22, {function:#x}, {method}, {access})"),
                    format!("CTL_CODE(FILE_DEVICE_UNKNOWN, {function:#x}, {method}, {access})"),
                    ctl_code(FILE_DEVICE_UNKNOWN, function, method, access),
                ));
            }
        }
    }
    facts
}

/// The CPU model and SEH facts whose C spelling differs from nt-abi's Rust names, plus their
/// constants (`KPCR.Self` is a Rust keyword; mingw calls the scope table `SCOPE_TABLE_AMD64`).
fn cpu_seh_facts() -> Vec<Fact> {
    let mut facts = vec![
        Fact::new(
            "offsetof KPCR.Self",
            "offsetof(KPCR, Self)",
            offset_of!(KPCR, Self_) as i128,
        ),
        Fact::new(
            "KPCR.Prcb follows the 0x178-byte KPCR at the next 64-byte boundary",
            "((sizeof(KPCR) + 63) / 64 * 64)",
            KPCR_PRCB as i128,
        ),
        Fact::new(
            "offsetof CONTEXT.Xmm0",
            "offsetof(CONTEXT, Xmm0)",
            (offset_of!(CONTEXT, FltSave) + offset_of!(XMM_SAVE_AREA32, XmmRegisters)) as i128,
        ),
        Fact::new(
            "offsetof CONTEXT.Xmm15",
            "offsetof(CONTEXT, Xmm15)",
            (offset_of!(CONTEXT, FltSave) + offset_of!(XMM_SAVE_AREA32, XmmRegisters) + 15 * 16)
                as i128,
        ),
        Fact::new(
            "value KI_USER_SHARED_DATA",
            "KI_USER_SHARED_DATA",
            KI_USER_SHARED_DATA as i128,
        ),
        Fact::new(
            "value SharedInterruptTime",
            "SharedInterruptTime",
            (KI_USER_SHARED_DATA + KUSER_INTERRUPT_TIME) as i128,
        ),
        Fact::new(
            "value SharedSystemTime",
            "SharedSystemTime",
            (KI_USER_SHARED_DATA + KUSER_SYSTEM_TIME) as i128,
        ),
        Fact::new(
            "value SharedTickCount",
            "SharedTickCount",
            (KI_USER_SHARED_DATA + KUSER_TICK_COUNT) as i128,
        ),
    ];
    macro_rules! same_name {
        ($($name:ident),* $(,)?) => {
            $(facts.push(Fact::new(concat!("value ", stringify!($name)), stringify!($name), $name as i128));)*
        };
    }
    same_name![
        STATUS_ACCESS_VIOLATION,
        STATUS_DATATYPE_MISALIGNMENT,
        STATUS_BREAKPOINT,
        STATUS_ILLEGAL_INSTRUCTION,
        STATUS_PRIVILEGED_INSTRUCTION,
        STATUS_INTEGER_DIVIDE_BY_ZERO,
        STATUS_NONCONTINUABLE_EXCEPTION,
        STATUS_INVALID_DISPOSITION,
        STATUS_BAD_STACK,
        STATUS_INVALID_UNWIND_TARGET,
        STATUS_STACK_BUFFER_OVERRUN,
        STATUS_ASSERTION_FAILURE,
        EXCEPTION_NONCONTINUABLE,
        EXCEPTION_MAXIMUM_PARAMETERS,
        EXCEPTION_EXECUTE_HANDLER,
        EXCEPTION_CONTINUE_SEARCH,
        EXCEPTION_CONTINUE_EXECUTION,
        CONTEXT_AMD64,
        CONTEXT_CONTROL,
        CONTEXT_INTEGER,
        CONTEXT_SEGMENTS,
        CONTEXT_FLOATING_POINT,
        CONTEXT_FULL,
        IMAGE_DIRECTORY_ENTRY_EXCEPTION,
        PROCESSOR_FEATURE_MAX,
    ];
    // EXCEPTION_DISPOSITION enumerators.
    for (c, v) in [
        (
            "ExceptionContinueExecution",
            EXCEPTION_CONTINUE_EXECUTION_DISPOSITION,
        ),
        (
            "ExceptionContinueSearch",
            EXCEPTION_CONTINUE_SEARCH_DISPOSITION,
        ),
        (
            "ExceptionNestedException",
            EXCEPTION_NESTED_EXCEPTION_DISPOSITION,
        ),
        (
            "ExceptionCollidedUnwind",
            EXCEPTION_COLLIDED_UNWIND_DISPOSITION,
        ),
        ("NtProductWinNt", NT_PRODUCT_WIN_NT as i32),
    ] {
        facts.push(Fact::new(format!("value {c}"), c, v));
    }
    facts
}

fn all_facts() -> Vec<Fact> {
    let mut facts = table_facts();
    facts.extend(nested_facts());
    facts.extend(constant_facts());
    facts.extend(cpu_seh_facts());
    facts.extend(mdl_facts());
    facts
}

/// MDL flags, the MDL-related enumerators, and `Parameters.Read` / `Parameters.Write` of an
/// IO_STACK_LOCATION (reached through nt-abi's union, checked against wdm.h's member names).
fn mdl_facts() -> Vec<Fact> {
    let params = offset_of!(IO_STACK_LOCATION, Parameters);
    let mut facts = Vec::new();
    for (mj, name) in [("Read", "Read"), ("Write", "Write")] {
        for (field, off) in [
            ("Length", offset_of!(READ_WRITE_PARAMETERS, Length)),
            ("Key", offset_of!(READ_WRITE_PARAMETERS, Key)),
            ("ByteOffset", offset_of!(READ_WRITE_PARAMETERS, ByteOffset)),
        ] {
            facts.push(Fact::new(
                format!("offsetof IO_STACK_LOCATION.Parameters.{name}.{field}"),
                format!("offsetof(IO_STACK_LOCATION, Parameters.{mj}.{field})"),
                (params + off) as i128,
            ));
        }
    }
    macro_rules! same_name {
        ($($name:ident),* $(,)?) => {
            $(facts.push(Fact::new(concat!("value ", stringify!($name)), stringify!($name), $name as u16 as i128));)*
        };
    }
    same_name![
        MDL_MAPPED_TO_SYSTEM_VA,
        MDL_PAGES_LOCKED,
        MDL_SOURCE_IS_NONPAGED_POOL,
        MDL_ALLOCATED_FIXED_SIZE,
        MDL_PARTIAL,
        MDL_PARTIAL_HAS_BEEN_MAPPED,
        MDL_IO_PAGE_READ,
        MDL_WRITE_OPERATION,
        MDL_PARENT_MAPPED_SYSTEM_VA,
        MDL_FREE_EXTRA_PTES,
        MDL_DESCRIBES_AWE,
        MDL_IO_SPACE,
        MDL_NETWORK_HEADER,
        MDL_MAPPING_CAN_FAIL,
        MDL_ALLOCATED_MUST_SUCCEED,
        MDL_INTERNAL,
    ];
    for (c, v) in [
        ("IoReadAccess", IO_READ_ACCESS),
        ("IoWriteAccess", IO_WRITE_ACCESS),
        ("IoModifyAccess", IO_MODIFY_ACCESS),
        ("MmNonCached", MM_NON_CACHED),
        ("MmCached", MM_CACHED),
        ("MmWriteCombined", MM_WRITE_COMBINED),
        ("LowPagePriority", LOW_PAGE_PRIORITY),
        ("NormalPagePriority", NORMAL_PAGE_PRIORITY),
        ("HighPagePriority", HIGH_PAGE_PRIORITY),
        ("sizeof(PFN_NUMBER)", size_of::<PFN_NUMBER>() as i32),
    ] {
        facts.push(Fact::new(format!("value {c}"), c, v));
    }
    facts.push(Fact::new(
        "ADDRESS_AND_SIZE_TO_SPAN_PAGES(0x1FF0, 0x20)",
        "ADDRESS_AND_SIZE_TO_SPAN_PAGES(0x1FF0, 0x20)",
        address_and_size_to_span_pages(0x1FF0, 0x20) as i128,
    ));
    facts
}

/// The C translation unit: one `_Static_assert` per fact. Values are written as signed 64-bit
/// constants and compared in `long long`, so e.g. an NTSTATUS `(NTSTATUS)0xC0000001L` and
/// nt-abi's `i32` compare by value.
fn c_source(prelude: &str, facts: &[Fact]) -> String {
    let mut src = format!(
        "/* generated by crates/nt-abi/tests/mingw_layouts.rs from nt-abi; do not edit */\n{prelude}\n"
    );
    for f in facts {
        assert!(!f.label.contains('"'), "labels are C string literals");
        let value = if f.value < 0 {
            format!("({}LL)", f.value)
        } else {
            format!("{:#x}LL", f.value)
        };
        src.push_str(&format!(
            "_Static_assert((long long)({}) == {value}, \"{}\");\n",
            f.c_expr, f.label
        ));
    }
    src
}

#[derive(Debug)]
enum Outcome {
    /// Every assertion held.
    Agree,
    /// The compiler rejected these labels (static assertion failed), or failed otherwise.
    Disagree { failed: Vec<String>, stderr: String },
    /// The cross compiler is not installed.
    NoCompiler,
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mingw_layouts-{name}"));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn check_with_mingw(name: &str, facts: &[Fact]) -> Outcome {
    check_with_mingw_prelude(name, DDK_PRELUDE, facts)
}

/// mingw-w64's DDK include directory (`ddk/ntddk.h` includes `<wdm.h>` without the prefix).
const MINGW_DDK_INCLUDE: &str = "/usr/share/mingw-w64/include/ddk";

fn check_with_mingw_prelude(name: &str, prelude: &str, facts: &[Fact]) -> Outcome {
    let dir = scratch_dir(name);
    let c = dir.join("layouts.c");
    std::fs::write(&c, c_source(prelude, facts)).expect("write generated C");
    let out = match Command::new(CC)
        .args(["-std=c11", "-fsyntax-only", "-fmax-errors=0", "-w"])
        .arg(format!("-I{MINGW_DDK_INCLUDE}"))
        .arg(&c)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::NoCompiler,
        Err(e) => panic!("cannot run {CC}: {e}"),
    };
    if out.status.success() {
        return Outcome::Agree;
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let failed = stderr
        .lines()
        .filter_map(|l| l.split_once("static assertion failed: \""))
        .map(|(_, rest)| rest.trim_end_matches('"').to_string())
        .collect();
    Outcome::Disagree { failed, stderr }
}

/// A missing tool is a failure, not a pass, unless the caller opted into skipping.
fn require_compiler() -> bool {
    if std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {CC} not found (package {CC_PACKAGE}); WDM_ALLOW_SKIP=1 is set");
        return false;
    }
    panic!(
        "{CC} not found: install the Debian package `{CC_PACKAGE}` (apt-get install {CC_PACKAGE}; \
         `cargo xtask test` does this), or set WDM_ALLOW_SKIP=1 to skip this check"
    );
}

#[test]
fn nt_abi_layouts_match_mingw_ddk_headers() {
    let facts = all_facts();
    assert!(
        facts.len() > 150,
        "the table should produce many rows, got {}",
        facts.len()
    );
    match check_with_mingw("positive", &facts) {
        Outcome::Agree => {}
        Outcome::NoCompiler => {
            if require_compiler() {
                unreachable!()
            }
        }
        Outcome::Disagree { failed, stderr } => panic!(
            "nt-abi and mingw-w64 disagree on {} fact(s): {failed:#?}\n--- compiler output ---\n{stderr}",
            failed.len()
        ),
    }
}

/// SEH facts mingw-w64 declares only in its user-mode `winnt.h`.
fn winnt_facts() -> Vec<Fact> {
    let mut facts = winnt_table_facts();
    facts.extend(vec![
        Fact::new(
            "offsetof SCOPE_TABLE_AMD64.ScopeRecord",
            "offsetof(SCOPE_TABLE_AMD64, ScopeRecord)",
            offset_of!(SCOPE_TABLE, ScopeRecord) as i128,
        ),
        Fact::new(
            "sizeof SCOPE_TABLE_AMD64.ScopeRecord[0]",
            "sizeof(((SCOPE_TABLE_AMD64 *)0)->ScopeRecord[0])",
            size_of::<SCOPE_RECORD>() as i128,
        ),
        Fact::new(
            "offsetof SCOPE_TABLE_AMD64.ScopeRecord[0].JumpTarget",
            "offsetof(SCOPE_TABLE_AMD64, ScopeRecord[0].JumpTarget)",
            (offset_of!(SCOPE_TABLE, ScopeRecord) + offset_of!(SCOPE_RECORD, JumpTarget)) as i128,
        ),
        Fact::new(
            "value FAST_FAIL_INVALID_ARG",
            "FAST_FAIL_INVALID_ARG",
            fast_fail::INVALID_ARG as i128,
        ),
        Fact::new(
            "value FAST_FAIL_CORRUPT_LIST_ENTRY",
            "FAST_FAIL_CORRUPT_LIST_ENTRY",
            fast_fail::CORRUPT_LIST_ENTRY as i128,
        ),
    ]);
    macro_rules! same_name {
        ($($name:ident),* $(,)?) => {
            $(facts.push(Fact::new(concat!("value ", stringify!($name)), stringify!($name), $name as i128));)*
        };
    }
    same_name![
        EXCEPTION_UNWINDING,
        EXCEPTION_EXIT_UNWIND,
        EXCEPTION_STACK_INVALID,
        EXCEPTION_NESTED_CALL,
        EXCEPTION_TARGET_UNWIND,
        EXCEPTION_COLLIDED_UNWIND,
        UNW_FLAG_NHANDLER,
        UNW_FLAG_EHANDLER,
        UNW_FLAG_UHANDLER,
        UNW_FLAG_CHAININFO,
    ];
    facts
}

/// The SEH records mingw-w64 declares only in `winnt.h`.
#[test]
fn nt_abi_seh_layouts_match_mingw_winnt_header() {
    let facts = winnt_facts();
    assert!(
        facts.len() >= 10,
        "expected the winnt rows, got {}",
        facts.len()
    );
    match check_with_mingw_prelude("winnt", WINNT_PRELUDE, &facts) {
        Outcome::Agree => {}
        Outcome::NoCompiler => {
            require_compiler();
        }
        Outcome::Disagree { failed, stderr } => panic!(
            "nt-abi and mingw-w64 winnt.h disagree on {failed:#?}\n--- compiler output ---\n{stderr}"
        ),
    }
}

/// Negative proof for the CPU-model rows: a KUSER_SHARED_DATA offset off by 4 (the classic
/// TickCount mistake) and a CONTEXT.Rip off by 8 must both be caught.
#[test]
fn mingw_check_catches_a_wrong_cpu_offset() {
    let facts = vec![
        Fact::new(
            "bad TickCount",
            "offsetof(KUSER_SHARED_DATA, TickCount)",
            (KUSER_TICK_COUNT + 4) as i128,
        ),
        Fact::new(
            "bad Rip",
            "offsetof(CONTEXT, Rip)",
            (offset_of!(CONTEXT, Rip) + 8) as i128,
        ),
        Fact::new(
            "good Rsp",
            "offsetof(CONTEXT, Rsp)",
            offset_of!(CONTEXT, Rsp) as i128,
        ),
    ];
    match check_with_mingw("cpu_negative", &facts) {
        Outcome::Disagree { mut failed, stderr } => {
            failed.sort();
            assert_eq!(
                failed,
                vec!["bad Rip".to_string(), "bad TickCount".to_string()],
                "{stderr}"
            );
        }
        Outcome::Agree => panic!("the mingw check accepted a wrong KUSER/CONTEXT offset"),
        Outcome::NoCompiler => {
            require_compiler();
        }
    }
}

#[test]
fn every_table_row_is_checked() {
    // Each (type, field) of the layout table must reach the C side; a typo in the generator
    // (e.g. a dropped row) must not silently shrink the check.
    macro_rules! count {
        (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
            [$(stringify!($t)),*].len() + [$(stringify!($f)),*].len()
        };
    }
    let rows = nt_abi::for_each_layout_fact!(count);
    let table = table_facts();
    assert_eq!(table.len(), rows + MINGW_DIFFERENCES.len());
}

/// Negative proof: the same machinery must reject a wrong row, name it, and accept the rest.
#[test]
fn checker_rejects_a_wrong_row() {
    let mut facts = all_facts();
    let irp = facts
        .iter_mut()
        .find(|f| f.label == "sizeof IRP")
        .expect("IRP size row");
    irp.value += 8;
    let tail = facts
        .iter_mut()
        .find(|f| f.label == "offsetof IRP.Tail")
        .expect("IRP.Tail row");
    tail.value -= 8;
    match check_with_mingw("negative", &facts) {
        Outcome::Disagree { failed, stderr } => {
            assert_eq!(
                failed,
                vec!["sizeof IRP".to_string(), "offsetof IRP.Tail".to_string()],
                "exactly the two corrupted rows must fail; compiler said:\n{stderr}"
            );
        }
        Outcome::Agree => panic!("the mingw check accepted a wrong IRP size: it cannot fail"),
        Outcome::NoCompiler => {
            require_compiler();
        }
    }
}

/// Negative proof for the documented DEVICE_OBJECT exception: claiming mingw agrees with the
/// Windows size must fail, so the exception really is 0x148-vs-0x150 and nothing looser.
#[test]
fn device_object_exception_is_exact() {
    let facts = vec![Fact::new(
        "sizeof DEVICE_OBJECT (Windows value)",
        "sizeof(DEVICE_OBJECT)",
        size_of::<DEVICE_OBJECT>() as i128,
    )];
    assert_eq!(size_of::<DEVICE_OBJECT>(), 0x150);
    match check_with_mingw("device_object", &facts) {
        Outcome::Disagree { failed, .. } => {
            assert_eq!(
                failed,
                vec!["sizeof DEVICE_OBJECT (Windows value)".to_string()]
            )
        }
        Outcome::Agree => panic!(
            "mingw now says sizeof(DEVICE_OBJECT) == 0x150; drop the MINGW_DIFFERENCES entry"
        ),
        Outcome::NoCompiler => {
            require_compiler();
        }
    }
}

// Stream ioasync (issue 9): cancel-safe queues and remove locks.

/// IO_CSQ, IO_CSQ_IRP_CONTEXT, the free IO_REMOVE_LOCK and their constants, as wdm.h has them
/// without `DBG`; `checked` adds the `DBG` layout (IO_REMOVE_LOCK = common + debug block).
fn io_async_facts(checked: bool) -> Vec<Fact> {
    let mut facts = Vec::new();
    let mut size = |t: &str, v: usize| {
        facts.push(Fact::new(
            format!("sizeof {t}"),
            format!("sizeof({t})"),
            v as i128,
        ))
    };
    size("IO_CSQ", size_of::<IO_CSQ>());
    size("IO_CSQ_IRP_CONTEXT", size_of::<IO_CSQ_IRP_CONTEXT>());
    size(
        "IO_REMOVE_LOCK_COMMON_BLOCK",
        size_of::<IO_REMOVE_LOCK_COMMON_BLOCK>(),
    );
    size(
        "IO_REMOVE_LOCK_DBG_BLOCK",
        size_of::<IO_REMOVE_LOCK_DBG_BLOCK>(),
    );
    size(
        "IO_REMOVE_LOCK",
        if checked {
            REMLOCK_SIZE_CHECKED
        } else {
            REMLOCK_SIZE_FREE
        } as usize,
    );
    macro_rules! off {
        ($($t:ident . $f:ident),* $(,)?) => {
            $(facts.push(Fact::new(
                concat!("offsetof ", stringify!($t), ".", stringify!($f)),
                concat!("offsetof(", stringify!($t), ", ", stringify!($f), ")"),
                offset_of!($t, $f) as i128,
            ));)*
        };
    }
    off![
        IO_CSQ.Type,
        IO_CSQ.CsqInsertIrp,
        IO_CSQ.CsqRemoveIrp,
        IO_CSQ.CsqPeekNextIrp,
        IO_CSQ.CsqAcquireLock,
        IO_CSQ.CsqReleaseLock,
        IO_CSQ.CsqCompleteCanceledIrp,
        IO_CSQ.ReservePointer,
        IO_CSQ_IRP_CONTEXT.Type,
        IO_CSQ_IRP_CONTEXT.Irp,
        IO_CSQ_IRP_CONTEXT.Csq,
        IO_REMOVE_LOCK_COMMON_BLOCK.Removed,
        IO_REMOVE_LOCK_COMMON_BLOCK.IoCount,
        IO_REMOVE_LOCK_COMMON_BLOCK.RemoveEvent,
        IO_REMOVE_LOCK_DBG_BLOCK.Signature,
        IO_REMOVE_LOCK_DBG_BLOCK.HighWatermark,
        IO_REMOVE_LOCK_DBG_BLOCK.MaxLockedTicks,
        IO_REMOVE_LOCK_DBG_BLOCK.AllocateTag,
        IO_REMOVE_LOCK_DBG_BLOCK.LockList,
        IO_REMOVE_LOCK_DBG_BLOCK.Spin,
        IO_REMOVE_LOCK_DBG_BLOCK.LowMemoryCount,
        IO_REMOVE_LOCK_DBG_BLOCK.Reserved1,
        IO_REMOVE_LOCK_DBG_BLOCK.Reserved2,
        IO_REMOVE_LOCK_DBG_BLOCK.Blocks,
    ];
    if checked {
        off![IO_REMOVE_LOCK_CHECKED.Common, IO_REMOVE_LOCK_CHECKED.Dbg];
        facts.push(Fact::new(
            "offsetof IO_REMOVE_LOCK.Dbg",
            "offsetof(IO_REMOVE_LOCK, Dbg)",
            offset_of!(IO_REMOVE_LOCK_CHECKED, Dbg) as i128,
        ));
    }
    for (c, v) in [
        ("IO_TYPE_CSQ_IRP_CONTEXT", IO_TYPE_CSQ_IRP_CONTEXT),
        ("IO_TYPE_CSQ", IO_TYPE_CSQ),
        ("IO_TYPE_CSQ_EX", IO_TYPE_CSQ_EX),
    ] {
        facts.push(Fact::new(format!("value {c}"), c, v as i128));
    }
    facts.push(Fact::new(
        "DriverContext[3] is the CSQ slot",
        "sizeof(((IRP *)0)->Tail.Overlay.DriverContext) / sizeof(PVOID) - 1",
        CSQ_DRIVER_CONTEXT_SLOT as i128,
    ));
    facts.push(Fact::new(
        "offsetof IRP.CancelRoutine (IoSetCancelRoutine's target)",
        "offsetof(IRP, CancelRoutine)",
        offset_of!(IRP, CancelRoutine) as i128,
    ));
    facts
}

/// The cancel-safe queue and remove-lock layouts agree with mingw-w64's wdm.h, for a free
/// build and for a checked (`DBG=1`) one.
#[test]
fn io_async_layouts_match_mingw_free_and_checked() {
    // IO_REMOVE_LOCK_CHECKED has no C name; its rows are checked through IO_REMOVE_LOCK.
    let strip = |v: Vec<Fact>| -> Vec<Fact> {
        v.into_iter()
            .filter(|f| !f.c_expr.contains("IO_REMOVE_LOCK_CHECKED"))
            .collect()
    };
    let dbg_prelude = format!("#define DBG 1\n{DDK_PRELUDE}");
    for (name, prelude, facts) in [
        (
            "io_async_free",
            DDK_PRELUDE.to_string(),
            io_async_facts(false),
        ),
        ("io_async_checked", dbg_prelude, strip(io_async_facts(true))),
    ] {
        match check_with_mingw_prelude(name, &prelude, &facts) {
            Outcome::Agree => {}
            Outcome::NoCompiler => {
                require_compiler();
            }
            Outcome::Disagree { failed, stderr } => {
                panic!("{name}: nt-abi and mingw-w64 disagree on {failed:#?}\n{stderr}")
            }
        }
    }
    // Negative proof: a checked-size lock claimed for a free build is caught.
    let wrong = vec![Fact::new(
        "free IO_REMOVE_LOCK is not the checked size",
        "sizeof(IO_REMOVE_LOCK)",
        REMLOCK_SIZE_CHECKED as i128,
    )];
    match check_with_mingw_prelude("io_async_negative", DDK_PRELUDE, &wrong) {
        Outcome::Disagree { failed, .. } => {
            assert_eq!(failed, ["free IO_REMOVE_LOCK is not the checked size"])
        }
        Outcome::NoCompiler => {
            require_compiler();
        }
        Outcome::Agree => panic!("the wrong size was not caught"),
    }
}
