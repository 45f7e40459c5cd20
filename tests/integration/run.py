#!/usr/bin/env python3
"""run.py: runs the integration tests (tests/integration/test_*.py).

Each test is a function test_*(world) in a test_*.py file. Prints one line
per test and closes with 'N passed, N failed'. Options:
  -k TEXT      run only the tests whose name contains TEXT
  --valgrind   run the tests marked VALGRIND = True with the non-sanitized
               binary under valgrind (memcheck), failing on any error
  -j N         run the tests in N worker processes (default 1, or
               WF2JSM_TEST_JOBS); see below
Randomised tests read their seed from WF2JSM_SEED and print it.
WF2JSM_TRACKER_BACKEND=pg runs them with the tracker in PostgreSQL (see
harness.py); tests marked for the other backend only are left out.

With -j N, each worker builds its own harness.World (its own PostgreSQL
server and JSM test server) and runs one test at a time in it, so tests never
share a server: a test may restart its PostgreSQL, change its settings or
reset the JSM server without touching another worker's test. Most of a test's
time is spent waiting (on the servers, on sleeps between kills), so several
workers overlap well even on two cores. Tests marked @harness.long_running
start first, so that they overlap the short ones instead of ending the run
alone. Everything a test prints (its own lines, and whatever its child
processes write to the terminal) is kept in a file and printed with its
PASS/FAIL line when it ends, then its traceback: a test's lines are never
interleaved with another's. Lines come in the order tests end.
"""
import argparse
import glob
import importlib.util
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def collect(args):
    """The selected tests as (name, function), long-running ones first."""
    tests = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in sorted(dir(mod)):
            fn = getattr(mod, name)
            if name.startswith("test_") and callable(fn) and args.k in "%s.%s" % (mod.__name__, name):
                if args.valgrind and not getattr(fn, "valgrind", False):
                    continue
                if getattr(fn, "sqlite_only" if harness.BACKEND == "pg" else "pg_only", False):
                    continue
                tests.append(("%s.%s" % (mod.__name__, name), fn))
    # A stable sort: the file order stays within each group.
    tests.sort(key=lambda t: not getattr(t[1], "long_running", False))
    return tests


def run_one(fn, world, out_path):
    """Runs one test with fds 1 and 2 (its prints and its children's output)
    going to out_path. Returns (passed, seconds, traceback text or "")."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    start = time.time()
    try:
        fn(world)
        return True, time.time() - start, ""
    except Exception:
        return False, time.time() - start, traceback.format_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def report(name, passed, seconds, output, tb):
    """One test's block, written at once: its output, its line, its traceback."""
    text = output
    if text and not text.endswith("\n"):
        text += "\n"
    text += "%s %s (%.1fs)\n" % ("PASS" if passed else "FAIL", name, seconds)
    text += tb
    sys.stdout.write(text)
    sys.stdout.flush()


def worker(conn, tests, out_path):
    """A worker process: its own World; runs the tests the parent sends,
    one at a time, and answers (passed, seconds, traceback) for each."""
    # SIGTERM ends the worker through its finally, so its servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    by_name = dict(tests)
    world = None
    try:
        world = harness.World()
        conn.send(("ready", (world.pg_dir, world.jsm.pid, world.tmp)))
        while True:
            name = conn.recv()
            if name is None:
                break
            conn.send(("done", run_one(by_name[name], world, out_path)))
    except Exception:
        conn.send(("broken", traceback.format_exc()))
    except KeyboardInterrupt:
        pass
    finally:
        # Nothing cuts the servers' shutdown short, not even the parent's
        # SIGTERM or a second Ctrl-C.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if world is not None:
            world.close()


def stop_servers(pg_dir, jsm_pid, tmp):
    """Stops the servers of a worker that died without closing its World."""
    try:
        os.kill(jsm_pid, signal.SIGKILL)
    except OSError:
        pass
    subprocess.call([harness.PGTMP, "stop", pg_dir])
    shutil.rmtree(tmp, ignore_errors=True)


