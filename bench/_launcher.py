"""Starts one measured command and reports the command's own resource usage to the benchmark.

    python -S -I _launcher.py FD TIMEOUT GRACE COMMAND [ARG...]

forks, puts the child in a process group of its own, execs COMMAND there (looked up in
PATH, with this process's environment, working directory and standard streams), reaps it
with `wait4` and writes one line to file descriptor FD:
`exit CODE MAXRSS_KB USER_S SYSTEM_S SECONDS` (CODE as `subprocess` gives it, negative
for a signal; the usage includes the descendants COMMAND reaped; SECONDS from the fork to
the reap), or `exec ERRNO` when COMMAND could not be executed.

Why a process between the benchmark and the command: on Linux the peak RSS of a process
survives exec (the kernel keeps the replaced memory's high-water mark), so a command the
benchmark starts itself reports at least the benchmark's own peak, a hundred megabytes or
more. Started from this interpreter (no site, no environment variables, only modules built
into it) the command inherits a floor of a few megabytes: the pages fork copies.

After TIMEOUT seconds the command's process group (the command and the descendants that
stayed in it) is killed. SIGINT and SIGTERM sent to the launcher are passed on to that
group, which is killed GRACE seconds later if it is still running.
"""

from __future__ import annotations

# The C module under `signal`: the same functions without the enum wrappers, whose import
# would add about 1 MB to what every measured command inherits.
import _signal as signal
import os
import sys
import time

PASSED_ON = (signal.SIGINT, signal.SIGTERM)
# Python ignores these, and an ignored signal stays ignored across exec: the command gets
# them back at their default, as `subprocess` (`restore_signals`) gives its children.
RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)


def become(command: list[str], mask: set[int], errors: int) -> None:
    """In the forked child: a process group of its own, then `command`; never returns."""
    try:
        os.setpgid(0, 0)
        for signum in RESTORED:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(errors, str(exc.errno or 0).encode())
    finally:
        os._exit(127)


def main(argv: list[str]) -> int:
    report, timeout, grace, command = int(argv[1]), float(argv[2]), float(argv[3]), argv[4:]
    os.set_inheritable(report, False)  # the benchmark's end of the pipe, not the command's
    # Blocked until the child has its group and the handlers are in place; the child
    # restores the mask the launcher was started with.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {*PASSED_ON, signal.SIGALRM})
    errors_read, errors_write = os.pipe()  # closed on exec: EOF means the command started
    started = time.perf_counter()
    child = os.fork()
    if child == 0:
        become(command, mask, errors_write)
    os.close(errors_write)
    try:
        os.setpgid(child, child)  # the child does it too; whichever runs first makes it
    except OSError:
        pass  # the child already ran exec: its group was made before

    def signal_group(signum: int) -> None:
        try:
            os.killpg(child, signum)
        except ProcessLookupError:
            pass  # the group is gone: nothing left to stop

    def kill(signum: int, frame: object) -> None:
        signal_group(signal.SIGKILL)

    def pass_on(signum: int, frame: object) -> None:
        signal_group(signum)
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        if remaining == 0 or remaining > grace:
            signal.setitimer(signal.ITIMER_REAL, grace)

    signal.signal(signal.SIGALRM, kill)
    for signum in PASSED_ON:
        signal.signal(signum, pass_on)
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))  # 0 would disarm it
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    failure = os.read(errors_read, 32)  # retried after a handler ran (PEP 475), as wait4
    _, status, usage = os.wait4(child, 0)
    seconds = time.perf_counter() - started
    signal.setitimer(signal.ITIMER_REAL, 0)
    if failure:
        line = f"exec {failure.decode()}\n"
    else:
        code = os.waitstatus_to_exitcode(status)
        line = f"exit {code} {usage.ru_maxrss} {usage.ru_utime!r} {usage.ru_stime!r} {seconds!r}\n"
    os.write(report, line.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
