#!/usr/bin/env python3
"""run.py: runs the integration tests (tests/integration/test_*.py).

Each test is a function test_*(world) in a test_*.py file. Prints one line
per test and closes with 'N passed, N failed'. Options:
  -k TEXT      run only the tests whose name contains TEXT
  --valgrind   run the tests marked VALGRIND = True with the non-sanitized
               binary under valgrind (memcheck), failing on any error
Randomised tests read their seed from WF2JSM_SEED and print it.
WF2JSM_TRACKER_BACKEND=pg runs them with the tracker in PostgreSQL (see
harness.py); tests marked for the other backend only are left out.
"""
import argparse
import glob
import importlib.util
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="")
    ap.add_argument("--valgrind", action="store_true")
    args = ap.parse_args()
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
    if args.valgrind:
        os.environ["WF2JSM_BIN"] = os.path.join(harness.ROOT, "tests", "lib", "valgrind-wf2jsm.sh")
    print("tracker backend: %s" % harness.BACKEND, flush=True)
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
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
