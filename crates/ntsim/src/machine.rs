//! The composition root: the machine's configuration and [`System`], which holds one instance
//! of each subsystem. Each subsystem keeps its state private behind a small `pub(crate)` API;
//! this file only builds them and wires the two upward notifications a lower layer needs (the
//! bug-check waker of `ke`, the pool-free hook of `ex`) as plain function pointers, so no lower
//! layer imports a higher one. The layering and the lock order are documented in `lib.rs`.
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use crate::mm::special::SpecialPoolMode;

/// Which Driver Verifier rules are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verifier {
    /// Like `verifier /standard`: every rule ntsim knows (all [`VerifierFlags`]).
    Standard,
    /// Only the checks ntoskrnl makes by itself (0xE4, 0xE1, 0xC2, 0x44, 0x18).
    Off,
    /// The options chosen one by one, as `verifier /flags` (or the Driver Verifier Manager's
    /// custom settings) does.
    Custom(VerifierFlags),
}

/// Driver Verifier options ntsim models (Microsoft, *Driver Verifier options and rule
/// classes*: Special Pool, Pool Tracking, Force IRQL Checking, I/O Verification, Deadlock
/// Detection, Security Checks, and the miscellaneous checks `/standard` also turns on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifierFlags {
    /// Special pool: 0xD6, 0xD5, 0xC1 (and 0xD6 for work-item storage smaller than
    /// IoSizeofWorkItem()).
    pub special_pool: bool,
    /// Pool tracking: 0xC4 p1 = 0x00, 0x10, 0x14, 0x62 (off: ntoskrnl's 0xC2 for bad frees).
    pub pool_tracking: bool,
    /// IRQL checking: 0xC4 p1 = 0x01, 0x02, 0x11, 0x12, 0x32.
    pub irql_checking: bool,
    /// I/O verification: 0xC9; 0xC4 p1 = 0xC5, 0xFA, 0xFB.
    pub io_verification: bool,
    /// Miscellaneous checks: 0xC4 p1 = 0x131, 0x2000, 0x3F, 0xF6, 0x123; 0xCE; 0xE4/0 for an initialized
    /// item in freed pool.
    pub misc_checks: bool,
    /// Deadlock detection: 0xC4 p1 = 0x1000, 0x1001, 0x1004, 0x1007, 0x1008, 0x1009, 0x100B.
    pub deadlock_detection: bool,
    /// Security checks: 0xC4 p1 = 0xE2.
    pub security_checks: bool,
}

impl VerifierFlags {
    /// Every option (`/standard`).
    pub const ALL: VerifierFlags = VerifierFlags {
        special_pool: true,
        pool_tracking: true,
        irql_checking: true,
        io_verification: true,
        misc_checks: true,
        deadlock_detection: true,
        security_checks: true,
    };
    /// The option names accepted by [`Verifier::parse`], in order.
    pub const NAMES: [&'static str; 7] = [
        "special_pool",
        "pool_tracking",
        "irql_checking",
        "io_verification",
        "misc_checks",
        "deadlock_detection",
        "security_checks",
    ];

    fn slot(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "special_pool" => &mut self.special_pool,
            "pool_tracking" => &mut self.pool_tracking,
            "irql_checking" => &mut self.irql_checking,
            "io_verification" => &mut self.io_verification,
            "misc_checks" => &mut self.misc_checks,
            "deadlock_detection" => &mut self.deadlock_detection,
            "security_checks" => &mut self.security_checks,
            _ => return None,
        })
    }

    /// Whether any option is on.
    pub fn any(self) -> bool {
        self != VerifierFlags::default()
    }
}

impl Verifier {
    /// The options this setting turns on.
    pub fn flags(self) -> VerifierFlags {
        match self {
            Verifier::Standard => VerifierFlags::ALL,
            Verifier::Off => VerifierFlags::default(),
            Verifier::Custom(f) => f,
        }
    }

