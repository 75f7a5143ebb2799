//! [`PgError`]: what the server, the connection or the pool reported, without anything a
//! statement was given (the server's `DETAIL` can quote a row, so it is left out).

use std::fmt;
use std::io;

use tokio_postgres::error::SqlState;

/// An error of the PostgreSQL backend.
#[derive(Debug)]
pub(crate) enum PgError {
    /// The server refused a statement: its SQLSTATE and primary message.
    Server {
        code: SqlState,
        severity: String,
        message: String,
    },
    /// The connection failed (refused, reset, closed, TLS) or the client did.
    Client(tokio_postgres::Error),
    /// No pooled connection within the pool's timeouts.
    PoolTimeout,
    /// The pool is closed, or its runtime is gone.
    Unavailable(&'static str),
    /// A statement got no answer within the store's operation timeout.
    Timeout,
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server {
                code,
                severity,
                message,
            } => write!(f, "{severity} {}: {message}", code.code()),
            Self::Client(e) => fmt::Display::fmt(e, f),
            Self::PoolTimeout => f.write_str("no connection to the server could be had in time"),
            Self::Unavailable(why) => f.write_str(why),
            Self::Timeout => f.write_str("the server did not answer in time"),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Its cause (an I/O or TLS error) carries no statement input.
            Self::Client(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

/// SQLSTATEs after which trying again may succeed.
const TRANSIENT_STATES: &[SqlState] = &[
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::QUERY_CANCELED,
    SqlState::IDLE_SESSION_TIMEOUT,
];

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self::Server {
                code: db.code().clone(),
                severity: db.severity().to_owned(),
                message: db.message().to_owned(),
            },
            None => Self::Client(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) => Self::PoolTimeout,
            PoolError::Closed => Self::Unavailable("the connection pool is closed"),
            PoolError::NoRuntimeSpecified => Self::Unavailable("the pool has no runtime"),
            PoolError::PostCreateHook(_) => Self::Unavailable("a new connection failed its set-up"),
        }
    }
}

impl PgError {
    /// Whether trying again later may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Server { code, .. } => {
                code.code().starts_with("08") || TRANSIENT_STATES.contains(code)
            }
            Self::Client(e) => e.is_closed() || io_error(e).is_some_and(is_transient_io),
            Self::PoolTimeout | Self::Timeout => true,
            Self::Unavailable(_) => false,
        }
    }

    /// The connection was closed (by the server, the network, or a proxy) before or while
    /// the statement was sent.
    pub(crate) fn is_closed_connection(&self) -> bool {
        match self {
            Self::Client(e) => {
                e.is_closed()
                    || io_error(e).is_some_and(|io| {
                        matches!(
                            io.kind(),
                            io::ErrorKind::ConnectionReset
                                | io::ErrorKind::BrokenPipe
                                | io::ErrorKind::UnexpectedEof
                                | io::ErrorKind::NotConnected
                        )
                    })
            }
            Self::Server { code, .. } => {
                matches!(*code, SqlState::ADMIN_SHUTDOWN | SqlState::CRASH_SHUTDOWN)
            }
            _ => false,
        }
    }

    /// Whether the connection this came from can no longer be trusted (closed, or a
    /// statement whose answer never came).
    pub(crate) fn breaks_connection(&self) -> bool {
        match self {
            Self::Server { code, .. } => {
                code.code().starts_with("08")
                    || matches!(*code, SqlState::ADMIN_SHUTDOWN | SqlState::CRASH_SHUTDOWN)
            }
            Self::Client(_) | Self::Timeout => true,
            Self::PoolTimeout | Self::Unavailable(_) => false,
        }
    }

    /// A lock wait that ran out (`lock_timeout`).
    pub(crate) fn is_lock_timeout(&self) -> bool {
        matches!(self, Self::Server { code, .. } if *code == SqlState::LOCK_NOT_AVAILABLE)
    }

    /// A violated foreign key.
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        matches!(self, Self::Server { code, .. } if *code == SqlState::FOREIGN_KEY_VIOLATION)
    }
}

fn io_error(e: &tokio_postgres::Error) -> Option<&io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
}

fn is_transient_io(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
            | Interrupted
    )
}
