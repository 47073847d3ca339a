using EioSharp.Net;

namespace EioSharp.Backends;

/// <summary>A backend resolved for this process: its name, its network and how each of its domains waits.</summary>
/// <param name="Kind">The backend in use (never <see cref="EioBackend.Auto"/>).</param>
/// <param name="Net">The network capability handed to the program.</param>
/// <param name="PollerFactory">Makes each domain's poller; every domain of the run (the main one and those its domain
/// manager starts) gets one, with the run's <see cref="EioBackendOptions"/>.</param>
internal sealed record BackendChoice(EioBackend Kind, NetworkCapability Net, Func<IDomainPoller> PollerFactory)
{
    /// <summary>The lower-case name <see cref="Stdenv.Backend"/> reports.</summary>
    public string Name => Kind switch
    {
        EioBackend.Epoll => "epoll",
        EioBackend.Uring => "uring",
        _ => "portable",
    };

    /// <summary>The portable backend with <paramref name="options"/> (of which it uses <see cref="EioBackendOptions.DomainSpin"/> and <see cref="EioBackendOptions.DomainWakeSpin"/>).</summary>
    public static BackendChoice Portable(EioBackendOptions options)
    {
        long spin = options.SpinStopwatchTicks, wakeSpin = options.WakeSpinStopwatchTicks;
        return new(EioBackend.Portable, PortableNetwork.Instance, () => new EventPoller(spin, wakeSpin));
    }

    private static int s_fallbackNoted;

    /// <summary>Resolves <paramref name="requested"/> to a backend that works here, falling back uring → epoll → portable.</summary>
    /// <param name="requested">The backend asked for.</param>
    /// <param name="options">The run's tuning, handed to each domain's poller.</param>
    /// <param name="noteFallback">When true, a fallback is noted on stderr (once per process).</param>
    public static BackendChoice Resolve(EioBackend requested, EioBackendOptions options, bool noteFallback)
    {
        var reasons = new List<string>();
        if (requested is EioBackend.Uring or EioBackend.Auto)
        {
            var uring = UringBackend.TryCreate(options, out string? error);
            if (uring is not null)
            {
                return uring;
            }

            reasons.Add($"io_uring: {error}");
        }

        if (requested is EioBackend.Uring or EioBackend.Epoll or EioBackend.Auto)
        {
            var epoll = EpollBackend.TryCreate(options, out string? error);
            if (epoll is not null)
            {
                Note(requested, epoll, reasons, noteFallback);
                return epoll;
            }

            reasons.Add($"epoll: {error}");
        }

        var portable = Portable(options);
        Note(requested, portable, reasons, noteFallback);
        return portable;
    }

    private static void Note(EioBackend requested, BackendChoice chosen, List<string> reasons, bool noteFallback)
    {
        if (noteFallback && requested != EioBackend.Auto && reasons.Count > 0 && Interlocked.Exchange(ref s_fallbackNoted, 1) == 0)
        {
            Console.Error.WriteLine(
                $"EioSharp: the {requested.ToString().ToLowerInvariant()} backend is unavailable ({string.Join("; ", reasons)}); using {chosen.Name}.");
        }
    }
}