def run_parallel(tests, jobs):
    """Runs tests on `jobs` workers; returns (passed, failed)."""
    ctx = multiprocessing.get_context("fork")
    tmp = tempfile.mkdtemp(prefix="wf2jsm-run-")
    queue = [name for name, _ in tests]
    workers = {}        # connection -> [process, output file, test running or None]
    servers = {}        # connection -> what stop_servers needs, should the worker die
    closing = []        # workers told to stop, closing their World
    passed = failed = 0
    sys.stdout.flush()
    sys.stderr.flush()
    # A SIGTERM (a CI timeout) ends the run through the finally below, which
    # shows what the tests still running had printed and stops the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    finished = False
    try:
        for i in range(jobs):
            parent_end, child_end = ctx.Pipe()
            out_path = os.path.join(tmp, "worker%d.out" % i)
            proc = ctx.Process(target=worker, args=(child_end, tests, out_path), daemon=False)
            proc.start()
            child_end.close()
            workers[parent_end] = [proc, out_path, None]
        while workers:
            ready = multiprocessing.connection.wait(list(workers))
            for conn in ready:
                proc, out_path, running = workers[conn]
                try:
                    kind, value = conn.recv()
                except EOFError:
                    # The worker died: its test fails with what it printed.
                    proc.join()
                    if running:
                        failed += 1
                        report(running, False, 0.0, read_text(out_path),
                               "the worker running this test exited with status %s\n" % proc.exitcode)
                    if conn in servers:
                        stop_servers(*servers.pop(conn))
                    del workers[conn]
                    continue
                if kind == "broken":
                    # Its World could not be built (or the worker failed
                    # outside a test): say why; the others carry on.
                    sys.stdout.write("worker %d failed:\n%s" % (proc.pid, value))
                    sys.stdout.flush()
                    if running:
                        failed += 1
                        report(running, False, 0.0, read_text(out_path), "its worker failed (above)\n")
                    proc.join()
                    del workers[conn]
                    continue
                if kind == "ready":
                    servers[conn] = value
                if kind == "done":
                    ok, seconds, tb = value
                    report(running, ok, seconds, read_text(out_path), tb)
                    passed += ok
                    failed += not ok
                if queue:
                    workers[conn][2] = queue.pop(0)
                    conn.send(workers[conn][2])
                else:
                    # It closes its World while the others finish.
                    conn.send(None)
                    closing.append(proc)
                    del workers[conn]
        # Tests no worker could run (every World failed) are failures.
        for name in queue:
            failed += 1
            report(name, False, 0.0, "", "not run: no worker could start its servers\n")
        finished = True
    finally:
        # A second signal must not cut this short: the workers would be
        # left running their tests.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not finished:
            for proc, out_path, running in workers.values():
                if running:
                    sys.stdout.write(read_text(out_path))
                    sys.stdout.write("INTERRUPTED %s\n" % running)
            sys.stdout.flush()
        for proc, _, _ in workers.values():
            proc.terminate()
        for proc in [p for p, _, _ in workers.values()] + closing:
            proc.join()
        shutil.rmtree(tmp, ignore_errors=True)
    return passed, failed


def run_serial(tests):
    """Runs tests one after the other in one World, printing as they go."""
    world = harness.World()
    passed = failed = 0
    try:
        for name, fn in tests:
            start = time.time()
            try:
                fn(world)
                passed += 1
                print("PASS %s (%.1fs)" % (name, time.time() - start), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s (%.1fs)" % (name, time.time() - start), flush=True)
                traceback.print_exc()
                sys.stdout.flush()
    finally:
        world.close()
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="")
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("WF2JSM_TEST_JOBS") or 1))
    args = ap.parse_args()
    tests = collect(args)
    if args.valgrind:
        os.environ["WF2JSM_BIN"] = os.path.join(harness.ROOT, "tests", "lib", "valgrind-wf2jsm.sh")
    jobs = max(1, min(args.jobs, len(tests)))
    print("tracker backend: %s%s" % (harness.BACKEND, ", %d workers" % jobs if jobs > 1 else ""), flush=True)
    if jobs > 1:
        passed, failed = run_parallel(tests, jobs)
    else:
        passed, failed = run_serial(tests)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