    /// Parse `standard`, `off`, or a comma-separated list of [`VerifierFlags::NAMES`]
    /// (e.g. `special_pool,pool_tracking`). The error says what is accepted.
    pub fn parse(s: &str) -> Result<Verifier, String> {
        match s {
            "standard" | "on" => return Ok(Verifier::Standard),
            "off" => return Ok(Verifier::Off),
            _ => {}
        }
        let mut f = VerifierFlags::default();
        for name in s.split(',') {
            let name = name.trim();
            match f.slot(name) {
                Some(b) => *b = true,
                None => {
                    return Err(format!(
                        "bad --verifier option {name:?}: use standard, off, or a comma-separated list of {}",
                        VerifierFlags::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(if f == VerifierFlags::ALL {
            Verifier::Standard
        } else {
            Verifier::Custom(f)
        })
    }

    /// The setting as `parse` accepts it.
    pub fn name(self) -> String {
        match self {
            Verifier::Standard => "standard".into(),
            Verifier::Off => "off".into(),
            Verifier::Custom(mut f) => {
                let mut v = Vec::new();
                for n in VerifierFlags::NAMES {
                    if f.slot(n).is_some_and(|b| *b) {
                        v.push(n);
                    }
                }
                if v.is_empty() {
                    "off".into()
                } else {
                    v.join(",")
                }
            }
        }
    }
}

/// Machine configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// What `IoSizeofWorkItem` returns (0x58 = Windows 10 x64; 0x40 Windows 7; 0x60 recent).
    pub size_of_work_item: u32,
    pub verifier: Verifier,
    /// Where special pool puts the guard page (with the verifier's `special_pool` option).
    pub special_pool: SpecialPoolMode,
    /// System worker threads per work queue (spawned lazily, on the first queueing).
    pub workers_per_queue: usize,
    /// Like Windows' dynamic worker threads: when items of a queue have waited behind busy
    /// workers without progress for about a second, the queue gets another worker, up to this
    /// many (set it to `workers_per_queue` for a fixed pool).
    pub max_workers_per_queue: usize,
    /// Echo DbgPrint output to stderr as it happens.
    pub echo_dbgprint: bool,
    /// After DriverUnload returns, how long work-item routines that are already *running* get
    /// to return (Windows keeps the image alive through the IoObject reference while a routine
    /// finishes its epilogue). Items still queued, or still running after this, are 0xCE.
    pub unload_grace: Duration,
    /// How long `Driver::unload` waits for the last open handle to the driver's devices to be
    /// closed before it gives up with `UnloadError::OpenHandles` (DriverUnload not called; the
    /// driver stays unload-pending). Windows waits indefinitely.
    pub unload_wait: Duration,
    /// A kernel debugger is attached (`ntsim run --debugger`): what `KdDebuggerEnabled` /
    /// `KdDebuggerNotPresent` say, and whether breakpoints and assertion failures stop the
    /// machine (no debugger, as on Windows) or are printed and continued.
    pub debugger: bool,
    /// Debug-print filter masks set at boot (`--dbg-filter`), as the `Debug Print Filter`
    /// registry key or `ed nt!Kd_<NAME>_Mask` set them; unset components keep Windows'
    /// defaults (see `dbg`).
    pub dbg_filter: Vec<crate::dbg::DbgFilter>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size_of_work_item: 0x58,
            verifier: Verifier::Standard,
            special_pool: SpecialPoolMode::Overrun,
            workers_per_queue: 2,
            max_workers_per_queue: 64,
            echo_dbgprint: false,
            unload_grace: Duration::from_millis(2000),
            unload_wait: Duration::from_secs(30),
            debugger: false,
            dbg_filter: Vec::new(),
        }
    }
}

/// One emulated machine: every subsystem's state.
pub(crate) struct System {
    pub(crate) config: Config,
    pub(crate) verifier: crate::verifier::Hooks,
    pub(crate) ke: crate::ke::Ke,
    pub(crate) mm: crate::mm::Mm,
    pub(crate) ex: crate::ex::Ex<crate::io::workitem::IoWork>,
    pub(crate) ob: crate::ob::Ob,
    pub(crate) io: crate::io::Io,
    pub(crate) ps: crate::ps::Ps,
    pub(crate) dbg: crate::dbg::Dbg,
}

/// After a bug check: wake the threads that wait in the executive and the I/O manager, so they
/// see it (and park, or return `Err` to their host caller).
fn wake_after_bugcheck(sys: &System) {
    sys.ex.workers.wake_all();
    sys.io.wake_all();
}

/// Lock a mutex, ignoring poisoning (a panicking host test must not wedge the machine).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn new_system(config: Config) -> Arc<System> {
    crate::ke::fault::install();
    crate::ke::kd::set_debug_routine(crate::dbg::kd::kdp_trap);
    crate::rtl::set_pool_hooks(crate::rtl::PoolHooks {
        alloc: crate::ex::rtl_pool::rtl_alloc,
        free: crate::ex::rtl_pool::rtl_free,
    });
    Arc::new(System {
        verifier: crate::verifier::Hooks::new(config.verifier.flags()),
        ke: crate::ke::Ke::new(wake_after_bugcheck),
        mm: crate::mm::Mm::new(config.verifier.flags().irql_checking),
        ex: crate::ex::Ex::new(
            crate::io::workitem::on_pool_free,
            config
                .verifier
                .flags()
                .special_pool
                .then_some(config.special_pool),
        ),
        ob: crate::ob::Ob::default(),
        io: crate::io::Io::default(),
        ps: crate::ps::Ps::default(),
        dbg: crate::dbg::Dbg::new(&config),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_settings_parse_and_round_trip() {
        assert_eq!(Verifier::parse("standard"), Ok(Verifier::Standard));
        assert_eq!(Verifier::parse("off"), Ok(Verifier::Off));
        let all = VerifierFlags::NAMES.join(",");
        assert_eq!(Verifier::parse(&all), Ok(Verifier::Standard));
        let v = Verifier::parse("special_pool, irql_checking").unwrap();
        assert_eq!(
            v.flags(),
            VerifierFlags {
                special_pool: true,
                irql_checking: true,
                ..VerifierFlags::default()
            }
        );
        assert_eq!(v.name(), "special_pool,irql_checking");
        assert_eq!(Verifier::parse(&v.name()), Ok(v));
        for bad in ["", "special_pool,", "Special_Pool", "all"] {
            let e = Verifier::parse(bad).unwrap_err();
            assert!(e.contains("special_pool, pool_tracking"), "{bad:?}: {e}");
        }
        assert_eq!(Config::default().verifier, Verifier::Standard);
        assert_eq!(Config::default().special_pool, SpecialPoolMode::Overrun);
    }
}
