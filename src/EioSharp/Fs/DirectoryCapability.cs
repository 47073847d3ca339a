namespace EioSharp.Fs;

/// <summary>The directory behind an <see cref="EioPath"/>: <c>env.Fs</c>, <c>env.Cwd</c>, or a subtree opened by <see cref="EioPath.OpenSubtreeAsync"/>.</summary>
/// <remarks>
/// <para>
/// Wraps a <see cref="DirectoryHandle"/>, opened lazily for <c>env.Cwd</c> (so a deleted current directory only fails
/// the first operation that uses it, not <see cref="EioMain.Run(Func{Stdenv, Task})"/>).
/// </para>
/// <para>
/// <b>Lifetime</b>: a subtree is owned by a switch (closed by a release hook); <see cref="Close"/> is idempotent and
/// removes the hook when called on the switch's domain (S29). The handle's reference count keeps the descriptor open
/// under an operation already running on the thread pool. Roots (<c>Fs</c>, <c>Cwd</c>) are closed by the entry point
/// only, through <see cref="DisposeRoot"/>.
/// </para>
/// <para><b>Thread safety</b>: all members are safe to use from several threads.</para>
/// </remarks>
internal sealed class DirectoryCapability
{
    private readonly Lazy<DirectoryHandle> _handle;
    private readonly bool _isRoot;
    private ReleaseHook? _hook;
    private Domain? _ownerDomain;

    private DirectoryCapability(Lazy<DirectoryHandle> handle, string label, bool isRoot)
    {
        _handle = handle;
        Label = label;
        _isRoot = isRoot;
    }

    /// <summary>Gets the name shown by <see cref="EioPath.ToString"/>: <c>fs</c>, <c>cwd</c> or <c>dir:/abs/path</c>.</summary>
    public string Label { get; }

    /// <summary>Gets the display path of the directory (<c>.</c> for the current directory), for <see cref="EioPath.Native"/>.</summary>
    public string DisplayPath { get; private init; } = ".";

    /// <summary>Gets whether paths may leave the directory (only <c>env.Fs</c>).</summary>
    public bool IsUnconfined { get; private init; }

    /// <summary>Gets whether the directory was closed.</summary>
    public bool IsClosed => _handle.IsValueCreated && _handle.Value.IsClosed;

    /// <summary>Gets the release hook of a subtree (null for roots), for tests.</summary>
    internal ReleaseHook? Hook => _hook;

    /// <summary>Gets the handle, opening it on first use.</summary>
    /// <exception cref="DirectoryNotFoundException">The lazily opened directory no longer exists.</exception>
    public DirectoryHandle Handle => _handle.Value;

    /// <summary>Creates <c>env.Fs</c>: the process's current directory, unconfined (absolute paths allowed).</summary>
    /// <param name="portable">The run's filesystem layer (<see cref="FsPlatform"/>): <see cref="PortableFs"/> when true,
    /// <see cref="NativeFs"/> otherwise; every subtree and file opened from it keeps that layer.</param>
    public static DirectoryCapability CreateFs(bool portable) =>
        new(new Lazy<DirectoryHandle>(() => DirectoryHandle.CurrentDirectoryUnconfined(portable)), "fs", isRoot: true) { IsUnconfined = true };

    /// <summary>Creates <c>env.Cwd</c>: the current directory at the time of first use, confined beneath it.</summary>
    /// <param name="portable">The run's filesystem layer, as for <see cref="CreateFs"/>.</param>
    public static DirectoryCapability CreateCwd(bool portable) =>
        new(new Lazy<DirectoryHandle>(() => DirectoryHandle.OpenRoot(Environment.CurrentDirectory, portable ? PathResolution.Portable : PathResolution.Beneath)),
            "cwd", isRoot: true);

    /// <summary>Wraps a subtree handle and makes <paramref name="sw"/> own it.</summary>
    /// <exception cref="InvalidOperationException">The switch has finished (the handle has then been closed) or belongs to another domain.</exception>
    public static DirectoryCapability CreateOwned(Switch sw, DirectoryHandle handle)
    {
        var cap = new DirectoryCapability(new Lazy<DirectoryHandle>(handle), "dir:" + handle.DisplayPath, isRoot: false)
        {
            DisplayPath = handle.DisplayPath,
        };
        cap._ownerDomain = Domain.Current;
        cap._hook = sw.OnRelease(() => cap.CloseHandle());
        return cap;
    }

    /// <summary>Closes a subtree; idempotent. Does nothing for <c>env.Fs</c> and <c>env.Cwd</c>.</summary>
    public void Close()
    {
        if (_isRoot || !CloseHandle())
        {
            return;
        }

        if (_hook is not null && ReferenceEquals(Domain.Current, _ownerDomain))
        {
            _hook.Remove();
        }
    }

    /// <summary>Closes a root capability at the end of the entry point.</summary>
    public void DisposeRoot()
    {
        if (_handle.IsValueCreated)
        {
            _handle.Value.Dispose();
        }
    }

    private bool CloseHandle()
    {
        var handle = _handle.Value;
        if (handle.IsClosed)
        {
            return false;
        }

        handle.Dispose();
        return true;
    }
}
