//! x64 structured exception handling (these are the x64 records; ARM64's CONTEXT and unwind
//! data differ and are not modelled): `.pdata`/`.xdata` unwind data, the C language handler's
//! scope table, and the records the exception dispatcher passes around (winnt.h / ntddk.h,
//! "x64 exception handling" in Microsoft's C++ ABI documentation). Layouts are pinned in
//! [`crate::layout`] and re-checked against mingw-w64's `winnt.h` by `tests/mingw_layouts.rs`.
#![allow(non_camel_case_types, non_snake_case)]

use crate::types::*;

/// `RUNTIME_FUNCTION` (`.pdata` entry, also `IMAGE_RUNTIME_FUNCTION_ENTRY`): RVAs of a function's
/// start, end (exclusive) and its `UNWIND_INFO`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RUNTIME_FUNCTION {
    pub BeginAddress: ULONG,
    pub EndAddress: ULONG,
    pub UnwindData: ULONG,
}

/// The fixed head of `UNWIND_INFO` (`.xdata`): `Version:3 Flags:5`, `SizeOfProlog`,
/// `CountOfCodes`, `FrameRegister:4 FrameOffset:4`, followed by `CountOfCodes` 16-bit
/// [`UNWIND_CODE`] slots (padded to an even count), then either a handler RVA plus its data
/// ([`UNW_FLAG_EHANDLER`]/[`UNW_FLAG_UHANDLER`]) or a chained [`RUNTIME_FUNCTION`]
/// ([`UNW_FLAG_CHAININFO`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UNWIND_INFO {
    pub VersionAndFlags: UCHAR,
    pub SizeOfProlog: UCHAR,
    pub CountOfCodes: UCHAR,
    pub FrameRegisterAndOffset: UCHAR,
}

/// One unwind-code slot: `CodeOffset` (prolog offset after the operation), `UnwindOp:4 OpInfo:4`.
pub type UNWIND_CODE = u16;

pub const UNW_FLAG_NHANDLER: u8 = 0x0;
/// The function has an exception handler (called while looking for a handler).
pub const UNW_FLAG_EHANDLER: u8 = 0x1;
/// The function has a termination handler (called while unwinding).
pub const UNW_FLAG_UHANDLER: u8 = 0x2;
/// This unwind info continues a primary function's (chained `RUNTIME_FUNCTION` follows).
pub const UNW_FLAG_CHAININFO: u8 = 0x4;

/// Unwind operation codes.
pub mod uwop {
    pub const PUSH_NONVOL: u8 = 0;
    pub const ALLOC_LARGE: u8 = 1;
    pub const ALLOC_SMALL: u8 = 2;
    pub const SET_FPREG: u8 = 3;
    pub const SAVE_NONVOL: u8 = 4;
    pub const SAVE_NONVOL_FAR: u8 = 5;
    /// Version 2 only: epilog descriptor (ignored by the virtual unwinder).
    pub const EPILOG: u8 = 6;
    pub const SPARE_CODE: u8 = 7;
    pub const SAVE_XMM128: u8 = 8;
    pub const SAVE_XMM128_FAR: u8 = 9;
    pub const PUSH_MACHFRAME: u8 = 10;
}

/// One entry of the C language handler's scope table (`SCOPE_TABLE_AMD64.ScopeRecord`): the
/// guarded code range `[BeginAddress, EndAddress)`, `HandlerAddress` (an `__except` filter
/// function, the constant [`EXCEPTION_EXECUTE_HANDLER`] when the filter is that constant, or a
/// `__finally` block) and `JumpTarget` (the `__except` block; 0 for `__finally`). All RVAs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SCOPE_RECORD {
    pub BeginAddress: ULONG,
    pub EndAddress: ULONG,
    pub HandlerAddress: ULONG,
    pub JumpTarget: ULONG,
}

/// `SCOPE_TABLE_AMD64`: the language-specific handler data of `__C_specific_handler`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SCOPE_TABLE {
    pub Count: ULONG,
    pub ScopeRecord: [SCOPE_RECORD; 1],
}

/// `EXCEPTION_MAXIMUM_PARAMETERS`.
pub const EXCEPTION_MAXIMUM_PARAMETERS: usize = 15;

/// `EXCEPTION_RECORD` (x64, 0x98 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EXCEPTION_RECORD {
    pub ExceptionCode: NTSTATUS,
    pub ExceptionFlags: ULONG,
    pub ExceptionRecord: *mut EXCEPTION_RECORD,
    pub ExceptionAddress: PVOID,
    pub NumberParameters: ULONG,
    pub ExceptionInformation: [ULONG_PTR; EXCEPTION_MAXIMUM_PARAMETERS],
}

