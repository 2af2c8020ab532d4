//! A Segment stand-in on loopback whose answers are scripted per request, down to the socket:
//! statuses with or without Retry-After, hangs, reset connections and slow successes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    Ok,
    Status(u16),
    /// A status with `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// Reads the request and never answers.
    Hang,
    /// Reads the request and resets the connection.
    Reset,
    /// Answers 200 after a delay.
    Slow(Duration),
}

pub struct FaultSegment {
    pub url: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    after: Arc<Mutex<Fault>>,
    hits: Arc<AtomicUsize>,
}

impl FaultSegment {
    /// Serves `script` in order, then `after` for every later request.
    pub async fn start(script: &[Fault], after: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = Self {
            url,
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            after: Arc::new(Mutex::new(after)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let (script, after, hits) = (server.script.clone(), server.after.clone(), server.hits.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (script, after, hits) = (script.clone(), after.clone(), hits.clone());
                tokio::spawn(serve(socket, script, after, hits));
            }
        });
        server
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let header_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 16384];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let headers = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let mut chunk = [0u8; 16384];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    buffer.drain(..header_end + length);
    true
}

async fn serve(
    mut socket: TcpStream,
    script: Arc<Mutex<VecDeque<Fault>>>,
    after: Arc<Mutex<Fault>>,
    hits: Arc<AtomicUsize>,
) {
    let mut buffer = Vec::new();
    while read_request(&mut socket, &mut buffer).await {
        hits.fetch_add(1, Ordering::SeqCst);
        let fault = script.lock().unwrap().pop_front().unwrap_or(*after.lock().unwrap());
        let reply = match fault {
            Fault::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n{\"success\":true}".to_owned(),
            Fault::Status(code) => format!("HTTP/1.1 {code} Scripted\r\ncontent-length: 0\r\n\r\n"),
            Fault::RetryAfter(code, seconds) => {
                format!("HTTP/1.1 {code} Scripted\r\nretry-after: {seconds}\r\ncontent-length: 0\r\n\r\n")
            }
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Fault::Reset => {
                // SO_LINGER 0 makes the close send RST, which is the point here; the blocking
                // close it can cause is harmless on loopback in a test.
                #[allow(deprecated)]
                let _ = socket.set_linger(Some(Duration::ZERO));
                return;
            }
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                "HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n{\"success\":true}".to_owned()
            }
        };
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
