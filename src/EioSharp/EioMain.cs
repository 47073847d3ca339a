using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.IO;
using EioSharp.Time;

namespace EioSharp;

/// <summary>The entry point: turns the calling thread into the main domain and runs the main fiber.</summary>
/// <remarks>
/// Eio: <c>Eio_main.run</c>. The backend is chosen by the <c>EIOSHARP_BACKEND</c> environment variable:
/// <c>portable</c> (the default: .NET sockets, completions posted to the domain) or <c>epoll</c> (Linux x64, opt-in: each
/// domain waits in its own epoll instance and does TCP socket I/O itself, with no hop through .NET's I/O thread; Unix and
/// datagram sockets stay Portable). If epoll is unavailable, <c>epoll</c> falls back to <c>portable</c> with a note on stderr;
/// <see cref="Stdenv.Backend"/> reports the backend in use.
/// <para><b>Scheduling</b>: returns when the main fiber finishes. Fibers must be owned by switches inside it, so nothing
/// started by the program outlives <see cref="Run(Func{Stdenv, Task})"/>.</para>
/// </remarks>
public static class EioMain
{
    /// <summary>Runs <paramref name="main"/> as the main fiber of a new main domain on the calling thread.</summary>
    /// <param name="main">The program; receives the capabilities.</param>
    /// <exception cref="Exception">Whatever <paramref name="main"/> throws, rethrown on the calling thread.</exception>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    public static void Run(Func<Stdenv, Task> main) =>
        Run<bool>(async env => { await main(env); return true; });

