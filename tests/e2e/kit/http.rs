//! The one loopback HTTP server of the tests: HTTP/1.1 on 127.0.0.1 with a
//! random port, answering from fixed routes (path → status line plus extra
//! headers, body); anything else is a 404. It counts the connections it
//! accepted (so a test can assert that nothing reached it) and stops when
//! dropped, or after a minute at the latest.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One route: the path, the status line (plus extra header lines, each
/// ending in `\r\n` except the last), the body.
pub type Route = (&'static str, &'static str, Vec<u8>);

pub struct Server {
    base: String,
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(routes: Vec<Route>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: BTreeMap<&str, (&str, Vec<u8>)> = routes
            .into_iter()
            .map(|(path, head, body)| (path, (head, body)))
            .collect();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        answer(stream, &routes);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            accepted,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections the server accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(stream: TcpStream, routes: &BTreeMap<&str, (&str, Vec<u8>)>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut header = String::new();
    while reader.read_line(&mut header).unwrap_or(0) > 0 && header != "\r\n" {
        header.clear();
    }
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let (head, body) = routes
        .get(path)
        .map(|(head, body)| (*head, body.as_slice()))
        .unwrap_or(("404 Not Found", b"not here"));
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}
