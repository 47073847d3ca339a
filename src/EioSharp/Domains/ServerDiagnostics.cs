using System.Runtime.InteropServices;
using EioSharp.Tracing;

namespace EioSharp.Domains;

/// <summary>What a server process sets up for debugging its fibers: an optional trace file, fiber tracking for dumps, and a
/// dump of the live fiber tree on SIGQUIT.</summary>
/// <remarks>[ext] Not in Eio. Used by the servers in apps/ (<c>--trace FILE</c>, <c>kill -QUIT pid</c>), like a Go
/// goroutine dump. The returned handle stops the trace (writing the rest of the file), the tracking and the signal
/// handler when disposed.</remarks>
public static class ServerDiagnostics
{
    /// <summary>Installs the diagnostics.</summary>
    /// <param name="traceFile">A file to stream the fiber trace to (Chrome Trace Event JSON), or null for none.</param>
    /// <param name="dumpTo">Where SIGQUIT writes the dump (default: standard error).</param>
    /// <returns>A handle to dispose when the server stops.</returns>
    /// <exception cref="IOException">The trace file cannot be created.</exception>
    /// <exception cref="InvalidOperationException">A trace session is already running.</exception>
    public static IDisposable Install(string? traceFile, TextWriter? dumpTo = null)
    {
        var output = dumpTo ?? Console.Error;
        var tracking = EioDiagnostics.TrackFibers();
        if (traceFile is not null)
        {
            EioTrace.Start(traceFile);
        }

        PosixSignalRegistration? quit = null;
        if (!OperatingSystem.IsWindows())
        {
            quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c =>
            {
                c.Cancel = true; // a dump, not an exit
                lock (output)
                {
                    output.Write("SIGQUIT: live fibers\n" + EioDiagnostics.DumpTree());
                    output.Flush();
                }
            });
        }

        return new Handle(tracking, quit, traceFile is not null);
    }

    private sealed class Handle(IDisposable tracking, PosixSignalRegistration? quit, bool tracing) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            quit?.Dispose();
            if (tracing)
            {
                EioTrace.Stop();
            }

            tracking.Dispose();
        }
    }
}
