//! A small SMTP server on 127.0.0.1 for integration tests: it speaks the
//! protocol lettre uses (EHLO, MAIL, RCPT, DATA, QUIT, no TLS), keeps every
//! message it accepts, and can refuse them all (a 554) to test failures.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
pub struct SmtpServer {
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    refuse: Arc<Mutex<bool>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = SmtpServer { port: listener.local_addr().unwrap().port(), ..SmtpServer::default() };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 127.0.0.1 ESMTP test\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 127.0.0.1\r\n",
                            "DATA" => {
                                let _ = write.write_all(b"354 end with .\r\n").await;
                                let mut message = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    message.push_str(&l);
                                    message.push('\n');
                                }
                                if *s.refuse.lock().unwrap() {
                                    b"554 refused\r\n"
                                } else {
                                    s.messages.lock().unwrap().push(message);
                                    b"250 queued\r\n"
                                }
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        server
    }

    pub fn refuse_all(&self, refuse: bool) {
        *self.refuse.lock().unwrap() = refuse;
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// The newest message, waiting up to two seconds for one.
    pub async fn last_message(&self) -> String {
        for _ in 0..40 {
            if let Some(m) = self.messages().pop() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message arrived");
    }

    /// The newest message with quoted-printable parts decoded (soft line
    /// breaks joined, `=XX` bytes restored), as a reader sees its text.
    pub async fn last_text(&self) -> String {
        let raw = self.last_message().await.replace("=\r\n", "").replace("=\n", "");
        let mut out = Vec::with_capacity(raw.len());
        let b = raw.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b[i], hex) {
                (b'=', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The six-digit code of the newest message (from its subject), waiting
    /// up to two seconds for it.
    pub async fn last_code(&self) -> String {
        let m = self.last_message().await;
        let subject = m.lines().find(|l| l.starts_with("Subject: ")).unwrap_or_default();
        let code: String = subject.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(code.len(), 6, "{subject}");
        code
    }
}
