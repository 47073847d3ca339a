namespace EioSharp;

/// <summary>
/// Tuning of the real backends (portable, epoll, io_uring), given by value in <see cref="EioOptions.BackendOptions"/> and
/// handed to every domain of that run (each domain's poller or ring keeps its own copy: two runs in one process may use
/// different settings). Each default is the setting measured best or safest so far (docs/rationale.md §119 says why); the
/// others exist so one binary can measure both ways. Options that concern another backend than the one in use are ignored.
/// </summary>
/// <remarks>
/// Eio has no such knobs by value (its backends take a few settings as optional arguments of <c>Eio_linux.run</c>, such
/// as <c>queue_depth</c>); this is the same idea. <see cref="EioMain"/> applies the environment overrides the benchmark
/// scripts use (one variable per option, listed on each property) on top of this value, in one place; a variable with an
/// invalid value is an <see cref="ArgumentException"/>, as an unknown backend name is.
/// </remarks>
public sealed class EioBackendOptions
{
    /// <summary>The defaults (what a null <see cref="EioOptions.BackendOptions"/> means).</summary>
    public static EioBackendOptions Default { get; } = new();

    private readonly int _inlineWriteMaxBytes = 64 * 1024;
    private readonly TimeSpan _domainSpin = TimeSpan.FromTicks(50);
    private readonly TimeSpan _domainWakeSpin = TimeSpan.FromMicroseconds(50);

