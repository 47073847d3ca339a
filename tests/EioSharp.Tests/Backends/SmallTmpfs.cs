using System.Diagnostics;
using Xunit.Abstractions;

namespace EioSharp.Tests.Backends;

/// <summary>
/// A small tmpfs mounted for one test, so that a disk can be filled up safely: a filler file takes most of its space,
/// and deleting it "frees the disk". Mounting needs root (CI runs as root); elsewhere <see cref="Mount"/> skips the test.
/// Disposing checks that this process holds nothing there, unmounts it and removes its directory (see <see cref="Dispose"/>).
/// </summary>
internal sealed class SmallTmpfs : IDisposable
{
    private SmallTmpfs(string path) => Path = path;

    /// <summary>The mount point, a fresh directory under the system's temporary directory.</summary>
    public string Path { get; }

    /// <summary>The filler's path (written by <see cref="Fill"/>).</summary>
    public string Filler => System.IO.Path.Combine(Path, "filler");

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (mount's syntax: <c>1m</c>, <c>8m</c>). Skips the test (via
    /// <see cref="Skip"/>) when the process is not root or <c>mount</c> fails.</summary>
    public static SmallTmpfs Mount(string size, ITestOutputHelper? output = null)
    {
        Skip.IfNot(Environment.IsPrivilegedProcess, "mounting a small tmpfs needs root (CI runs as root)");
        string mount = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "eiosharp-tail-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(mount);
        using var mounted = Process.Start("mount", ["-t", "tmpfs", "-o", "size=" + size, "tmpfs", mount]);
        mounted.WaitForExit();
        if (mounted.ExitCode != 0)
        {
            Directory.Delete(mount);
            Skip.If(true, "mount -t tmpfs failed");
        }

        return new SmallTmpfs(mount) { Output = output };
    }

    /// <summary>Writes the filler: <paramref name="bytes"/> bytes of zeros.</summary>
    public void Fill(int bytes) => File.WriteAllBytes(Filler, new byte[bytes]);

    /// <summary>Deletes the filler and waits (polling every 10 ms, at most 10 s) until the file system reports at least
    /// <paramref name="bytes"/> free, so that a failure after it is the code under test's. The filler's blocks come back
    /// when its last reference goes: ci89 once saw an ENOSPC with the filler deleted, a likely holder being a child
    /// process another test forked while the filler was open (it keeps a copy of the descriptor until its exec).
    /// Throws an assertion failure naming the processes that still hold the deleted filler open when the space does not
    /// come back.</summary>
    public void FreeFillerAndWaitForSpace(long bytes)
    {
        File.Delete(Filler);
        var waited = Stopwatch.StartNew();
        while (new DriveInfo(Path).AvailableFreeSpace < bytes && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(10);
        }

        long free = new DriveInfo(Path).AvailableFreeSpace;
        Assert.True(free >= bytes, $"the deleted filler's space never came back ({free} bytes free after {waited.ElapsedMilliseconds} ms); held open by: {HoldersOfFiller()}");
    }

    /// <summary>"pid (command)" of every process with a descriptor on the (deleted) filler, from /proc/*/fd.</summary>
    private string HoldersOfFiller() => Holders(Filler, maps: false);

    /// <summary>"pid (command): what" of every process with a descriptor (from /proc/*/fd), a working directory or,
    /// when <paramref name="maps"/>, a memory mapping (from /proc/*/maps) on a path that starts with
    /// <paramref name="prefix"/> (every process, or this one when <paramref name="selfOnly"/>); "no process found" when
    /// none.</summary>
    private static string Holders(string prefix, bool maps, bool selfOnly = false)
    {
        var holders = new List<string>();
        foreach (string proc in selfOnly ? ["/proc/" + Environment.ProcessId] : Directory.EnumerateDirectories("/proc"))
        {
            string pid = System.IO.Path.GetFileName(proc);
            if (!int.TryParse(pid, out _))
            {
                continue;
            }

            try
            {
                var what = new List<string>();
                foreach (string fd in Directory.EnumerateFileSystemEntries(System.IO.Path.Combine(proc, "fd")))
                {
                    string? target = new FileInfo(fd).LinkTarget;
                    if (target is not null && target.StartsWith(prefix, StringComparison.Ordinal))
                    {
                        what.Add("fd " + System.IO.Path.GetFileName(fd) + " -> " + target);
                    }
                }

                string? cwd = new DirectoryInfo(System.IO.Path.Combine(proc, "cwd")).LinkTarget;
                if (cwd is not null && cwd.StartsWith(prefix, StringComparison.Ordinal))
                {
                    what.Add("cwd " + cwd);
                }

                if (maps)
                {
                    what.AddRange(File.ReadLines(System.IO.Path.Combine(proc, "maps"))
                        .Where(line => line.Contains(prefix, StringComparison.Ordinal))
                        .Select(line => "map " + line));
                }

                if (what.Count > 0)
                {
                    holders.Add($"{pid} ({File.ReadAllText(System.IO.Path.Combine(proc, "comm")).Trim()}): {string.Join("; ", what)}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the process ended while we looked, or hides its descriptors
            }
        }

        return holders.Count == 0 ? "no process found" : string.Join(", ", holders);
    }

    /// <summary>Unmounts the tmpfs and deletes the mount point. First checks that this process holds nothing on it (no
    /// descriptor, working directory or mapping: what the code under test opened is closed, nothing leaks), and fails
    /// the test naming what it holds. Then <c>umount</c>, retried for at most 5 s while it answers busy: another
    /// process can hold a file here for a moment without this test's doing (a child that another test, running in
    /// parallel, forked while a file here was open, until its <c>exec</c>; a last close the kernel completes
    /// asynchronously). CI saw that in ci98 (the uring case of the whole-suite epoll pass): the plain <c>umount</c>
    /// answered busy and the test failed on the mount point's removal (<c>IOException</c>: Device or resource busy).
    /// Past that it detaches the mount lazily (<c>umount -l</c>: gone from the tree at once, freed when the last holder
    /// lets go) and writes the holders to <see cref="Output"/> when set.</summary>
    public void Dispose()
    {
        string prefix = Path + "/";
        string own = Holders(prefix, maps: true, selfOnly: true);
        string? leak = own == "no process found" ? null : own;
        var waited = Stopwatch.StartNew();
        bool unmounted;
        while (!(unmounted = Run("umount", Path)) && waited.Elapsed < TimeSpan.FromSeconds(5))
        {
            Thread.Sleep(50);
        }

        if (!unmounted)
        {
            Output?.WriteLine($"umount {Path}: busy for {waited.ElapsedMilliseconds} ms, detached lazily; held by: {Holders(prefix, maps: true)}");
            Assert.True(Run("umount", "-l", Path), $"umount -l {Path} failed");
        }

        Directory.Delete(Path, recursive: true);
        Assert.True(leak is null, $"this process still holds files on the tmpfs at its dispose (a leak of the code under test): {leak}");
    }

    /// <summary>Where <see cref="Dispose"/> reports a busy unmount (optional).</summary>
    public ITestOutputHelper? Output { get; init; }

    private static bool Run(string command, params string[] args)
    {
        var start = new ProcessStartInfo(command, args) { RedirectStandardError = true };
        using var process = Process.Start(start)!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0;
    }
}
