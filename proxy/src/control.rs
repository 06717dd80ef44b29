//! The control socket: a Unix socket only the server's own user may use (mode 0600, and the
//! peer's uid checked), over which `openline status` and `openline peer list` ask the running
//! server. One line asks (`status`, `peers`), one line of JSON answers.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Where the control socket is unless configured: beside an SQLite database (`FILE.sock`),
/// else `openline.sock` in the working directory.
pub fn default_path(db: &str) -> PathBuf {
    match db.strip_prefix("sqlite://") {
        Some(file) => PathBuf::from(format!("{}.sock", file.split('?').next().unwrap_or(file))),
        None => PathBuf::from("openline.sock"),
    }
}

/// What may be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Bindings, calls, relay sessions and stored messages, per domain.
    Status,
    /// Other domains' configured servers, and which failed lately.
    Peers,
}

impl Query {
    fn parse(line: &str) -> Option<Query> {
        match line.trim() {
            "status" => Some(Query::Status),
            "peers" => Some(Query::Peers),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Query::Status => "status",
            Query::Peers => "peers",
        }
    }
}

/// A question from the socket, and where its answer (one JSON document) goes.
pub type Asked = (Query, oneshot::Sender<serde_json::Value>);

/// Binds `path` for the owner only (bound under a temporary name, made 0600, then renamed into
/// place, so no other user can connect in between) and serves it on its own task.
pub fn serve(path: &Path, asked: mpsc::Sender<Asked>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let temporary = PathBuf::from(format!("{}.{}", path.display(), std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", temporary.display()))?;
    // A socket left by a server that did not stop cleanly is replaced.
    std::fs::rename(&temporary, path)
        .with_context(|| format!("putting the control socket at {}", path.display()))?;
    tokio::spawn(accept(listener, asked));
    Ok(())
}

async fn accept(listener: UnixListener, asked: mpsc::Sender<Asked>) {
    let uid = nix_uid();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if stream.peer_cred().map(|c| c.uid()).ok() != Some(uid) {
            tracing::warn!("control socket: a connection from another user refused");
            continue;
        }
        tokio::spawn(answer(stream, asked.clone()));
    }
}

/// Our own uid, from the metadata of a file we own (no libc call needed).
fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

async fn answer(stream: UnixStream, asked: mpsc::Sender<Asked>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // A question is one short line: no more than 1 KiB is read.
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, 1024));
    let read = reader.read_line(&mut line);
    let reply = match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
        Ok(Ok(_)) => match Query::parse(&line) {
            Some(q) => {
                let (tx, rx) = oneshot::channel();
                if asked.send((q, tx)).await.is_err() {
                    return;
                }
                match rx.await {
                    Ok(v) => v,
                    Err(_) => return,
                }
            }
            None => serde_json::json!({ "error": format!("unknown question `{}`", line.trim()) }),
        },
        _ => return,
    };
    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
}

/// Asks the server listening on `path`; its JSON answer.
pub async fn ask(path: &Path, query: Query) -> anyhow::Result<serde_json::Value> {
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "no server answers on {} (is it running? --control names another socket)",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{}\n", query.word()).as_bytes())
        .await?;
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    let read = reader.read_line(&mut line);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .context("the server did not answer within 10 s")??;
    serde_json::from_str(&line).context("the server's answer is not JSON")
}
