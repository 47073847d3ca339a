using System.Diagnostics;

namespace EioSharp.Tests.Backends;

/// <summary>
/// A small tmpfs mounted for one test, so that a disk can be filled up safely: a filler file takes most of its space,
/// and deleting it "frees the disk". Mounting needs root (CI runs as root); elsewhere <see cref="Mount"/> skips the test.
/// Disposing unmounts it and removes its directory.
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
    public static SmallTmpfs Mount(string size)
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

        return new SmallTmpfs(mount);
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
    private string HoldersOfFiller()
    {
        var holders = new List<string>();
        foreach (string proc in Directory.EnumerateDirectories("/proc"))
        {
            string pid = System.IO.Path.GetFileName(proc);
            if (!int.TryParse(pid, out _))
            {
                continue;
            }

            try
            {
                foreach (string fd in Directory.EnumerateFileSystemEntries(System.IO.Path.Combine(proc, "fd")))
                {
                    string? target = new FileInfo(fd).LinkTarget;
                    if (target is not null && target.StartsWith(Filler, StringComparison.Ordinal))
                    {
                        holders.Add($"{pid} ({File.ReadAllText(System.IO.Path.Combine(proc, "comm")).Trim()})");
                        break;
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the process ended while we looked, or hides its descriptors
            }
        }

        return holders.Count == 0 ? "no process found" : string.Join(", ", holders);
    }

    /// <summary>Unmounts the tmpfs and deletes the mount point.</summary>
    public void Dispose()
    {
        using (var unmounted = Process.Start("umount", [Path]))
        {
            unmounted.WaitForExit();
        }

        Directory.Delete(Path, recursive: true);
    }
}