/// `EXCEPTION_RECORD.ExceptionFlags`.
pub const EXCEPTION_NONCONTINUABLE: ULONG = 0x1;
pub const EXCEPTION_UNWINDING: ULONG = 0x2;
pub const EXCEPTION_EXIT_UNWIND: ULONG = 0x4;
pub const EXCEPTION_STACK_INVALID: ULONG = 0x8;
pub const EXCEPTION_NESTED_CALL: ULONG = 0x10;
pub const EXCEPTION_TARGET_UNWIND: ULONG = 0x20;
pub const EXCEPTION_COLLIDED_UNWIND: ULONG = 0x40;
/// `EXCEPTION_UNWIND`: either unwind flag.
pub const EXCEPTION_UNWIND: ULONG = EXCEPTION_UNWINDING | EXCEPTION_EXIT_UNWIND;

/// `EXCEPTION_DISPOSITION`, returned by language handlers.
pub type EXCEPTION_DISPOSITION = i32;
pub const EXCEPTION_CONTINUE_EXECUTION_DISPOSITION: EXCEPTION_DISPOSITION = 0;
pub const EXCEPTION_CONTINUE_SEARCH_DISPOSITION: EXCEPTION_DISPOSITION = 1;
pub const EXCEPTION_NESTED_EXCEPTION_DISPOSITION: EXCEPTION_DISPOSITION = 2;
pub const EXCEPTION_COLLIDED_UNWIND_DISPOSITION: EXCEPTION_DISPOSITION = 3;

/// `__except` filter results (excpt.h).
pub const EXCEPTION_EXECUTE_HANDLER: LONG = 1;
pub const EXCEPTION_CONTINUE_SEARCH: LONG = 0;
pub const EXCEPTION_CONTINUE_EXECUTION: LONG = -1;

/// `EXCEPTION_POINTERS`: what a filter's `GetExceptionInformation()` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EXCEPTION_POINTERS {
    pub ExceptionRecord: *mut EXCEPTION_RECORD,
    pub ContextRecord: *mut CONTEXT,
}

/// `M128A`.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct M128A {
    pub Low: u64,
    pub High: i64,
}

/// `XMM_SAVE_AREA32` (the `fxsave` image, 0x200 bytes).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct XMM_SAVE_AREA32 {
    pub ControlWord: USHORT,
    pub StatusWord: USHORT,
    pub TagWord: UCHAR,
    pub Reserved1: UCHAR,
    pub ErrorOpcode: USHORT,
    pub ErrorOffset: ULONG,
    pub ErrorSelector: USHORT,
    pub Reserved2: USHORT,
    pub DataOffset: ULONG,
    pub DataSelector: USHORT,
    pub Reserved3: USHORT,
    pub MxCsr: ULONG,
    pub MxCsr_Mask: ULONG,
    pub FloatRegisters: [M128A; 8],
    pub XmmRegisters: [M128A; 16],
    pub Reserved4: [UCHAR; 96],
}

/// `CONTEXT` (x64, 0x4D0 bytes, 16-byte aligned).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct CONTEXT {
    pub P1Home: u64,
    pub P2Home: u64,
    pub P3Home: u64,
    pub P4Home: u64,
    pub P5Home: u64,
    pub P6Home: u64,
    pub ContextFlags: ULONG,
    pub MxCsr: ULONG,
    pub SegCs: USHORT,
    pub SegDs: USHORT,
    pub SegEs: USHORT,
    pub SegFs: USHORT,
    pub SegGs: USHORT,
    pub SegSs: USHORT,
    pub EFlags: ULONG,
    pub Dr0: u64,
    pub Dr1: u64,
    pub Dr2: u64,
    pub Dr3: u64,
    pub Dr6: u64,
    pub Dr7: u64,
    pub Rax: u64,
    pub Rcx: u64,
    pub Rdx: u64,
    pub Rbx: u64,
    pub Rsp: u64,
    pub Rbp: u64,
    pub Rsi: u64,
    pub Rdi: u64,
    pub R8: u64,
    pub R9: u64,
    pub R10: u64,
    pub R11: u64,
    pub R12: u64,
    pub R13: u64,
    pub R14: u64,
    pub R15: u64,
    pub Rip: u64,
    /// `FltSave`; `Xmm0`..`Xmm15` are its `XmmRegisters`.
    pub FltSave: XMM_SAVE_AREA32,
    pub VectorRegister: [M128A; 26],
    pub VectorControl: u64,
    pub DebugControl: u64,
    pub LastBranchToRip: u64,
    pub LastBranchFromRip: u64,
    pub LastExceptionToRip: u64,
    pub LastExceptionFromRip: u64,
}

