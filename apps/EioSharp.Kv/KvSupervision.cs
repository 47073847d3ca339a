using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using EioSharp.Net;

namespace EioSharp.Kv;

/// <summary>Redis's <c>supervised</c> directive: the systemd readiness protocol (sd_notify) over the Unix datagram socket
/// named by <c>NOTIFY_SOCKET</c>, and upstart's <c>expect stop</c> (the process stops itself once at start).</summary>
internal static class KvSupervision
{
    private const int SigStop = 19; // Linux

    /// <summary>Whether the server is supervised by upstart: <c>supervised upstart</c>, or <c>auto</c> with UPSTART_JOB set.</summary>
    public static bool IsUpstart(string supervised) =>
        supervised == "upstart" || (supervised == "auto" && Environment.GetEnvironmentVariable("UPSTART_JOB") is not null);

    /// <summary>Redis's redisSupervisedUpstart: under upstart (UPSTART_JOB set) the process stops itself with SIGSTOP,
    /// which upstart's <c>expect stop</c> takes as "started" before it sends SIGCONT; then UPSTART_JOB is removed from the
    /// environment. Without UPSTART_JOB, Redis's warning. Call once, at start.</summary>
    public static void StopForUpstart(string supervised, Action<string> log)
    {
        if (!IsUpstart(supervised))
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("UPSTART_JOB") is null)
        {
            log("upstart supervision requested, but UPSTART_JOB not found!");
            return;
        }

        log("supervised by upstart, will stop to signal readiness.");
        _ = Raise(SigStop);
        Environment.SetEnvironmentVariable("UPSTART_JOB", null);
    }

    [DllImport("libc", EntryPoint = "raise")]
    private static extern int Raise(int signal);

    /// <summary>Whether the server reports to systemd: <c>supervised systemd</c>, or <c>auto</c> with NOTIFY_SOCKET set
    /// (and UPSTART_JOB not set: auto prefers upstart, as Redis's redisIsSupervised).</summary>
    public static bool IsSystemd(string supervised) => supervised switch
    {
        "systemd" => true,
        "auto" => Environment.GetEnvironmentVariable("UPSTART_JOB") is null && Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is not null,
        _ => false,
    };

    /// <summary>The log line Redis writes at start for its supervision mode; null when there is none.</summary>
    public static string? StartLine(string supervised) =>
        !IsSystemd(supervised) ? null
        : Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is { Length: > 0 }
            ? "Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."
            : "systemd supervision requested or auto-detected, but NOTIFY_SOCKET not found!";

    /// <summary>Sends <paramref name="state"/> (sd_notify's "KEY=value\n" lines) to NOTIFY_SOCKET when supervised by systemd,
    /// through the library's datagram socket (a path, or an abstract name written with a leading '@'). A failure is logged,
    /// never fatal (Redis: "systemd supervision error").</summary>
    public static async Task NotifyAsync(Stdenv env, string supervised, string state, Action<string> log)
    {
        if (!IsSystemd(supervised) || Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is not { Length: > 0 } target)
        {
            return;
        }

        try
        {
            await Switch.RunAsync(async sw =>
            {
                // An unnamed sender: an abstract name of our own (Linux), gone with the socket.
                var self = new UnixDomainSocketEndPoint($"\0eiosharp-kv-notify-{Environment.ProcessId}-{Guid.NewGuid():N}");
                DatagramSocket socket = env.Net.OpenDatagram(sw, self);
                var destination = new UnixDomainSocketEndPoint(target[0] == '@' ? "\0" + target[1..] : target);
                await socket.SendToAsync(destination, Encoding.ASCII.GetBytes(state));
            }, "kv-sd-notify");
        }
        catch (NetException e)
        {
            log($"systemd supervision error: {e.Message}");
        }
    }
}

/// <summary>The signals that shut the server down.</summary>
internal enum KvSignal
{
    /// <summary>SIGINT (shutdown-on-sigint).</summary>
    Interrupt,

    /// <summary>SIGTERM (shutdown-on-sigterm).</summary>
    Terminate,
}

/// <summary>Where the process's SIGINT and SIGTERM handlers go: the server sets <see cref="Handler"/> once it can shut down
/// with the flags of shutdown-on-sigint / shutdown-on-sigterm.</summary>
/// <remarks><b>Thread safety</b>: <see cref="Handler"/> is read by the runtime's signal thread and written by the server.</remarks>
internal sealed class KvSignalShutdown
{
    private volatile Action<KvSignal>? _handler;

    /// <summary>The server's handler; null until the server is ready (the caller stops the server plainly until then).</summary>
    public Action<KvSignal>? Handler { get => _handler; set => _handler = value; }

    /// <summary>Resets SIGINT to its default disposition when the process was started with it ignored (a job started in
    /// the background by a non-interactive shell, <c>nohup</c>...). Call before registering the handlers.</summary>
    /// <remarks>The .NET runtime does not handle a SIGINT it found ignored at start, so <c>kill -INT</c> would do nothing;
    /// redis-server installs its handler regardless (setupSignalHandlers: sigaction), so a SIGINT sent to it always shuts
    /// it down with shutdown-on-sigint's flags. This makes EioSharp.Kv do the same.</remarks>
    public static void UnignoreInterrupt()
    {
        const int SigInt = 2;
        nint previous = Signal(SigInt, 0); // SIG_DFL
        if (previous != 1) // not SIG_IGN: put back whatever was there (the runtime's handler or the default)
        {
            Signal(SigInt, previous);
        }
    }

    [DllImport("libc", EntryPoint = "signal")]
    private static extern nint Signal(int signal, nint handler);
}
