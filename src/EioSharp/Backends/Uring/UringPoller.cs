using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Native;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Backends.Uring;

/// <summary>
/// The io_uring backend's poller: one ring per domain, set up with raw syscalls (no native library). Operations queue SQEs
/// without a syscall; the domain submits them once per scheduler round (<see cref="PollNow"/> while busy) or together with its
/// wait (<see cref="Wait"/>: <c>io_uring_enter</c> with GETEVENTS; the domain's next timer deadline is an absolute
/// IORING_OP_TIMEOUT kept armed in the ring across waits, §208), and dispatches the completions on its own thread (each
/// completion only enqueues the waiting fiber's continuation: no fiber code runs inside the poller).
/// </summary>
/// <remarks>
/// Eio: the ring of <c>Eio_linux</c>'s scheduler. Cross-thread wake-ups: an eventfd watched by a one-shot POLL_ADD in the
/// ring, re-armed after each wake. The ring is touched only by its domain's thread, except <see cref="Wake"/>.
/// Linux x64 only (syscall numbers).
/// </remarks>
internal sealed unsafe class UringPoller : IDomainPoller, IReadyWatcher
{
    private const ulong WakeTag = 0;
    private const ulong IgnoreTag = ulong.MaxValue;
    private const ulong CloseTag = ulong.MaxValue - 1;
    private const ulong WatchBit = 1UL << 62; // tag of a ReadyWatch's POLL_ADD: WatchBit | its slot in _watches
    private const ulong MultiBit = 1UL << 61; // tag of a multishot request: MultiBit | its slot in _multis
    private const ulong TimerBit = 1UL << 60; // tag of the ring timer's TIMEOUT (§208): TimerBit | its generation
    private const ulong TimerMoveBit = 1UL << 59; // tag of the TIMEOUT_REMOVE that moves it: TimerBit | TimerMoveBit | generation
    private const ulong TimerGenerationMask = TimerMoveBit - 1;

    private readonly int _ringFd;
    private readonly EventFdWaker _waker;
    private readonly byte* _sqRing;
    private readonly nint _sqRingSize;
    private readonly byte* _cqRing;
    private readonly nint _cqRingSize;
    private readonly IoUringSqe* _sqes;
    private readonly nint _sqesSize;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint _sqEntries;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly IoUringCqe* _cqes;
    private readonly uint* _sqFlags;
    private readonly bool _deferTaskRun;
    private bool _cqeSkip; // IORING_FEAT_CQE_SKIP (5.17+): IOSQE_CQE_SKIP_SUCCESS honoured; cleared if a skipped send was refused
    private bool _needsEnable;
    private uint _localTail;
    private uint _unsubmitted;
    private uint _unsubmittedSyncs; // of those, FSYNC SQEs (never complete at submission); 0 when unsure (see TryIdle)
    private int _inflight;
    private int _pendingCloses;
    private int _disposed;
    private UringOp?[] _ops = new UringOp?[256];
    private readonly Stack<int> _freeSlots = new();
    private int _nextSlot = 1; // slot 0 is never used: tag 0 is the wake poll

    private readonly bool[] _supported;

    // Readiness watches without a waiting fiber (a child's pidfd): a one-shot POLL_ADD each, tagged WatchBit | slot.
    private readonly List<ReadyWatch?> _watches = [];
    private readonly Stack<int> _freeWatchSlots = new();
    private int _watchCount;

    // Multishot requests (one SQE, many CQEs; IORING_CQE_F_MORE clear on the last), tagged MultiBit | slot.
    private readonly List<IUringMultishot?> _multis = [];
    private readonly Stack<int> _freeMultiSlots = new();
    private int _multiCount;

    private UringPoller(EioBackendOptions options, int ringFd, EventFdWaker waker, bool[] supported, in IoUringParams p, byte* sqRing, nint sqRingSize, byte* cqRing, nint cqRingSize, IoUringSqe* sqes, nint sqesSize)
    {
        Options = options;
        SpinTicks = options.SpinStopwatchTicks;
        WakeSpinTicks = options.WakeSpinStopwatchTicks;
        _ringFd = ringFd;
        _deferTaskRun = (p.Flags & Sys.IORING_SETUP_DEFER_TASKRUN) != 0;
        _cqeSkip = (p.Features & Sys.IORING_FEAT_CQE_SKIP) != 0;
        _needsEnable = (p.Flags & Sys.IORING_SETUP_R_DISABLED) != 0;
        _sqFlags = (uint*)(sqRing + p.SqOff.Flags);
        _waker = waker;
        _supported = supported;
        _sqRing = sqRing;
        _sqRingSize = sqRingSize;
        _cqRing = cqRing;
        _cqRingSize = cqRingSize;
        _sqes = sqes;
        _sqesSize = sqesSize;
        _sqHead = (uint*)(sqRing + p.SqOff.Head);
        _sqTail = (uint*)(sqRing + p.SqOff.Tail);
        _sqMask = *(uint*)(sqRing + p.SqOff.RingMask);
        _sqEntries = p.SqEntries;
        uint* array = (uint*)(sqRing + p.SqOff.Array);
        for (uint i = 0; i < p.SqEntries; i++)
        {
            array[i] = i;
        }

        _cqHead = (uint*)(cqRing + p.CqOff.Head);
        _cqTail = (uint*)(cqRing + p.CqOff.Tail);
        _cqMask = *(uint*)(cqRing + p.CqOff.RingMask);
        _cqes = (IoUringCqe*)(cqRing + p.CqOff.Cqes);
        _localTail = Volatile.Read(ref *_sqTail);
        _ringTimer = options.UringRingTimer && Stopwatch.Frequency == 1_000_000_000
            && supported[Sys.IORING_OP_TIMEOUT] && supported[Sys.IORING_OP_TIMEOUT_REMOVE];
        ArmWake();
    }

    /// <summary>The opcodes this backend needs (checked with IORING_REGISTER_PROBE).</summary>
    private static readonly byte[] RequiredOps =
        [Sys.IORING_OP_POLL_ADD, Sys.IORING_OP_ACCEPT, Sys.IORING_OP_ASYNC_CANCEL, Sys.IORING_OP_CONNECT, Sys.IORING_OP_SEND, Sys.IORING_OP_RECV,
         Sys.IORING_OP_SENDMSG, Sys.IORING_OP_RECVMSG];

    /// <summary>The run's tuning, which this ring and the operations on it follow (fixed when the ring is made).</summary>
    internal EioBackendOptions Options { get; }

    public long SpinTicks { get; }

    public long WakeSpinTicks { get; }

    /// <summary>Creates a ring with <paramref name="options"/>, or returns null with the reason (not Linux x64, io_uring refused or too old, an opcode missing).</summary>
    public static UringPoller? TryCreate(EioBackendOptions options, out string? error)
    {
        error = null;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            error = "the io_uring backend needs Linux on x64 (syscall numbers)";
            return null;
        }

