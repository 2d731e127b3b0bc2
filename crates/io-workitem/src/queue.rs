//! Work-queue selection: the fixed queue types and checked custom priorities.

use nt_abi::{
    BACKGROUND_WORK_QUEUE, CRITICAL_WORK_QUEUE, CUSTOM_PRIORITY_MAX, CUSTOM_PRIORITY_WORK_QUEUE,
    DELAYED_WORK_QUEUE, HYPER_CRITICAL_WORK_QUEUE, NORMAL_WORK_QUEUE, REAL_TIME_WORK_QUEUE,
    SUPER_CRITICAL_WORK_QUEUE, WORK_QUEUE_TYPE, is_valid_work_queue_type,
};

/// A custom work-queue priority, `0..=31`, checked at construction.
///
/// The kernel accepts `CustomPriorityWorkQueue + priority` for these values only; anything else
/// is bug check `WORKER_INVALID` (0xE4, parameter 1 = 6), so an out-of-range value cannot be
/// represented.
///
/// ```
/// use io_workitem::CustomPriority;
/// assert_eq!(CustomPriority::new(31).map(CustomPriority::get), Some(31));
/// assert!(CustomPriority::new(32).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomPriority(u8);

impl CustomPriority {
    /// The highest priority a custom queue type may carry (31).
    pub const MAX: CustomPriority = CustomPriority(CUSTOM_PRIORITY_MAX as u8);

    /// `Some` if `priority` is in `0..=31`.
    pub const fn new(priority: u8) -> Option<Self> {
        if priority as i32 <= CUSTOM_PRIORITY_MAX {
            Some(CustomPriority(priority))
        } else {
            None
        }
    }

    /// The priority, `0..=31`.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// The system work queue an item is queued to (`WORK_QUEUE_TYPE`).
///
/// Only values the kernel accepts exist: the seven fixed queues (`Critical` 0 … `SuperCritical`
/// 6) and [`QueueType::Custom`] (32 + a checked priority). Microsoft's guidance for drivers is
/// [`QueueType::Delayed`].
///
/// ```
/// use io_workitem::{CustomPriority, QueueType};
/// assert_eq!(QueueType::Delayed.raw(), 1);
/// assert_eq!(QueueType::Custom(CustomPriority::new(5).unwrap()).raw(), 37);
/// assert_eq!(QueueType::from_raw(6), Some(QueueType::SuperCritical));
/// assert_eq!(QueueType::from_raw(7), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueType {
    /// `CriticalWorkQueue` (0).
    Critical,
    /// `DelayedWorkQueue` (1): the queue drivers should normally use.
    Delayed,
    /// `HyperCriticalWorkQueue` (2).
    HyperCritical,
    /// `NormalWorkQueue` (3).
    Normal,
    /// `BackgroundWorkQueue` (4).
    Background,
    /// `RealTimeWorkQueue` (5).
    RealTime,
    /// `SuperCriticalWorkQueue` (6).
    SuperCritical,
    /// `CustomPriorityWorkQueue + priority` (32..=63).
    Custom(CustomPriority),
}

impl QueueType {
    /// The `WORK_QUEUE_TYPE` value passed to the kernel.
    pub const fn raw(self) -> WORK_QUEUE_TYPE {
        match self {
            QueueType::Critical => CRITICAL_WORK_QUEUE,
            QueueType::Delayed => DELAYED_WORK_QUEUE,
            QueueType::HyperCritical => HYPER_CRITICAL_WORK_QUEUE,
            QueueType::Normal => NORMAL_WORK_QUEUE,
            QueueType::Background => BACKGROUND_WORK_QUEUE,
            QueueType::RealTime => REAL_TIME_WORK_QUEUE,
            QueueType::SuperCritical => SUPER_CRITICAL_WORK_QUEUE,
            QueueType::Custom(p) => CUSTOM_PRIORITY_WORK_QUEUE + p.0 as i32,
        }
    }

    /// The queue type for a raw `WORK_QUEUE_TYPE`, or `None` for a value the kernel rejects
    /// (7..=31, negatives, 64 and above). Use it to validate values that come from user mode.
    pub const fn from_raw(raw: WORK_QUEUE_TYPE) -> Option<Self> {
        Some(match raw {
            CRITICAL_WORK_QUEUE => QueueType::Critical,
            DELAYED_WORK_QUEUE => QueueType::Delayed,
            HYPER_CRITICAL_WORK_QUEUE => QueueType::HyperCritical,
            NORMAL_WORK_QUEUE => QueueType::Normal,
            BACKGROUND_WORK_QUEUE => QueueType::Background,
            REAL_TIME_WORK_QUEUE => QueueType::RealTime,
            SUPER_CRITICAL_WORK_QUEUE => QueueType::SuperCritical,
            _ => {
                if raw >= CUSTOM_PRIORITY_WORK_QUEUE
                    && raw <= CUSTOM_PRIORITY_WORK_QUEUE + CUSTOM_PRIORITY_MAX
                {
                    QueueType::Custom(CustomPriority((raw - CUSTOM_PRIORITY_WORK_QUEUE) as u8))
                } else {
                    return None;
                }
            }
        })
    }
}

// Every representable queue type is one the kernel accepts, checked against nt-abi's rule.
const _: () = {
    let mut raw = -2;
    while raw < 70 {
        match QueueType::from_raw(raw) {
            Some(q) => assert!(q.raw() == raw && is_valid_work_queue_type(raw)),
            None => assert!(!is_valid_work_queue_type(raw)),
        }
        raw += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_priority_bounds() {
        assert_eq!(CustomPriority::new(0).unwrap().get(), 0);
        assert_eq!(CustomPriority::MAX.get(), 31);
        assert!(CustomPriority::new(32).is_none());
        assert!(CustomPriority::new(255).is_none());
        assert_eq!(QueueType::Custom(CustomPriority::MAX).raw(), 63);
    }

    #[test]
    fn fixed_queue_values() {
        let all = [
            QueueType::Critical,
            QueueType::Delayed,
            QueueType::HyperCritical,
            QueueType::Normal,
            QueueType::Background,
            QueueType::RealTime,
            QueueType::SuperCritical,
        ];
        for (i, q) in all.iter().enumerate() {
            assert_eq!(q.raw(), i as i32);
            assert_eq!(QueueType::from_raw(i as i32), Some(*q));
        }
        assert_eq!(QueueType::from_raw(7), None);
        assert_eq!(QueueType::from_raw(31), None);
        assert_eq!(QueueType::from_raw(64), None);
        assert_eq!(QueueType::from_raw(-1), None);
    }
}
