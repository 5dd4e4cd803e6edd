//! Errors as SpiceDB returns them: a gRPC status code, a message, and a `google.rpc.ErrorInfo`
//! detail with SpiceDB's `ERROR_REASON_…` (domain `authzed.com`), so client code written for
//! SpiceDB handles Purview's errors the same way.

use super::proto::google::rpc::Status as RpcStatus;
use super::token::TokenError;
use crate::api::{FeedError, GuardedWriteError, SchemaChangeError};
use crate::eval::EvalError;
use crate::store::WriteError;
use prost::Message;
use std::collections::HashMap;
use tonic::{Code, Status};

/// `google.rpc.ErrorInfo` (google/rpc/error_details.proto), written out: the one detail used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}

/// A status with SpiceDB's error reason attached.
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    let info =
        ErrorInfo { reason: reason.to_string(), domain: "authzed.com".into(), metadata: HashMap::new() };
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

pub fn from_token(e: &TokenError) -> Status {
    invalid(format!("invalid zedtoken: {e}"))
}

pub fn from_eval(e: &EvalError) -> Status {
    let m = e.to_string();
    match e {
        EvalError::UnknownType(_) => status(Code::FailedPrecondition, "ERROR_REASON_UNKNOWN_DEFINITION", m),
        EvalError::UnknownRelation { .. } => {
            status(Code::FailedPrecondition, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION", m)
        }
        EvalError::DepthExceeded { .. } | EvalError::ExclusionCycle { .. } => {
            status(Code::ResourceExhausted, "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED", m)
        }
        EvalError::TooManyResults { .. } => {
            status(Code::ResourceExhausted, "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT", m)
        }
        EvalError::MissingContext { .. } | EvalError::Condition(_) => {
            status(Code::InvalidArgument, "ERROR_REASON_CAVEAT_EVALUATION_ERROR", m)
        }
        EvalError::InvalidSubject(_) => status(Code::InvalidArgument, "ERROR_REASON_INVALID_SUBJECT_TYPE", m),
        EvalError::InvalidCursor(_) => status(Code::InvalidArgument, "ERROR_REASON_INVALID_CURSOR", m),
        EvalError::RevisionNotVisible { .. } => Status::deadline_exceeded(m),
        EvalError::RevisionCollected { .. } | EvalError::HistoryUnavailable { .. } => Status::out_of_range(m),
    }
}

pub fn from_write(e: &WriteError) -> Status {
    let m = e.to_string();
    match e {
        WriteError::UnknownType { .. } => {
            status(Code::FailedPrecondition, "ERROR_REASON_UNKNOWN_DEFINITION", m)
        }
        WriteError::UnknownRelation { .. } => {
            status(Code::FailedPrecondition, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION", m)
        }
        WriteError::Permission { .. } => {
            status(Code::InvalidArgument, "ERROR_REASON_CANNOT_UPDATE_PERMISSION", m)
        }
        WriteError::SubjectNotAllowed { .. } => {
            status(Code::InvalidArgument, "ERROR_REASON_INVALID_SUBJECT_TYPE", m)
        }
        WriteError::InvalidCondition { .. } => {
            status(Code::InvalidArgument, "ERROR_REASON_UNKNOWN_CAVEAT", m)
        }
        WriteError::AlreadyExists { .. } => {
            status(Code::AlreadyExists, "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP", m)
        }
        WriteError::Constraint { .. } => {
            status(Code::FailedPrecondition, "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE", m)
        }
        WriteError::Storage { .. } => Status::unavailable(m),
    }
}

pub fn from_guarded(e: &GuardedWriteError) -> Status {
    match e {
        GuardedWriteError::Write(w) => from_write(w),
        GuardedWriteError::Filter(f) => from_eval(f),
        GuardedWriteError::Precondition { .. } => status(
            Code::FailedPrecondition,
            "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE",
            e.to_string(),
        ),
        GuardedWriteError::TooMany { .. } => status(
            Code::InvalidArgument,
            "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE",
            e.to_string(),
        ),
    }
}

pub fn from_schema_change(e: &SchemaChangeError) -> Status {
    match e {
        SchemaChangeError::Schema(s) => {
            let text: Vec<String> = s
                .diagnostics
                .0
                .iter()
                .map(|d| {
                    let (line, col) = d.line_col(&s.file);
                    let hint = d.help.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default();
                    format!("{}:{line}:{col}: {}{hint}", s.file.name, d.message)
                })
                .collect();
            status(Code::InvalidArgument, "ERROR_REASON_SCHEMA_PARSE_ERROR", text.join("\n"))
        }
        SchemaChangeError::Blocked(_) => {
            status(Code::FailedPrecondition, "ERROR_REASON_SCHEMA_TYPE_ERROR", e.to_string())
        }
        SchemaChangeError::Storage(w) => from_write(w),
    }
}

pub fn from_feed(e: &FeedError) -> Status {
    match e {
        FeedError::Disabled => Status::unimplemented(e.to_string()),
        FeedError::Expired { .. } | FeedError::History { .. } => Status::out_of_range(e.to_string()),
        FeedError::Future { .. } => invalid(e.to_string()),
    }
}