        try
        {
            // SINGLE_ISSUER | DEFER_TASKRUN (kernel 6.1+): completions are run by the domain's own thread when it enters the
            // ring to wait or reap, never by a task-work interrupt while it runs fibers. The ring is created disabled and
            // enabled by its first io_uring_enter, so the submitter is the domain's thread even when the domain is made on
            // another. A kernel that refuses the flags (EINVAL) gets the plain ring: feature detection, not a version guess.
            var p = default(IoUringParams);
            int fd = -1;
            if (!DeferTaskRunDisabled)
            {
                p.Flags = Sys.IORING_SETUP_CQSIZE | Sys.IORING_SETUP_SINGLE_ISSUER | Sys.IORING_SETUP_DEFER_TASKRUN | Sys.IORING_SETUP_R_DISABLED | Sys.IORING_SETUP_TASKRUN_FLAG;
                p.CqEntries = 8192;
                fd = (int)Sys.syscall(Sys.SYS_io_uring_setup, 1024, (nint)(&p), 0, 0, 0, 0);
            }

            if (fd < 0)
            {
                p = default;
                p.Flags = Sys.IORING_SETUP_CQSIZE;
                p.CqEntries = 8192;
                fd = (int)Sys.syscall(Sys.SYS_io_uring_setup, 1024, (nint)(&p), 0, 0, 0, 0);
            }

            if (fd < 0)
            {
                error = $"io_uring_setup failed (errno {Marshal.GetLastPInvokeError()})";
                return null;
            }

            const uint needed = Sys.IORING_FEAT_SINGLE_MMAP | Sys.IORING_FEAT_NODROP | Sys.IORING_FEAT_EXT_ARG;
            if ((p.Features & needed) != needed)
            {
                error = $"the kernel's io_uring lacks features (0x{p.Features:x}; needs SINGLE_MMAP, NODROP, EXT_ARG)";
                Libc.close(fd);
                return null;
            }

            var supported = Probe(fd, out error);
            if (supported is null)
            {
                Libc.close(fd);
                return null;
            }

            nint sqSize = (nint)(p.SqOff.Array + p.SqEntries * 4);
            nint cqSize = (nint)(p.CqOff.Cqes + p.CqEntries * (uint)sizeof(IoUringCqe));
            nint ringSize = Math.Max(sqSize, cqSize);
            byte* ring = (byte*)Sys.mmap(0, ringSize, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED | Sys.MAP_POPULATE, fd, Sys.IORING_OFF_SQ_RING);
            if ((nint)ring == -1)
            {
                error = $"mmap of the io_uring rings failed (errno {Marshal.GetLastPInvokeError()})";
                Libc.close(fd);
                return null;
            }

            nint sqesSize = (nint)(p.SqEntries * (uint)sizeof(IoUringSqe));
            var sqes = (IoUringSqe*)Sys.mmap(0, sqesSize, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED | Sys.MAP_POPULATE, fd, Sys.IORING_OFF_SQES);
            if ((nint)sqes == -1)
            {
                error = $"mmap of the io_uring SQEs failed (errno {Marshal.GetLastPInvokeError()})";
                Sys.munmap(ring, ringSize);
                Libc.close(fd);
                return null;
            }

            var waker = EventFdWaker.TryCreate(out error);
            if (waker is null)
            {
                Sys.munmap(sqes, sqesSize);
                Sys.munmap(ring, ringSize);
                Libc.close(fd);
                return null;
            }

            return new UringPoller(options, fd, waker, supported, p, ring, ringSize, ring, 0, sqes, sqesSize);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            error = e.Message;
            return null;
        }
    }

    /// <summary>Probes the kernel's opcodes: null (with the reason) when one of <see cref="RequiredOps"/> is missing, else which opcodes are supported.</summary>
    private static bool[]? Probe(int fd, out string? error)
    {
        const int n = 256;
        int size = sizeof(IoUringProbe) + n * sizeof(IoUringProbeOp);
        byte* buf = stackalloc byte[size];
        new Span<byte>(buf, size).Clear();
        if (Sys.syscall(Sys.SYS_io_uring_register, fd, Sys.IORING_REGISTER_PROBE, (nint)buf, n, 0, 0) < 0)
        {
            error = $"IORING_REGISTER_PROBE failed (errno {Marshal.GetLastPInvokeError()})";
            return null;
        }

        var probe = (IoUringProbe*)buf;
        var ops = (IoUringProbeOp*)(buf + sizeof(IoUringProbe));
        foreach (byte op in RequiredOps)
        {
            if (op >= probe->OpsLen || (ops[op].Flags & Sys.IO_URING_OP_SUPPORTED) == 0)
            {
                error = $"the kernel's io_uring does not support opcode {op}";
                return null;
            }
        }

        var supported = new bool[256];
        for (int op = 0; op < Math.Min((int)probe->OpsLen, n); op++)
        {
            supported[op] = (ops[op].Flags & Sys.IO_URING_OP_SUPPORTED) != 0;
        }

        error = null;
        return supported;
    }

    private static readonly bool[] s_maskedForTests = new bool[256];

    /// <summary>Whether this ring's kernel supports <paramref name="opcode"/> (IORING_REGISTER_PROBE at set-up); operations
    /// without a required opcode (files: READ, WRITE, FSYNC, STATX, OPENAT2, CLOSE) fall back, one by one, to the portable code.</summary>
    internal bool Supports(byte opcode) => _supported[opcode] && !Volatile.Read(ref s_maskedForTests[opcode]);

    /// <summary>Tests: makes every ring behave as if the kernel lacked <paramref name="opcode"/> (or not), to exercise the per-operation fallback.</summary>
    internal static void MaskOpcodeForTests(byte opcode, bool masked) => Volatile.Write(ref s_maskedForTests[opcode], masked);

    /// <summary>Tests and benchmarks: set up new rings without IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (as on a kernel that lacks them).</summary>
    internal static bool DeferTaskRunDisabled { get; set; }

    /// <summary>Whether this ring runs its completions' task work only when its domain enters it (IORING_SETUP_DEFER_TASKRUN).</summary>
    internal bool DeferTaskRun => _deferTaskRun;

    /// <summary>Whether write-behind sends on this ring first try a send that completes at submission without a completion
    /// entry (IOSQE_CQE_SKIP_SUCCESS with MSG_DONTWAIT | MSG_WAITALL; see <see cref="QueueSkippedSend"/>): the kernel
    /// reports IORING_FEAT_CQE_SKIP, no skipped send was refused (EINVAL), and tests have not turned it off.</summary>
    internal bool CqeSkipWorks => _cqeSkip && !CqeSkipDisabled;

    /// <summary>Tests and benchmarks: write-behind sends on every ring post a completion as before (as on a kernel without
    /// IORING_FEAT_CQE_SKIP).</summary>
    internal static bool CqeSkipDisabled { get; set; }

    /// <summary>A skipped send was refused (EINVAL, a kernel that rejects the flags together): this ring's later
    /// write-behind sends post completions as before. Feature detection on first use (domain thread only).</summary>
    internal void CqeSkipRefused() => _cqeSkip = false;

    /// <summary>True once the ring is torn down (its domain has finished).</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>The domain this ring serves.</summary>
    internal Domain? Domain { get; private set; }

    /// <summary>True unless operations are queued for submission: a domain with recent cross-domain traffic may spin a few
    /// microseconds for the next post before it enters the ring, but never with an operation not yet handed to the kernel
    /// (the spin would delay it). The wake poll re-armed after a wake-up does not count: it is this poller's own, and
    /// after every cross-domain wake-up it is queued, so counting it would stop the spin exactly where it pays.</summary>
    public bool SpinBeforeSleep => _unsubmitted == (_wakeArmQueued ? 1u : 0u);

    private bool _wakeArmQueued; // the wake poll is queued and not yet submitted (cleared when the queue is submitted)

    public bool HasRegistrations => _unsubmitted > 0 || _inflight > 0 || _pendingCloses > 0 || _watchCount > 0 || _multiCount > 0 || _hasPosted;

    /// <summary>False once a multishot accept was refused (EINVAL: a kernel before 5.19 rejects IORING_ACCEPT_MULTISHOT):
    /// this ring's accepts are then one SQE each. Feature-detected on the first use, as the opcode probe cannot tell.</summary>
    internal bool MultishotAcceptWorks { get; set; } = true;

    /// <summary>Tests: turns multishot accept off (or back on) on every ring, to compare or to exercise the one-shot path.</summary>
    internal static bool MultishotAcceptDisabled { get; set; }

    /// <summary>False once a multishot recv was refused (EINVAL before any data: a kernel before 6.0): this ring's reads
    /// are then one IORING_OP_RECV each. Feature-detected on the first use, as the opcode probe cannot tell.</summary>
    internal bool MultishotRecvWorks { get; set; } = true;

    /// <summary>Whether reads use one IORING_OP_RECV into the caller's buffer each (true, the default) rather than the
    /// multishot recv with provided buffers (<see cref="UringMultishotRecv"/>). Off by default because it measured slower:
    /// the echo ping-pong cost 1.37x the server CPU per round trip (docs/BENCHMARKS.md, session 12); tests and the
    /// benchmarks' <c>uring-recvmulti</c> variant turn it on.</summary>
    internal static bool MultishotRecvDisabled { get; set; } = true;

    private UringBufferRing? _recvBuffers;
    private bool _recvBuffersTried;

    /// <summary>This ring's provided-buffer ring for multishot recv, registered on first use; null when the kernel refused
    /// it (IORING_REGISTER_PBUF_RING, 5.19+) or multishot recv is off (domain thread only).</summary>
    internal UringBufferRing? RecvBuffers()
    {
        if (_recvBuffers is null && !_recvBuffersTried && Volatile.Read(ref _disposed) == 0)
        {
            _recvBuffersTried = true;
            _recvBuffers = UringBufferRing.TryRegister(_ringFd, out _);
            if (_recvBuffers is null)
            {
                MultishotRecvWorks = false;
            }
        }

        return MultishotRecvWorks ? _recvBuffers : null;
    }

    /// <summary>Registers a multishot request and returns its tag (the SQE's user_data); it stays registered until a
    /// completion without IORING_CQE_F_MORE (domain thread only).</summary>
    internal ulong TrackMultishot(IUringMultishot handler)
    {
        int slot;
        if (_freeMultiSlots.Count > 0)
        {
            slot = _freeMultiSlots.Pop();
            _multis[slot] = handler;
        }
        else
        {
            slot = _multis.Count;
            _multis.Add(handler);
        }

        _multiCount++;
        return MultiBit | (uint)slot;
    }

    private void CompleteMultishot(int slot, int res, uint flags)
    {
        var handler = _multis[slot];
        if ((flags & Sys.IORING_CQE_F_MORE) == 0)
        {
            _multis[slot] = null;
            _freeMultiSlots.Push(slot);
            _multiCount--;
        }

        handler?.OnCompletion(res, flags);
    }

    /// <summary>Forgets a multishot registration whose last completion will never come (a skipped send that succeeded;
    /// domain thread only).</summary>
    internal void UntrackMultishot(ulong tag)
    {
        int slot = (int)(tag & ~MultiBit);
        _multis[slot] = null;
        _freeMultiSlots.Push(slot);
        _multiCount--;
    }

    // Skipped sends (IOSQE_CQE_SKIP_SUCCESS) queued or submitted and not yet confirmed: each with the position of its SQE
    // in the submission ring and the generation its owner gave it (domain thread only).
    private readonly List<(uint Position, IUringSkippedSend Send, int Generation)> _skipped = [];
    private readonly List<(IUringSkippedSend Send, int Generation)> _skippedDone = [];
    private bool _confirmingSkipped;

    /// <summary>
    /// Registers the SQE just taken with <see cref="NextSqe"/> as a skipped send: IORING_OP_SEND with
    /// IOSQE_CQE_SKIP_SUCCESS and MSG_DONTWAIT | MSG_WAITALL. MSG_DONTWAIT makes io_uring fail the request instead of
    /// parking it (REQ_F_NOWAIT), and MSG_WAITALL makes a short send a failure, so the send either sends every byte as it
    /// is submitted, inside the <c>io_uring_enter</c> that submits it, and posts nothing, or fails there and posts its
    /// completion anyway (the kernel clears the skip on failure): the bytes sent so far (a short send) or the error
    /// (-EAGAIN when the socket was full). So once an entry has consumed the SQE and its completions are reaped, a send
    /// that posted none is done: the kernel no longer reads its buffer. <see cref="ConfirmSkippedSends"/> tells its owner
    /// (<see cref="IUringSkippedSend.SkipSucceeded"/>) after that entry; a failed one is told by its completion as usual.
    /// </summary>
    internal void QueueSkippedSend(IUringSkippedSend send, int generation) => _skipped.Add((_localTail - 1, send, generation));

    /// <summary>Skipped sends confirmed as sent whole without a completion (for tests and benchmarks).</summary>
    internal long SkippedSendsConfirmed { get; private set; }

    /// <summary>Completions reaped from the ring (for tests: a skipped send that succeeds adds none).</summary>
    internal long CompletionsReaped { get; private set; }

    // After an entry and its reap: every skipped send whose SQE the kernel has consumed and that posted no completion was
    // sent whole. Not while the completion queue has overflowed (IORING_SQ_CQ_OVERFLOW): a failed send's completion may
    // then wait in the kernel's overflow list, and the send is confirmed after a later entry has flushed it.
    private void ConfirmSkippedSends()
    {
        if (_confirmingSkipped || (Volatile.Read(ref *_sqFlags) & Sys.IORING_SQ_CQ_OVERFLOW) != 0)
        {
            return; // re-entered from an owner's confirmation (a close queued, the ring full): the outer call goes on
        }

        _confirmingSkipped = true;
        try
        {
            uint head = Volatile.Read(ref *_sqHead);
            int kept = 0;
            for (int i = 0; i < _skipped.Count; i++)
            {
                var entry = _skipped[i];
                if ((int)(head - entry.Position) > 0)
                {
                    _skippedDone.Add((entry.Send, entry.Generation));
                }
                else
                {
                    _skipped[kept++] = entry;
                }
            }

            _skipped.RemoveRange(kept, _skipped.Count - kept);
            foreach (var (send, generation) in _skippedDone)
            {
                if (send.SkipSucceeded(generation))
                {
                    SkippedSendsConfirmed++;
                }
            }

            _skippedDone.Clear();
        }
        finally
        {
            _confirmingSkipped = false;
        }
    }

    /// <inheritdoc/>
    public bool TryWatch(ReadyWatch watch)
    {
        if (Volatile.Read(ref _disposed) != 0 || Domain is not { IsCurrent: true })
        {
            return false;
        }

        int slot;
        if (_freeWatchSlots.Count > 0)
        {
            slot = _freeWatchSlots.Pop();
            _watches[slot] = watch;
        }
        else
        {
            slot = _watches.Count;
            _watches.Add(watch);
        }

        _watchCount++;
        var sqe = NextSqe(Sys.IORING_OP_POLL_ADD, watch.Fd, WatchBit | (uint)slot);
        sqe->OpFlags = 1; // POLLIN
        return true;
    }

    // The POLL_ADD of a watch completed: forget the watch, then report (readable) or give it back (the kernel refused).
    private void FireWatch(int slot, int res)
    {
        var watch = _watches[slot];
        _watches[slot] = null;
        _freeWatchSlots.Push(slot);
        _watchCount--;
        if (watch is null)
        {
            return;
        }

        if (res > 0)
        {
            watch.Ready();
        }
        else
        {
            watch.Abandoned();
        }
    }

    public void Attach(Domain domain)
    {
        Domain = domain;
        _beforeOutputDomain = DefersOutput ? domain : null;
    }

    // Once, at the domain's first idle transition (Attach is too early: the domain sets its time source after it): the
    // Stopwatch reading of the domain's time 0 (the first one at which StopwatchTimeSource.FromTimestamp reads 0, give
    // or take its rounding, which DeadlineTimestamp checks), so that a timer deadline in the domain's ticks (100 ns) is
    // a CLOCK_MONOTONIC instant in nanoseconds; none for a domain on another time source.
    private void ReadDomainTime(Domain domain)
    {
        _domainTimeRead = true;
        if (domain.Time is not StopwatchTimeSource)
        {
            return;
        }

        long now = Stopwatch.GetTimestamp();
        long ticks = StopwatchTimeSource.FromTimestamp(now);
        long origin = now - (ticks * TimestampsPerTick);
        for (int i = 0; i < TimestampsPerTick && StopwatchTimeSource.FromTimestamp(origin + (ticks * TimestampsPerTick) - 1) >= ticks; i++)
        {
            origin--;
        }

        _domainTimeOrigin = origin;
        _domainTimeKnown = true;
    }

    private Domain? _beforeOutputDomain; // the domain whose RunBeforeOutput actions this ring runs (null: none, direct sends)

    /// <summary>True unless <see cref="EioBackendOptions.UringDirectSend"/> is on: every socket send is an SQE, which the
    /// kernel sees only when <see cref="Enter"/> submits it.</summary>
    public bool DefersOutput => !Options.UringDirectSend;

    // Work other threads post to this ring's thread (a multishot recv's hand-over to another domain, or its socket closed
    // there), run by the ring itself after its next reap rather than through the domain's run queue: a domain that has
    // left its loop drops what is still posted to its run queue (its ring is torn down a moment later), which left a
    // hand-over waiting forever (the quarantined test of session 12). The ring runs everything posted to it: at its next
    // entry, at its teardown, or, once torn down, on the posting thread at once (nothing else touches the state then).
    private readonly object _postedLock = new();
    private List<(Action<object?> Callback, object? State)>? _posted;
    private volatile bool _hasPosted;
    private bool _postedClosed;
    private bool _runningPosted;

    /// <summary>Runs <paramref name="callback"/> on this ring's domain thread after its next reap (waking it if it sleeps),
    /// or on the calling thread at once when the ring is already torn down (any thread). Never dropped.</summary>
    internal void Post(Action<object?> callback, object? state)
    {
        lock (_postedLock)
        {
            if (!_postedClosed)
            {
                (_posted ??= []).Add((callback, state));
                _hasPosted = true;
                _waker.Wake(); // under the lock: the teardown closes the mailbox before it disposes the waker
                return;
            }
        }

        callback(state);
    }

    private void RunPosted()
    {
        if (_runningPosted)
        {
            return; // a callback's SQE filled the queue and entered the ring: the outer call goes on with the rest
        }

        _runningPosted = true;
        try
        {
            while (_hasPosted)
            {
                List<(Action<object?> Callback, object? State)>? items;
                lock (_postedLock)
                {
                    items = _posted;
                    _posted = null;
                    _hasPosted = false;
                }

                foreach (var (callback, state) in items ?? [])
                {
                    callback(state);
                }
            }
        }
        finally
        {
            _runningPosted = false;
        }
    }

    /// <summary>Makes sure the next <paramref name="count"/> SQEs fit in the queue without a submission in between
    /// (submitting what is queued first if not), so that a linked chain (IOSQE_IO_LINK) is submitted whole.</summary>
    internal void ReserveSqes(uint count)
    {
        if (_localTail - Volatile.Read(ref *_sqHead) + count > _sqEntries)
        {
            Enter(0, 0);
        }
    }

    /// <summary>Gets a free SQE (submitting the queue first if it is full) and fills in the common fields.</summary>
    internal IoUringSqe* NextSqe(byte opcode, int fd, ulong userData)
    {
        if (_localTail - Volatile.Read(ref *_sqHead) >= _sqEntries)
        {
            Enter(0, 0);
        }

        var sqe = &_sqes[_localTail & _sqMask];
        *sqe = default;
        sqe->Opcode = opcode;
        sqe->Fd = fd;
        sqe->UserData = userData;
        _localTail++;
        Volatile.Write(ref *_sqTail, _localTail);
        _unsubmitted++;
        if (opcode == Sys.IORING_OP_FSYNC)
        {
            _unsubmittedSyncs++;
        }

        return sqe;
    }

    // Write-behind send buffers (UringStreamTransport.BehindSend): pinned arrays (the kernel reads them after the writer
    // has gone on), by power-of-two size class from 2 KiB to UringStreamTransport.WriteBehindMaxBytes, kept per ring
    // (domain thread only) so that a steady stream of small writes allocates nothing.
    private const int SendBufferMinShift = 11;
    private const int MaxPooledSendBuffers = 64; // per size class
    private readonly Stack<byte[]>?[] _sendBuffers = new Stack<byte[]>?[8];

    /// <summary>A pinned buffer of at least <paramref name="length"/> bytes (at most 64 KiB) for a write-behind send, from
    /// this ring's pool or new (domain thread only).</summary>
    internal byte[] RentSendBuffer(int length)
    {
        int cls = SendBufferClass(length);
        if (_sendBuffers[cls] is { Count: > 0 } pool)
        {
            return pool.Pop();
        }

        SendBuffersCreated++;
        return GC.AllocateUninitializedArray<byte>(1 << (cls + SendBufferMinShift), pinned: true);
    }

    /// <summary>Takes back a buffer of <see cref="RentSendBuffer"/> once its send's last completion has arrived (domain thread only).</summary>
    internal void ReturnSendBuffer(byte[] buffer)
    {
        int cls = SendBufferClass(buffer.Length);
        var pool = _sendBuffers[cls] ??= new Stack<byte[]>();
        if (pool.Count < MaxPooledSendBuffers)
        {
            pool.Push(buffer);
        }
    }

    private static int SendBufferClass(int length) =>
        length <= 1 << SendBufferMinShift ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)length - 1) - SendBufferMinShift;

    /// <summary>Write-behind send buffers this ring has allocated (tests: the pool makes this stop growing).</summary>
    internal int SendBuffersCreated { get; private set; }

    private const int MaxPooledOps = 1024;
    private readonly Stack<UringOp> _opPool = new();

    /// <summary>A finished operation to reuse, or null (domain thread only).</summary>
    internal UringOp? RentOp() => _opPool.TryPop(out var op) ? op : null;

    /// <summary>Takes back an operation whose result has been taken (domain thread only); at most <see cref="MaxPooledOps"/> are kept.</summary>
    internal void ReturnOp(UringOp op)
    {
        if (_opPool.Count < MaxPooledOps)
        {
            _opPool.Push(op);
        }
    }

    /// <summary>Registers <paramref name="op"/> and returns its tag (the SQE's user_data).</summary>
    internal ulong Track(UringOp op)
    {
        int slot;
        if (_freeSlots.Count > 0)
        {
            slot = _freeSlots.Pop();
        }
        else
        {
            slot = _nextSlot++;
            if (slot >= _ops.Length)
            {
                Array.Resize(ref _ops, _ops.Length * 2);
            }
        }

        _ops[slot] = op;
        _inflight++;
        return (ulong)slot;
    }

    /// <summary>Queues an ASYNC_CANCEL of the operation tagged <paramref name="tag"/>; its own completion (-ECANCELED or the result) still arrives.</summary>
    internal void CancelOp(ulong tag)
    {
        var sqe = NextSqe(Sys.IORING_OP_ASYNC_CANCEL, -1, IgnoreTag);
        sqe->Addr = tag;
    }

    /// <summary>Queues an IORING_OP_CLOSE of <paramref name="fd"/> (no fiber waits for it; its completion is only counted);
    /// false when the ring is already torn down (domain thread only).</summary>
    internal bool QueueClose(int fd)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return false;
        }

        NextSqe(Sys.IORING_OP_CLOSE, fd, CloseTag);
        _pendingCloses++;
        return true;
    }

    /// <summary>Queues the wake-up poll on the eventfd: a multishot POLL_ADD (IORING_POLL_ADD_MULTI), which posts one
    /// completion per write to the eventfd and stays armed, so a wake-up costs the receiving domain neither a read of the
    /// counter nor a new poll (see <see cref="Reap"/>); re-queued only when the kernel ends it (a completion without
    /// IORING_CQE_F_MORE).</summary>
    private void ArmWake()
    {
        var sqe = NextSqe(Sys.IORING_OP_POLL_ADD, _waker.Fd, WakeTag);
        sqe->OpFlags = 1; // POLLIN
        sqe->Len = IORING_POLL_ADD_MULTI;
        _wakeArmQueued = true;
        WakePollsArmed++;
    }

    /// <summary>How many times the wake-up poll was queued (1 while the multishot poll stays armed; for tests).</summary>
    internal int WakePollsArmed { get; private set; }

    /// <summary>How many times the eventfd's counter was read back (once per <see cref="WakeDrainInterval"/> wake-ups; for tests).</summary>
    internal int WakeDrains { get; private set; }

    private const uint IORING_POLL_ADD_MULTI = 1;

    /// <summary>Wake-up completions between two reads of the eventfd's counter (kept small only as a formality: it grows
    /// by one per wake-up).</summary>
    internal const int WakeDrainInterval = 1 << 16;

    private int _wakesSinceDrain; // wake-up completions since the eventfd's counter was last read (domain thread only)

    public void Wait(int timeoutMs)
    {
        if (timeoutMs == 0)
        {
            PollNow();
            return;
        }

        if (_hintCount > 1)
        {
            // HintNextWait: one entry that waits for the hinted number of completions (or the hinted time).
            uint n = _hintCount;
            long ns = _hintNs;
            _hintCount = 0;
            if (timeoutMs >= 0)
            {
                ns = Math.Min(ns, timeoutMs * 1_000_000L);
            }

            HintedWaits++;
            _wokeOrPosted = false;
            EnterNs(n, ns);
            if (_wokeOrPosted || Domain is not { } hinted || hinted.HasQueuedWork || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }
        }

        // A wait ends with the first completion in the ring, and that may be one of the ring's own bookkeeping completions
        // that makes nothing runnable: a write-behind send's (it completes inline in the very io_uring_enter that submits
        // it with the round's receives, so the wait would return at once), a close's, a cancel's. Returning then costs
        // the domain an empty scheduler round before it waits again; instead the wait goes on here, for the time left,
        // until a completion queued work, a wake-up or a post came, or the time is up.
        if (_ringTimer)
        {
            WaitOnRingTimer(timeoutMs);
            return;
        }

        _idleDeadlineKnown = false;
        if (!Options.UringQuietWait)
        {
            Enter(1, timeoutMs);
            return;
        }

        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            _wokeOrPosted = false;
            Enter(1, timeoutMs);
            if (_wokeOrPosted || Domain is not { } domain || domain.HasQueuedWork || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            if (timeoutMs >= 0)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    return;
                }

                timeoutMs = (int)left;
            }

            QuietWaits++;
        }
    }

    private bool _wokeOrPosted; // the last entry reaped a wake-up or ran posted work (domain thread only)

    /// <summary>How many times a wait reaped only bookkeeping completions (nothing runnable) and went on waiting instead of
    /// returning an empty round to the scheduler (for tests and benchmarks).</summary>
    internal long QuietWaits { get; private set; }

    // The ring timer (EioBackendOptions.UringRingTimer, §208): the domain's next timer deadline as one absolute
    // IORING_OP_TIMEOUT kept armed across waits (domain thread only).
    private bool _ringTimer; // on (the option, the opcodes, nanosecond Stopwatch ticks); off for good if the kernel refuses it
    private bool _timerArmed; // a TIMEOUT of generation _timerGeneration is queued or armed, ending at _timerAt
    private ulong _timerGeneration;
    private long _timerAt; // a Stopwatch reading (CLOCK_MONOTONIC nanoseconds)
    private bool _timerSqeQueued; // the last TIMEOUT or TIMEOUT_REMOVE SQE, at SQ position _timerSqePosition, may still be
    private uint _timerSqePosition; // unread by the kernel (then its time is changed in place)
    private bool _timerSqeIsMove;
    private readonly long[] _timerTimespecs = GC.AllocateArray<long>(4, pinned: true); // the arm's [0..1], the move's [2..3]
    private bool _idleDeadlineKnown; // TryIdle saw the domain's next deadline, _idleDeadlineAt, for the Wait that follows it
    private long _idleDeadlineAt;
    private bool _domainTimeRead; // ReadDomainTime has run
    private bool _domainTimeKnown; // the domain runs on StopwatchTimeSource: its deadlines convert to Stopwatch readings
    private long _domainTimeOrigin;
    private const long TimestampsPerTick = 100; // Stopwatch ticks (ns) per TimeSpan tick, when _ringTimer is on

    /// <summary>How many times the ring timer was armed (a TIMEOUT queued, after the last one ended; domain thread only;
    /// for tests and benchmarks).</summary>
    internal long RingTimerArms { get; private set; }

    /// <summary>How many times the armed ring timer was moved to another deadline (a TIMEOUT_REMOVE with
    /// IORING_TIMEOUT_UPDATE; domain thread only; for tests and benchmarks).</summary>
    internal long RingTimerMoves { get; private set; }

    /// <summary>How many times the ring timer expired (its -ETIME completion; domain thread only; for tests and benchmarks).</summary>
    internal long RingTimerExpiries { get; private set; }

    /// <summary>Completions of the ring timer's SQEs reaped (its expiries, and moves that failed; domain thread only; for
    /// tests that count the ring's other completions).</summary>
    internal long RingTimerCompletions { get; private set; }

    /// <summary>Whether waits use the ring timer (<see cref="EioBackendOptions.UringRingTimer"/>, and the kernel took it).</summary>
    internal bool RingTimerOn => _ringTimer;

    /// <summary>
    /// The wait with the ring timer (§208): the wait ends at the domain's next timer deadline, read by
    /// <see cref="TryIdle"/> just before (or <paramref name="timeoutMs"/> from now, if sooner or if there was none), and
    /// that deadline is the armed IORING_OP_TIMEOUT's: when it is the one already armed (the common case: a server's
    /// next deadline is its 100 ms or 1 s housekeeping timer, the same for thousands of waits) the sleeping
    /// <c>io_uring_enter</c> has no timeout argument, so the kernel starts no timer for it; otherwise the timeout is armed
    /// or moved by an SQE submitted by that same entry. Its -ETIME completion is bookkeeping (it queues no work): the wait
    /// returns after it because its time is up, and a stale one (a deadline since moved later) only continues the quiet wait.
    /// </summary>
    private void WaitOnRingTimer(int timeoutMs)
    {
        long until = long.MaxValue;
        if (timeoutMs >= 0)
        {
            long now = Stopwatch.GetTimestamp();
            until = now + (timeoutMs * 1_000_000L); // Stopwatch ticks are nanoseconds here (_ringTimer)
            if (_idleDeadlineKnown && _idleDeadlineAt < until)
            {
                until = _idleDeadlineAt; // the deadline itself: the caller's milliseconds are rounded up
            }

            if (until <= now)
            {
                _idleDeadlineKnown = false;
                Enter(0, 0);
                return;
            }
        }

        _idleDeadlineKnown = false;
        while (true)
        {
            _wokeOrPosted = false;
            if (until == long.MaxValue || ArmRingTimer(until))
            {
                EnterNs(1, -1);
            }
            else
            {
                EnterNs(1, Math.Max(0, until - Stopwatch.GetTimestamp()));
            }

            if (!Options.UringQuietWait || _wokeOrPosted || Domain is not { } domain || domain.HasQueuedWork || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            if (until != long.MaxValue && Stopwatch.GetTimestamp() >= until)
            {
                return;
            }

            QuietWaits++;
        }
    }

    /// <summary>Makes the ring timer end at <paramref name="at"/> (a Stopwatch reading): nothing when it already does,
    /// else a TIMEOUT (none armed) or a TIMEOUT_REMOVE with IORING_TIMEOUT_UPDATE (one armed) queued for the next entry,
    /// or the time of such an SQE not yet read by the kernel changed in place. False when the ring timer is off (the
    /// caller passes the timeout to its entry instead).</summary>
    private bool ArmRingTimer(long at)
    {
        if (!_ringTimer)
        {
            return false;
        }

        if (_timerArmed && _timerAt == at)
        {
            return true;
        }

        if (_timerSqeQueued && (int)(Volatile.Read(ref *_sqHead) - _timerSqePosition) <= 0 && (_timerArmed || !_timerSqeIsMove))
        {
            // The last arm or move is still queued: the kernel reads its time only when it is submitted.
            SetTimespec(_timerSqeIsMove ? 2 : 0, at);
            _timerAt = at;
            _timerArmed = true;
            return true;
        }

        IoUringSqe* sqe;
        if (_timerArmed)
        {
            SetTimespec(2, at);
            sqe = NextSqe(Sys.IORING_OP_TIMEOUT_REMOVE, -1, TimerBit | TimerMoveBit | _timerGeneration);
            sqe->Addr = TimerBit | _timerGeneration;
            sqe->Off = (ulong)Unsafe.AsPointer(ref _timerTimespecs[2]);
            sqe->OpFlags = Sys.IORING_TIMEOUT_UPDATE | Sys.IORING_TIMEOUT_ABS;
            if (CqeSkipWorks)
            {
                sqe->Flags = Sys.IOSQE_CQE_SKIP_SUCCESS; // a failure (it had already expired) still posts, and ends the wait
            }

            _timerSqeIsMove = true;
            RingTimerMoves++;
        }
        else
        {
            SetTimespec(0, at);
            _timerGeneration = (_timerGeneration + 1) & TimerGenerationMask;
            sqe = NextSqe(Sys.IORING_OP_TIMEOUT, -1, TimerBit | _timerGeneration);
            sqe->Addr = (ulong)Unsafe.AsPointer(ref _timerTimespecs[0]);
            sqe->Len = 1;
            sqe->OpFlags = Sys.IORING_TIMEOUT_ABS; // off 0: a pure timer, not a count of completions
            _timerSqeIsMove = false;
            _timerArmed = true;
            RingTimerArms++;
        }

        _timerSqePosition = _localTail - 1;
        _timerSqeQueued = true;
        _timerAt = at;
        return true;
    }

    private void SetTimespec(int index, long at)
    {
        _timerTimespecs[index] = at / 1_000_000_000L;
        _timerTimespecs[index + 1] = at % 1_000_000_000L;
    }

    // A completion of the ring timer's TIMEOUT (its expiry, or its end with the ring) or of a move that failed.
    private void CompleteRingTimer(ulong tag, int res)
    {
        RingTimerCompletions++;
        bool current = (tag & TimerGenerationMask) == _timerGeneration;
        if ((tag & TimerMoveBit) == 0)
        {
            if (res == -Sys.ETIME)
            {
                RingTimerExpiries++;
            }
            else if (res != -Sys.ECANCELED)
            {
                _ringTimer = false; // refused (an old kernel): a timeout per entry from now on
            }
        }
        else if (res >= 0)
        {
            return; // moved (a kernel that posts it anyway)
        }
        else if (res == -Sys.EINVAL)
        {
            _ringTimer = false; // no IORING_TIMEOUT_UPDATE (before 5.11): a timeout per entry from now on
        }

        // The TIMEOUT is gone (expired, or expired before the move reached it: -ENOENT/-EALREADY): the next wait arms one.
        // A stale generation's is ignored: a newer one is armed.
        if (current)
        {
            _timerArmed = false;
        }
    }

    /// <summary>The Stopwatch reading at which a domain timer of deadline <paramref name="ticks"/> (the domain's time) is
    /// due (the first at which <see cref="StopwatchTimeSource.FromTimestamp"/> reaches it), or long.MaxValue if none fits.</summary>
    private long DeadlineTimestamp(long ticks)
    {
        if (ticks > (long.MaxValue - _domainTimeOrigin) / TimestampsPerTick - 1)
        {
            return long.MaxValue;
        }

        long at = _domainTimeOrigin + (ticks * TimestampsPerTick);
        while (StopwatchTimeSource.FromTimestamp(at) < ticks)
        {
            at++;
        }

        return at;
    }

    public void PollNow()
    {
        if (_hintCount > 1 && ++_hintPolls <= MaxHintPolls)
        {
            SubmitOnly(); // a hinted wait is pending: the completions are left for it
            return;
        }

        _hintCount = 0; // a domain that stays busy reaps as before

        Enter(0, 0);
    }

    /// <summary>Submits the queued SQEs without reaping (no GETEVENTS: with DEFER_TASKRUN the completions
    /// stay as task work for the next waiting entry).</summary>
    private void SubmitOnly()
    {
        if (_unsubmitted == 0)
        {
            return;
        }

        if (_beforeOutputDomain is { BeforeOutputPending: true } before)
        {
            before.RunBeforeOutputActions();
        }

        if (_needsEnable || !_deferTaskRun)
        {
            Enter(0, 0);
            return;
        }

        Enters++;
        uint submitFlags = 0;
        long r = Sys.syscall_noerrno(Sys.SYS_io_uring_enter, EnterFd(ref submitFlags), _unsubmitted, 0, submitFlags, 0, 0);
        if (r >= 0)
        {
            _unsubmitted -= (uint)Math.Min(r, _unsubmitted);
            _unsubmittedSyncs = 0;
            if (_unsubmitted == 0)
            {
                _wakeArmQueued = false;
            }
        }

        if (_skipped.Count > 0)
        {
            ConfirmSkippedSends();
        }
    }

    /// <summary>
    /// <see cref="Domain.HintNextWait"/> (session 24, h149): the next <see cref="Wait"/> enters the ring once with
    /// min_complete <paramref name="completions"/> and a limit of <paramref name="maxNanoseconds"/> (less if the domain's
    /// next timer is sooner). With DEFER_TASKRUN the kernel wakes the waiting thread only when that many completions are
    /// pending, so N receives cost one wake-up instead of up to N. Until that wait, the domain's busy polls
    /// (<see cref="PollNow"/>) submit without reaping (at most <see cref="MaxHintPolls"/> of them, then the hint is
    /// dropped) and the idle pre-pass is skipped, so the completions are left for the wait. A cross-thread post still
    /// counts as one completion: it is run when the wait ends (at the count or the limit).
    /// </summary>
    public void HintNextWait(int completions, long maxNanoseconds)
    {
        _hintCount = (uint)Math.Max(0, completions);
        _hintNs = maxNanoseconds;
        _hintPolls = 0;
    }

    private uint _hintCount; // the next wait's min_complete (0/1: none; domain thread only)
    private long _hintNs; // and its limit
    private int _hintPolls; // busy polls that left completions for the hinted wait
    private const int MaxHintPolls = 64;

    /// <summary>Waits that used a <see cref="HintNextWait"/> hint (domain thread only; for tests and benchmarks).</summary>
    internal long HintedWaits { get; private set; }

    /// <summary>
    /// The idle pre-pass (issue 15, session 16): called by the domain when its run queue is empty, before it counts an idle
    /// transition and sleeps in <see cref="Wait"/>. The round that just ended queued its receives and sends as SQEs that
    /// would reach the kernel only with the sleeping <c>io_uring_enter</c>; a receive whose data is already there then
    /// completes inline in that very call, and the "sleep" returns at once, after an idle transition that did no waiting.
    /// Here they are submitted first without waiting (min_complete 0; with DEFER_TASKRUN the completions' task work runs
    /// in the same call): when that makes work runnable, the domain runs another busy round instead (true). Costs no
    /// syscall when nothing is queued and no task work is pending (the CQ is read in memory); otherwise one
    /// <c>io_uring_enter</c>, which the sleep that follows, if any, no longer needs for the submission.
    /// <see cref="EioBackendOptions.UringIdlePrePass"/> false turns it off, to count what it changes in the same binary.
    /// <para>Session 19: when every queued SQE is a file FSYNC (and the ring's own wake poll) and no task work is pending,
    /// the entry is skipped (<see cref="IdlePrePassSkips"/>): io_uring never completes an fsync at submission (it always
    /// goes to an io-wq worker), so the entry could make nothing runnable and the sleeping entry submits the SQE anyway.
    /// Completions already in the CQ are still reaped (in memory, no syscall).</para>
    /// </summary>
    public bool TryIdle(Domain domain, bool haveTimer, long nextDeadline)
    {
        // For the Wait that follows (the ring timer's deadline, §208): at its own unit, not the caller's milliseconds.
        if (!_domainTimeRead)
        {
            ReadDomainTime(domain);
        }

        _idleDeadlineKnown = _ringTimer && haveTimer && _domainTimeKnown;
        if (_idleDeadlineKnown)
        {
            _idleDeadlineAt = DeadlineTimestamp(nextDeadline);
        }

        if (_hintCount > 1)
        {
            return false; // the hinted wait submits and waits in one entry
        }

        if (!Options.UringIdlePrePass || Volatile.Read(ref _disposed) != 0)
        {
            return false;
        }

        bool taskWork = _deferTaskRun && (Volatile.Read(ref *_sqFlags) & Sys.IORING_SQ_TASKRUN) != 0;
        long enters = Enters;
        if (_unsubmittedSyncs > 0 && _unsubmitted == _unsubmittedSyncs + (_wakeArmQueued ? 1u : 0u) && !taskWork)
        {
            IdlePrePassSkips++;
            ReapAndRunPosted();
        }
        else if (_prePassBackoffLeft > 0 && !taskWork)
        {
            // Backing off after entries that found nothing (see below): the sleeping entry submits the queue instead.
            _prePassBackoffLeft--;
            IdlePrePassBackoffs++;
            ReapAndRunPosted();
        }
        else
        {
            Enter(0, 0);
        }

        if (domain.HasQueuedWork)
        {
            IdlePrePassHits++;
            _prePassMisses = 0;
            _prePassBackoffNext = 1;
            return true;
        }

        if (Options.UringIdleSpin && SpinTicks > 0 && _deferTaskRun && SpinForTaskWork(domain))
        {
            return true;
        }

        if (Enters != enters && ++_prePassMisses >= PrePassMissesBeforeBackoff)
        {
            // Session 22 (h141): an entry that made nothing runnable is one io_uring_enter more than the sleep needed (the
            // sleeping entry submits the same SQEs, and returns at once if one completes at submission). With write-behind
            // sends that post no completion, a lone client's round ends with its reply's send and its next receive queued,
            // and the receive never has data yet: every pre-pass missed, two entries per request. After two misses in a
            // row the next 1, 2, 4 ... 64 pre-passes are skipped (as the domain's spin backs off); a hit resets it. With
            // sends that resume their writer (write-behind off), a hit comes every other pre-pass, so nothing changes.
            _prePassBackoffLeft = _prePassBackoffNext;
            _prePassBackoffNext = Math.Min(MaxPrePassBackoff, _prePassBackoffNext * 2);
        }

        return false;
    }

    /// <summary>
    /// <see cref="EioBackendOptions.UringIdleSpin"/> (session 26, h159): the idle pre-pass found nothing runnable; spin up
    /// to <see cref="SpinTicks"/> for a completion's task work (the SQ ring's IORING_SQ_TASKRUN flag, set by the kernel
    /// when a completion waits for this thread, read in memory) or a cross-thread post before the domain sleeps. Why: in a
    /// request/reply exchange between several clients (the KV's BLPOP/LPUSH ping-pong) the next request usually arrives
    /// microseconds after the replies went out, and a sleep and wake-up cost the domain's thread far more system time than
    /// the spin (redis-server gets the same effect for free: a woken client preempts it in its write(2), and its next
    /// epoll_wait finds the request there). The spin does not yield the core (a yield on a loaded machine cost more than
    /// it saved). Adaptive as <c>Domain.SpinForRemote</c>: after a spin that found nothing the next 1, 2, 4 ... 64 idle
    /// transitions do not spin once two spins in a row found nothing (a lone client's turnaround is longer than the
    /// budget); a hit resets it.
    /// </summary>
    private bool SpinForTaskWork(Domain domain)
    {
        if (_idleSpinSkip > 0)
        {
            _idleSpinSkip--;
            return false;
        }

        if (_unsubmitted > 0)
        {
            Enter(0, 0); // the round's sends first (the pre-pass may have been backing off)
            if (domain.HasQueuedWork)
            {
                return true;
            }
        }

        IdleSpins++;
        long until = Stopwatch.GetTimestamp() + SpinTicks;
        do
        {
            if (domain.HasRemoteWork)
            {
                return SpinHit();
            }

            if ((Volatile.Read(ref *_sqFlags) & Sys.IORING_SQ_TASKRUN) != 0)
            {
                Enter(0, 0);
                if (domain.HasQueuedWork)
                {
                    return SpinHit();
                }
            }

            // No Thread.Yield here (unlike Domain.SpinForRemote): at load 12-21 a spin that yielded every fourth loop cost
            // 63.2 µs per ping-pong round trip against 55.0 without (67.0 with no spin): a yield on a busy machine hands
            // the core to unrelated work and the thread comes back late (session 26).
            Thread.SpinWait(20);
        }
        while (Stopwatch.GetTimestamp() < until && Volatile.Read(ref _disposed) == 0);

        if (++_idleSpinMisses >= IdleSpinMissesBeforeBackoff)
        {
            _idleSpinSkip = _idleSpinBackoff;
            _idleSpinBackoff = Math.Min(MaxIdleSpinBackoff, _idleSpinBackoff * 2);
        }

        return false;
    }

    private bool SpinHit()
    {
        IdleSpinHits++;
        _idleSpinMisses = 0;
        _idleSpinBackoff = 1;
        return true;
    }

    // Two misses in a row before backing off (as the pre-pass): backing off after every miss left the ping-pong at 0.97
    // sleeps per round trip, after two 0.39, never 0.16 (session 26), while a lone client still backs off to 1 in 64.
    private const int IdleSpinMissesBeforeBackoff = 2;
    private int _idleSpinMisses; // spins in a row that found nothing

    private const int MaxIdleSpinBackoff = 64;
    private int _idleSpinSkip; // idle transitions still to sleep at once (domain thread only)
    private int _idleSpinBackoff = 1; // idle transitions to skip after the next spin that finds nothing

    /// <summary>Idle spins started (<see cref="EioBackendOptions.UringIdleSpin"/>; domain thread only; for tests and benchmarks).</summary>
    internal long IdleSpins { get; private set; }

    /// <summary>Idle spins that found work, so the domain ran another round instead of sleeping (domain thread only).</summary>
    internal long IdleSpinHits { get; private set; }

    private const int PrePassMissesBeforeBackoff = 2;
    private const int MaxPrePassBackoff = 64;
    private int _prePassMisses; // pre-pass entries in a row that made nothing runnable (domain thread only)
    private int _prePassBackoffLeft; // pre-passes still to skip
    private int _prePassBackoffNext = 1; // pre-passes to skip after the next miss

    /// <summary>Whether the next idle pre-pass will be skipped (backing off; domain thread only; for tests).</summary>
    internal bool PrePassBackingOff => _prePassBackoffLeft > 0;

    /// <summary>How many idle pre-passes were skipped while backing off after entries that made nothing runnable (domain
    /// thread only; for tests and benchmarks).</summary>
    internal long IdlePrePassBackoffs { get; private set; }

    /// <summary>Socket reads submitted with IORING_RECVSEND_POLL_FIRST (<see cref="EioBackendOptions.UringRecvPollFirst"/>;
    /// domain thread only; for tests and benchmarks).</summary>
    internal long RecvPollFirsts { get; set; }

    /// <summary>How many times this ring called <c>io_uring_enter</c> (domain thread only; for tests and benchmarks).</summary>
    internal long Enters { get; private set; }

    /// <summary>How many times the idle pre-pass made work runnable, so the domain ran another round instead of waiting
    /// (domain thread only; for tests and benchmarks).</summary>
    internal long IdlePrePassHits { get; private set; }

    /// <summary>How many idle pre-passes skipped their entry because only FSYNC SQEs were queued (domain thread only; for
    /// tests and benchmarks).</summary>
    internal long IdlePrePassSkips { get; private set; }

    /// <summary>Submits what is queued and reaps completions until <paramref name="done"/> holds or <paramref name="limit"/>
    /// has passed (domain thread only; completions only enqueue continuations, so this is safe inside a fiber).</summary>
    internal void SubmitAndReapUntil(Func<object?, bool> done, object? state, TimeSpan limit)
    {
        long end = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        Enter(0, 0);
        while (!done(state) && Environment.TickCount64 < end && Volatile.Read(ref _disposed) == 0)
        {
            Enter(1, 10);
        }
    }

    /// <summary>Submits what is queued and, when <paramref name="minComplete"/> is 1, waits up to <paramref name="timeoutMs"/> (-1: no limit) for a completion; then dispatches the completions.</summary>
    private void Enter(uint minComplete, int timeoutMs) => EnterNs(minComplete, timeoutMs < 0 ? -1L : timeoutMs * 1_000_000L);

    // The registered ring (§214, EioBackendOptions.UringRegisteredRing): the ring's fd registered in its domain thread's
    // io_uring context (IORING_REGISTER_RING_FDS, 5.18+) at the first entry, so that each io_uring_enter names it by that
    // index with IORING_ENTER_REGISTERED_RING and the kernel takes no reference on the ring's file per entry (fget/fput:
    // two atomic operations on the file's count, as the process has several threads). The index means this ring only
    // on the thread that registered it (another thread's index may name another ring): any other thread enters by fd. The
    // teardown (on the domain's thread, as the first entry) unregisters it; one torn down elsewhere would stay referenced
    // by the registering thread's context until that thread ends.
    private int _registeredIndex = -1; // the ring's index in _registeredThread's registered rings, -1 when not registered
    private int _registeredThread; // the managed id of the thread that registered it

    /// <summary>Whether this ring's entries name it by its registered index (tests and benchmarks).</summary>
    internal bool RingRegistered => _registeredIndex >= 0;

    private void RegisterRingFd()
    {
        var update = new IoUringRsrcUpdate { Offset = uint.MaxValue, Data = (ulong)_ringFd }; // offset -1: the kernel picks
        if (Sys.syscall(Sys.SYS_io_uring_register, _ringFd, Sys.IORING_REGISTER_RING_FDS, (nint)(&update), 1, 0, 0) == 1)
        {
            _registeredIndex = (int)update.Offset;
            _registeredThread = Environment.CurrentManagedThreadId;
        }
    }

    private void UnregisterRingFd()
    {
        if (_registeredIndex >= 0 && _registeredThread == Environment.CurrentManagedThreadId)
        {
            var update = new IoUringRsrcUpdate { Offset = (uint)_registeredIndex };
            Sys.syscall(Sys.SYS_io_uring_register, _ringFd, Sys.IORING_UNREGISTER_RING_FDS, (nint)(&update), 1, 0, 0);
        }

        _registeredIndex = -1;
    }

    // io_uring_enter's first argument: the registered index (and its flag) on the registering thread, else the fd.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int EnterFd(ref uint flags)
    {
        if (_registeredIndex >= 0 && _registeredThread == Environment.CurrentManagedThreadId)
        {
            flags |= Sys.IORING_ENTER_REGISTERED_RING;
            return _registeredIndex;
        }

        return _ringFd;
    }

    private void EnterNs(uint minComplete, long timeoutNs)
    {
        if (_beforeOutputDomain is { BeforeOutputPending: true } before && (_unsubmitted > 0 || minComplete > 0))
        {
            // Domain.RunBeforeOutput: the domain's actions run before the kernel sees the sends queued since (the KV
            // server's AOF write before its replies, as Redis's beforeSleep). Not before a busy round's poll that submits
            // nothing: the sends queued by the next rounds join the same action.
            before.RunBeforeOutputActions();
        }

        if (_needsEnable)
        {
            // The first entry, on the thread that will submit from now on (SINGLE_ISSUER binds the ring to it).
            _needsEnable = false;
            Sys.syscall(Sys.SYS_io_uring_register, _ringFd, Sys.IORING_REGISTER_ENABLE_RINGS, 0, 0, 0, 0);
            if (Options.UringRegisteredRing)
            {
                RegisterRingFd();
            }
        }

        // DEFER_TASKRUN: completed operations wait as task work until the ring is entered with GETEVENTS; the kernel says
        // so in the SQ ring's flags (IORING_SQ_TASKRUN, with IORING_SETUP_TASKRUN_FLAG), so a busy round with nothing to
        // submit and nothing completed still costs no syscall.
        bool taskWork = _deferTaskRun && (Volatile.Read(ref *_sqFlags) & Sys.IORING_SQ_TASKRUN) != 0;
        if (_unsubmitted > 0 || minComplete > 0 || taskWork)
        {
            uint flags = minComplete > 0 || _deferTaskRun ? Sys.IORING_ENTER_GETEVENTS : 0;
            long r;
            Enters++;
            if (minComplete > 0 && timeoutNs >= 0)
            {
                var ts = new KernelTimespec { Sec = timeoutNs / 1_000_000_000L, Nsec = timeoutNs % 1_000_000_000L };
                var arg = new IoUringGeteventsArg { Ts = (ulong)(&ts) };
                r = Sys.syscall_noerrno(Sys.SYS_io_uring_enter, EnterFd(ref flags), _unsubmitted, minComplete, flags | Sys.IORING_ENTER_EXT_ARG, (nint)(&arg), sizeof(IoUringGeteventsArg));
            }
            else
            {
                r = Sys.syscall_noerrno(Sys.SYS_io_uring_enter, EnterFd(ref flags), _unsubmitted, minComplete, flags, 0, 0);
            }

            if (r >= 0)
            {
                _unsubmitted -= (uint)Math.Min(r, _unsubmitted);
                _unsubmittedSyncs = 0; // all submitted, or a part: then which are left is not known (0 only disables a skip)
                if (_unsubmitted == 0)
                {
                    _wakeArmQueued = false;
                }
            }

            // Errors (EINTR, ETIME, EBUSY while the CQ overflows) leave the SQEs queued: the next round submits them.
        }

        ReapAndRunPosted();
        if (_skipped.Count > 0)
        {
            ConfirmSkippedSends();
        }
    }

    private void ReapAndRunPosted()
    {
        Reap();
        if (_hasPosted)
        {
            _wokeOrPosted = true;
            RunPosted();
        }
    }

    private void Reap()
    {
        uint head = *_cqHead;
        uint tail = Volatile.Read(ref *_cqTail);
        bool rearm = false;
        while (head != tail)
        {
            var cqe = _cqes[head & _cqMask];
            head++;
            CompletionsReaped++;
            if (cqe.UserData == WakeTag)
            {
                _wokeOrPosted = true;
                if (++_wakesSinceDrain >= WakeDrainInterval)
                {
                    _wakesSinceDrain = 0;
                    _waker.Drain();
                    WakeDrains++;
                }

                // The multishot poll stays armed while the kernel sets IORING_CQE_F_MORE (it ends it on an error or a
                // completion-queue overflow): only then is it queued again.
                rearm |= (cqe.Flags & Sys.IORING_CQE_F_MORE) == 0;
            }
            else if (cqe.UserData == CloseTag)
            {
                _pendingCloses--;
            }
            else if (cqe.UserData == IgnoreTag)
            {
            }
            else if ((cqe.UserData & WatchBit) != 0)
            {
                _wokeOrPosted = true; // a watch's owner may act on another thread's behalf: always ends the wait
                FireWatch((int)(cqe.UserData & ~WatchBit), cqe.Res);
            }
            else if ((cqe.UserData & MultiBit) != 0)
            {
                CompleteMultishot((int)(cqe.UserData & ~MultiBit), cqe.Res, cqe.Flags);
            }
            else if ((cqe.UserData & TimerBit) != 0)
            {
                CompleteRingTimer(cqe.UserData, cqe.Res); // bookkeeping: queues no work
            }
            else
            {
                int slot = (int)cqe.UserData;
                var op = _ops[slot];
                _ops[slot] = null;
                _freeSlots.Push(slot);
                _inflight--;
                op?.Complete(cqe.UserData, cqe.Res);
            }

            if (head == tail)
            {
                Volatile.Write(ref *_cqHead, head);
                tail = Volatile.Read(ref *_cqTail);
            }
        }

        Volatile.Write(ref *_cqHead, head);
        if (rearm)
        {
            ArmWake();
        }
    }

    public void Wake() => _waker.Wake();

    public void Dispose()
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            // Closes queued by the domain's last round: submit them and wait for their completions (a few ms at most), so
            // that tearing the ring down cannot drop a close and leak its descriptor.
            // Multishot requests still armed (a listener whose accept loops on this domain have ended): cancel them and
            // reap their last completions, so that a connection they accepted meanwhile is closed, not leaked.
            RunPosted(); // hand-overs posted by other domains: their cancellations are reaped below
            for (int i = 0; i < _multis.Count; i++)
            {
                _multis[i]?.RingClosing();
            }

            for (int i = 0; i < 100 && (_pendingCloses > 0 || _unsubmitted > 0 || _multiCount > 0); i++)
            {
                Enter(_pendingCloses > 0 || _multiCount > 0 ? 1u : 0u, 10);
            }
        }

        List<(Action<object?> Callback, object? State)>? lastPosted = null;
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            lock (_postedLock)
            {
                // From now on posts run on their own thread at once; the ones that came since the last reap run below,
                // once every request of the ring has ended or been abandoned.
                _postedClosed = true;
                lastPosted = _posted;
                _posted = null;
                _hasPosted = false;
            }

            // Closing the ring cancels what is still in flight (the wake poll, and the polls of watches left: the
            // domain's fibers have all finished); the watches' owners then watch them some other way.
            UnregisterRingFd();
            Sys.munmap(_sqes, _sqesSize);
            Sys.munmap(_sqRing, _sqRingSize);
            Libc.close(_ringFd);
            _recvBuffers?.Free();
            _waker.Dispose();
            for (int i = 0; i < _watches.Count; i++)
            {
                var watch = _watches[i];
                _watches[i] = null;
                watch?.Abandoned();
            }

            _watchCount = 0;
            for (int i = 0; i < _multis.Count; i++)
            {
                var multi = _multis[i];
                _multis[i] = null;
                multi?.Abandoned();
            }

            _multiCount = 0;
            _skipped.Clear(); // their owners were abandoned above (still registered) or have ended
            foreach (var (callback, state) in lastPosted ?? [])
            {
                callback(state);
            }
        }
    }
}

