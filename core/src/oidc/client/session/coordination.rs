//! How managers of one client coordinate: one shared state and lock per
//! (issuer, client id) in a process, and an advisory file lock across
//! processes (`lockPath`).

use super::*;

/// What a refreshing call knew when it began, to tell under the lock
/// whether another instance renewed the session meanwhile.
pub(super) struct Entry {
    /// The access token this manager held (before reading the storage again).
    pub(super) token: Option<String>,
    /// The client's [`Shared::renewals`].
    pub(super) renewals: u64,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) loaded: bool,
    pub(super) session: Option<Session>,
    pub(super) pending: Option<Pending>,
    /// The stored copy lags behind `session` (a save or clear failed).
    pub(super) dirty: bool,
    /// The outcome of the last refresh attempt, shared with its waiters.
    pub(super) last_refresh: Option<Result<(), Error>>,
    /// Events to hand the listener once the lock is released.
    pub(super) events: Vec<SessionEvent>,
    /// The client's [`Shared::generation`] this copy was read or written at.
    pub(super) generation: u64,
}

/// What every manager of one client (issuer or endpoint, client id) in a
/// process shares.
#[derive(Default)]
pub(super) struct Shared {
    /// Held while a manager reads, changes and writes the stored session.
    pub(super) lock: Arc<tokio::sync::Mutex<()>>,
    /// Moves on after every save or clear by any of them: a manager whose
    /// copy is older reads the storage again before answering, so a
    /// sign-in or sign-out by another manager is seen at once.
    pub(super) generation: AtomicU64,
    /// Moves on after every renewal saved by any of them.
    pub(super) renewals: AtomicU64,
}

pub(super) fn shared_for(key: (String, String)) -> Arc<Shared> {
    type Registry = SyncMutex<HashMap<(String, String), Weak<Shared>>>;
    static CLIENTS: OnceLock<Registry> = OnceLock::new();
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = clients.get(&key).and_then(Weak::upgrade) {
        return shared;
    }
    clients.retain(|_, w| w.strong_count() > 0);
    let shared = Arc::new(Shared::default());
    clients.insert(key, Arc::downgrade(&shared));
    shared
}

/// Held while a manager reads, changes and writes the stored session.
pub(super) struct Coordinated {
    pub(super) _local: tokio::sync::OwnedMutexGuard<()>,
    /// Closing the file releases its advisory lock.
    pub(super) _file: Option<std::fs::File>,
}

/// Takes the advisory lock on `path`, polling until `timeout`.
pub(super) async fn lock_file(path: &std::path::Path, timeout: Duration) -> Result<std::fs::File> {
    let fail = |what: String| Error::new(ErrorCode::Storage, what);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| fail(format!("the session lock file {} could not be opened: {e}", path.display())))?;
    let deadline = Instant::now() + timeout;
    loop {
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => return Ok(file),
            Ok(false) => {}
            Err(e) => return Err(fail(format!("the session lock file {} could not be locked: {e}", path.display()))),
        }
        if Instant::now() >= deadline {
            return Err(fail(format!("another process held the session lock {} for more than {} s", path.display(), timeout.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

pub(super) type Guard<'a> = tokio::sync::MutexGuard<'a, State>;
