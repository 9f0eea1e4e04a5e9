//! TCP checks: connect, optionally send one line, optionally require the first reply line to
//! match a regex (a banner when nothing is sent).

use regex::Regex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Clock, Failure, Phase, connect_tcp, split_host_port};

/// Longest reply line read; a server that sends more without a newline is judged on this much.
const MAX_LINE: usize = 4096;

/// Runs a TCP probe. The line sent gets a `\n` appended; the reply line is read up to `\n`
/// (a trailing `\r` is dropped), end of stream, or [`MAX_LINE`] bytes.
pub(super) async fn probe(
    address: &str,
    send: Option<&str>,
    expect: Option<&Regex>,
    clock: &mut Clock,
) -> Result<(), Failure> {
    let (host, port) = split_host_port(address)?;
    let mut stream = connect_tcp(clock, host, port).await?;
    if let Some(line) = send {
        let mut out = Vec::with_capacity(line.len() + 1);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        clock
            .step(Phase::FirstByte, stream.write_all(&out))
            .await?
            .map_err(|e| Failure::Io(format!("send: {e}")))?;
    }
    let Some(re) = expect else {
        return Ok(());
    };
    let line = clock
        .step(Phase::FirstByte, read_line(&mut stream))
        .await?
        .map_err(|e| Failure::Io(format!("read: {e}")))?;
    if re.is_match(&line) {
        Ok(())
    } else {
        Err(Failure::ExpectMismatch {
            line: line.chars().take(200).collect(),
            regex: re.as_str().to_owned(),
        })
    }
}

async fn read_line(stream: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.contains(&b'\n') || buf.len() >= MAX_LINE {
            break;
        }
    }
    let end = buf
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(buf.len())
        .min(MAX_LINE);
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    Ok(String::from_utf8_lossy(line).into_owned())
}
