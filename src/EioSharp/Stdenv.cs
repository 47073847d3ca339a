using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.IO;
using EioSharp.Net;
using EioSharp.Processes;
using EioSharp.Time;

namespace EioSharp;

/// <summary>The capabilities a program starts with: everything in the library that reaches the OS is reached from here (S28).</summary>
/// <remarks>
/// Eio: <c>Eio_unix.Stdenv.base</c> (<c>env</c>). Pass only what a function needs (for example just <see cref="MonoClock"/>),
/// so its signature tells what it can touch.
/// </remarks>
public sealed class Stdenv
{
    internal Stdenv(
        Clock clock, MonoClock monoClock, DomainManager domainManager, string backend,
        IFlowSource stdin, IFlowSink stdout, IFlowSink stderr, IFlowSource secureRandom,
        NetworkCapability? net = null, EioPath? fs = null, EioPath? cwd = null)
    {
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        SecureRandom = secureRandom;
        _net = net;
        _fs = fs;
        _cwd = cwd;
        Clock = clock;
        MonoClock = monoClock;
        DomainManager = domainManager;
        Backend = backend;
    }

    /// <summary>The wall clock (time of day).</summary>
    /// <remarks>Eio: <c>env#clock</c>.</remarks>
    public Clock Clock { get; }

    /// <summary>The monotonic clock, for intervals and timeouts.</summary>
    /// <remarks>Eio: <c>env#mono_clock</c>.</remarks>
    public MonoClock MonoClock { get; }

    /// <summary>Starts new domains (OS threads with their own scheduler) for parallelism.</summary>
    /// <remarks>Eio: <c>env#domain_mgr</c>.</remarks>
    public DomainManager DomainManager { get; }

    private readonly NetworkCapability? _net;

    /// <summary>The network: listening, connecting, datagrams and name lookup.</summary>
    /// <exception cref="NotSupportedException">The backend has no network (the mock backend run without a mock network:
    /// pass one with <c>MockMain.Run(env =&gt; ..., net: new MockNet())</c>).</exception>
    /// <remarks>Eio: <c>env#net</c>.</remarks>
    public NetworkCapability Net => _net ?? throw new NotSupportedException($"The {Backend} backend has no real network.");

    private readonly EioPath? _fs;
    private readonly EioPath? _cwd;

    /// <summary>The whole filesystem, unconfined: relative paths start at the process's current directory and absolute paths are allowed.</summary>
    /// <exception cref="NotSupportedException">The backend has no real filesystem (the mock backend).</exception>
    /// <remarks>Eio: <c>env#fs</c>. Pass <see cref="Cwd"/> or a subtree from <see cref="EioPath.OpenSubtreeAsync"/> instead
    /// wherever full access is not needed.</remarks>
    public EioPath Fs => _fs ?? throw new NotSupportedException($"The {Backend} backend has no real filesystem.");

    /// <summary>The current directory, confined: paths cannot leave it through <c>..</c>, absolute paths or symlinks (S28).</summary>
    /// <exception cref="NotSupportedException">The backend has no real filesystem (the mock backend).</exception>
    /// <remarks>Eio: <c>env#cwd</c>. The directory is the one current when it is first used, and stays pinned by its descriptor.</remarks>
    public EioPath Cwd => _cwd ?? throw new NotSupportedException($"The {Backend} backend has no real filesystem.");

    private ProcessManager? _processManager;

    /// <summary>Starts child processes (spawn, run, parse output, pipes).</summary>
    /// <exception cref="NotSupportedException">The backend cannot start real processes (the mock backend, or not Linux).</exception>
    /// <remarks>Eio: <c>env#process_mgr</c> (<c>Eio.Stdenv.process_mgr</c>).</remarks>
    public ProcessManager ProcessManager =>
        Backend == "mock" || !OperatingSystem.IsLinux()
            ? throw new NotSupportedException($"The {Backend} backend cannot start processes on this platform.")
            : _processManager ??= new ProcessManager(MonoClock);

    /// <summary>The name of the backend in use, after any fallback: <c>portable</c>, <c>epoll</c>, <c>uring</c> or <c>mock</c> (see <see cref="EioBackend"/>).</summary>
    public string Backend { get; }

    /// <summary>Standard input.</summary>
    /// <remarks>Eio: <c>env#stdin</c>. Under the mock backend it is empty.</remarks>
    public IFlowSource Stdin { get; }

    /// <summary>Standard output.</summary>
    /// <remarks>Eio: <c>env#stdout</c>. Under the mock backend writes are traced as <c>+stdout: wrote "..."</c>.</remarks>
    public IFlowSink Stdout { get; }

    /// <summary>Standard error.</summary>
    /// <remarks>Eio: <c>env#stderr</c>. Under the mock backend writes are traced as <c>+stderr: wrote "..."</c>.</remarks>
    public IFlowSink Stderr { get; }

    /// <summary>An endless source of cryptographically secure random bytes (each read fills the whole buffer).</summary>
    /// <remarks>Eio: <c>env#secure_random</c>. Under the mock backend the bytes are deterministic (not secure).</remarks>
    public IFlowSource SecureRandom { get; }
}
