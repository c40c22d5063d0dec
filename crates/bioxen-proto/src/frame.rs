//! Frames: a 4-byte big-endian length and that many bytes, JSON or raw output.

use serde::{Deserialize, Serialize};
#[cfg(feature = "io")]
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[cfg(feature = "io")]
use crate::Incoming;
use crate::VmId;
use crate::message::{MAX_MESSAGE, OUTPUT_FRAME};

fn frame_len(len: usize) -> std::io::Result<[u8; 4]> {
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a message of {len} bytes is over the limit"),
        ));
    }
    Ok((len as u32).to_be_bytes())
}

/// Appends one message, framed, to `out`: for writers that send several frames with
/// one system call.
pub fn encode_message<T: Serialize>(out: &mut Vec<u8>, message: &T) -> std::io::Result<()> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, message).map_err(std::io::Error::other)?;
    let len = frame_len(out.len() - at - 4)?;
    out[at..at + 4].copy_from_slice(&len);
    Ok(())
}

/// Appends a session's output, framed, to `out`.
pub fn encode_output(out: &mut Vec<u8>, vm: VmId, bytes: &[u8]) -> std::io::Result<()> {
    out.extend_from_slice(&frame_len(1 + 8 + bytes.len())?);
    out.push(OUTPUT_FRAME);
    out.extend_from_slice(&vm.0.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

#[cfg(feature = "io")]
/// Writes one message as JSON.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    message: &T,
) -> std::io::Result<()> {
    let mut frame = Vec::new();
    encode_message(&mut frame, message)?;
    w.write_all(&frame).await?;
    w.flush().await
}

#[cfg(feature = "io")]
/// Reads a frame's 4-byte length; `None` when the other side closed the connection
/// cleanly. A length past `limit` is refused before anything is allocated.
pub async fn read_frame_len<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> std::io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit.min(MAX_MESSAGE) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a message of {len} bytes is over the limit of {}",
                limit.min(MAX_MESSAGE)
            ),
        ));
    }
    Ok(Some(len))
}

#[cfg(feature = "io")]
/// Reads a frame's body of `len` bytes. Memory grows with the bytes that arrive, not
/// with the length announced: a peer that announces 64 MiB and sends nothing more
/// holds a few KiB.
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    let read = (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if read < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
}

#[cfg(feature = "io")]
/// Reads one frame's bytes, of at most `limit`; `None` when the other side closed the
/// connection cleanly.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(len) = read_frame_len(r, limit).await? else {
        return Ok(None);
    };
    read_frame_body(r, len).await.map(Some)
}

/// One JSON message from a frame's body.
pub fn decode_message<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(body).map_err(invalid)
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

#[cfg(feature = "io")]
/// Reads one JSON message; `None` when the other side closed the connection cleanly.
pub async fn read_message<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> std::io::Result<Option<T>> {
    read_message_within(r, MAX_MESSAGE).await
}

#[cfg(feature = "io")]
/// Reads one JSON message of at most `limit` bytes: a hello, before the peer is known,
/// is held to [`HELLO_LIMIT`].
pub async fn read_message_within<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    limit: usize,
) -> std::io::Result<Option<T>> {
    let Some(body) = read_frame(r, limit).await? else {
        return Ok(None);
    };
    decode_message(&body).map(Some)
}

#[cfg(feature = "io")]
/// Reads what the server sent: a message or an output frame.
pub async fn read_incoming<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Incoming>> {
    let Some(mut body) = read_frame(r, MAX_MESSAGE).await? else {
        return Ok(None);
    };
    if body.first() != Some(&OUTPUT_FRAME) {
        return serde_json::from_slice(&body)
            .map(|m| Some(Incoming::Msg(m)))
            .map_err(invalid);
    }
    let vm = body
        .get(1..9)
        .ok_or_else(|| invalid("an output frame cut short"))?;
    let vm = VmId(u64::from_be_bytes(vm.try_into().expect("8 bytes")));
    body.drain(..9);
    Ok(Some(Incoming::Output { vm, bytes: body }))
}

#[cfg(all(test, feature = "io"))]
mod tests {
    use super::*;
    use crate::{Event, Request, ServerMsg};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn output_frames_carry_raw_bytes_beside_messages() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let bytes: Vec<u8> = (0..=255).collect();
        // As the server writes them: several frames in one write.
        let mut frames = Vec::new();
        encode_output(&mut frames, VmId(1), &bytes).unwrap();
        let activity = ServerMsg::Event(Event::Activity { vm: VmId(2) });
        encode_message(&mut frames, &activity).unwrap();
        a.write_all(&frames).await.unwrap();
        match read_incoming(&mut b).await.unwrap().unwrap() {
            Incoming::Output { vm, bytes: got } => {
                assert_eq!(vm, VmId(1));
                assert_eq!(got, bytes);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_incoming(&mut b).await.unwrap().unwrap(),
            Incoming::Msg(ServerMsg::Event(Event::Activity { vm })) if vm == VmId(2)
        ));
    }

    #[tokio::test]
    async fn messages_round_trip_and_oversized_lengths_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let sent = Request::SendInput {
            vm: "lua-1".into(),
            data: vec![b'x', 0xff, b'\n'],
        };
        write_message(&mut a, &sent).await.unwrap();
        write_message(
            &mut a,
            &Request::SendInput {
                vm: VmId(1).into(),
                data: b"print(1)\n".to_vec(),
            },
        )
        .await
        .unwrap();
        for expected in [vec![b'x', 0xff, b'\n'], b"print(1)\n".to_vec()] {
            match read_message::<_, Request>(&mut b).await.unwrap().unwrap() {
                Request::SendInput { data, .. } => assert_eq!(data, expected),
                other => panic!("{other:?}"),
            }
        }
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(read_message::<_, Request>(&mut b).await.is_err());
    }
}
