//! Blocking file work from async code.

use std::io;

/// Runs blocking work (file reads and writes) on tokio's blocking pool, so an async caller
/// never stalls a runtime thread. The work logs to the caller's `tracing` subscriber and
/// inside the caller's span, as if it ran inline. A panic in `work` resumes in the caller; a
/// task the runtime cancelled (it is shutting down) is an I/O error.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let n = private_fs::unblock(|| 40 + 2).await.unwrap();
/// assert_eq!(n, 42);
/// # });
/// ```
pub async fn unblock<T, F>(work: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let span = tracing::Span::current();
    let work = move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(work));
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(io::Error::other(
            "the blocking file task was cancelled (the runtime is shutting down)",
        )),
    }
}