impl CONTEXT {
    /// An all-zero context.
    pub const fn zeroed() -> CONTEXT {
        // SAFETY: CONTEXT is plain integers and arrays of them; all-zero is a valid value.
        unsafe { core::mem::zeroed() }
    }

    /// The 16 integer registers in x64 encoding order (RAX=0 … R15=15), as the unwind codes
    /// and ModRM number them.
    pub fn gpr(&self, n: u8) -> u64 {
        match n & 15 {
            0 => self.Rax,
            1 => self.Rcx,
            2 => self.Rdx,
            3 => self.Rbx,
            4 => self.Rsp,
            5 => self.Rbp,
            6 => self.Rsi,
            7 => self.Rdi,
            8 => self.R8,
            9 => self.R9,
            10 => self.R10,
            11 => self.R11,
            12 => self.R12,
            13 => self.R13,
            14 => self.R14,
            _ => self.R15,
        }
    }

    /// Set integer register `n` (x64 encoding order).
    pub fn set_gpr(&mut self, n: u8, v: u64) {
        let r = match n & 15 {
            0 => &mut self.Rax,
            1 => &mut self.Rcx,
            2 => &mut self.Rdx,
            3 => &mut self.Rbx,
            4 => &mut self.Rsp,
            5 => &mut self.Rbp,
            6 => &mut self.Rsi,
            7 => &mut self.Rdi,
            8 => &mut self.R8,
            9 => &mut self.R9,
            10 => &mut self.R10,
            11 => &mut self.R11,
            12 => &mut self.R12,
            13 => &mut self.R13,
            14 => &mut self.R14,
            _ => &mut self.R15,
        };
        *r = v;
    }
}

/// `CONTEXT.ContextFlags`.
pub const CONTEXT_AMD64: ULONG = 0x0010_0000;
pub const CONTEXT_CONTROL: ULONG = CONTEXT_AMD64 | 0x1;
pub const CONTEXT_INTEGER: ULONG = CONTEXT_AMD64 | 0x2;
pub const CONTEXT_SEGMENTS: ULONG = CONTEXT_AMD64 | 0x4;
pub const CONTEXT_FLOATING_POINT: ULONG = CONTEXT_AMD64 | 0x8;
pub const CONTEXT_FULL: ULONG = CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT;

/// `DISPATCHER_CONTEXT` (x64, 0x50 bytes): what the dispatcher passes a language handler.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_CONTEXT {
    pub ControlPc: u64,
    pub ImageBase: u64,
    pub FunctionEntry: *mut RUNTIME_FUNCTION,
    pub EstablisherFrame: u64,
    pub TargetIp: u64,
    pub ContextRecord: *mut CONTEXT,
    pub LanguageHandler: PVOID,
    pub HandlerData: PVOID,
    pub HistoryTable: PVOID,
    pub ScopeIndex: ULONG,
    pub Fill0: ULONG,
}

crate::routine_type!(
    /// `PEXCEPTION_ROUTINE`: a language-specific handler (`__C_specific_handler`).
    pub type EXCEPTION_ROUTINE = unsafe fn(
        *mut EXCEPTION_RECORD,
        u64,
        *mut CONTEXT,
        *mut DISPATCHER_CONTEXT,
    ) -> EXCEPTION_DISPOSITION
);
crate::routine_type!(
    /// An `__except` filter function: `(EXCEPTION_POINTERS*, EstablisherFrame) -> LONG`.
    pub type EXCEPTION_FILTER = unsafe fn(*mut EXCEPTION_POINTERS, u64) -> LONG
);
crate::routine_type!(
    /// A `__finally` block: `(AbnormalTermination, EstablisherFrame)`.
    pub type TERMINATION_HANDLER = unsafe fn(BOOLEAN, u64)
);

/// `IMAGE_DIRECTORY_ENTRY_EXCEPTION`: index of `.pdata` in the optional header's data directory.
pub const IMAGE_DIRECTORY_ENTRY_EXCEPTION: usize = 3;
