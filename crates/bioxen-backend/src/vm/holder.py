"""bioxen's session holder: keeps an interactive program running on a terminal of its
own when the link to it drops, so that a later link attaches to the same program.

It does what dtach does, for hosts with python3 and no dtach, with the standard
library alone. bioxen sends it over SSH when it connects and runs it from a directory
only this user may enter.

  holder.py attach SOCKET REDRAW COMMAND
      Attaches this terminal to the program held at SOCKET; when nothing answers
      there, first starts `sh -c COMMAND` on a new terminal, held at SOCKET.
      REDRAW (winch or ctrl_l) is how the program is asked to draw itself again.
  holder.py ping SOCKET
      Exits 0 when a holder answers at SOCKET.

Bytes pass through untouched both ways (no screen is kept, no key is special), and
the holder ends when its program does.
"""

import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import time
import tty

DATA, SIZE, REDRAW = b"d", b"w", b"r"
HEADER = struct.Struct(">cI")


def frame(kind, payload):
    return HEADER.pack(kind, len(payload)) + payload


def ping(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def window_size(fd):
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return struct.pack("HHHH", 24, 80, 0, 0)


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def serve(listener, command):
    """The holder itself: the program on its own terminal, and links that come and go."""
    pid, master = os.forkpty()
    if pid == 0:
        listener.close()
        os.execvp("sh", ["sh", "-c", command])
    links = {}
    while True:
        ready, _, _ = select.select([listener, master] + list(links), [], [])
        if listener in ready:
            link, _ = listener.accept()
            link.settimeout(10)
            links[link] = b""
        if master in ready:
            try:
                out = os.read(master, 65536)
            except OSError:
                out = b""
            if not out:
                break
            for link in list(links):
                try:
                    link.sendall(out)
                except OSError:
                    del links[link]
                    link.close()
        for link in [l for l in ready if l in links]:
            try:
                got = link.recv(65536)
            except OSError:
                got = b""
            if not got:
                del links[link]
                link.close()
                continue
            links[link] = take_frames(links[link] + got, master, pid)
    for link in links:
        link.close()
    os.waitpid(pid, 0)


def take_frames(buf, master, pid):
    """Acts on each whole frame in `buf`; returns what is left of a frame to come."""
    while len(buf) >= HEADER.size:
        kind, n = HEADER.unpack_from(buf)
        if len(buf) < HEADER.size + n:
            break
        payload = buf[HEADER.size:HEADER.size + n]
        buf = buf[HEADER.size + n:]
        if kind == DATA:
            write_all(master, payload)
        elif kind == SIZE and len(payload) == 8:
            fcntl.ioctl(master, termios.TIOCSWINSZ, payload)
        elif kind == REDRAW and payload == b"ctrl_l":
            write_all(master, b"\x0c")
        elif kind == REDRAW:
            try:
                os.killpg(os.tcgetpgrp(master), signal.SIGWINCH)
            except OSError:
                pass
    return buf


def start(path, command):
    """Starts a holder at `path` in the background, on its own session."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(4)
    child = os.fork()
    if child != 0:
        listener.close()
        os.waitpid(child, 0)
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        serve(listener, command)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os._exit(0)


def attach(path, redraw, command):
    if not ping(path):
        start(path, command)
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(100):
        try:
            link.connect(path)
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("bioxen holder: nothing answers at " + path)
    tty_in = sys.stdin.fileno()
    saved = termios.tcgetattr(tty_in) if os.isatty(tty_in) else None
    if saved:
        tty.setraw(tty_in)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGWINCH, lambda *_: None)
    try:
        link.sendall(frame(SIZE, window_size(tty_in)) + frame(REDRAW, redraw.encode()))
        relay(link, tty_in, wake_r)
    finally:
        if saved:
            termios.tcsetattr(tty_in, termios.TCSADRAIN, saved)


def relay(link, tty_in, wake):
    out = sys.stdout.fileno()
    while True:
        ready, _, _ = select.select([link, tty_in, wake], [], [])
        if wake in ready:
            os.read(wake, 512)
            link.sendall(frame(SIZE, window_size(tty_in)))
        if link in ready:
            got = link.recv(65536)
            if not got:
                return
            write_all(out, got)
        if tty_in in ready:
            got = os.read(tty_in, 65536)
            if not got:
                return
            link.sendall(frame(DATA, got))


def main(argv):
    if len(argv) == 3 and argv[1] == "ping":
        sys.exit(0 if ping(argv[2]) else 1)
    if len(argv) == 5 and argv[1] == "attach":
        attach(argv[2], argv[3], argv[4])
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
