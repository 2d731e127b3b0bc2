//! The kernel-debugger interface: assertions, debug-filter state (issue 9, item 4).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {
    /// What the `ASSERT` / `ASSERTMSG` macros of a checked (`DBG=1`) build call when the
    /// expression is false.
    fn RtlAssert(FailedAssertion: PVOID, FileName: PVOID, LineNumber: ULONG, Message: *mut u8);
    /// A breakpoint with `Status` in the first argument register (`KdBreakPointWithStatus`).
    fn DbgBreakPointWithStatus(Status: ULONG);
    /// Print `Prompt` on the kernel debugger and read a response line into `Response`.
    fn DbgPrompt(Prompt: *const u8, Response: *mut u8, Length: ULONG) -> ULONG;
    /// `DbgPrintEx` with a `va_list`.
    fn vDbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: *const u8, arglist: PVOID) -> ULONG;
    /// `vDbgPrintEx` with `Prefix` in front of the message.
    fn vDbgPrintExWithPrefix(Prefix: *const u8, ComponentId: ULONG, Level: ULONG, Format: *const u8, arglist: PVOID) -> ULONG;
    /// Set (`State` TRUE) or clear the `Level` bits of a component's filter mask.
    fn DbgSetDebugFilterState(ComponentId: ULONG, Level: ULONG, State: BOOLEAN) -> NTSTATUS;
    /// Whether a `DbgPrintEx(ComponentId, Level, …)` message would be sent (TRUE / FALSE).
    fn DbgQueryDebugFilterState(ComponentId: ULONG, Level: ULONG) -> NTSTATUS;
    /// Re-read whether a kernel debugger is connected; TRUE when none is.
    fn KdRefreshDebuggerNotPresent() -> BOOLEAN;
    /// Disable the kernel debugger (nests with `KdEnableDebugger`).
    fn KdDisableDebugger() -> NTSTATUS;
    /// Re-enable the kernel debugger after `KdDisableDebugger`.
    fn KdEnableDebugger() -> NTSTATUS;
    /// Change kernel-debugger state (`KD_OPTION_SET_BLOCK_ENABLE` only).
    fn KdChangeOption(Option: ULONG, InBufferBytes: ULONG, InBuffer: PVOID, OutBufferBytes: ULONG, OutBuffer: PVOID, OutBufferNeeded: *mut ULONG) -> NTSTATUS;
}
