#!/usr/bin/env python3
"""Prints a compact summary of .NET crash reports (*.crashreport.json, written by createdump when a process runs with
DOTNET_DbgEnableMiniDump=1 DOTNET_EnableCrashReport=1): per report, the process, the signal/exception, the crashing
thread's frames (managed: module!method+IL offset; native: module!symbol+offset), then one line per other thread with
its first managed frames. Usage: crash-summary.py FILE_OR_DIR... (directories are searched recursively). Exit 0."""
import glob
import json
import os
import sys

MAX_FRAMES = 30
MAX_LINE = 240


def frame_text(f):
    if f.get("is_managed") == "true":
        method = f.get("method_name") or "?"
        module = f.get("filename") or f.get("module_name") or "?"
        return f"M {module}!{method} +IL {f.get('il_offset', '?')}"
    module = f.get("native_module") or "?"
    name = f.get("unmanaged_name") or ""
    return f"N {module}!{name}+{f.get('native_image_offset', '?')}" if name else f"N {module}+{f.get('native_image_offset', '?')}"


def managed_top(frames, n=4):
    names = [f.get("method_name") for f in frames if f.get("is_managed") == "true" and f.get("method_name")]
    return " <- ".join(names[:n])


def summarise(path):
    try:
        with open(path, encoding="utf-8") as fh:
            report = json.load(fh)
    except (OSError, ValueError) as e:
        print(f"== {path}: unreadable crash report ({e})")
        return
    payload = report.get("payload", {})
    params = report.get("parameters", {})
    threads = payload.get("threads", [])
    print(f"== crash report {path}")
    print(f"   process {payload.get('process_name', '?')} runtime {payload.get('configuration', {}).get('version', '?').strip()} "
          f"parameters {json.dumps(params)}; {len(threads)} threads")
    for t in threads:
        if t.get("crashed") != "true":
            continue
        exc = t.get("managed_exception_type")
        print(f"   CRASHED thread {t.get('native_thread_id')}" + (f" managed exception {exc}: {t.get('managed_exception_message', '')}" if exc else ""))
        frames = t.get("stack_frames", [])
        for f in frames[:MAX_FRAMES]:
            print(("     " + frame_text(f))[:MAX_LINE])
        if len(frames) > MAX_FRAMES:
            print(f"     ... {len(frames) - MAX_FRAMES} more frames")
    for t in threads:
        if t.get("crashed") == "true":
            continue
        top = managed_top(t.get("stack_frames", []))
        if top:
            print(f"   thread {t.get('native_thread_id')}: {top}"[:MAX_LINE * 2])


def main():
    paths = []
    for arg in sys.argv[1:]:
        if os.path.isdir(arg):
            paths += sorted(glob.glob(os.path.join(arg, "**", "*.crashreport.json"), recursive=True))
        elif os.path.exists(arg):
            paths.append(arg)
    for p in paths:
        summarise(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
