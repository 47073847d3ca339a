using System.Runtime.Versioning;
using EioSharp.Backends;
using EioSharp.Fs;
using EioSharp.Tests.Backends;

namespace EioSharp.Tests.Fs;

/// <summary>
/// A fresh temporary tree per test: <c>{Base}/root</c> is the sandbox, <c>{Base}/outside</c> holds a
/// sentinel file that confined operations must never touch.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class FsSandbox : IDisposable
{
    public const string SentinelContents = "do not touch";

    public FsSandbox(PathResolution resolution = PathResolution.Beneath)
    {
        Base = Path.Combine(Path.GetTempPath(), "eiosharp-fs-" + Guid.NewGuid().ToString("N"));
        Root = Path.Combine(Base, "root");
        Outside = Path.Combine(Base, "outside");
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Outside);
        Sentinel = Path.Combine(Outside, "sentinel");
        File.WriteAllText(Sentinel, SentinelContents);
        Dir = DirectoryHandle.OpenRoot(Root, resolution);
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="backend"/> (<see cref="NetConformanceTests.RunOn"/>) with a
    /// fresh sandbox's root opened as a subtree of <c>env.Fs</c> in a switch; <paramref name="prepare"/> fills the
    /// sandbox first. The shared set-up of the per-backend file tests.</summary>
    public static T RunOn<T>(EioBackend backend, Func<Stdenv, EioPath, FsSandbox, Task<T>> body, Action<FsSandbox>? prepare = null, EioBackendOptions? tuning = null)
    {
        using var s = new FsSandbox();
        prepare?.Invoke(s);
        return NetConformanceTests.RunOn(backend, env =>
            Switch.RunAsync(async sw => await body(env, await (env.Fs / s.Root).OpenSubtreeAsync(sw), s)), tuning);
    }

    public string Base { get; }

    public string Root { get; }

    public string Outside { get; }

    public string Sentinel { get; }

    public DirectoryHandle Dir { get; }

    public string InRoot(string relative) => Path.Combine(Root, relative);

    public void WriteFile(string relative, string contents) => File.WriteAllText(InRoot(relative), contents);

    public void MakeDir(string relative) => Directory.CreateDirectory(InRoot(relative));

    public void Link(string relative, string target) => File.CreateSymbolicLink(InRoot(relative), target);

    /// <summary>Everything under <see cref="Outside"/> and beside <see cref="Root"/>: names, kinds, sizes, contents of files.</summary>
    public string SnapshotOutside()
    {
        var lines = new List<string>();
        foreach (var entry in Directory.EnumerateFileSystemEntries(Base, "*", SearchOption.TopDirectoryOnly))
        {
            lines.Add("top:" + Path.GetFileName(entry));
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(Outside, "*", SearchOption.AllDirectories))
        {
            var info = new FileInfo(entry);
            string kind = info.LinkTarget is not null ? "link" : Directory.Exists(entry) ? "dir" : "file";
            string contents = kind == "file" ? File.ReadAllText(entry) : "";
            lines.Add($"{kind}:{Path.GetRelativePath(Outside, entry)}:{contents}:{info.LastWriteTimeUtc.Ticks}");
        }

        lines.Sort(StringComparer.Ordinal);
        return string.Join('\n', lines);
    }

    public void Dispose()
    {
        Dir.Dispose();
        try
        {
            // Restore permissions a test may have removed, then delete (symlinks are removed, not followed).
            foreach (var d in Directory.EnumerateDirectories(Base, "*", SearchOption.AllDirectories))
            {
                if (new DirectoryInfo(d).LinkTarget is null)
                {
                    File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
            }

            Directory.Delete(Base, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
