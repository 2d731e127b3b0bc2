//! NTSTATUS values in plain sentences.
use nt_abi::status::*;

/// `0xC000000D (STATUS_INVALID_PARAMETER)`.
pub fn status_code(status: i32) -> String {
    match status_name(status) {
        Some(name) => format!("{:#010X} ({name})", status as u32),
        None => format!("{:#010X}", status as u32),
    }
}

/// What a status means for a wdm-workitem request, as a sentence.
pub fn status_sentence(status: i32) -> String {
    let s = match status {
        STATUS_SUCCESS => "The request succeeded.",
        STATUS_BUFFER_TOO_SMALL => {
            "A buffer was too small: the input is shorter than the request structure, or the \
             output buffer cannot hold the response."
        }
        STATUS_INVALID_PARAMETER => {
            "The driver rejected the request's contents: an input of the wrong length, a size \
             field that does not match the structure, or a value out of range (iterations, \
             concurrency, mode, queue type, flags or requeue depth)."
        }
        STATUS_REVISION_MISMATCH => {
            "The request's protocol version is not the driver's: wictl and the driver come from \
             different releases."
        }
        STATUS_INVALID_DEVICE_REQUEST => {
            "The driver does not serve this request: the control code (or operation) is unknown \
             to it."
        }
        STATUS_ACCESS_DENIED => {
            "Access denied: the handle lacks the access this control code requires (running \
             cycles and resetting statistics need write access), or you may not open the device."
        }
        STATUS_INSUFFICIENT_RESOURCES => {
            "The system ran out of resources: no work-item slot became free in time, or a pool \
             allocation failed."
        }
        STATUS_DELETE_PENDING => "The driver is unloading and accepts no new requests.",
        STATUS_OBJECT_NAME_NOT_FOUND => {
            "The device does not exist: is the driver installed and started?"
        }
        STATUS_NO_SUCH_DEVICE => "The device does not exist or was removed.",
        STATUS_INVALID_HANDLE => "The handle is not valid (it was closed or never opened).",
        STATUS_NOT_IMPLEMENTED => "The driver does not implement this operation.",
        STATUS_PENDING => "The request is still in progress.",
        _ => {
            return if nt_success(status) {
                format!(
                    "The request completed with the informational status {}.",
                    status_code(status)
                )
            } else {
                format!("The request failed with status {}.", status_code(status))
            };
        }
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_name_the_cause() {
        assert!(status_sentence(STATUS_REVISION_MISMATCH).contains("protocol version"));
        assert!(status_sentence(STATUS_ACCESS_DENIED).contains("write access"));
        assert_eq!(
            status_code(STATUS_INVALID_PARAMETER),
            "0xC000000D (STATUS_INVALID_PARAMETER)"
        );
        assert!(status_sentence(0xC0DE_0001u32 as i32).contains("0xC0DE0001"));
    }
}