    /// <summary>
    /// The largest write to a regular file, in bytes, that the io_uring and epoll backends do inline: a blocking
    /// <c>pwrite</c> into the page cache on the domain's own thread instead of a hand-off to an io-wq worker or the
    /// thread pool (0: none, every write is handed off). Default 65,536 (64 KiB): context switches per file write+fsync
    /// iteration went from 8.5 to 6.1 on io_uring and from 79 to 10.6 on epoll (session 17, h115, §112); the cap bounds how
    /// long one write holds the domain's other fibers. Override: <c>EIOSHARP_INLINE_WRITE_MAX=N</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative value.</exception>
    public int InlineWriteMaxBytes
    {
        get => _inlineWriteMaxBytes;
        init => _inlineWriteMaxBytes = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(InlineWriteMaxBytes), value, "a byte count >= 0");
    }

    /// <summary>
    /// The longest an idle domain whose last busy stretch exchanged work with another domain spins for the next
    /// cross-domain post before it sleeps (every real backend; <see cref="TimeSpan.Zero"/>: never spin; a machine with
    /// one core never spins). Default 5 µs: long enough for a reply from a domain running at the same time, short enough
    /// that an oversubscribed machine loses little (§71: a fixed 50 µs spin made the ping-pong benchmark 10x slower at
    /// load 40). After a busy stretch whose post had to wake the domain it went to, the spin lasts up to
    /// <see cref="DomainWakeSpin"/> instead. Overrides: <c>EIOSHARP_DOMAIN_SPIN_US=N</c> (microseconds),
    /// <c>EIOSHARP_DOMAIN_SPIN=0</c> (no spin).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative duration.</exception>
    public TimeSpan DomainSpin
    {
        get => _domainSpin;
        init => _domainSpin = value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(DomainSpin), value, "a duration >= 0");
    }

    /// <summary>
    /// The longest an idle domain spins for the next cross-domain post when its last busy stretch posted to a domain that
    /// was asleep, so that the post had to wake it (instead of <see cref="DomainSpin"/>; the longer of the two counts; no
    /// effect when <see cref="DomainSpin"/> is zero). An answer to such a post cannot come before the other domain's
    /// thread is woken and runs, which often takes longer than <see cref="DomainSpin"/> (a hand-off to a sleeping domain
    /// took 12-15 µs on this project's quiet 2-core VM; a bare futex wake-up 2.7 µs at the median, over 35 µs in its slowest
    /// tenth); a spin that stopped sooner would sleep too, the answer would have to wake this domain in turn, and both
    /// would sleep once per hand-off from then on (docs/rationale.md §187). Default 50 µs; the spin yields the core
    /// as the short one does and backs off the same way when it finds nothing. <see cref="TimeSpan.Zero"/>: the short spin
    /// after every post. Override: <c>EIOSHARP_DOMAIN_WAKE_SPIN_US=N</c> (microseconds).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative duration.</exception>
    public TimeSpan DomainWakeSpin
    {
        get => _domainWakeSpin;
        init => _domainWakeSpin = value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(DomainWakeSpin), value, "a duration >= 0");
    }

    /// <summary>
    /// io_uring: file fsync/fdatasync run on the blocking offload (a system thread) instead of IORING_OP_FSYNC. Default
    /// false: the ring (ext4 has no non-blocking fsync, so the ring hands it to an io-wq worker: 5.8 context switches per
    /// write+fsync iteration vs 10.5 on the offload; session 17, §112). Override: <c>EIOSHARP_URING_FILE_SYNC=offload|ring</c>.
    /// </summary>
    public bool UringFileSyncOnOffload { get; init; }

    /// <summary>
    /// io_uring: file WRITE and FSYNC SQEs carry IOSQE_ASYNC (straight to an io-wq worker, no non-blocking attempt first).
    /// Default false: it saved nothing (9.3 switches per write+fsync iteration vs 8.5 without; session 17, §112). Override:
    /// <c>EIOSHARP_URING_FILE_ASYNC=0|1</c>.
    /// </summary>
    public bool UringFileForceAsync { get; init; }

    /// <summary>
    /// io_uring: a small socket write (up to 64 KiB) is copied into a buffer of the ring and sent by an SQE no fiber waits
    /// for, so the writer does not suspend (errors surface on the next operation). Default false: on a quiet machine
    /// (session 14) it showed no CPU or throughput gain on the KV rows while it changes what a write means. Since session 22
    /// a send that goes whole at submission posts no completion where the kernel can skip it (IORING_FEAT_CQE_SKIP), so a
    /// request/response loop costs one <c>io_uring_enter</c> per round trip; the KV server turns it on for itself
    /// (docs/rationale.md §136). Override: <c>EIOSHARP_URING_WRITE_BEHIND=0|1</c>.
    /// </summary>
    public bool UringWriteBehind { get; init; }

    /// <summary>
    /// io_uring: a socket write first tries one non-blocking <c>send(2)</c>, as the epoll backend does. Default false: in
    /// session 13 it cut the pipelined KV rows' CPU per request but doubled the unpipelined rows' (each send wakes the
    /// client at once, which then preempts the server). Override: <c>EIOSHARP_URING_DIRECT_SEND=0|1</c>.
    /// </summary>
    public bool UringDirectSend { get; init; }

    /// <summary>
    /// io_uring: a wait that reaped only the ring's bookkeeping completions (nothing runnable) goes on waiting instead of
    /// returning an empty scheduler round. Default true: it cut idle transitions per round trip (echo 0.107 → 0.070, P1
    /// GET 0.279 → 0.117; session 15, §95) with no syscall more. Override: <c>EIOSHARP_URING_QUIET_WAIT=0|1</c>.
    /// </summary>
    public bool UringQuietWait { get; init; } = true;

    /// <summary>
    /// io_uring: before an idle domain sleeps, what the round queued is submitted without waiting, and if that makes work
    /// runnable the domain runs another round instead of sleeping. Default true: idle transitions per P1 GET 0.377 → 0.046,
    /// syscalls per echo round trip 0.135 → 0.109 (session 16, §106).
    /// Override: <c>EIOSHARP_URING_IDLE_PREPASS=0|1</c>.
    /// </summary>
    public bool UringIdlePrePass { get; init; } = true;

    /// <summary>
    /// io_uring: an idle domain whose pre-pass found nothing runnable spins up to <see cref="DomainSpin"/> (5 µs by
    /// default) before it sleeps, watching the SQ ring's <c>IORING_SQ_TASKRUN</c> flag (the kernel sets it when a
    /// completion's task work waits for the domain's thread: reading it costs no syscall) and its cross-thread queue
    /// between pause loops (no yield); once two spins in a row found nothing, the next 1, 2, 4 ... 64 idle transitions
    /// sleep at once, and a spin that finds work resets that. Needs DEFER_TASKRUN (kernel 6.1+), more than one core, a
    /// spin budget above zero and <see cref="UringIdlePrePass"/>, else nothing spins. Default false (the library's idle
    /// domains sleep at once), in the KV server too: in the BLPOP/LPUSH ping-pong under load it cut the domain thread's
    /// sleeps per round trip 1.35-1.59 → 0.39-0.78 and its CPU per round trip 54.0 → 50.2 µs (load 8) and 67.0 → 55.0 µs
    /// (load 12-21), but on a quiet machine it made no difference (0.98x vs 0.97x redis-server's round trips, 79.5 vs
    /// 77.5 µs), and a spinning thread takes the core a client on the same core needs (session 26, docs/rationale.md §156).
    /// Override: <c>EIOSHARP_URING_IDLE_SPIN=0|1</c>.
    /// </summary>
    public bool UringIdleSpin { get; init; }

    /// <summary>
    /// io_uring: a socket read whose previous read on the same socket came back short (fewer bytes than its buffer: the
    /// socket was drained) is submitted with IORING_RECVSEND_POLL_FIRST, so the kernel arms the wait for data at once
    /// instead of first trying a receive that finds nothing (a lone client's next request is never there when the reply
    /// goes out: that try was one failed <c>tcp_recvmsg</c> per request before the wait was armed anyway). A read after a
    /// full one, or the first read of a socket, tries at once as before. Needs DEFER_TASKRUN (kernel 6.1+; the flag is
    /// 5.19+), else ignored. Default false. Override: <c>EIOSHARP_URING_RECV_POLL_FIRST=0|1</c>.
    /// </summary>
    public bool UringRecvPollFirst { get; init; }

    /// <summary>
    /// io_uring: an idle domain's next timer deadline is one absolute IORING_OP_TIMEOUT kept armed in its ring across
    /// waits, moved (IORING_TIMEOUT_UPDATE, in the same <c>io_uring_enter</c> as the wait) only when the deadline changes,
    /// so that a wait whose deadline is the last one's sleeps with no timeout argument and the kernel starts no timer for
    /// it; false: every sleeping <c>io_uring_enter</c> passes the deadline as its own timeout (IORING_ENTER_EXT_ARG),
    /// which arms and cancels a kernel timer per sleep. The wait ends at the deadline itself (the timeout is absolute on
    /// CLOCK_MONOTONIC, <see cref="System.Diagnostics.Stopwatch"/>'s clock), not rounded up to a millisecond. Needs
    /// IORING_OP_TIMEOUT and IORING_OP_TIMEOUT_REMOVE (5.11+ for the update), else ignored. Default true (docs/rationale.md
    /// §208). Override: <c>EIOSHARP_URING_RING_TIMER=0|1</c>.
    /// </summary>
    public bool UringRingTimer { get; init; } = true;

    /// <summary>
    /// io_uring: each domain's ring is registered in its thread's io_uring context at the ring's first
    /// <c>io_uring_enter</c> (IORING_REGISTER_RING_FDS, 5.18+), and its entries name it by that index
    /// (IORING_ENTER_REGISTERED_RING), so the kernel takes and drops no reference on the ring's file per entry: ~30-80 ns
    /// less per <c>io_uring_enter</c> on the machine it was measured on (docs/rationale.md §214). The ring is unregistered
    /// when its domain ends; entries from any other thread name it by its fd. A kernel that refuses the registration, or a
    /// ring made without SINGLE_ISSUER | DEFER_TASKRUN (before 6.1), enters by fd. Default true. Override:
    /// <c>EIOSHARP_URING_REGISTERED_RING=0|1</c>.
    /// </summary>
    public bool UringRegisteredRing { get; init; } = true;

    /// <summary>The spin budget in Stopwatch ticks (0: none), as the domains use it.</summary>
    internal long SpinStopwatchTicks => Environment.ProcessorCount > 1
        ? (long)(DomainSpin.TotalSeconds * System.Diagnostics.Stopwatch.Frequency)
        : 0;

    /// <summary>The spin budget after a post that woke its target, in Stopwatch ticks (0: none): the longer of
    /// <see cref="DomainWakeSpin"/> and <see cref="DomainSpin"/>, none where <see cref="SpinStopwatchTicks"/> is none.</summary>
    internal long WakeSpinStopwatchTicks => SpinStopwatchTicks is > 0 and var spin
        ? Math.Max(spin, (long)(DomainWakeSpin.TotalSeconds * System.Diagnostics.Stopwatch.Frequency))
        : 0;

    /// <summary>A copy with the same settings, to change some with <c>with</c>-like init (used by the overrides).</summary>
    internal EioBackendOptions Copy(
        int? inlineWriteMaxBytes = null, TimeSpan? domainSpin = null, bool? uringFileSyncOnOffload = null,
        bool? uringFileForceAsync = null, bool? uringWriteBehind = null, bool? uringDirectSend = null,
        bool? uringQuietWait = null, bool? uringIdlePrePass = null, bool? uringIdleSpin = null,
        bool? uringRecvPollFirst = null, TimeSpan? domainWakeSpin = null, bool? uringRingTimer = null,
        bool? uringRegisteredRing = null) => new()
    {
        InlineWriteMaxBytes = inlineWriteMaxBytes ?? InlineWriteMaxBytes,
        DomainSpin = domainSpin ?? DomainSpin,
        DomainWakeSpin = domainWakeSpin ?? DomainWakeSpin,
        UringFileSyncOnOffload = uringFileSyncOnOffload ?? UringFileSyncOnOffload,
        UringFileForceAsync = uringFileForceAsync ?? UringFileForceAsync,
        UringWriteBehind = uringWriteBehind ?? UringWriteBehind,
        UringDirectSend = uringDirectSend ?? UringDirectSend,
        UringQuietWait = uringQuietWait ?? UringQuietWait,
        UringIdlePrePass = uringIdlePrePass ?? UringIdlePrePass,
        UringIdleSpin = uringIdleSpin ?? UringIdleSpin,
        UringRecvPollFirst = uringRecvPollFirst ?? UringRecvPollFirst,
        UringRingTimer = uringRingTimer ?? UringRingTimer,
        UringRegisteredRing = uringRegisteredRing ?? UringRegisteredRing,
    };

    /// <summary>
    /// The one place the backend tuning variables are read: <paramref name="options"/> with each set variable's value
    /// applied on top (a set variable wins; an empty one counts as unset).
    /// </summary>
    /// <param name="options">The options given by value.</param>
    /// <param name="variable">Reads an environment variable (tests pass their own).</param>
    /// <returns><paramref name="options"/> itself when no variable is set, else a copy with the overrides.</returns>
    /// <exception cref="ArgumentException">A variable has an invalid value (<see cref="ArgumentException.ParamName"/> is its name).</exception>
    internal static EioBackendOptions ApplyOverrides(EioBackendOptions options, Func<string, string?> variable)
    {
        int? inlineMax = Count(variable, "EIOSHARP_INLINE_WRITE_MAX");
        int? spinUs = Count(variable, "EIOSHARP_DOMAIN_SPIN_US");
        bool? spin = Flag(variable, "EIOSHARP_DOMAIN_SPIN", "1", "0");
        int? wakeSpinUs = Count(variable, "EIOSHARP_DOMAIN_WAKE_SPIN_US");
        bool? syncOffload = Flag(variable, "EIOSHARP_URING_FILE_SYNC", "offload", "ring");
        bool? forceAsync = Flag(variable, "EIOSHARP_URING_FILE_ASYNC", "1", "0");
        bool? writeBehind = Flag(variable, "EIOSHARP_URING_WRITE_BEHIND", "1", "0");
        bool? directSend = Flag(variable, "EIOSHARP_URING_DIRECT_SEND", "1", "0");
        bool? quietWait = Flag(variable, "EIOSHARP_URING_QUIET_WAIT", "1", "0");
        bool? prePass = Flag(variable, "EIOSHARP_URING_IDLE_PREPASS", "1", "0");
        bool? idleSpin = Flag(variable, "EIOSHARP_URING_IDLE_SPIN", "1", "0");
        bool? recvPollFirst = Flag(variable, "EIOSHARP_URING_RECV_POLL_FIRST", "1", "0");
        bool? ringTimer = Flag(variable, "EIOSHARP_URING_RING_TIMER", "1", "0");
        bool? registeredRing = Flag(variable, "EIOSHARP_URING_REGISTERED_RING", "1", "0");
        TimeSpan? domainSpin = spin == false ? TimeSpan.Zero : spinUs is int us ? TimeSpan.FromMicroseconds(us) : null;
        if (inlineMax is null && domainSpin is null && syncOffload is null && forceAsync is null && writeBehind is null &&
            directSend is null && quietWait is null && prePass is null && idleSpin is null && recvPollFirst is null &&
            wakeSpinUs is null && ringTimer is null && registeredRing is null)
        {
            return options;
        }

        return options.Copy(
            inlineMax, domainSpin, syncOffload, forceAsync, writeBehind, directSend, quietWait, prePass, idleSpin, recvPollFirst,
            wakeSpinUs is int wakeUs ? TimeSpan.FromMicroseconds(wakeUs) : null, ringTimer, registeredRing);
    }

    private static int? Count(Func<string, string?> variable, string name)
    {
        string? v = variable(name);
        return string.IsNullOrWhiteSpace(v) ? null
            : int.TryParse(v.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n
            : throw new ArgumentException($"{name} must be a whole number >= 0, not '{v}'.", name);
    }

    private static bool? Flag(Func<string, string?> variable, string name, string on, string off)
    {
        string? v = variable(name)?.Trim();
        return string.IsNullOrEmpty(v) ? null
            : string.Equals(v, on, StringComparison.OrdinalIgnoreCase) ? true
            : string.Equals(v, off, StringComparison.OrdinalIgnoreCase) ? false
            : throw new ArgumentException($"{name} must be {on} or {off}, not '{v}'.", name);
    }
}
