#!/usr/bin/env python3
"""Proves that ctest ran every Catch2 test case exactly once, after the suite has run.

ctest can pass while test cases never run: catch_discover_tests registers one ctest entry per
test case, its name as a Catch2 filter, and a name that does not survive the trip (a ';' splits
it into two entries, a '\\' or a leading '~' changes the filter) gives entries that match no test
case; Catch2 2.13 then prints "No test cases matched" and exits 0. So, for every ctest entry
that runs a Catch2 binary, whatever CMake file registered it:

  1. the entry's own command line, with --list-test-names-only added, must list at least one
     test case, and every test case the binary lists (its --list-test-names-only without a
     filter) must be listed by exactly one entry: none left out, none run twice;
  2. in the JUnit file of the run (ctest --output-junit), every registered entry has run, none
     printed "No test cases matched" or "No tests ran", and the test case count in the Catch2
     summary each entry printed equals the count its filter lists.

Usage: check-tests-ran.py BUILD_DIR JUNIT_FILE
Exits 1 and says which entries and test cases are wrong; prints the counts when all is well.
"""
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

# Catch2's command line parser holds this string; a script or another program does not.
CATCH_MARKER = b"--list-test-names-only"
# "All tests passed (12 assertions in 1 test case)" / "test cases: 3 | 2 passed | 1 failed"
SUMMARY_PASSED = re.compile(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)")
SUMMARY_MIXED = re.compile(r"test cases:\s*(\d+)\s*\|")
NOTHING_RAN = ("No test cases matched", "No tests ran")


def is_catch_binary(path, cache={}):
    if path not in cache:
        try:
            with open(path, "rb") as f:
                data = f.read()
            cache[path] = data[:4] == b"\x7fELF" and CATCH_MARKER in data
        except OSError:
            cache[path] = False
    return cache[path]


# A listing allocates little and runs no test: LeakSanitizer's scan at its exit (the sanitizer
# run exports detect_leaks=1) took most of the ~300 listings' time under ASan.
LISTING_ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")


def list_names(command, cwd):
    """Test case names the command would run: Catch2 lists them instead of running them."""
    out = subprocess.run(command + ["--list-test-names-only"], cwd=cwd, capture_output=True,
                         text=True, timeout=120, env=LISTING_ENV)
    return [line for line in out.stdout.splitlines() if line.strip()]


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir, junit_file = sys.argv[1], sys.argv[2]
    problems = []

    shown = subprocess.run(["ctest", "--test-dir", build_dir, "--show-only=json-v1"],
                           capture_output=True, text=True, check=True)
    registered = json.loads(shown.stdout)["tests"]

    # 1. Each Catch2 entry's filter against what its binary lists.
    catch_entries = {}          # ctest name -> number of test cases its filter selects
    covered = defaultdict(lambda: defaultdict(list))  # binary -> test case -> ctest names
    # Every entry's listing, and each binary's whole list, one per core at a time (a process
    # start each: ~300 of them).
    catch_tests = []
    for test in registered:
        command = [arg for arg in test.get("command", []) if arg != ""]
        if command and is_catch_binary(command[0]):
            cwd = next((p["value"] for p in test.get("properties", [])
                        if p["name"] == "WORKING_DIRECTORY"), build_dir)
            catch_tests.append((test, command, cwd))
    binary_cwds = {}
    for _, command, cwd in catch_tests:
        binary_cwds.setdefault(command[0], cwd)
    jobs = [(command, cwd) for _, command, cwd in catch_tests] + \
           [([binary], cwd) for binary, cwd in binary_cwds.items()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        listed = list(pool.map(lambda job: list_names(*job), jobs))
    listings = listed[:len(catch_tests)]
    binaries = dict(zip(binary_cwds, listed[len(catch_tests):]))
    for (test, command, _), selected in zip(catch_tests, listings):
        binary = command[0]
        catch_entries[test["name"]] = len(selected)
        if not selected:
            problems.append(f"ctest entry '{test['name']}' matches no test case of {binary}")
        # The same test case may run once per environment (e.g. SQLite, then PostgreSQL
        # through SUPPORTMAIL_TEST_POSTGRES): a variant is the entry's ENVIRONMENT.
        env = next((p["value"] for p in test.get("properties", []) if p["name"] == "ENVIRONMENT"), [])
        variant = tuple(sorted(env if isinstance(env, list) else [env]))
        for name in selected:
            covered[binary][name].append((test["name"], variant))

    listed_total = 0
    for binary, names in binaries.items():
        listed_total += len(names)
        for name in names:
            entries = covered[binary].get(name, [])
            if not entries:
                problems.append(f"test case '{name}' of {binary} is run by no ctest entry")
            variants = defaultdict(list)
            for entry, variant in entries:
                variants[variant].append(entry)
            for same in variants.values():
                if len(same) > 1:
                    problems.append(f"test case '{name}' of {binary} is run by {len(same)} ctest "
                                    f"entries in the same environment: {same}")

    # 2. What the run did, from its JUnit file.
    try:
        suite = ET.parse(junit_file).getroot()
    except (OSError, ET.ParseError) as e:
        problems.append(f"no readable JUnit file {junit_file}: {e}")
        suite = None
    ran_cases = 0
    if suite is not None:
        results = {case.get("name"): case for case in suite.iter("testcase")}
        for test in registered:
            case = results.get(test["name"])
            if case is None or case.get("status") != "run":
                status = "absent" if case is None else case.get("status")
                what = "failed" if status == "fail" else f"did not run (JUnit: {status})"
                problems.append(f"ctest entry '{test['name']}' {what}")
                continue
            if test["name"] not in catch_entries:
                continue
            output = "".join(out.text or "" for out in case.iter("system-out"))
            if any(marker in output for marker in NOTHING_RAN):
                problems.append(f"ctest entry '{test['name']}' ran no test case: "
                                f"{next(m for m in NOTHING_RAN if m in output)}")
                continue
            counts = SUMMARY_PASSED.findall(output) or SUMMARY_MIXED.findall(output)
            if not counts:
                problems.append(f"ctest entry '{test['name']}': no Catch2 summary in its output")
                continue
            ran = int(counts[-1])
            ran_cases += ran
            if ran != catch_entries[test["name"]]:
                problems.append(f"ctest entry '{test['name']}' ran {ran} test cases, its filter "
                                f"selects {catch_entries[test['name']]}")

    if problems:
        print("check-tests-ran: FAILED, not every test case ran exactly once under ctest:")
        for p in problems:
            print("  - " + p)
        return 1
    print(f"check-tests-ran: ok: {len(registered)} ctest entries ran; {len(catch_entries)} of "
          f"them ran {ran_cases} Catch2 test cases, as many as the {len(binaries)} test binaries "
          f"list ({listed_total})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