/// <summary>A multishot request on a ring: one SQE, a completion per event (IORING_CQE_F_MORE set while more will come).</summary>
internal interface IUringMultishot
{
    /// <summary>One completion (domain thread). Without IORING_CQE_F_MORE in <paramref name="flags"/> it is the last: the request is no longer armed.</summary>
    void OnCompletion(int res, uint flags);

    /// <summary>The ring is being torn down (its domain has ended): cancel the request; its last completions are still reaped.</summary>
    void RingClosing();

    /// <summary>The ring was closed with the request still registered (its last completion never came): release what it held.</summary>
    void Abandoned();
}

/// <summary>A send queued with IOSQE_CQE_SKIP_SUCCESS (<see cref="UringPoller.QueueSkippedSend"/>).</summary>
internal interface IUringSkippedSend
{
    /// <summary>The entry that submitted the send has returned and no completion came for it: every byte was sent and the
    /// kernel is done with the buffer (domain thread). <paramref name="generation"/> is the one given at queueing; false
    /// when it is stale (a completion came, the send went on as another request) and nothing was done.</summary>
    bool SkipSucceeded(int generation);
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoSqringOffsets
{
    public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
    public ulong UserAddr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoCqringOffsets
{
    public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
    public ulong UserAddr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoUringParams
{
    public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
    public IoSqringOffsets SqOff;
    public IoCqringOffsets CqOff;
}

/// <summary>A submission queue entry (64 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct IoUringSqe
{
    [FieldOffset(0)] public byte Opcode;
    [FieldOffset(1)] public byte Flags;
    [FieldOffset(2)] public ushort IoPrio;
    [FieldOffset(4)] public int Fd;
    [FieldOffset(8)] public ulong Off; // also addr2
    [FieldOffset(16)] public ulong Addr;
    [FieldOffset(24)] public uint Len;
    [FieldOffset(28)] public uint OpFlags; // msg_flags, accept_flags, poll_events, fsync_flags...
    [FieldOffset(32)] public ulong UserData;
    [FieldOffset(40)] public ushort BufIndex;
    [FieldOffset(42)] public ushort Personality;
    [FieldOffset(44)] public int SpliceFdIn;
    [FieldOffset(48)] public ulong Addr3;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoUringCqe
{
    public ulong UserData;
    public int Res;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoUringProbe
{
    public byte LastOp, OpsLen;
    public ushort Resv;
    public uint Resv2a, Resv2b, Resv2c;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoUringProbeOp
{
    public byte Op, Resv;
    public ushort Flags;
    public uint Resv2;
}

/// <summary>struct io_uring_rsrc_update (IORING_REGISTER_RING_FDS and its unregistration).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringRsrcUpdate
{
    public uint Offset, Resv;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
internal struct KernelTimespec
{
    public long Sec, Nsec;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoUringGeteventsArg
{
    public ulong Sigmask;
    public uint SigmaskSz, MinWaitUsec;
    public ulong Ts;
}

/// <summary>The raw syscalls and constants of the io_uring backend (Linux x64).</summary>
internal static unsafe partial class Sys
{
    public const long SYS_io_uring_setup = 425;
    public const long SYS_io_uring_enter = 426;
    public const long SYS_io_uring_register = 427;
    public const uint IORING_SETUP_CQSIZE = 1u << 3;
    public const uint IORING_SETUP_R_DISABLED = 1u << 6;
    public const uint IORING_SETUP_TASKRUN_FLAG = 1u << 9;
    public const uint IORING_SETUP_SINGLE_ISSUER = 1u << 12;
    public const uint IORING_SETUP_DEFER_TASKRUN = 1u << 13;
    public const uint IORING_SQ_TASKRUN = 1u << 2;
    public const int IORING_REGISTER_ENABLE_RINGS = 12;
    public const int IORING_REGISTER_RING_FDS = 20;
    public const int IORING_UNREGISTER_RING_FDS = 21;
    public const uint IORING_ENTER_REGISTERED_RING = 1u << 4;
    public const uint IORING_FEAT_SINGLE_MMAP = 1u << 0;
    public const uint IORING_FEAT_NODROP = 1u << 1;
    public const uint IORING_FEAT_EXT_ARG = 1u << 8;
    public const uint IORING_FEAT_CQE_SKIP = 1u << 11;
    public const uint IORING_SQ_CQ_OVERFLOW = 1u << 1;
    public const byte IOSQE_CQE_SKIP_SUCCESS = 1 << 6;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_WAITALL = 0x100;
    public const uint IORING_ENTER_GETEVENTS = 1u << 0;
    public const uint IORING_CQE_F_MORE = 1u << 1;
    public const ushort IORING_ACCEPT_MULTISHOT = 1 << 0;
    public const int EINVAL = 22;
    public const int ENOBUFS = 105;
    public const int IORING_REGISTER_PBUF_RING = 22;
    public const ushort IORING_RECVSEND_POLL_FIRST = 1 << 0;
    public const ushort IORING_RECV_MULTISHOT = 1 << 1;
    public const byte IOSQE_BUFFER_SELECT = 1 << 5;
    public const uint IORING_CQE_F_BUFFER = 1u << 0;
    public const int IORING_CQE_BUFFER_SHIFT = 16;
    public const uint IORING_ENTER_EXT_ARG = 1u << 3;
    public const long IORING_OFF_SQ_RING = 0;
    public const long IORING_OFF_SQES = 0x10000000;
    public const int IORING_REGISTER_PROBE = 8;
    public const ushort IO_URING_OP_SUPPORTED = 1;
    public const byte IORING_OP_FSYNC = 3;
    public const byte IORING_OP_POLL_ADD = 6;
    public const byte IORING_OP_SENDMSG = 9;
    public const byte IORING_OP_RECVMSG = 10;
    public const byte IORING_OP_TIMEOUT = 11;
    public const byte IORING_OP_TIMEOUT_REMOVE = 12;
    public const uint IORING_TIMEOUT_ABS = 1u << 0;
    public const uint IORING_TIMEOUT_UPDATE = 1u << 1;
    public const byte IORING_OP_ACCEPT = 13;
    public const byte IORING_OP_ASYNC_CANCEL = 14;
    public const byte IORING_OP_CONNECT = 16;
    public const byte IORING_OP_CLOSE = 19;
    public const byte IORING_OP_STATX = 21;
    public const byte IORING_OP_READ = 22;
    public const byte IORING_OP_WRITE = 23;
    public const byte IORING_OP_SEND = 26;
    public const byte IORING_OP_RECV = 27;
    public const byte IORING_OP_OPENAT2 = 28;
    public const uint IORING_FSYNC_DATASYNC = 1;
    public const byte IOSQE_IO_LINK = 1 << 2;
    public const byte IOSQE_ASYNC = 1 << 4;
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 1;
    public const int MAP_POPULATE = 0x8000;
    public const int ECANCELED = 125;
    public const int ETIME = 62;
    public const int EINTR = 4;

    /// <summary>glibc's <c>syscall(2)</c>; variadic in C, but on x64 the integer arguments travel in the same registers.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    /// <summary><see cref="syscall"/> without <c>SetLastError</c>, for <c>io_uring_enter</c>, whose callers read only
    /// its return value (an error leaves the SQEs queued for the next entry): the marshaller then neither clears
    /// <c>errno</c> before the call nor reads it after (two native calls per entry saved, once per request at one client).</summary>
    [LibraryImport("libc", EntryPoint = "syscall")]
    public static partial long syscall_noerrno(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    [LibraryImport("libc", SetLastError = true)]
    public static partial void* mmap(nint addr, nint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(void* addr, nint length);
}