    /// <summary>Opts a server process into the settings measured best for servers, unless the environment says otherwise.</summary>
    /// <remarks>
    /// Call it first thing in <c>Main</c>, before any socket is created (.NET reads these settings once).
    /// <list type="bullet">
    /// <item><c>EIOSHARP_BACKEND=epoll</c>: each domain polls its own TCP sockets (Linux x64; elsewhere <see cref="Run(Func{Stdenv, Task})"/>
    /// falls back to the portable backend).</item>
    /// <item><c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>: sockets that stay on the portable transports complete on .NET's
    /// epoll thread instead of hopping through the thread pool; EioSharp's continuations only enqueue onto a domain, so this is
    /// cheap.</item>
    /// </list>
    /// A variable that is already set is left alone. Measurements: docs/BENCHMARKS.md (KV server vs redis-server, the
    /// mixed-fib job server benchmark).
    /// </remarks>
    public static void UseServerDefaults()
    {
        if (Environment.GetEnvironmentVariable("EIOSHARP_BACKEND") is null)
        {
            Environment.SetEnvironmentVariable("EIOSHARP_BACKEND", "epoll");
        }

        if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }
    }

    /// <summary>Runs <paramref name="main"/> as the main fiber and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The program.</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    public static T Run<T>(Func<Stdenv, Task<T>> main) => Run(Environment.GetEnvironmentVariable("EIOSHARP_BACKEND"), main);

    /// <summary>Runs <paramref name="main"/> as the main fiber of a new main domain on the calling thread, with <paramref name="options"/>.</summary>
    /// <param name="main">The program; receives the capabilities.</param>
    /// <param name="options">The backend and tracing settings; null means the defaults (as <see cref="Run(Func{Stdenv, Task})"/>).</param>
    /// <exception cref="Exception">Whatever <paramref name="main"/> throws, rethrown on the calling thread (after the trace file is written).</exception>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain, or <see cref="EioOptions.TraceFile"/>
    /// is set while another trace session runs (<see cref="Tracing.EioTrace.Start(string?, int)"/>).</exception>
    /// <exception cref="IOException">The trace file cannot be created or written.</exception>
    /// <remarks>With <see cref="EioOptions.TraceFile"/>, tracing starts before the main fiber and stops when it returns or
    /// throws; the file (Chrome/Perfetto JSON, streamed while the program runs) is complete when this returns.</remarks>
    public static void Run(Func<Stdenv, Task> main, EioOptions? options)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run<bool>(async env => { await main(env); return true; }, options);
    }

    /// <summary>Runs <paramref name="main"/> as the main fiber with <paramref name="options"/> and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The program.</param>
    /// <param name="options">The backend and tracing settings; null means the defaults (as <see cref="Run{T}(Func{Stdenv, Task{T}})"/>).</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain, or a trace session already runs
    /// while <see cref="EioOptions.TraceFile"/> is set.</exception>
    /// <exception cref="IOException">The trace file cannot be created or written.</exception>
    /// <remarks>See <see cref="Run(Func{Stdenv, Task}, EioOptions?)"/>.</remarks>
    public static T Run<T>(Func<Stdenv, Task<T>> main, EioOptions? options)
    {
        ArgumentNullException.ThrowIfNull(main);
        string? backend = options?.Backend ?? Environment.GetEnvironmentVariable("EIOSHARP_BACKEND");
        return options?.TraceFile is { } traceFile ? RunTraced(traceFile, () => Run(backend, main)) : Run(backend, main);
    }

    /// <summary>Traces <paramref name="run"/> into <paramref name="traceFile"/>: started before, stopped (file complete) after, also on failure.</summary>
    private static T RunTraced<T>(string traceFile, Func<T> run)
    {
        if (Domain.Current is not null)
        {
            throw new InvalidOperationException("EioMain.Run was called from a thread that is already a domain.");
        }

        Tracing.EioTrace.Start(traceFile);
        try
        {
            return run();
        }
        finally
        {
            Tracing.EioTrace.Stop();
        }
    }

    private static int s_fallbackNoted;

    /// <summary>Runs with the named backend (<c>portable</c>, <c>epoll</c>; null or empty: portable). For tests and tools.</summary>
    internal static T Run<T>(string? backend, Func<Stdenv, Task<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        string name = "portable";
        Func<IDomainPoller>? pollerFactory = null;
        Net.NetworkCapability net = Net.PortableNetwork.Instance;
        if (string.Equals(backend, "epoll", StringComparison.OrdinalIgnoreCase))
        {
            var probe = EpollPoller.TryCreate(out string? error);
            if (probe is null)
            {
                if (Interlocked.Exchange(ref s_fallbackNoted, 1) == 0)
                {
                    Console.Error.WriteLine($"EioSharp: EIOSHARP_BACKEND=epoll unavailable ({error}); using the portable backend.");
                }
            }
            else
            {
                probe.Dispose();
                name = "epoll";
                net = Net.EpollNetwork.Instance;
                pollerFactory = static () => (IDomainPoller?)EpollPoller.TryCreate(out _) ?? new EventPoller();
            }
        }
        else if (!string.IsNullOrEmpty(backend) && !string.Equals(backend, "portable", StringComparison.OrdinalIgnoreCase)
                 && Interlocked.Exchange(ref s_fallbackNoted, 1) == 0)
        {
            Console.Error.WriteLine($"EioSharp: unknown EIOSHARP_BACKEND '{backend}'; using the portable backend.");
        }

        if (Domain.Current is not null)
        {
            throw new InvalidOperationException("EioMain.Run was called from a thread that is already a domain.");
        }

        var domain = Domain.CreateReal(null, isMain: true, pollerFactory: pollerFactory);
        var fs = DirectoryCapability.CreateFs();
        var cwd = DirectoryCapability.CreateCwd();
        var env = new Stdenv(
            SystemClock.Instance, SystemMonoClock.Instance, new ThreadDomainManager(), name,
            Stdio.OpenStdin(), Stdio.OpenStdout(), Stdio.OpenStderr(), SecureRandomSource.Instance,
            net, fs: new EioPath(fs, ""), cwd: new EioPath(cwd, ""));
        try
        {
            return domain.RunMain(_ => main(env));
        }
        finally
        {
            cwd.DisposeRoot();
            fs.DisposeRoot();
        }
    }
}
